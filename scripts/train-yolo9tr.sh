#!/usr/bin/env bash
# Retrains a YOLO9tr variant on generated pavement data and exports it to models/zoo/.
#
#   scripts/train-yolo9tr.sh s    # YOLO9tr-s: width 0.5, 224 px, 20 epochs (~1 h on 2 idle cores)
#   scripts/train-yolo9tr.sh n    # YOLO9tr-n: width 0.25, 128 px, 16 epochs (~20 min)
#
# Resumable: rerunning the same command continues from runs/yolo9tr-VARIANT/last.pt (a
# session that ends mid-run loses at most one epoch). Extra arguments go to the trainer,
# e.g. `--hours 1.5` to stop cleanly before a deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:?usage: scripts/train-yolo9tr.sh s|n [trainer flags]}
shift
case "$variant" in
  s) size=224 epochs=20 ;;
  n) size=128 epochs=16 ;;
  *) echo "unknown variant $variant (s or n)" >&2; exit 2 ;;
esac
data=data/pave$size
bash scripts/setup-train.sh
cargo build --release --quiet
# Disjoint seed streams per split (see models/src/datagen/mod.rs); test and shifted are held out.
for spec in train:6000 val:300 test:500 shifted:500; do
  split=${spec%%:*}
  [ -d "$data/$split" ] || ./target/release/edgetrim datagen pavement --split "$split" \
    --images "${spec##*:}" --size "$size" --out "$data/$split"
done
(cd models/train && python3 -m yolo9tr train --variant "$variant" --data "../../$data" \
  --out "../../runs/yolo9tr-$variant" --epochs "$epochs" "$@")
if [ -f "runs/yolo9tr-$variant/history.json" ] && python3 -c "
import json, sys; h = json.load(open('runs/yolo9tr-$variant/history.json')); sys.exit(h['epoch'] < $epochs)"; then
  (cd models/train && python3 -m yolo9tr export --variant "$variant" \
    --checkpoint "../../runs/yolo9tr-$variant/best.pt" -o "../zoo/yolo9tr-$variant.onnx")
  for split in test shifted; do
    ./target/release/edgetrim eval-detect "models/zoo/yolo9tr-$variant.onnx" --data "$data/$split"
  done
fi
