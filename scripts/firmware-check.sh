#!/usr/bin/env bash
# firmware-check.sh - run the firmware of examples/firmware on a Cortex-M4F under QEMU
# (mps2-an386) and check its results against the host's:
#   - edgetrim-firmware: the small CNN (tiny_cnn.onnx), every output bit-exact;
#   - yolo: pavement-damage detection with YOLO9tr-n int8 (128x128) on one generated road
#     frame; the head output (digest) and every detection bit-exact. The firmware runs its
#     int8 convolutions on the DSP (SMLAD) kernel, the host on the portable one, so this is
#     also the end-to-end test of the DSP kernel (whose self-test runs first, on the device).
#
#   bash scripts/firmware-check.sh
#
# Steps: (a) install/check the cross toolchain (../shared/embedded/setup-thumbv7em.sh),
# (b) cross-build examples/firmware in release (Debian rustc 1.96, -Zbuild-std=core),
# (c) build the host references (examples tiny_cnn and yolo_firmware, planned for
# Target::CortexM: the firmware's blocks, so every float sum runs in the same order), then
# per firmware (d) run it on QEMU counting the instructions between bench_start and
# bench_end (one inference), (e) compare with the host, (f) print the cost; for yolo also
# a per-step profile (instructions between layer_start and layer_end, per op and per MAC).
# Exits non-zero if any step fails or any result differs. Writes nothing into ../shared
# (the QEMU plugin is built into ~/.cache).
#
# Environment: EMBEDDED_DIR (default ../shared/embedded beside the repository),
# FIRMWARE_LOG_DIR (default examples/firmware/target/check) keeps the logs.
#
# The DSP kernel's gain: rebuild with the portable int8 kernel and count again (the same
# results must come out), e.g.
#   (cd examples/firmware && bash ../../../shared/embedded/cargo-thumb.sh build --release \
#     --bin yolo --features portable-qgemm --target-dir target)
#   bash ../shared/embedded/run-qemu.sh --region bench_start bench_end --top 10 \
#     examples/firmware/target/thumbv7em-none-eabihf/release/yolo
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
embedded="${EMBEDDED_DIR:-$root/../shared/embedded}"
firmware="$root/examples/firmware"
bins="$firmware/target/thumbv7em-none-eabihf/release"
logs="${FIRMWARE_LOG_DIR:-$firmware/target/check}"
host="${CARGO_TARGET_DIR:-$root/target}/debug/examples"
[[ -d "$embedded" ]] || { echo "firmware-check: $embedded not found (set EMBEDDED_DIR)" >&2; exit 2; }

echo "== (a) cross toolchain"
bash "$embedded/setup-thumbv7em.sh" >/dev/null

echo "== (b) cross-build examples/firmware (release, thumbv7em-none-eabihf)"
# Explicit --target-dir: a CARGO_TARGET_DIR meant for the host build must not move the ELFs.
(cd "$firmware" && bash "$embedded/cargo-thumb.sh" build --release --quiet --target-dir "$firmware/target")

echo "== (c) host references"
# Built with --workspace so the features match `cargo test --workspace` (the README's test
# command) and nothing is rebuilt after it.
(cd "$root" && cargo build --quiet --workspace --example tiny_cnn --example yolo_firmware)
mkdir -p "$logs"

# run_qemu ELF REGION_START REGION_END LOG REPORT: runs ELF, fails on a non-zero exit.
run_qemu() {
  local rc
  set +e
  bash "$embedded/run-qemu.sh" --region "$2" "$3" --plugin-out "$5" "$1" >"$4"
  rc=$?
  set -e
  [[ $rc -eq 0 ]] || { cat "$4"; echo "firmware-check: $(basename "$1") exited with status $rc" >&2; exit 1; }
}

# cost NAME LOG REPORT ELF: instructions per inference, per MAC, at 64 MHz; section sizes.
cost() {
  local insns macs
  insns="$(awk '/^insncount: regions/ {print $NF == "instructions" ? $(NF-1) : $NF}' "$3")"
  macs="$(awk '/^steps:/ {print $NF}' "$2")"
  [[ -n "$insns" && -n "$macs" ]] || { echo "firmware-check: $1: no instruction count / MACs" >&2; exit 1; }
  echo "$1: instructions per inference: $insns (Cortex-M4F, QEMU TCG count; MACs $macs," \
    "$(awk -v i="$insns" -v m="$macs" 'BEGIN {printf "%.2f instructions/MAC; at 64 MHz and 1 instruction/cycle (an estimate): %.1f ms, %.2f FPS", i / m, i / 64e3, 64e6 / i}'))"
  grep '^arena:' "$2" | sed "s/^/$1: /"
  arm-none-eabi-size -A "$4" | awk -v n="$1" '$1 ~ /^\.(vector_table|text|rodata|data|bss)$/ {printf "%s: %-14s %9d B\n", n, $1, $2}'
}

echo "== (d, e, f) tiny CNN"
run_qemu "$bins/edgetrim-firmware" bench_start bench_end "$logs/firmware.log" "$logs/insns.txt"
cat "$logs/firmware.log"
"$host/tiny_cnn" compare "$logs/firmware.log"
cost tiny_cnn "$logs/firmware.log" "$logs/insns.txt" "$bins/edgetrim-firmware"

echo "== (d, e, f) YOLO9tr-n int8 pavement detection"
run_qemu "$bins/yolo" bench_start bench_end "$logs/yolo.log" "$logs/yolo-insns.txt"
cat "$logs/yolo.log"
"$host/yolo_firmware" compare "$logs/yolo.log"
cost yolo "$logs/yolo.log" "$logs/yolo-insns.txt" "$bins/yolo"
run_qemu "$bins/yolo" layer_start layer_end "$logs/yolo-layers.log" "$logs/yolo-layers.txt"
"$host/yolo_firmware" layers "$logs/yolo-layers.txt"
