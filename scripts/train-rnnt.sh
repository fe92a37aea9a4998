#!/usr/bin/env bash
# Retrains the RNN-T TODM supernet on generated speech, trains its smallest subnet alone as the
# baseline, exports the supernet to models/zoo/rnnt-todm/ and evaluates slices and baseline on
# the held-out voices (test split).
#
#   scripts/train-rnnt.sh               # everything (~2 h on 2 cores shared with a build)
#   scripts/train-rnnt.sh --hours 1     # stop both trainers cleanly after an hour each
#
# Resumable: rerunning continues from runs/rnnt-todm/last.pt and runs/rnnt-base/last.pt
# (checkpoints every 100 steps, with the batch position, so a killed session loses minutes).
# Extra arguments go to both trainers. Export and evaluation run once both have finished.
set -euo pipefail
cd "$(dirname "$0")/.."
data=data/speech
supernet_epochs=5
baseline_slice=depth=2,width=0.5
baseline_epochs=5
bash scripts/setup-train.sh
bash scripts/setup-speech.sh
cargo build --release --quiet
# Disjoint sentences per split; test uses voices training never hears (models/src/datagen/speech).
for spec in train:1:12000 val:2:600 test:3:600; do
  IFS=: read -r split seed count <<<"$spec"
  [ -f "$data/$split/transcripts.tsv" ] || ./target/release/edgetrim datagen speech --split "$split" \
    --seed "$seed" --count "$count" --out "$data/$split"
done
cd models/train
python3 -m rnnt features --data "../../$data"
python3 -m rnnt train --data "../../$data" --out ../../runs/rnnt-todm --epochs "$supernet_epochs" "$@"
python3 -m rnnt train --data "../../$data" --out ../../runs/rnnt-base --slice "$baseline_slice" \
  --epochs "$baseline_epochs" "$@"
finished() {
  python3 -c "import json, sys; sys.exit(json.load(open('$1/history.json'))['epoch'] < $2)" 2>/dev/null
}
if ! finished ../../runs/rnnt-todm "$supernet_epochs" || ! finished ../../runs/rnnt-base "$baseline_epochs"; then
  echo "training not finished: rerun scripts/train-rnnt.sh to resume" >&2
  exit 0
fi
python3 -m rnnt export --ckpt ../../runs/rnnt-todm/best.pt -o ../zoo/rnnt-todm
python3 -m rnnt check ../zoo/rnnt-todm --data "../../$data/test" --limit 100 --ckpt ../../runs/rnnt-todm/best.pt
# Two slices exported from PyTorch (what the compressor's --slice must reproduce), decoded with
# onnxruntime chunk by chunk: transcripts must equal PyTorch's.
for s in depth=3,width=0.75 "$baseline_slice"; do
  python3 -m rnnt export --ckpt ../../runs/rnnt-todm/best.pt --slice "$s" -o "../../runs/rnnt-todm/slice-$s"
  python3 -m rnnt check "../../runs/rnnt-todm/slice-$s" --data "../../$data/test" --limit 100 \
    --ckpt ../../runs/rnnt-todm/best.pt --slice "$s"
done
python3 -m rnnt eval --ckpt ../../runs/rnnt-todm/best.pt --data "../../$data/test" \
  --slice depth=4,width=1 --slice depth=4,width=0.75 --slice depth=3,width=0.75 \
  --slice depth=3,width=0.5 --slice "$baseline_slice" --json ../../runs/rnnt-todm/test.json
python3 -m rnnt eval --ckpt ../../runs/rnnt-base/best.pt --data "../../$data/test" \
  --json ../../runs/rnnt-base/test.json
