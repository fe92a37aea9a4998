#!/usr/bin/env bash
# Issue 4's measured table for one detector: f32, fp16, int8 (full-range weights; within ±64
# with --reduce-range: the narrow-weight AVX2 kernel; and "int8-fast", with --act-tables,
# --pow2-scales and --int8-joins too: activations as int8 tables, requantizing by
# multiplication, Concat/Split/MaxPool/Add on int8), channel-pruned with and without
# least-squares reconstruction, and pruned + int8 (also "fast"), each with its bytes, MACs,
# host arena (`edgetrim inspect --json`), test mAP50 (`edgetrim eval-detect`), and nano p50
# latency against the f32 model in the same run (`edgetrim bench X --vs f32.onnx`); tract's
# mAP50 on the int8 files last. The wrappers scripts/yolo9tr-compress-table.sh (the bundled
# YOLO9tr-s) and scripts/click-detector-table.sh (a third-party YOLOX) make the data first.
#   scripts/detector-compress-table.sh MODEL SIZE CALIB TEST_DIR SCRATCH_DIR RUNS PRUNE
# MODEL an ONNX detector with a 1x3xSIZExSIZE input; CALIB what `compress --calib` takes;
# TEST_DIR a YOLO folder for eval-detect; PRUNE the `--prune` spec (e.g. channels=0.3).
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1 size=$2 calib=(--calib "$3") test=$4 dir=$5 runs=$6 prune=$7
cargo build --release --quiet
bin=./target/release/edgetrim
shape=(--input-shape "images=1x3x${size}x$size")
fast=(--act-tables --pow2-scales --int8-joins)
mkdir -p "$dir"
# name|flags (the pruned + int8 models are made from the pruned one, as a pipeline would)
variants=(
  "f32|"
  "fp16|--quantize fp16"
  "int8|--quantize int8 ${calib[*]}"
  "int8-reduce-range|--quantize int8 --reduce-range ${calib[*]}"
  "int8-fast|--quantize int8 --reduce-range ${fast[*]} ${calib[*]}"
  "prune30-norecon|--prune $prune --no-reconstruct ${calib[*]}"
  "prune30|--prune $prune ${calib[*]}"
)
for v in "${variants[@]}"; do
  # shellcheck disable=SC2086 # the flags are meant to split
  $bin compress "$model" -o "$dir/${v%%|*}.onnx" "${shape[@]}" ${v#*|} >/dev/null
done
$bin compress "$dir/prune30.onnx" -o "$dir/prune30+int8.onnx" "${shape[@]}" --quantize int8 \
  "${calib[@]}" >/dev/null
$bin compress "$dir/prune30.onnx" -o "$dir/prune30+int8-fast.onnx" "${shape[@]}" --quantize int8 \
  --reduce-range "${fast[@]}" "${calib[@]}" >/dev/null
echo "| model | bytes | smaller | MACs | arena (host) | mAP50 | nano p50 | vs f32 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
f32_bytes=$(stat -c %s "$dir/f32.onnx")
for name in f32 fp16 int8 int8-reduce-range int8-fast prune30-norecon prune30 prune30+int8 \
  prune30+int8-fast; do
  f="$dir/$name.onnx"
  read -r macs arena < <($bin inspect "$f" --json |
    python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["macs"], d["arena"]["total"])')
  map=$($bin eval-detect "$f" --data "$test" | awk '$1 == "all" {print $3}')
  bench=$($bin bench "$f" --vs "$dir/f32.onnx" --runs "$runs" --json)
  read -r p50 speedup < <(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(round(d["nano"]["p50_us"] / 1000, 2), round(d["speedup_vs_other"], 2))' "$bench")
  bytes=$(stat -c %s "$f")
  printf '| %s | %d | %.2fx | %.1f M | %d | %s | %s ms | %sx |\n' "$name" "$bytes" \
    "$(python3 -c "print($f32_bytes / $bytes)")" "$(python3 -c "print($macs / 1e6)")" "$arena" "$map" "$p50" "$speedup"
done
for name in int8 int8-fast; do
  echo "tract mAP50 on $name.onnx: $($bin eval-detect "$dir/$name.onnx" --data "$test" --backend tract | awk '$1 == "all" {print $3}')"
done
