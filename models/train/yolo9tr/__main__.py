"""Train and export YOLO9tr on generated pavement data.

    python3 -m yolo9tr train  --variant s --data DIR --out RUN_DIR [--epochs N] [--hours H]
    python3 -m yolo9tr export --variant s --checkpoint RUN_DIR/best.pt -o MODEL.onnx
    python3 -m yolo9tr export --variant paper --untrained -o MODEL.onnx   (speed benchmarks)

(run from models/train, or through scripts/train-yolo9tr.sh, which also generates the data).
Training resumes from RUN_DIR/last.pt when it exists, so a run cut off by the end of a
session continues where it stopped; `--hours` stops cleanly (checkpoint saved) after that long.
"""

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
from trainkit import EMA, save_atomic

from .data import YoloFolder
from .evaluate import evaluate
from .loss import DetectionLoss
from .model import STRIDES, VARIANTS, build, fuse

CLASS_NAMES = ["D00", "D10", "D20", "D40", "D43", "D44", "D50", "Repair"]


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    v = VARIANTS[args.variant]
    size = v["size"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    train_set = YoloFolder(Path(args.data) / "train", size)
    val_set = YoloFolder(Path(args.data) / "val", size)
    print(f"loaded {len(train_set)} train / {len(val_set)} val images in {time.time() - t0:.0f} s", flush=True)

    model = build(args.variant, nc=len(CLASS_NAMES))
    model.head.init_biases(size)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.999),
    )
    ema = EMA(model, decay=0.9999, tau=2000)
    loss_fn = DetectionLoss(len(CLASS_NAMES), v["reg_max"], size, "cpu")
    steps_per_epoch = len(train_set) // args.batch
    total_steps = steps_per_epoch * args.epochs
    state = {"epoch": 0, "step": 0, "best_map50": -1.0, "history": [], "train_seconds": 0.0}
    last = out / "last.pt"
    if last.exists():
        ck = torch.load(last, weights_only=False)
        model.load_state_dict(ck["model"])
        ema.model.load_state_dict(ck["ema"])
        ema.updates = ck["ema_updates"]
        opt.load_state_dict(ck["optimizer"])
        state = ck["state"]
        print(f"resumed from {last} at epoch {state['epoch']}", flush=True)

    gen = torch.Generator().manual_seed(args.seed + state["epoch"])
    deadline = time.time() + args.hours * 3600 if args.hours else None
    while state["epoch"] < args.epochs:
        model.train()
        start = time.time()
        order = torch.randperm(len(train_set), generator=gen)
        sums = torch.zeros(3)
        for i in range(steps_per_epoch):
            step = state["step"]
            warm = min(1.0, (step + 1) / args.warmup)
            lr = args.lr * warm * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * step / total_steps)))
            for g in opt.param_groups:
                g["lr"] = lr
            x, targets = train_set.batch(order[i * args.batch : (i + 1) * args.batch], augment=True, generator=gen)
            loss, parts = loss_fn(model(x), targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            ema.update(model)
            sums += parts
            state["step"] += 1
            if (i + 1) % 50 == 0:
                rate = (i + 1) * args.batch / (time.time() - start)
                b, c, d = (sums / (i + 1)).tolist()
                print(f"epoch {state['epoch'] + 1}/{args.epochs} step {i + 1}/{steps_per_epoch} "
                      f"box {b:.3f} cls {c:.3f} dfl {d:.3f} lr {lr:.2e} {rate:.1f} img/s", flush=True)
        state["epoch"] += 1
        state["train_seconds"] += time.time() - start
        map50, map5095 = evaluate(ema.model, val_set, len(CLASS_NAMES), v["reg_max"])
        state["history"].append({"epoch": state["epoch"], "val_map50": map50, "val_map50_95": map5095,
                                 "loss": (sums / steps_per_epoch).tolist(), "seconds": time.time() - start})
        print(f"epoch {state['epoch']}: val mAP50 {map50:.4f} mAP50-95 {map5095:.4f} "
              f"({time.time() - start:.0f} s)", flush=True)
        ck = {"model": model.state_dict(), "ema": ema.model.state_dict(), "ema_updates": ema.updates,
              "optimizer": opt.state_dict(), "state": state, "variant": args.variant}
        if map50 > state["best_map50"]:
            state["best_map50"] = map50
            save_atomic({"ema": ema.model.state_dict(), "variant": args.variant, "state": state}, out / "best.pt")
        save_atomic(ck, last)
        (out / "history.json").write_text(json.dumps(state, indent=1))
        if deadline and time.time() + state["history"][-1]["seconds"] > deadline:
            print(f"stopping after epoch {state['epoch']}: --hours {args.hours} would be exceeded; "
                  "rerun the same command to resume", flush=True)
            return
    print(f"done: best val mAP50 {state['best_map50']:.4f}, {state['train_seconds'] / 60:.0f} min of training", flush=True)


def export(args):
    v = VARIANTS[args.variant]
    size = args.size or v["size"]
    model = build(args.variant, nc=len(CLASS_NAMES))
    meta = {"variant": args.variant, "trained": "no"}
    if not args.untrained:
        ck = torch.load(args.checkpoint, weights_only=False)
        model.load_state_dict(ck["ema"])
        st = ck.get("state", {})
        meta.update(trained="yes", epochs=str(st.get("epoch")), val_map50=f"{st.get('best_map50', 0):.4f}")
    model = fuse(model.eval())
    x = torch.zeros(1, 3, size, size)
    tmp = Path(str(args.output) + ".tmp")
    torch.onnx.export(model, (x,), str(tmp), input_names=["images"], output_names=["output0"],
                      opset_version=17, dynamo=False, do_constant_folding=True)
    import onnx

    m = onnx.load(str(tmp))
    props = {
        "edgetrim.task": "detect",
        "edgetrim.yolo.reg_max": str(v["reg_max"]),
        "edgetrim.yolo.strides": ",".join(map(str, STRIDES)),
        "edgetrim.yolo.scores": "logits",
        "edgetrim.yolo.names": ",".join(CLASS_NAMES),
        "edgetrim.input_size": str(size),
        **{f"edgetrim.train.{k}": val for k, val in meta.items()},
    }
    del m.metadata_props[:]
    for k, val in props.items():
        m.metadata_props.add(key=k, value=val)
    m.producer_name = "edgetrim models/train/yolo9tr"
    onnx.checker.check_model(m)
    onnx.save(m, str(tmp))
    os.replace(tmp, args.output)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.output}: {params / 1e6:.2f} M params, input 1x3x{size}x{size}, "
          f"output 1x{4 * v['reg_max'] + len(CLASS_NAMES)}x{sum(math.ceil(size / s) ** 2 for s in STRIDES)}")


def main():
    p = argparse.ArgumentParser(prog="yolo9tr", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--variant", choices=sorted(VARIANTS), default="s")
    t.add_argument("--data", required=True, help="folder with train/ and val/ YOLO folders")
    t.add_argument("--out", required=True, help="run folder: checkpoints and history.json")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--hours", type=float, default=None, help="stop (resumable) before this much time")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--warmup", type=int, default=300, help="warm-up steps")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("export")
    e.add_argument("--variant", choices=sorted(VARIANTS), default="s")
    e.add_argument("--checkpoint", help="best.pt or last.pt of a run")
    e.add_argument("--untrained", action="store_true", help="random weights (speed benchmarks)")
    e.add_argument("--size", type=int, help="input size (default: the variant's)")
    e.add_argument("-o", "--output", required=True)
    args = p.parse_args()
    if args.cmd == "export" and not (args.untrained or args.checkpoint):
        p.error("export needs --checkpoint or --untrained")
    train(args) if args.cmd == "train" else export(args)


if __name__ == "__main__":
    main()
