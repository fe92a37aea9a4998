#!/bin/sh
# The slice table of an RNN-T supernet folder: for each slice, float and int8, the params,
# MACs per second of audio, flash and recogniser-arena bytes from `edgetrim compress
# --slice` and the WER and real-time factor from `edgetrim eval-asr` (nano runtime).
#
#     sh scripts/slice-table.sh SUPERNET_DIR CALIB_SPEECH_DIR TEST_SPEECH_DIR [SLICE ...]
#     sh scripts/slice-table.sh models/zoo/rnnt-todm data/speech/val data/speech/test
#
# Slices default to the trained corners and middle (depth 2..4, width 0.5..1). The sliced
# folders are left in ${WORK:-/tmp/slice-table}. EDGETRIM names the binary (default: the
# debug build, built first).
set -eu
[ $# -ge 3 ] || { sed -n 2,12p "$0"; exit 2; }
supernet=$1 calib=$2 test=$3
shift 3
[ $# -gt 0 ] || set -- depth=4,width=1 depth=3,width=0.75 depth=3,width=0.5 depth=2,width=0.625 depth=2,width=0.5
work=${WORK:-/tmp/slice-table}
if [ -z "${EDGETRIM:-}" ]; then
    cargo build -q --bin edgetrim
    EDGETRIM=target/debug/edgetrim
fi
mkdir -p "$work"
rows="$work/rows.jsonl"
: > "$rows"
for s in "$@"; do
    for q in float int8; do
        out="$work/$s-$q"
        set -- --slice "$s" -o "$out" --json
        [ "$q" = float ] || set -- "$@" --quantize int8 --calib "speech:$calib"
        "$EDGETRIM" compress "$supernet" "$@" > "$work/compress.json"
        "$EDGETRIM" eval-asr "$out" --data "$test" --json > "$work/eval.json"
        python3 - "$s" "$q" "$work/compress.json" "$work/eval.json" >> "$rows" <<'EOF'
import json, sys
s, q, c, e = sys.argv[1:]
c, e = json.load(open(c)), json.load(open(e))
t = c["totals"]
print(json.dumps({"slice": s, "weights": q, "params": t["params"], "mmac_per_s": t["macs_per_second"] / 1e6,
                  "flash_kib": t["flash_bytes"] / 1024, "arena_kib": t["arena_bytes"] / 1024,
                  "wer": e["wer"] * 100, "cer": e["cer"] * 100, "rtf": e["rtf"], "utterances": e["utterances"]}))
EOF
    done
done
python3 - "$rows" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| slice | weights | params | MMAC/s | flash KiB | arena KiB | WER % | CER % | RTF |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['slice']} | {r['weights']} | {r['params']/1e6:.3f} M | {r['mmac_per_s']:.2f} | {r['flash_kib']:.0f} | "
          f"{r['arena_kib']:.0f} | {r['wer']:.2f} | {r['cer']:.2f} | {r['rtf']:.4f} |")
print(f"\n({rows[0]['utterances']} test utterances)")
EOF
