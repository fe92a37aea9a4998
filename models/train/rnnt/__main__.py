"""Train, evaluate and export the RNN-T TODM supernet on generated speech.

    python3 -m rnnt features --data DIR                       (cache log-mel of DIR/{train,val,test})
    python3 -m rnnt train --data DIR --out RUN [--epochs N] [--hours H]          (the supernet)
    python3 -m rnnt train --data DIR --out RUN --slice depth=2,width=0.5 ...     (a baseline)
    python3 -m rnnt train ... --device cuda --init OLD/best.pt --hours 0.1      (warm start on a GPU)
    python3 -m rnnt eval --ckpt RUN/best.pt --data DIR/test [--slice depth=3,width=0.75 ...]
    python3 -m rnnt export --ckpt RUN/best.pt [--slice depth=3,width=0.75] -o MODEL_DIR
    python3 -m rnnt export --untrained layers=3,hidden=8 --seed 0 [--slice ...] -o MODEL_DIR  (fixtures)
    python3 -m rnnt import MODEL_DIR -o RUN/init.pt      (an exported folder back into a checkpoint)
    python3 -m rnnt check MODEL_DIR --data DIR/test [--limit N] [--ckpt RUN/best.pt --slice ...]
    python3 -m rnnt transcribe --ckpt RUN/best.pt --data DIR/test --json OUT [--slice ...]

(run from models/train, or through scripts/train-rnnt.sh, which also generates the data).
Training resumes from RUN/last.pt; `--hours` stops cleanly (checkpoint saved) before that long.
`check` decodes with the exported ONNX graphs chunk by chunk (onnxruntime) and compares the
transcripts with PyTorch's; `transcribe` writes PyTorch's token ids per utterance (the reference the
Rust recogniser is tested against). The export format and its slicing rules are in EXPORT.md.
"""

import argparse
import json
import os
from pathlib import Path

import torch

from .data import SpeechSet
from .model import Dims, Slice, macs_per_second, param_count


def cmd_features(args):
    for split in ("train", "val", "test"):
        if (Path(args.data) / split).exists():
            SpeechSet(Path(args.data) / split, args.workers)


def print_by_voice(data, hyps):
    """WER per base voice and per variant (`en-us-nyc+f3` counts for both): where a held-out
    speaker costs accuracy."""
    from .decode import edit_distance

    errors = {}
    for voice, ref, hyp in zip(data.voices, data.texts, hyps):
        base, _, variant = str(voice).partition("+")
        ref = str(ref).split()
        for key in (f"base {base}", f"variant {variant or '-'}"):
            e, n = errors.get(key, (0, 0))
            errors[key] = (e + edit_distance(ref, hyp.split()), n + len(ref))
    for key, (e, n) in sorted(errors.items()):
        print(f"  {key:28s} WER {100 * e / max(1, n):5.1f}% of {n} words")


def cmd_eval(args):
    from .decode import evaluate
    from .train import load

    torch.set_num_threads(args.threads)
    model, state = load(args.ckpt)
    data = SpeechSet(args.data)
    slices = [Slice.parse(s) for s in args.slice] or [model.full()]
    rows = []
    for s in slices:
        rates, hyps = evaluate(model, data, s)
        d = model.dims.sliced(s)
        symbols = sum(len(str(t)) for t in data.texts) / (sum(data.frames) * 0.04)
        rows.append({"slice": str(s), "params": param_count(d), "mmac_per_s": macs_per_second(d, symbols) / 1e6,
                     "layers": d.layers, "hidden": d.hidden, "pred_hidden": d.pred_hidden, **rates})
        print(f"{s}: {rows[-1]['params'] / 1e6:.3f} M params  {rows[-1]['mmac_per_s']:.1f} MMAC/s  "
              f"WER {rates['wer'] * 100:.2f}%  "
              f"CER {rates['cer'] * 100:.2f}%  sentences {rates['sentence_acc'] * 100:.1f}%", flush=True)
        if args.by_voice:
            print_by_voice(data, hyps)
    if args.json:
        Path(args.json).write_text(json.dumps({"ckpt": str(args.ckpt), "data": str(args.data), "rows": rows}, indent=1))


