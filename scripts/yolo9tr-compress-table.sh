#!/usr/bin/env bash
# The compressor's table for the bundled YOLO9tr-s at 224 px (issue 4's Done-when), by
# scripts/detector-compress-table.sh: test mAP50 on 500 generated images, calibration on 64
# others; pruning spends 34 % of the MACs (channels=0.3,macs=0.34).
#   scripts/yolo9tr-compress-table.sh [SCRATCH_DIR] [RUNS]
# Generates data/calib224 (64 val images) and data/pave224/test (500 test images) if
# missing. Takes about 10 minutes on 2 cores (the pruning scan and refit about 3).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=./target/release/edgetrim
[ -d data/calib224 ] || $bin datagen pavement --split val --images 64 --size 224 --out data/calib224 >/dev/null
[ -d data/pave224/test ] || $bin datagen pavement --split test --images 500 --size 224 --out data/pave224/test >/dev/null
exec bash scripts/detector-compress-table.sh models/zoo/yolo9tr-s.onnx 224 images:data/calib224 \
  data/pave224/test "${1:-/tmp/yolo9tr-compress-table}" "${2:-30}" channels=0.3,macs=0.34
