#!/usr/bin/env bash
# Makes the synthetic English accents that `edgetrim datagen speech --accents DIR` speaks with
# (idempotent): fetches espeak-ng's phoneme sources (Debian's source tarball; the binary
# package ships only the compiled tables) and runs scripts/espeak-accents.py on them.
#
#   scripts/setup-accents.sh [DIR [OPTIONS...]]   # default data/accents; OPTIONS go to
#                                                 # espeak-accents.py (e.g. --consonants 1.5)
#
# The 1.52 sources compile with the installed 1.51 espeak-ng into tables that speak the
# standard voices byte for byte as the system's own data does (checked by espeak-accents.py).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(realpath -m "${1:-$root/data/accents}")"
shift || true
if [ -f "$out/accents.txt" ]; then
    echo "synthetic accents already in $out ($(wc -l <"$out/accents.txt") voices)"
    exit 0
fi
bash "$root/scripts/setup-speech.sh" >/dev/null
url=http://deb.debian.org/debian/pool/main/e/espeak-ng/espeak-ng_1.52.0+dfsg.orig.tar.gz
sha=d2a886bae3547a15c52801cb37e415230834a7ee7f9a57352b98d60454d97cea
cache="$root/data/cache"
tarball="$cache/$(basename "$url")"
mkdir -p "$cache"
if ! echo "$sha  $tarball" | sha256sum -c --status 2>/dev/null; then
    curl -fsS -o "$tarball.part" "$url"
    echo "$sha  $tarball.part" | sha256sum -c --status || {
        echo "setup-accents: $url does not have the expected SHA-256" >&2
        exit 1
    }
    mv "$tarball.part" "$tarball"
fi
src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
tar xzf "$tarball" -C "$src" --wildcards '*/phsource/*'
python3 "$root/scripts/espeak-accents.py" "$src"/espeak-ng-*/phsource "$out" "$@"
