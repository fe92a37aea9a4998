#!/usr/bin/env bash
# Continues training the committed RNN-T TODM supernet on this CPU, starting from the zoo's own
# ONNX weights (training checkpoints are not committed), on training data with more speakers.
#
#   scripts/train-rnnt-more.sh [HOURS]      # default 1.5 h of training, then export + checks
#
# 1. `python3 -m rnnt import models/zoo/rnnt-todm` turns the committed graphs back into a
#    checkpoint (runs/zoo/init.pt; every weight round-trips bit for bit).
# 2. Data under $SPEECH_DATA (default data/speech): 24,000 training utterances (seed 21,
#    `--more-voices`: espeak-ng's named variants too, `TRAIN_ONLY_VARIANTS` in
#    models/src/datagen/speech/voices.rs), the usual val (seed 2) and test (seed 3) splits.
# 3. The TODM sandwich recipe of models/train/rnnt, warm-started (`--init`): AdamW 1.5e-3, 100
#    warm-up steps, cosine decay over the time box (`--hours`, `--anneal-in-time`), batch 16.
#    Resumable: rerun the same command and it continues from $RUN/last.pt, inside an epoch and
#    inside the same time box (the decay goes on where it stopped); once the box is used up a
#    rerun trains nothing and only repeats step 4. Another HOURS starts a new box.
# 4. When the time box has run out: export the best checkpoint (by validation WER) to
#    models/zoo/rnnt-todm, check the ONNX graphs against PyTorch, evaluate slices on test.
#
# Environment: RUN (default runs/rnnt-todm3), SPEECH_DATA, EDGETRIM (default
# target/release/edgetrim, built if missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
hours="${1:-1.5}"
data="$(realpath -m "${SPEECH_DATA:-data/speech}")"
run="$(realpath -m "${RUN:-runs/rnnt-todm3}")"
edgetrim="${EDGETRIM:-$root/target/release/edgetrim}"
bash scripts/setup-train.sh
bash scripts/setup-speech.sh
[ -x "$edgetrim" ] || cargo build --release --quiet --bin edgetrim
for spec in train:21:24000:--more-voices val:2:600 test:3:600; do
  IFS=: read -r split seed count more <<<"$spec"
  # shellcheck disable=SC2086 # $more is one flag or none
  [ -f "$data/$split/transcripts.tsv" ] || "$edgetrim" datagen speech --split "$split" \
    --seed "$seed" --count "$count" $more --out "$data/$split"
done
mkdir -p "$run"
cd models/train
[ -f "$run/init.pt" ] || python3 -m rnnt import ../zoo/rnnt-todm -o "$run/init.pt"
python3 -m rnnt features --data "$data"
python3 -m rnnt train --data "$data" --out "$run" --init "$run/init.pt" --lr 1.5e-3 --warmup 100 \
  --epochs 12 --hours "$hours" --anneal-in-time 2>&1 | tee -a "$run/train.log"
python3 -m rnnt export --ckpt "$run/best.pt" -o ../zoo/rnnt-todm
python3 -m rnnt check ../zoo/rnnt-todm --data "$data/test" --limit 100 --ckpt "$run/best.pt"
python3 -m rnnt eval --ckpt "$run/best.pt" --data "$data/test" \
  --slice depth=4,width=1 --slice depth=4,width=0.75 --slice depth=3,width=0.75 \
  --slice depth=3,width=0.5 --slice depth=2,width=0.625 --slice depth=2,width=0.5 --by-voice \
  --json "$run/test.json"
