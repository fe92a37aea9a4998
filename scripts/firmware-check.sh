#!/usr/bin/env bash
# firmware-check.sh - run the small CNN (examples/firmware/tiny_cnn.onnx) on a Cortex-M4F
# under QEMU (mps2-an386) and check its outputs against the host's.
#
#   bash scripts/firmware-check.sh
#
# Steps: (a) install/check the cross toolchain (../shared/embedded/setup-thumbv7em.sh),
# (b) cross-build examples/firmware in release (Debian rustc 1.96, -Zbuild-std=core),
# (c) run it on QEMU counting the instructions between bench_start and bench_end (one
# inference), (d)+(e) run the same model on the same input on the host
# (the `tiny_cnn` example's `compare`, planned for Target::CortexM: the
# firmware's kernels and blocks) and require every output to be bit-exact,
# (f) print instructions per inference and the ELF's section sizes.
# Exits non-zero if any step fails or the outputs disagree. Writes nothing into
# ../shared (the QEMU plugin is built into ~/.cache).
#
# Environment: EMBEDDED_DIR (default ../shared/embedded beside the repository),
# FIRMWARE_LOG_DIR (default examples/firmware/target/check) keeps the logs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
embedded="${EMBEDDED_DIR:-$root/../shared/embedded}"
firmware="$root/examples/firmware"
elf="$firmware/target/thumbv7em-none-eabihf/release/edgetrim-firmware"
logs="${FIRMWARE_LOG_DIR:-$firmware/target/check}"
[[ -d "$embedded" ]] || { echo "firmware-check: $embedded not found (set EMBEDDED_DIR)" >&2; exit 2; }

echo "== (a) cross toolchain"
bash "$embedded/setup-thumbv7em.sh" >/dev/null

echo "== (b) cross-build examples/firmware (release, thumbv7em-none-eabihf)"
# Explicit --target-dir: a CARGO_TARGET_DIR meant for the host build must not move the ELF.
(cd "$firmware" && bash "$embedded/cargo-thumb.sh" build --release --quiet --target-dir "$firmware/target")

echo "== (c) run on QEMU mps2-an386 (Cortex-M4F)"
mkdir -p "$logs"
set +e
bash "$embedded/run-qemu.sh" --region bench_start bench_end --plugin-out "$logs/insns.txt" \
  "$elf" >"$logs/firmware.log"
rc=$?
set -e
cat "$logs/firmware.log"
[[ $rc -eq 0 ]] || { echo "firmware-check: firmware exited with status $rc" >&2; exit 1; }

echo "== (d, e) host vs firmware"
# Built with --workspace so the features match `cargo test --workspace` (the README's test
# command) and nothing is rebuilt after it.
(cd "$root" && cargo build --quiet --workspace --example tiny_cnn &&
  "${CARGO_TARGET_DIR:-$root/target}/debug/examples/tiny_cnn" compare "$logs/firmware.log")

echo "== (f) cost"
insns="$(awk '/^insncount: regions/ {print $NF == "instructions" ? $(NF-1) : $NF}' "$logs/insns.txt")"
macs="$(awk '/^steps:/ {print $NF}' "$logs/firmware.log")"
[[ -n "$insns" && -n "$macs" ]] || { echo "firmware-check: no instruction count / MACs" >&2; exit 1; }
echo "instructions per inference: $insns (Cortex-M4F, QEMU TCG count; MACs $macs, $(awk -v i="$insns" -v m="$macs" 'BEGIN {printf "%.2f", i / m}') instructions/MAC)"
arm-none-eabi-size "$elf"
