#!/usr/bin/env bash
# The compressor's table (scripts/detector-compress-table.sh) for a real third-party dense
# CNN: ddddocr's click-target detector, a YOLOX at 416 px (5.0 M params, 3.2 GMAC; fetched
# by scripts/fetch_real_models.sh), scored on generated click-captcha scenes
# (scripts/gen_click_targets.py: 200 test scenes, seed 2; calibration on 32 others, seed 1),
# pruned as YOLO9tr-s is (channels=0.3,macs=0.34: 34 % fewer MACs).
# Then how onnxruntime agrees with our runtime on the int8 files: the largest and the mean
# difference of the box scores (objectness x class) over the first 20 test scenes, next to
# how far onnxruntime's own int8 scores are from its float ones (the quantization noise).
#   scripts/click-detector-table.sh [SCRATCH_DIR] [RUNS]
# Takes about 35 minutes on 2 cores (each pruning scan about 7).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/click-detector-table}
model=tests/data/real-cnn/fetched/ddddocr_common_det.onnx
[ -f "$model" ] || bash scripts/fetch_real_models.sh
python3 scripts/gen_click_targets.py "$dir/calib" --count 32 --seed 1 >/dev/null
python3 scripts/gen_click_targets.py "$dir/test" --count 200 --seed 2 >/dev/null
bash scripts/detector-compress-table.sh "$model" 416 "$dir/calib/npy" "$dir/test" "$dir" \
  "${2:-20}" channels=0.3,macs=0.34
for name in int8 int8-fast prune30+int8; do
  for i in $(seq -f %04g 0 19); do
    ./target/release/edgetrim run "$dir/$name.onnx" --input "$dir/test/npy/$i.npy" \
      -o "$dir/out/$name/$i" >/dev/null
  done
done
python3 - "$dir" <<'PY'
import sys
from pathlib import Path
import numpy as np
import onnxruntime as ort
d = Path(sys.argv[1])
def scores(out):
    return out[:, 4:5] * out[:, 5:]
def ort_scores(name, x):
    sess = ort.InferenceSession(str(d / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    return [scores(sess.run(None, {"images": v})[0][0]) for v in x]
runs = sorted((d / "out" / "int8").iterdir())
x = [np.load(d / "test/npy" / f"{r.name}.npy") for r in runs]
reference = ort_scores("f32", x)
print("box scores (objectness x class) over the first 20 test scenes: max / mean |difference|")
for name in ("int8", "int8-fast", "prune30+int8"):
    ref = ort_scores(name, x)
    ours = [scores(np.load(d / "out" / name / r.name / "output0.npy")[0]) for r in runs]
    vs_ort = np.abs(np.stack(ref) - np.stack(ours))
    base = "prune30" if name.startswith("prune30") else "f32"
    noise = np.abs(np.stack(ref) - np.stack(ort_scores(base, x) if base != "f32" else reference))
    print(f"{name}: nano vs onnxruntime {vs_ort.max():.3f} / {vs_ort.mean():.1e}; "
          f"onnxruntime's own {name} vs {base} {noise.max():.3f} / {noise.mean():.1e}")
PY
