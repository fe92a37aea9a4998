#!/usr/bin/env python3
"""Cheap things tried on trained RNN-T checkpoints before training more (issue 5): weight
averages of checkpoints ("soups"), a penalty on the blank logit at decoding, and the test
errors by kind. Prints validation and test WER of the full model and the smallest slice.

    python3 scripts/rnnt-soups.py --data data/speech-d \\
        --mix runs/rnnt-d/best.pt=1 \\
        --mix runs/rnnt-d/init.pt=0.25,runs/rnnt-d/best.pt=0.5,runs/rnnt-e/best.pt=0.25 \\
        [--blank-penalty 0.5 --blank-penalty 1] [--errors]

Each --mix averages the EMA weights of its checkpoints with the given weights (they must
share dimensions); the first mix is also the model --blank-penalty and --errors use.
Session 17 used runs/rnnt-d/init.pt (stage 6), runs/rnnt-d/best.pt (stage 7, the zoo's) and
runs/rnnt-e/best.pt (stage 8). Run from the repository root; needs the training
requirements (scripts/setup-train.sh).
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models/train"))
from rnnt.data import SpeechSet  # noqa: E402
from rnnt.decode import edit_distance, evaluate, transcribe  # noqa: E402
from rnnt.model import BLANK, Slice  # noqa: E402
from rnnt.train import load  # noqa: E402

SLICES = ("depth=4,width=1", "depth=2,width=0.5")


def mixed(spec):
    parts = [(path, float(w)) for path, w in (p.rsplit("=", 1) for p in spec.split(","))]
    emas = [torch.load(path, map_location="cpu", weights_only=False)["ema"] for path, _ in parts]
    model, _ = load(parts[0][0])
    model.load_state_dict({k: sum(w * e[k].double() for (_, w), e in zip(parts, emas)).float()
                           for k in emas[0]})
    return model


def report(what, model, sets):
    cells = [f"{split} {s} {evaluate(model, data, Slice.parse(s))[0]['wer'] * 100:.2f}"
             for split, data in sets for s in SLICES]
    print(f"{what}: " + " | ".join(cells), flush=True)


def word_errors(ref, hyp):
    """(substitutions, deletions, insertions) of one best alignment."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(hyp) + 1)] for i in range(len(ref) + 1)]
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    i, j, kinds = len(ref), len(hyp), [0, 0, 0]
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            kinds[0] += ref[i - 1] != hyp[j - 1]
            i, j = i - 1, j - 1
        elif i and d[i][j] == d[i - 1][j] + 1:
            kinds[1], i = kinds[1] + 1, i - 1
        else:
            kinds[2], j = kinds[2] + 1, j - 1
    return kinds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="speech folder with train/, val/, test/")
    ap.add_argument("--mix", action="append", required=True, help="PATH=W[,PATH=W...]")
    ap.add_argument("--blank-penalty", type=float, action="append", default=[])
    ap.add_argument("--errors", action="store_true", help="test errors by kind (full model)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = Path(args.data)
    sets = [(split, SpeechSet(data / split)) for split in ("val", "test")]
    models = [mixed(m) for m in args.mix]
    for spec, model in zip(args.mix, models):
        report(spec, model, sets)
    model = models[0]
    joint = model.joint
    for penalty in args.blank_penalty:
        def penalised(e, p, penalty=penalty):
            out = joint(e, p).clone()
            out[..., BLANK] -= penalty
            return out
        model.joint = penalised
        report(f"blank penalty {penalty}", model, sets)
    model.joint = joint
    if args.errors:
        test = dict(sets)["test"]
        hyps = transcribe(model, test, Slice.parse(SLICES[0]))
        refs = [str(t).split() for t in test.texts]
        kinds = [sum(k) for k in zip(*(word_errors(r, h.split()) for r, h in zip(refs, hyps)))]
        vocab = {w for line in open(data / "train/transcripts.tsv") for w in line.rstrip("\n").split("\t")[-1].split()}
        unknown = sum(w not in vocab for h in hyps for w in h.split())
        assert sum(kinds) == sum(edit_distance(r, h.split()) for r, h in zip(refs, hyps))
        print(f"test, full model: {sum(map(len, refs))} words, substitutions / deletions / insertions "
              f"{kinds[0]} / {kinds[1]} / {kinds[2]}; {unknown} hypothesis words not in the training vocabulary")


if __name__ == "__main__":
    main()
