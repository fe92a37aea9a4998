#!/usr/bin/env bash
# gen-rnnt-firmware-assets.sh - (re)write the speech firmware's assets from the zoo model, so
# that they follow models/zoo/rnnt-todm whenever it is retrained (nothing here is hand-made):
#
#   examples/firmware/rnnt-d2w05-int8/  the smallest slice (depth=2, width=0.5) of the
#                                       supernet, int8, calibrated on the val split
#   examples/firmware/speech.s16le      one held-out test utterance: raw 16 kHz mono int16 LE
#   examples/firmware/speech.tsv        its transcripts.tsv line: id, voice, reference text
#
#   bash scripts/gen-rnnt-firmware-assets.sh            # utterance 000220 of data/speech/test
#   UTTERANCE=000000 bash scripts/gen-rnnt-firmware-assets.sh
#
# Then it transcribes the utterance with the new slice on the host (`edgetrim asr`, the
# runtime the firmware runs) and fails unless that equals the reference text: the firmware
# check (scripts/firmware-check.sh) requires device == host == reference, so after a
# retraining pick an utterance the slice gets right (a short one: the PCM is committed).
# `cargo run --example rnnt_firmware` then prints what the firmware must print.
#
# Environment: EDGETRIM (the CLI; default: `cargo run --release --quiet --bin edgetrim --`),
# SPEECH_DATA (default data/speech, holding val/ and test/ as the README's datagen commands
# write them; git-ignored), UTTERANCE (a test-split id).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
data="${SPEECH_DATA:-data/speech}"
id="${UTTERANCE:-000220}"
out="examples/firmware"
slice="$out/rnnt-d2w05-int8"
if [[ -n "${EDGETRIM:-}" ]]; then
  read -r -a edgetrim <<<"$EDGETRIM"
else
  edgetrim=(cargo run --release --quiet --bin edgetrim --)
fi

for split in val test; do
  [[ -d "$data/$split/wav" ]] || {
    echo "gen-rnnt-firmware-assets: $data/$split not found; generate it with" >&2
    echo "  edgetrim datagen speech --split val --seed 2 --count 600 --out $data/val" >&2
    echo "  edgetrim datagen speech --split test --seed 3 --count 600 --out $data/test" >&2
    exit 2
  }
done
wav="$data/test/wav/$id.wav"
line="$(awk -F'\t' -v id="$id" '$1 == id' "$data/test/transcripts.tsv")"
[[ -f "$wav" && -n "$line" ]] || { echo "gen-rnnt-firmware-assets: no utterance $id in $data/test" >&2; exit 2; }

echo "== slice depth=2,width=0.5, int8 -> $slice"
rm -rf "$slice"
"${edgetrim[@]}" compress models/zoo/rnnt-todm --slice depth=2,width=0.5 \
  --quantize int8 --calib "speech:$data/val" -o "$slice" >/dev/null

echo "== utterance $id -> $out/speech.s16le, $out/speech.tsv"
python3 - "$wav" "$out/speech.s16le" <<'EOF'
import sys, wave
with wave.open(sys.argv[1]) as w:
    if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (16000, 1, 2):
        sys.exit(f"{sys.argv[1]}: not 16 kHz mono 16-bit PCM")
    pcm = w.readframes(w.getnframes())
with open(sys.argv[2] + ".tmp", "wb") as f:
    f.write(pcm)
EOF
mv "$out/speech.s16le.tmp" "$out/speech.s16le"
printf '%s\n' "$line" >"$out/speech.tsv"

reference="$(cut -f3 <<<"$line")"
heard="$("${edgetrim[@]}" asr "$slice" --wav "$wav" --json |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["text"])')"
echo "reference:  $reference"
echo "host slice: $heard"
[[ "$heard" == "$reference" ]] || {
  echo "gen-rnnt-firmware-assets: the slice mis-transcribes $id; choose another UTTERANCE" >&2
  exit 1
}
