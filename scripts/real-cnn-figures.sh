#!/usr/bin/env bash
# The compressor on a real third-party CNN, scored on a task: PaddleOCR's text-direction
# classifier (tests/data/real-cnn/, MobileNetV3) on 400 rendered text strips, half turned
# 180 degrees (scripts/gen_text_direction.py; calibration: 64 other strips, another seed).
#   scripts/real-cnn-figures.sh [SCRATCH_DIR] [TRACT_STRIPS]
# Writes every file into SCRATCH_DIR (default /tmp/real-cnn-figures) and prints one row per
# compressed model: file bytes, MACs and arena (edgetrim inspect), accuracy on our runtime
# (edgetrim run, one process per strip), and how onnxruntime (all strips) and tract (the
# first TRACT_STRIPS, default 100: it re-optimises the graph on every run) agree with ours.
# Uses the built CLI (EDGETRIM, default target/debug/edgetrim), python3, numpy, onnxruntime.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/real-cnn-figures}
tract_strips=${2:-100}
bin=$(realpath "${EDGETRIM:-target/debug/edgetrim}")
cls=tests/data/real-cnn/ch_ppocr_mobile_v2.0_cls_infer.onnx
shape=x=1x3x48x192
mkdir -p "$dir"
python3 scripts/gen_text_direction.py "$dir/calib" --count 64 --seed 1
python3 scripts/gen_text_direction.py "$dir/test" --count 400 --seed 2

# name and compress flags; "original" is the unmodified file.
variants=(
  "f32|"
  "fp16|--quantize fp16"
  "int8|--quantize int8 --calib $dir/calib/npy"
  "int8-tables|--quantize int8 --act-tables --calib $dir/calib/npy"
  "prune20|--prune channels=0.2 --calib $dir/calib/npy"
  "prune30|--prune channels=0.3 --calib $dir/calib/npy"
  "prune30+int8|--prune channels=0.3 --quantize int8 --calib $dir/calib/npy"
)
cp "$cls" "$dir/original.onnx"
for v in "${variants[@]}"; do
  name=${v%%|*}
  # shellcheck disable=SC2086 # the flags are meant to split
  "$bin" compress "$cls" -o "$dir/$name.onnx" --input-shape "$shape" ${v#*|} \
    --json >"$dir/$name.compress.json"
done
names=(original "${variants[@]%%|*}")
for name in "${names[@]}"; do
  "$bin" inspect "$dir/$name.onnx" --input-shape "$shape" --json >"$dir/$name.inspect.json"
  for f in "$dir"/test/npy/*.npy; do
    i=$(basename "$f" .npy)
    "$bin" run "$dir/$name.onnx" --input "$f" -o "$dir/out/$name/nano/$i" >/dev/null
    if ((10#$i < tract_strips)); then
      "$bin" run "$dir/$name.onnx" --input "$f" -o "$dir/out/$name/tract/$i" --backend tract >/dev/null
    fi
  done
done

python3 - "$dir" "${names[@]}" <<'EOF'
import json, sys
from pathlib import Path
import numpy as np
import onnxruntime as ort

d, names = Path(sys.argv[1]), sys.argv[2:]
x = np.load(d / "test/batch.npy")
y = np.loadtxt(d / "test/labels.txt", dtype=int)
def outputs(name, backend):
    runs = sorted((d / "out" / name / backend).iterdir())
    return np.stack([np.load(r / "output0.npy")[0] for r in runs])
def agree(ref, ours):
    n = len(ref)
    return f"{(ref.argmax(1) == ours[:n].argmax(1)).mean():.1%} / {np.abs(ref - ours[:n]).max():.1e}"
base = (d / "f32.onnx").stat().st_size
print(f"{len(y)} test strips ({y.mean():.0%} rotated); agreement = argmax agreement / max |diff| of the 1x2 softmax")
print("| model | bytes | vs f32 | MACs | arena | accuracy (ours) | accuracy (onnxruntime) | onnxruntime agreement | tract agreement |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name in names:
    size = (d / f"{name}.onnx").stat().st_size
    info = json.loads((d / f"{name}.inspect.json").read_text())
    ours = outputs(name, "nano")
    sess = ort.InferenceSession(str(d / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    ref = np.concatenate([sess.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))])
    print(f"| {name} | {size:,} | {size / base:.1%} | {info['macs'] / 1e6:.2f} M | {info['arena']['total'] / 1024:.1f} KiB "
          f"| {(ours.argmax(1) == y).mean():.1%} | {(ref.argmax(1) == y).mean():.1%} "
          f"| {agree(ref, ours)} | {agree(outputs(name, 'tract'), ours)} |")
EOF
