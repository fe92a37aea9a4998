#!/usr/bin/env bash
# firmware-check.sh - run the firmware of examples/firmware on a Cortex-M4F under QEMU
# (mps2-an386) and check its results against the host's:
#   - edgetrim-firmware: the small CNN (tiny_cnn.onnx), every output bit-exact;
#   - yolo: pavement-damage detection with YOLO9tr-n int8 (128x128) on one generated road
#     frame; the head output (digest) and every detection bit-exact. The firmware runs its
#     int8 convolutions on the DSP (SMLAD) kernel, the host on the portable one, so this is
#     also the end-to-end test of the DSP kernel (whose self-test runs first, on the device);
#     then the same firmware built from the float32 original (feature f32-model), also
#     bit-exact with the host, and what int8 saves: instructions, estimated cycles (the
#     executed instruction mix weighed by the Cortex-M4 TRM, scripts/m4-cycles.py), model
#     bytes, RAM;
#   - rnnt: streaming speech recognition with the smallest int8 slice of the RNN-T supernet
#     on a held-out utterance (assets: scripts/gen-rnnt-firmware-assets.sh); every encoder
#     output (digest) and the transcript bit-exact, and the transcript equal to the
#     reference text; the cost per second of audio and per encoder chunk.
#
#   bash scripts/firmware-check.sh
#
# Steps: (a) install/check the cross toolchain (../shared/embedded/setup-thumbv7em.sh) and
# the defmt decoder (defmt-print, `cargo install` once), (b) cross-build examples/firmware
# in release (Debian rustc 1.96, -Zbuild-std=core) twice: with output as defmt frames over
# semihosting (feature defmt-semihosting; defmt-rtt on a board) and as plain semihosting
# text (the fallback), (c) build the host references (examples tiny_cnn and yolo_firmware,
# planned for Target::CortexM: the firmware's blocks, so every float sum runs in the same
# order), then per firmware (d) run the defmt build on QEMU counting the instructions
# between bench_start and bench_end (each of its FRAMES inferences, which must all be
# equal) and decode its output, (e) compare with the host, then the text build's too,
# (f) print the cost: instructions, the device clock's FPS / latency lines (under QEMU
# SysTick follows host time: only the instruction counts measure the work) and sizes; for
# yolo also a per-step profile (instructions between layer_start and layer_end, per op
# and per MAC).
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

echo "== (a) cross toolchain, defmt decoder"
bash "$embedded/setup-thumbv7em.sh" >/dev/null
# defmt frames are decoded on the host; installed once into ~/.cargo/bin (about 3-5 min).
command -v defmt-print >/dev/null || [[ -x "$HOME/.cargo/bin/defmt-print" ]] ||
  cargo install --locked --quiet defmt-print --version 1.2.0
defmt_print="$(command -v defmt-print || echo "$HOME/.cargo/bin/defmt-print")"

echo "== (b) cross-build examples/firmware (release, thumbv7em-none-eabihf)"
# Explicit --target-dir: a CARGO_TARGET_DIR meant for the host build must not move the ELFs.
# First the defmt builds (output as defmt frames over semihosting, the path a board takes
# with RTT), set aside in $defmt_bins; then the plain semihosting text builds (the fallback),
# which stay in $bins. Cargo keeps both feature sets' artifacts, so switching relinks only.
defmt_bins="$firmware/target/defmt"
(cd "$firmware" && bash "$embedded/cargo-thumb.sh" build --release --quiet --target-dir "$firmware/target" \
  --features defmt-semihosting --bin edgetrim-firmware --bin yolo --bin rnnt)
mkdir -p "$defmt_bins"
cp "$bins/edgetrim-firmware" "$bins/yolo" "$bins/rnnt" "$defmt_bins/"
(cd "$firmware" && bash "$embedded/cargo-thumb.sh" build --release --quiet --target-dir "$firmware/target")

echo "== (c) host references"
# Built with --workspace so the features match `cargo test --workspace` (the README's test
# command) and nothing is rebuilt after it.
(cd "$root" && cargo build --quiet --workspace --example tiny_cnn --example yolo_firmware --example rnnt_firmware \
  --bin edgetrim)
