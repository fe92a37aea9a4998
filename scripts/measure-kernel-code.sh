#!/usr/bin/env bash
# measure-kernel-code.sh - measure what the runtime costs in Cortex-M4 flash, per kernel
# family, and write the table `edgetrim inspect --target cortex-m4` adds up
# (src/footprint/cortex-m4.tsv, embedded in the CLI at compile time).
#
#   bash scripts/measure-kernel-code.sh            # rewrites src/footprint/cortex-m4.tsv
#   bash scripts/measure-kernel-code.sh OUT.tsv    # writes OUT.tsv instead
#
# Rerun it (then rebuild the CLI) whenever the runtime's code changes: scripts/firmware-check.sh
# compares the estimate with the real firmware and fails on a stale table.
#
# How: examples/firmware's kernel-probe binary (feature code-probe) is cross-built in release
# (thumbv7em-none-eabihf, LTO, codegen-units 1: the firmware's profile) once per set, the set
# given by EDGETRIM_PROBE_SET at build time:
#   bare        no runtime: cortex-m-rt's vector table and reset code     -> row `startup`
#   0           parse + plan + run with an empty kernel set               -> row `runtime`
#               (minus bare: the ONNX reader, the planner with every op's plan-time code,
#               the session; plan-time folds need kernels, so they are in the families)
#   1<<bit      the same with one family's kernels                         -> row per family
#               (minus set 0: the dispatch arm and every kernel it reaches)
#   0xffffffff  every family                                               -> row `all`
#               (minus set 0: what Session::new links; less than the families' sum, since
#               families share code, e.g. the GEMM blocks of Conv, MatMul and Gemm)
# flash = .vector_table + .text + .rodata + .data (arm-none-eabi-size -A), ram = .data + .bss
# (the runtime's statics; the probe's arena is on its stack). The bare probe also records the
# target's plan-table entry sizes (rows plan.*: RAM bytes per entry), with which the host
# sizes a Cortex-M arena. The family list is read from
# runtime/src/ops/kernels.rs (its `families!` table). About 25 incremental builds: ~2-5 min
# once the firmware's dependencies are built.
#
# Environment: EMBEDDED_DIR (default ../shared/embedded beside the repository),
# PROBE_TARGET_DIR (default examples/firmware/target, shared with scripts/firmware-check.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
embedded="${EMBEDDED_DIR:-$root/../shared/embedded}"
firmware="$root/examples/firmware"
target_dir="${PROBE_TARGET_DIR:-$firmware/target}"
probe="$target_dir/thumbv7em-none-eabihf/release/kernel-probe"
out="${1:-$root/src/footprint/cortex-m4.tsv}"
[[ -d "$embedded" ]] || { echo "measure-kernel-code: $embedded not found (set EMBEDDED_DIR)" >&2; exit 2; }
bash "$embedded/setup-thumbv7em.sh" >/dev/null

