#!/usr/bin/env bash
# The compressor's table for YOLO9tr-s at 224 px (issue 4's Done-when): f32, fp16, int8
# (full-range weights; within ±64 with --reduce-range: the narrow-weight AVX2 kernel; and
# "int8-fast", with --act-tables, --pow2-scales and --int8-joins too: SiLU as int8 tables,
# requantizing by multiplication, Concat/Split/MaxPool/Add on int8), channel-pruned with and without
# least-squares reconstruction, and pruned + int8 (also "fast") — each
# with its bytes, MACs, host arena (`edgetrim inspect --json`), test mAP50 on 500 generated
# images (`edgetrim eval-detect`), and nano p50 latency against the f32 model in the same
# run (`edgetrim bench X --vs f32.onnx`); tract's mAP50 on the int8 file last.
#   scripts/yolo9tr-compress-table.sh [SCRATCH_DIR] [RUNS]
# Generates data/calib224 (64 val images) and data/pave224/test (500 test images) if
# missing. Takes about 10 minutes on 2 cores (the pruning scan and refit about 3).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/yolo9tr-compress-table}
runs=${2:-30}
cargo build --release --quiet
bin=./target/release/edgetrim
model=models/zoo/yolo9tr-s.onnx
shape="--input-shape images=1x3x224x224"
calib="--calib images:data/calib224"
[ -d data/calib224 ] || $bin datagen pavement --split val --images 64 --size 224 --out data/calib224 >/dev/null
[ -d data/pave224/test ] || $bin datagen pavement --split test --images 500 --size 224 --out data/pave224/test >/dev/null
mkdir -p "$dir"
# name|flags (the pruned + int8 model is made from the pruned one, as a pipeline would)
variants=(
  "f32|"
  "fp16|--quantize fp16"
  "int8|--quantize int8 $calib"
  "int8-reduce-range|--quantize int8 --reduce-range $calib"
  "int8-fast|--quantize int8 --reduce-range --act-tables --pow2-scales --int8-joins $calib"
  "prune30-norecon|--prune channels=0.3,macs=0.34 --no-reconstruct $calib"
  "prune30|--prune channels=0.3,macs=0.34 $calib"
)
for v in "${variants[@]}"; do
  # shellcheck disable=SC2086 # the flags are meant to split
  $bin compress "$model" -o "$dir/${v%%|*}.onnx" $shape ${v#*|} >/dev/null
done
# shellcheck disable=SC2086
$bin compress "$dir/prune30.onnx" -o "$dir/prune30+int8.onnx" $shape --quantize int8 $calib >/dev/null
# shellcheck disable=SC2086
$bin compress "$dir/prune30.onnx" -o "$dir/prune30+int8-fast.onnx" $shape --quantize int8 \
  --reduce-range --act-tables --pow2-scales --int8-joins $calib >/dev/null
echo "| model | bytes | smaller | MACs | arena (host) | mAP50 | nano p50 | vs f32 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
f32_bytes=$(stat -c %s "$dir/f32.onnx")
for name in f32 fp16 int8 int8-reduce-range int8-fast prune30-norecon prune30 prune30+int8 \
  prune30+int8-fast; do
  f="$dir/$name.onnx"
  read -r macs arena < <($bin inspect "$f" --json |
    python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["macs"], d["arena"]["total"])')
  map=$($bin eval-detect "$f" --data data/pave224/test | awk '$1 == "all" {print $3}')
  bench=$($bin bench "$f" --vs "$dir/f32.onnx" --runs "$runs" --json)
  read -r p50 speedup < <(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(round(d["nano"]["p50_us"] / 1000, 2), round(d["speedup_vs_other"], 2))' "$bench")
  bytes=$(stat -c %s "$f")
  printf '| %s | %d | %.2fx | %.1f M | %d | %s | %s ms | %sx |\n' "$name" "$bytes" \
    "$(python3 -c "print($f32_bytes / $bytes)")" "$(python3 -c "print($macs / 1e6)")" "$arena" "$map" "$p50" "$speedup"
done
for name in int8 int8-fast; do
  echo "tract mAP50 on $name.onnx: $($bin eval-detect "$dir/$name.onnx" --data data/pave224/test --backend tract | awk '$1 == "all" {print $3}')"
done