mkdir -p "$logs"

# run_qemu ELF REGION_START REGION_END LOG REPORT: runs ELF, fails on a non-zero exit. An
# ELF with defmt's table (.defmt) prints defmt frames: LOG gets them decoded.
run_qemu() {
  local rc
  set +e
  # (awk reads all of its input: `grep -q` would leave the writer a SIGPIPE under pipefail)
  if arm-none-eabi-size -A "$1" | awk '$1 == ".defmt" {found = 1} END {exit !found}'; then
    # QEMU runs a copy without defmt's symbols (JSON names, sorted last by nm): with them
    # run-qemu.sh's `nm | awk '{...; exit}'` symbol lookup dies of SIGPIPE (status 141).
    # The code is the same; the decoder reads the original.
    arm-none-eabi-objcopy --wildcard --strip-symbol='{*' "$1" "$4.elf"
    bash "$embedded/run-qemu.sh" --region "$2" "$3" --plugin-out "$5" "$4.elf" >"$4.defmt"
    rc=$?
    "$defmt_print" -e "$1" <"$4.defmt" >"$4" || rc=1
  else
    bash "$embedded/run-qemu.sh" --region "$2" "$3" --plugin-out "$5" "$1" >"$4"
    rc=$?
  fi
  set -e
  [[ $rc -eq 0 ]] || { cat "$4"; echo "firmware-check: $(basename "$1") exited with status $rc" >&2; exit 1; }
}

# cost NAME LOG REPORT ELF: instructions per inference, per MAC, at 64 MHz; section sizes.
cost() {
  local insns macs
  insns="$(awk '/^insncount: regions/ {print $NF == "instructions" ? $(NF-1) : $NF}' "$3")"
  # Every frame's inference must execute exactly the same instructions.
  [[ "$(awk '/^insncount: region #/ {print $(NF-1)}' "$3" | sort -u | wc -l)" -eq 1 ]] ||
    { grep '^insncount: region #' "$3"; echo "firmware-check: $1: the frames' instruction counts differ" >&2; exit 1; }
  macs="$(awk '/^steps:/ {print $NF}' "$2")"
  [[ -n "$insns" && -n "$macs" ]] || { echo "firmware-check: $1: no instruction count / MACs" >&2; exit 1; }
  echo "$1: instructions per inference: $insns (Cortex-M4F, QEMU TCG count; MACs $macs," \
    "$(awk -v i="$insns" -v m="$macs" 'BEGIN {printf "%.2f instructions/MAC; at 64 MHz and 1 instruction/cycle (an estimate): %.1f ms, %.2f FPS", i / m, i / 64e3, 64e6 / i}'))"
  grep '^arena:' "$2" | sed "s/^/$1: /"
  sizes "$1" "$4"
}