def parser():
    p = argparse.ArgumentParser(prog="rnnt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("features")
    f.add_argument("--data", required=True)
    f.add_argument("--workers", type=int, default=os.cpu_count(), help="analysis processes")
    d = Dims()
    t = sub.add_parser("train")
    t.add_argument("--data", required=True, help="folder with train/ and val/ speech folders")
    t.add_argument("--out", required=True, help="run folder: checkpoints and history.json")
    t.add_argument("--slice", help="train only this subnet as a dense model (the baseline)")
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--hours", type=float, default=None, help="stop (resumable) before this much time")
    t.add_argument("--layers", type=int, default=d.layers)
    t.add_argument("--hidden", type=int, default=d.hidden)
    t.add_argument("--pred-hidden", type=int, default=d.pred_hidden)
    t.add_argument("--embed", type=int, default=d.embed)
    t.add_argument("--joint", type=int, default=d.joint)
    t.add_argument("--widths", type=lambda v: [float(x) for x in v.split(",")], default=[0.5, 0.625, 0.75, 0.875, 1.0])
    t.add_argument("--min-depth", type=int, default=2)
    t.add_argument("--random", type=int, default=1, help="random subnets per step besides largest and smallest")
    t.add_argument("--dropout", type=float, default=0.15, help="dropout of the largest subnet (scaled by size)")
    t.add_argument("--kd-weight", type=float, default=1.0)
    t.add_argument("--small-weight", type=float, default=1.0,
                   help="scale of the smallest subnet's loss in the sandwich (e.g. 2: its weights learn faster)")
    t.add_argument("--warp", type=float, default=0.0,
                   help="vocal tract length perturbation: largest mel-axis warp (e.g. 0.1; 0: none)")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--weight-decay", type=float, default=1e-2)
    t.add_argument("--warmup", type=int, default=200, help="warm-up steps")
    t.add_argument("--save-every", type=int, default=100, help="steps between checkpoints inside an epoch")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--device", default="cpu", help="torch device to train on (cpu, cuda)")
    t.add_argument("--init", help="warm start from this checkpoint's weights (same dims; fresh optimizer and schedule)")
    t.add_argument("--anneal-in-time", action="store_true",
                   help="with --hours: decay the learning rate over the time box if it ends before the epochs")
    t.add_argument("--eval-every", type=int, default=1, help="validate every N epochs (and after the last)")
    t.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("eval")
    e.add_argument("--ckpt", required=True)
    e.add_argument("--data", required=True, help="one speech folder (e.g. data/speech/test)")
    e.add_argument("--slice", action="append", default=[], help="subnet(s) to evaluate (default: the full model)")
    e.add_argument("--json", help="also write the table here")
    e.add_argument("--by-voice", action="store_true", help="also print WER per base voice and per variant")
    e.add_argument("--threads", type=int, default=2)
    x = sub.add_parser("export")
    src = x.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt")
    src.add_argument("--untrained", metavar="DIMS", help="a seeded untrained supernet, e.g. layers=3,hidden=8 (test fixtures)")
    x.add_argument("--seed", type=int, default=0, help="with --untrained: the initialisation seed")
    x.add_argument("--slice", help="export this subnet (default: the whole supernet)")
    x.add_argument("--chunk", type=int, default=4, help="stacked frames per encoder call (40 ms each)")
    x.add_argument("-o", "--output", required=True, help="model folder to write")
    i = sub.add_parser("import", help="read an exported model folder back into a checkpoint (for --init, eval)")
    i.add_argument("model", help="exported model folder, e.g. ../zoo/rnnt-todm")
    i.add_argument("-o", "--output", required=True, help="checkpoint to write")
    c = sub.add_parser("check")
    c.add_argument("model", help="exported model folder")
    c.add_argument("--data", required=True, help="speech folder to decode")
    c.add_argument("--limit", type=int, default=50, help="utterances to decode (0: all)")
    c.add_argument("--ckpt", help="compare with this checkpoint in PyTorch (default: only report WER)")
    c.add_argument("--slice", help="the subnet of --ckpt the folder holds (default: the full model)")
    r = sub.add_parser("transcribe")
    r.add_argument("--ckpt", required=True)
    r.add_argument("--data", required=True, help="speech folder (transcripts.tsv + wav/)")
    r.add_argument("--slice", help="subnet to decode (default: the full model)")
    r.add_argument("--limit", type=int, default=0, help="first N utterances (0: all)")
    r.add_argument("--json", required=True, help="write the transcripts here")
    r.add_argument("--threads", type=int, default=1)
    return p


def main():
    args = parser().parse_args()
    if args.cmd == "features":
        cmd_features(args)
    elif args.cmd == "train":
        from .train import train

        train(args)
    elif args.cmd == "eval":
        cmd_eval(args)
    elif args.cmd == "transcribe":
        from .transcribe import transcribe

        transcribe(args)
    elif args.cmd == "export":
        from .export import export

        export(args)
    elif args.cmd == "import":
        from .import_onnx import cmd_import

        cmd_import(args)
    else:
        from .onnx_check import check

        check(args)


if __name__ == "__main__":
    main()
