#!/usr/bin/env bash
# Continues training the RNN-T TODM supernet and its baseline on a CUDA machine for a fixed time,
# on twice the CPU recipe's training data (scripts/train-rnnt.sh stays the reference recipe; this
# is how the committed zoo model got its extra epochs on a briefly lent GPU).
#
#   scripts/train-rnnt-gpu.sh RUN_ROOT [MINUTES]       # default 5 minutes of training
#
# - Data: 24,000 training utterances (8 seeds x 3,000, generated in parallel, merged into one
#   folder; the train split's sentences and voices, as always) and the usual validation split
#   (seed 2), under $SPEECH_DATA (default /tmp/speech-gpu). Features are analysed on every core.
# - Training: the supernet and the depth=2,width=0.5 baseline train at the same time on the one
#   GPU (their steps are small: launch-bound, not compute-bound), each warm-started from
#   runs/rnnt-todm/best.pt and runs/rnnt-base/best.pt when those exist ($INIT_DIR overrides
#   where), same epochs cap, same time box, cosine decay over the time box (train.py --hours).
# - Output: RUN_ROOT/{rnnt-todm,rnnt-base}/{best.pt,history.json,train.log}; the optimiser
#   checkpoints (last.pt) are deleted at the end to keep the folder small. Then, on any machine:
#     cp RUN_ROOT/rnnt-todm/best.pt runs/rnnt-todm/best.pt   (likewise rnnt-base) and export.
#
# Needs: python3 with torch (CUDA), numpy; espeak-ng on PATH (its data via ESPEAK_DATA_PATH if
# not installed); the edgetrim binary as $EDGETRIM (default target/release/edgetrim).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
run_root="$(realpath -m "${1:?usage: train-rnnt-gpu.sh RUN_ROOT [MINUTES]}")"
minutes="${2:-5}"
data="${SPEECH_DATA:-/tmp/speech-gpu}"
edgetrim="${EDGETRIM:-$root/target/release/edgetrim}"
init_dir="${INIT_DIR:-$root/runs}"
epochs="${EPOCHS:-12}"
part_count="${PART_COUNT:-3000}"  # utterances per seed (smaller for a smoke test)
device="${DEVICE:-cuda}"
hours="$(python3 -c "print($minutes / 60)")"
mkdir -p "$run_root/rnnt-todm" "$run_root/rnnt-base"

started=$SECONDS
if [ ! -f "$data/train/transcripts.tsv" ]; then
  rm -rf "$data" && mkdir -p "$data/parts"
  pids=()
  for seed in 1 11 12 13 14 15 16 17; do
    "$edgetrim" datagen speech --split train --seed "$seed" --count "$part_count" --out "$data/parts/$seed" \
      >"$data/parts/$seed.log" 2>&1 & pids+=($!)
  done
  "$edgetrim" datagen speech --split val --seed 2 --count 600 --out "$data/val" >"$data/val.log" 2>&1 & pids+=($!)
  for p in "${pids[@]}"; do wait "$p"; done
  # one folder, utterances renumbered part after part (the ids are only file names)
  python3 - "$data" <<'EOF'
import os, sys
from pathlib import Path
data = Path(sys.argv[1])
out = data / "train"
(out / "wav").mkdir(parents=True)
lines, n = [], 0
for part in sorted((p for p in (data / "parts").iterdir() if p.is_dir()), key=lambda p: int(p.name)):
    for line in (part / "transcripts.tsv").read_text().splitlines():
        uid, voice, text = line.split("\t")
        os.replace(part / "wav" / f"{uid}.wav", out / "wav" / f"{n:06}.wav")
        lines.append(f"{n:06}\t{voice}\t{text}\n")
        n += 1
(out / "transcripts.tsv").write_text("".join(lines))
print(f"merged {n} training utterances")
EOF
fi
echo "data ready in $((SECONDS - started)) s"

cd "$root/models/train"
python3 -m rnnt features --data "$data"
echo "features ready in $((SECONDS - started)) s"

train() {  # name, extra args...
  local name="$1"; shift
  local init=()
  [ -f "$init_dir/$name/best.pt" ] && init=(--init "$init_dir/$name/best.pt")
  python3 -m rnnt train --data "$data" --out "$run_root/$name" --device "$device" --batch 64 --lr 4e-3 \
    --warmup 300 --threads 4 --epochs "$epochs" --hours "$hours" --anneal-in-time --eval-every 3 "${init[@]}" "$@" \
    >"$run_root/$name/train.log" 2>&1
}
train rnnt-todm & supernet=$!
train rnnt-base --slice depth=2,width=0.5 & baseline=$!
status=0
wait "$supernet" || status=$?
wait "$baseline" || status=$?
rm -f "$run_root"/rnnt-*/last.pt
tail -n 3 "$run_root"/rnnt-*/train.log
echo "done in $((SECONDS - started)) s"
exit "$status"