# footprint NAME ELF SET LOG MODEL...: `edgetrim inspect --target cortex-m4`'s estimate next to
# the firmware's real sections. The firmware = its models (raw ONNX: no pack header) + the
# runtime's code + its app (pre/post-processing, output, bundled input data); the app is not
# the estimate's business, so the runtime's code is measured on its own: the kernel probe
# (scripts/measure-kernel-code.sh) built with exactly the firmware's kernel set SET ("model":
# the models' sets as inspect reports them; "all" for a firmware planning with every
# kernel). The estimate adds per-family rows of the committed table
# (src/footprint/cortex-m4.tsv); it must be within CODE_TOLERANCE_PCT of the probe, which
# catches a stale table (e.g. after the runtime's code changed: rerun measure-kernel-code.sh).
# The app is what is left: actual - models - probe. RAM: each graph's estimated arena must
# equal the one the firmware printed (its `arena:` line); .bss - arenas is the app's RAM;
# the stack depth the firmware measured (`stack:`, stack painting) is printed next to the
# estimate's allowance, which must cover the tiny CNN's (the runtime's own depth).
CODE_TOLERANCE_PCT=6
footprint() {
  local name="$1" elf="$2" set="$3" log="$4" est model_bytes code stack arena probe_code flash bss
  shift 4
  est="$(for m in "$@"; do "$root/target/debug/edgetrim" inspect "$m" --target cortex-m4 --json; done |
    python3 -c '
import json, sys
docs, dec, text = [], json.JSONDecoder(), sys.stdin.read()
i = 0
while i < len(text):
    while i < len(text) and text[i].isspace(): i += 1
    if i == len(text): break
    d, i = dec.raw_decode(text, i)
    docs.append(d["footprint"])
model = sum(f["flash"]["model"] - f["flash"]["header"] for f in docs)
which = "code_all_kernels" if sys.argv[1] == "all" else "code"
code = max(f["flash"][which] for f in docs)
sets = 0
for f in docs: sets |= f["kernel_set"]
print(model, code, sets, max(f["ram"]["stack"] for f in docs), " ".join(str(f["ram"]["arena"]) for f in docs))' "$set")"
  read -r model_bytes code sets stack arena <<<"$est"
  [[ "$set" == all ]] && sets=0xffffffff
  # the probe's flash, less its plan-entry symbols (as measure-kernel-code.sh counts)
  (cd "$firmware" && EDGETRIM_PROBE_SET="$sets" bash "$embedded/cargo-thumb.sh" build --release --quiet \
    --target-dir "$firmware/target" --features code-probe --bin kernel-probe)
  local probe_elf="$bins/kernel-probe"
  probe_code=$(( $(arm-none-eabi-size -A "$probe_elf" | awk '$1 ~ /^\.(vector_table|text|rodata|data)$/ {n += $2} END {print n}') \
    - $(arm-none-eabi-nm --print-size --radix=d "$probe_elf" | awk '$4 ~ /^EDGETRIM_PLAN_ENTRY_/ {n += $2} END {print n + 0}') ))
  flash=$(arm-none-eabi-size -A "$elf" | awk '$1 ~ /^\.(vector_table|text|rodata|data)$/ {n += $2} END {print n}')
  bss=$(arm-none-eabi-size -A "$elf" | awk '$1 ~ /^\.(data|bss)$/ {n += $2} END {print n}')
  # The arenas the firmware printed: one (`arena: N bytes reserved`), or the recogniser's graphs.
  local reported
  reported="$(grep -o 'encoder [0-9]*, predictor [0-9]*, joiner [0-9]*' "$log" | head -1 | grep -o '[0-9]*' | paste -sd' ' || true)"
  [[ -n "$reported" ]] || reported="$(grep -o '^arena: [0-9]*' "$log" | head -1 | grep -o '[0-9]*')"
  echo "$name: footprint (estimate: edgetrim inspect --target cortex-m4; actual: arm-none-eabi-size, kernel probe)"
  printf '%s:   %-34s %10s %10s\n' "$name" "" estimate actual
  printf '%s:   %-34s %10d %10d\n' "$name" "flash: models (raw ONNX)" "$model_bytes" "$model_bytes"
  printf '%s:   %-34s %10d %10d  (%+.1f %%)\n' "$name" "flash: runtime code (set $sets)" "$code" "$probe_code" \
    "$(awk -v e="$code" -v a="$probe_code" 'BEGIN {print (e - a) * 100 / a}')"
  printf '%s:   %-34s %10s %10d\n' "$name" "flash: app (code + data)" "-" $((flash - model_bytes - probe_code))
  printf '%s:   %-34s %10s %10d\n' "$name" "flash: total (ELF)" "-" "$flash"
  printf '%s:   %-34s %10s %10s\n' "$name" "RAM: arena(s)" "${arena// /+}" "${reported// /+}"
  printf '%s:   %-34s %10s %10d\n' "$name" "RAM: .data + .bss (ELF)" "-" "$bss"
  # The firmware's measured stack depth (its `stack:` line, from stack painting).
  local stack_used
  stack_used="$(grep -o '^stack: [0-9]*' "$log" | head -1 | grep -o '[0-9]*' || true)"
  [[ -n "$stack_used" ]] || { echo "firmware-check: $name: no measured stack depth in $log" >&2; exit 1; }
  printf '%s:   %-34s %10d %10d\n' "$name" "RAM: stack (runtime; measured: +app)" "$stack" "$stack_used"
  awk -v e="$code" -v a="$probe_code" -v t="$CODE_TOLERANCE_PCT" 'BEGIN {d = (e - a) * 100 / a; exit !(d <= t && d >= -t)}' ||
    { echo "firmware-check: $name: estimated runtime code $code B is not within $CODE_TOLERANCE_PCT % of the measured $probe_code B: rerun scripts/measure-kernel-code.sh" >&2; exit 1; }
  # The tiny CNN's app adds almost nothing: its depth is the runtime's, which the estimate's
  # stack allowance must cover. The others print theirs (app frames on top).
  [[ "$name" != tiny_cnn || "$stack_used" -le "$stack" ]] ||
    { echo "firmware-check: $name: the stack went $stack_used B deep, over the estimate's $stack B (src/footprint.rs STACK_BYTES)" >&2; exit 1; }
  [[ "$reported" == "$arena" ]] ||
    { echo "firmware-check: $name: estimated arena(s) $arena B differ from the firmware's $reported B" >&2; exit 1; }
}

