#!/usr/bin/env bash
# Installs what the PyTorch training recipes in models/train/ need (idempotent).
# PyTorch comes from PyPI with its CUDA wheels (~5 GB download) and trains on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -r models/train/requirements.txt
python3 -c "import torch; print('torch', torch.__version__, 'threads', torch.get_num_threads())"
