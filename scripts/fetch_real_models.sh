#!/usr/bin/env bash
# Fetches the third-party CNNs too big to commit into tests/data/real-cnn/fetched/
# (git-ignored), each out of a pinned PyPI wheel and checked by sha256:
#   ch_PP-OCRv4_det_infer.onnx  PP-OCRv4 text detector (DBNet, 4.7 MB, Apache-2.0), from
#                               rapidocr-onnxruntime 1.4.4; used by tests/it/real_cnn.rs, which
#                               skips it with a notice when absent, so CI works offline.
#   ddddocr_common_det.onnx     ddddocr's click-target detector (YOLOX, 20 MB, MIT), from
#                               ddddocr 1.6.1 (ddddocr/common_det.onnx, renamed); used by
#                               scripts/click-detector-figures.sh.
# The small classifier is committed. tests/data/real-cnn/SOURCE.md says where each comes from.
#
# Usage: scripts/fetch_real_models.sh [WHEEL_DIR]
#   WHEEL_DIR: a folder that already holds the wheels (otherwise they are downloaded from
#              PyPI with `pip download`). Models already fetched and intact are kept.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/tests/data/real-cnn/fetched"
# package==version | wheel sha256 | member in the wheel | member sha256 | file name here
models=(
  "rapidocr-onnxruntime==1.4.4|971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf|rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx|d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9|ch_PP-OCRv4_det_infer.onnx"
  "ddddocr==1.6.1|c7c70f4ae2d0335440ae8b272eea48c9f6888ecef46785fe2311f0c97a133935|ddddocr/common_det.onnx|6faa8ea85a8c1a634e5050c4a138fca10f30194e0d7abbe9ade1fcd423af6ed6|ddddocr_common_det.onnx"
)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"

for entry in "${models[@]}"; do
    IFS='|' read -r requirement wheel_sha256 member model_sha256 name <<<"$entry"
    if [[ -f "$dest/$name" ]] && echo "$model_sha256  $dest/$name" | sha256sum --check --quiet 2>/dev/null; then
        echo "have $dest/$name"
        continue
    fi
    package=${requirement%%==*}
    version=${requirement#*==}
    wheel_name="${package//-/_}-$version-py3-none-any.whl"
    if [[ -n "${1:-}" && -f "$1/$wheel_name" ]]; then
        wheel="$1/$wheel_name"
    else
        python3 -m pip download --quiet --no-deps --dest "$work" "$requirement"
        wheel="$work/$wheel_name"
    fi
    echo "$wheel_sha256  $wheel" | sha256sum --check --quiet
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
        "$wheel" "$member" "$work"
    echo "$model_sha256  $work/$member" | sha256sum --check --quiet
    cp "$work/$member" "$dest/$name.part"
    mv "$dest/$name.part" "$dest/$name"
    echo "fetched $dest/$name"
done
