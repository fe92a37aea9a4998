"""A third-party CNN for the compressor: torchvision's MobileNetV2 classifying pavement-damage crops.

    python3 -m pavecls train  --data DIR --out RUN_DIR [--epochs N] [--minutes M]
    python3 -m pavecls export --checkpoint RUN_DIR/best.pt -o MODEL.onnx [--calib-out DIR]
    python3 -m pavecls eval   MODEL.onnx --data DIR/test

(run from models/train; DIR holds train/, val/ and test/ as `edgetrim datagen pavement`
writes them). The architecture is torchvision's unchanged `mobilenet_v2(width_mult=0.5)`:
inverted residuals, depthwise convolutions, ReLU6, residual Adds. It is here so that
pruning and int8 are measured on a network whose structure nobody in this project designed;
no pretrained weights can be fetched, so it is trained from scratch on crops of the
generator's labelled boxes (one crop per box, class = the box's damage type). `eval` runs
the ONNX file in onnxruntime, a runtime that is not ours either.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

from yolo9tr.data import YoloFolder

CLASS_NAMES = ["D00", "D10", "D20", "D40", "D43", "D44", "D50", "Repair"]


def crops(folder, size, limit=None):
    """Every labelled box of a YOLO folder as a square crop (box side x 1.25, edge-padded)
    resized to `size`: uint8 `[n, 3, size, size]` and int64 classes `[n]`."""
    data = YoloFolder(folder, _image_size(folder))
    xs, ys = [], []
    n = len(data) if limit is None else min(limit, len(data))
    for i in range(n):
        img = data.images[i].permute(2, 0, 1).float()
        s = img.shape[-1]
        for c, x0, y0, x1, y1 in data.labels[i].tolist():
            side = max(x1 - x0, y1 - y0, 8.0) * 1.25
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            a, b = int(round(cx - side / 2)), int(round(cy - side / 2))
            k = int(round(side))
            pad = max(0, -a, -b, a + k - s, b + k - s)
            padded = F.pad(img[None], (pad, pad, pad, pad), mode="replicate")
            crop = padded[:, :, b + pad:b + pad + k, a + pad:a + pad + k]
            crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            xs.append(crop[0].round().clamp(0, 255).to(torch.uint8))
            ys.append(int(c))
    return torch.stack(xs), torch.tensor(ys)


def _image_size(folder):
    from PIL import Image

    first = sorted((Path(folder) / "images").glob("*.png"))[0]
    return Image.open(first).size[0]


def build():
    return torchvision.models.mobilenet_v2(width_mult=0.5, num_classes=len(CLASS_NAMES))


def accuracy(model, x, y, batch=256):
    model.eval()
    right = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            right += (model(x[i:i + batch].float() / 255).argmax(1) == y[i:i + batch]).sum().item()
    return right / max(1, len(y))


def train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    xt, yt = crops(Path(args.data) / "train", args.size, args.train_images)
    xv, yv = crops(Path(args.data) / "val", args.size)
    print(f"{len(yt)} train / {len(yv)} val crops in {time.time() - t0:.0f} s", flush=True)
    model = build()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = args.epochs * ((len(yt) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    g = torch.Generator().manual_seed(args.seed)
    best, t0 = -1.0, time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(yt), generator=g)
        for i in range(0, len(yt), args.batch):
            idx = perm[i:i + args.batch]
            x = xt[idx].float() / 255
            flip = torch.rand(len(idx), generator=g) < 0.5
            x[flip] = x[flip].flip(-1)
            x = x * (1 + (torch.rand(len(idx), 1, 1, 1, generator=g) - 0.5) * 0.4)
            loss = F.cross_entropy(model(x), yt[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, xv, yv)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.3f}, val accuracy {acc:.4f}, "
              f"{time.time() - t0:.0f} s", flush=True)
        if acc > best:
            best = acc
            torch.save({"model": model.state_dict(), "epoch": epoch + 1, "val_acc": acc, "size": args.size},
                       out / "best.pt.tmp")
            os.replace(out / "best.pt.tmp", out / "best.pt")
        if args.minutes and time.time() - t0 > args.minutes * 60:
            print("time limit reached", flush=True)
            break


def export(args):
    ck = torch.load(args.checkpoint, weights_only=False)
    model = build()
    model.load_state_dict(ck["model"])
    model.eval()
    size = ck["size"]
    tmp = Path(str(args.output) + ".tmp")
    torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(tmp), input_names=["images"],
                      output_names=["logits"], opset_version=17, dynamo=False, do_constant_folding=True)
    import onnx

    m = onnx.load(str(tmp))
    for k, v in {"edgetrim.task": "classify", "edgetrim.names": ",".join(CLASS_NAMES),
                 "edgetrim.input_size": str(size), "edgetrim.train.arch": "torchvision mobilenet_v2(width_mult=0.5)",
                 "edgetrim.train.epochs": str(ck["epoch"]), "edgetrim.train.val_acc": f"{ck['val_acc']:.4f}"}.items():
        m.metadata_props.add(key=k, value=v)
    m.producer_name = "edgetrim models/train/pavecls"
    onnx.checker.check_model(m)
    onnx.save(m, str(tmp))
    os.replace(tmp, args.output)
    print(f"wrote {args.output}: {sum(p.numel() for p in model.parameters())} params, input 1x3x{size}x{size}")
    if args.calib_out:
        # Calibration inputs for `edgetrim compress --calib DIR`: crops of the val split,
        # one .npy each, as the model reads them (f32 in [0, 1]).
        x, _ = crops(Path(args.data) / "val", size)
        d = Path(args.calib_out)
        d.mkdir(parents=True, exist_ok=True)
        for i in range(min(args.calib_count, len(x))):
            np.save(d / f"{i:03d}.npy", (x[i:i + 1].float() / 255).numpy())
        print(f"wrote {min(args.calib_count, len(x))} calibration inputs to {d}")


def evaluate(args):
    import onnxruntime as ort

    x, y = crops(args.data, args.size)
    sess = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    right = 0
    for i in range(len(y)):
        logits = sess.run(None, {name: (x[i:i + 1].float() / 255).numpy()})[0]
        right += int(np.argmax(logits) == int(y[i]))
    print(f"{args.model}: top-1 accuracy {right / len(y):.4f} on {len(y)} crops of {args.data}")


def main():
    p = argparse.ArgumentParser(prog="pavecls", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--size", type=int, default=64)
    t.add_argument("--epochs", type=int, default=12)
    t.add_argument("--minutes", type=float, default=None, help="stop after the epoch that passes this")
    t.add_argument("--train-images", type=int, default=3000, help="scenes of train/ to crop")
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("export")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--data", help="with --calib-out: the folder holding val/")
    e.add_argument("--calib-out", help="also write calibration .npy inputs here")
    e.add_argument("--calib-count", type=int, default=64)
    v = sub.add_parser("eval")
    v.add_argument("model")
    v.add_argument("--data", required=True, help="a YOLO folder (e.g. DIR/test)")
    v.add_argument("--size", type=int, default=64)
    args = p.parse_args()
    {"train": train, "export": export, "eval": evaluate}[args.cmd](args)


if __name__ == "__main__":
    main()