# sizes NAME ELF: the flash (.vector_table, .text, .rodata, .data) and RAM (.data, .bss) sections.
sizes() {
  arm-none-eabi-size -A "$2" | awk -v n="$1" '$1 ~ /^\.(vector_table|text|rodata|data|bss)$/ {printf "%s: %-14s %9d B\n", n, $1, $2}'
}

echo "== (d, e, f) tiny CNN (defmt, then the semihosting-text fallback)"
run_qemu "$defmt_bins/edgetrim-firmware" bench_start bench_end "$logs/firmware.log" "$logs/insns.txt"
cat "$logs/firmware.log"
"$host/tiny_cnn" compare "$logs/firmware.log"
cost tiny_cnn "$logs/firmware.log" "$logs/insns.txt" "$defmt_bins/edgetrim-firmware"
footprint tiny_cnn "$defmt_bins/edgetrim-firmware" model "$logs/firmware.log" "$firmware/tiny_cnn.onnx"
run_qemu "$bins/edgetrim-firmware" bench_start bench_end "$logs/firmware-text.log" "$logs/insns-text.txt"
"$host/tiny_cnn" compare "$logs/firmware-text.log" | sed 's/^/text fallback: /'

echo "== (d, e, f) YOLO9tr-n int8 pavement detection (defmt, then the semihosting-text fallback)"
run_qemu "$defmt_bins/yolo" bench_start bench_end "$logs/yolo.log" "$logs/yolo-insns.txt"
cat "$logs/yolo.log"
"$host/yolo_firmware" compare "$logs/yolo.log"
cost yolo "$logs/yolo.log" "$logs/yolo-insns.txt" "$defmt_bins/yolo"
footprint yolo "$defmt_bins/yolo" model "$logs/yolo.log" "$firmware/yolo9tr-n-int8-128.onnx"
run_qemu "$bins/yolo" bench_start bench_end "$logs/yolo-text.log" "$logs/yolo-insns-text.txt"
"$host/yolo_firmware" compare "$logs/yolo-text.log" | sed 's/^/text fallback: /'
run_qemu "$bins/yolo" layer_start layer_end "$logs/yolo-layers.log" "$logs/yolo-layers.txt"
"$host/yolo_firmware" layers "$logs/yolo-layers.txt"
run_qemu "$bins/yolo" plan_start plan_end "$logs/yolo-plan.log" "$logs/yolo-plan.txt"
awk '/^insncount: regions/ {n = $NF == "instructions" ? $(NF-1) : $NF}
  END {printf "yolo: start-up (Model::parse + Session::with_kernels: planning, folding, fusion): %d instructions, %.0f ms at 64 MHz and 1 instruction/cycle (an estimate)\n", n, n / 64e3}' \
  "$logs/yolo-plan.txt"

echo "== (d, e, f) the same detector from its float32 original (feature f32-model): what int8 saves here"
# The same code, frame, output (defmt) and arena planning; only the model differs. Built
# last and set aside: it replaces the text build's yolo (the next run's step (b) relinks it).
(cd "$firmware" && bash "$embedded/cargo-thumb.sh" build --release --quiet --target-dir "$firmware/target" \
  --features defmt-semihosting,f32-model --bin yolo)