# "BIT NAME" per family, from the families! table (lines like `    16 Conv(c) => ...;`).
families="$(awk '/^families! \{/ {on = 1; next} on && /^\}/ {exit}
  on && match($0, /^ +[0-9]+ [A-Za-z]+\(/) {split(substr($0, RSTART, RLENGTH), f, /[ (]+/); print f[2], f[3]}' \
  "$root/runtime/src/ops/kernels.rs")"
[[ -n "$families" ]] || { echo "measure-kernel-code: no families! table in runtime/src/ops/kernels.rs" >&2; exit 1; }

# measure SET: builds the probe for SET, keeps it as $work/SET.elf and prints "FLASH RAM".
measure() {
  (cd "$firmware" && EDGETRIM_PROBE_SET="$1" bash "$embedded/cargo-thumb.sh" build --release --quiet \
    --target-dir "$target_dir" --features code-probe --bin kernel-probe)
  cp "$probe" "$work/$1.elf"
  arm-none-eabi-size -A "$probe" | awk '
    $1 ~ /^\.(vector_table|text|rodata)$/ {flash += $2}
    $1 == ".data" {flash += $2; ram += $2}
    $1 == ".bss" {ram += $2}
    END {print flash + 0, ram + 0}'
}

# flash_symbols ELF: "NAME SIZE" of its defined code, read-only data and data symbols.
flash_symbols() {
  arm-none-eabi-nm --print-size --defined-only --radix=d "$1" |
    awk 'NF == 4 && $3 ~ /^[tTrRdD]$/ {print $4, $2 + 0}'
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
read -r bare_flash bare_ram < <(measure bare)
# The probe's plan-entry symbols (in every probe) are not startup code.
bare_flash=$((bare_flash - $(arm-none-eabi-nm --print-size --radix=d "$work/bare.elf" |
  awk '$4 ~ /^EDGETRIM_PLAN_ENTRY_/ {n += $2} END {print n + 0}')))
read -r core_flash core_ram < <(measure 0)
flash_symbols "$work/0.elf" | awk '{print "core", $1, $2}' >"$work/symbols"
: >"$work/totals"
while read -r bit name; do
  set=$((1 << bit))
  read -r flash ram < <(measure "$set")
  echo "$name $((flash - core_flash)) $((ram - core_ram))" >>"$work/totals"
  flash_symbols "$work/$set.elf" | awk -v f="$name" '{print f, $1, $2}' >>"$work/symbols"
  echo "measure-kernel-code: $name: $((flash - core_flash)) B" >&2
done <<<"$families"
read -r all_flash all_ram < <(measure 0xffffffff)

# Families share code (the GEMM blocks of Conv, MatMul and Gemm, say), so their probes' sizes
# do not add up. Each symbol a family probe has beyond set 0's goes to the group of every
# family whose probe has it; a group's bytes are linked when any of its families is. What a
# probe grew by beyond its symbols (anonymous constants, padding) stays with its family.
{
  echo "# Cortex-M4 (thumbv7em-none-eabihf) flash and RAM bytes of the runtime: written by"
  echo "# scripts/measure-kernel-code.sh (see there how each row is measured); do not edit, rerun it."
  echo "# $(/usr/bin/rustc --version), runtime at $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "# A row is linked when any of its families ('+'-separated) is in the model's kernel set;"
  echo "# startup and runtime always are. all: every family together, as measured (for comparison)."
  echo "# plan.*: bytes per entry of each plan table in the arena (PlanTables::ENTRY_BYTES here)."
  printf '%s\t%s\t%s\n' part flash ram
  arm-none-eabi-nm --print-size --radix=d "$work/bare.elf" | awk '
    BEGIN {split("tensors bufs steps nodes io inputs outputs", t, " ")}
    NF == 4 && $4 ~ /^EDGETRIM_PLAN_ENTRY_[0-6]$/ {n++; size[substr($4, 21) + 1] = $2 + 0}
    END {if (n != 7) {print "measure-kernel-code: no EDGETRIM_PLAN_ENTRY_* symbols" > "/dev/stderr"; exit 1}
      for (i = 1; i <= 7; i++) printf "plan.%s\t0\t%d\n", t[i], size[i]}'
  printf '%s\t%d\t%d\n' startup "$bare_flash" "$bare_ram"
  printf '%s\t%d\t%d\n' runtime $((core_flash - bare_flash)) $((core_ram - bare_ram))
  awk -v order="$(echo "$families" | awk '{printf "%s ", $2}')" '
    FILENAME ~ /totals$/ {total[$1] = $2; ram[$1] = $3; next}
    $1 == "core" {core[$2] = 1; next}
    !($2 in core) {
      if (!(($2, $1) in seen)) {owners[$2] = owners[$2] " " $1; seen[$2, $1] = 1}
      if ($3 > size[$2]) size[$2] = $3
      new[$1, $2] = $3
    }
    END {
      n = split(order, fam, " ")
      for (s in owners) {
        key = ""
        for (i = 1; i <= n; i++) if (index(owners[s] " ", " " fam[i] " ")) key = key (key == "" ? "" : "+") fam[i]
        group[key] += size[s]
      }
      for (k in new) {split(k, kk, SUBSEP); attributed[kk[1]] += new[k]}
      for (i = 1; i <= n; i++) {
        f = fam[i]
        printf "%s\t%d\t%d\n", f, group[f] + total[f] - attributed[f], ram[f]
        delete group[f]
      }
      for (k in group) printf "%s\t%d\t0\n", k, group[k] | "sort"
    }' "$work/totals" "$work/symbols"
  printf '%s\t%d\t%d\n' all $((all_flash - core_flash)) $((all_ram - core_ram))
} >"$work/table"
chmod 644 "$work/table"
mkdir -p "$(dirname "$out")"
mv "$work/table" "$out"
echo "measure-kernel-code: wrote $out"
cat "$out"
