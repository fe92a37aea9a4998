#!/usr/bin/env bash
# Fetches the PP-OCRv4 text detector (DBNet, 4.7 MB, Apache-2.0) used by tests/it/real_cnn.rs
# into tests/data/real-cnn/fetched/ (git-ignored). The test skips the detector with a notice
# when the file is absent, so CI works offline; the small classifier is committed.
#
# Usage: scripts/fetch_real_models.sh [WHEEL_DIR]
#   WHEEL_DIR: a folder that already holds rapidocr_onnxruntime-1.4.4-py3-none-any.whl
#              (otherwise the wheel is downloaded from PyPI with `pip download`).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/tests/data/real-cnn/fetched"
wheel_name="rapidocr_onnxruntime-1.4.4-py3-none-any.whl"
wheel_sha256="971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"
model="rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"
model_sha256="d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ -n "${1:-}" && -f "$1/$wheel_name" ]]; then
    wheel="$1/$wheel_name"
else
    python3 -m pip download --quiet --no-deps --dest "$work" "rapidocr-onnxruntime==1.4.4"
    wheel="$work/$wheel_name"
fi
echo "$wheel_sha256  $wheel" | sha256sum --check --quiet

python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
    "$wheel" "$model" "$work"
echo "$model_sha256  $work/$model" | sha256sum --check --quiet
mkdir -p "$dest"
cp "$work/$model" "$dest/"
echo "fetched $dest/$(basename "$model")"
