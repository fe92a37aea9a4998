#!/usr/bin/env bash
# Measures every figure a YOLO9tr model card quotes, on this machine:
#   scripts/yolo9tr-figures.sh s|n [RUNS]
# params/MACs/arena (inspect), mAP on the held-out test and style-shifted splits (eval-detect,
# 500 images each at the model's input size, generated as scripts/train-yolo9tr.sh does), and
# single-thread latency on both backends, interleaved (bench --backend both).
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:?usage: scripts/yolo9tr-figures.sh s|n [RUNS]}
runs=${2:-100}
model=models/zoo/yolo9tr-$variant.onnx
case "$variant" in s) size=224 ;; n) size=128 ;; *) echo "s or n" >&2; exit 2 ;; esac
cargo build --release --quiet
bin=./target/release/edgetrim
for split in test shifted; do
  dir=data/pave$size/$split
  [ -d "$dir" ] || $bin datagen pavement --split "$split" --images 500 --size "$size" --out "$dir"
done
$bin inspect "$model"
for split in test shifted; do
  echo "== $split"
  $bin eval-detect "$model" --data "data/pave$size/$split"
done
$bin bench "$model" --backend both --runs "$runs"
