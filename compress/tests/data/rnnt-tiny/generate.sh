#!/bin/sh
# Regenerates the slicing fixtures of compress/tests/it/slice.rs and tests/it/compress_slice.rs:
# an untrained, seeded tiny RNN-T supernet exported by the Python recipe (full/) and the same
# weights exported directly as the subnet depth=2,width=0.5 (d2-w0.5/), which the Rust slicer
# must reproduce from full/ by the rules in models/train/rnnt/EXPORT.md.
#     sh compress/tests/data/rnnt-tiny/generate.sh      (from the repository root)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dims=layers=3,hidden=8,pred_hidden=6,embed=4,joint=8
cd "$here/../../../../models/train"
python3 -m rnnt export --untrained "$dims" --seed 7 -o "$here/full"
python3 -m rnnt export --untrained "$dims" --seed 7 --slice depth=2,width=0.5 -o "$here/d2-w0.5"