f32_bins="$firmware/target/f32"
mkdir -p "$f32_bins"
cp "$bins/yolo" "$f32_bins/yolo"
run_qemu "$f32_bins/yolo" bench_start bench_end "$logs/yolo-f32.log" "$logs/yolo-f32-insns.txt"
"$host/yolo_firmware" compare "$logs/yolo-f32.log" f32 | sed 's/^/f32: /'
cost yolo-f32 "$logs/yolo-f32.log" "$logs/yolo-f32-insns.txt" "$f32_bins/yolo"
per_inference() { awk '/^insncount: regions/ {print $NF == "instructions" ? $(NF-1) : $NF}' "$1"; }
bss() { arm-none-eabi-size -A "$1" | awk '$1 ~ /^\.(data|bss)$/ {n += $2} END {print n}'; }
awk -v f="$(per_inference "$logs/yolo-f32-insns.txt")" -v q="$(per_inference "$logs/yolo-insns.txt")" \
  -v fm="$(stat -c %s "$firmware/yolo9tr-n-f32-128.onnx")" -v qm="$(stat -c %s "$firmware/yolo9tr-n-int8-128.onnx")" \
  -v fr="$(bss "$f32_bins/yolo")" -v qr="$(bss "$defmt_bins/yolo")" \
  'BEGIN {printf "yolo: int8 vs float32 on this Cortex-M4F: %.2fx fewer instructions (%d vs %d), model %.2fx smaller (%d vs %d B), RAM (.data + .bss) %d vs %d B\n", f / q, q, f, fm / qm, qm, fm, qr, fr}'
# Instructions are not cycles on this core (SMLAD: two int8 multiply-adds in 1 cycle,
# VMLA.F32: one float one in 3): count each build's executed mnemonics (one frame's worth)
# and weigh them with the Cortex-M4 TRM's cycle counts, as a range (scripts/m4-cycles.py).
gcc -O2 -shared -fPIC -o "$logs/insnmix.so" "$root/scripts/embedded/insnmix.c"
nm_addr() { arm-none-eabi-nm "$1" | awk -v s="$2" '$3 == s {print "0x" $1}'; }
for b in yolo yolo-f32; do
  elf="$logs/$b.log.elf"
  bash "$embedded/run-qemu.sh" "$elf" -- -plugin \
    "$logs/insnmix.so,start=$(nm_addr "$elf" bench_start),end=$(nm_addr "$elf" bench_end),out=$logs/$b-mix.txt" >/dev/null
done
python3 "$root/scripts/m4-cycles.py" int8="$logs/yolo-mix.txt" f32="$logs/yolo-f32-mix.txt" | sed 's/^/yolo: /'

echo "== (d, e, f) RNN-T speech recognition, smallest int8 slice (defmt, then the semihosting-text fallback)"
# Two counts of the same build: bench_start..bench_end is the whole utterance,
# layer_start..layer_end each pushed block (one encoder chunk of audio).
run_qemu "$defmt_bins/rnnt" bench_start bench_end "$logs/rnnt.log" "$logs/rnnt-insns.txt"
cat "$logs/rnnt.log"
"$host/rnnt_firmware" compare "$logs/rnnt.log"
run_qemu "$defmt_bins/rnnt" layer_start layer_end "$logs/rnnt-chunks.log" "$logs/rnnt-chunks.txt"
"$host/rnnt_firmware" cost "$logs/rnnt-insns.txt" "$logs/rnnt-chunks.txt"
grep '^arena:' "$logs/rnnt.log" | sed 's/^/rnnt: /'
sizes rnnt "$defmt_bins/rnnt"
# The recogniser (edgetrim_models::asr::nano) plans with every kernel: compare "all".
footprint rnnt "$defmt_bins/rnnt" all "$logs/rnnt.log" "$firmware"/rnnt-d2w05-int8/{encoder,predictor,joiner}.onnx
run_qemu "$bins/rnnt" bench_start bench_end "$logs/rnnt-text.log" "$logs/rnnt-insns-text.txt"
"$host/rnnt_firmware" compare "$logs/rnnt-text.log" | sed 's/^/text fallback: /'
