#!/usr/bin/env bash
# Installs what `edgetrim datagen speech` needs (idempotent): espeak-ng, the speech synthesiser
# whose voices speak the generated utterances (Debian/Ubuntu package; 1.51 is what the data
# generator was written against).
set -euo pipefail
if ! command -v espeak-ng >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq espeak-ng >/dev/null
fi
espeak-ng --version
