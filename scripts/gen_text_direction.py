#!/usr/bin/env python3
"""Labelled held-out data for PaddleOCR's text-direction classifier (upright vs 180 degrees).

The committed classifier (tests/data/real-cnn/ch_ppocr_mobile_v2.0_cls_infer.onnx) has no
public test set we could redistribute, so this renders one: short road-inspection phrases
and numbers in the DejaVu fonts Debian ships, random size, colours, background texture,
blur and noise, cropped tight like a detector's text box; every odd strip is turned 180
degrees (label 1), the others are upright (label 0). Each strip is then preprocessed as
PaddleOCR's classifier does (ppocr/data/imaug/operators.py ClsResizeImg/resize_norm_img,
on a BGR image as cv2 reads it): scaled to height 48 keeping the aspect ratio (width at
most 192), x/255, (x - 0.5)/0.5, zero-padded on the right to 3x48x192.

Writes OUT/npy/0000.npy ... (float32 1x3x48x192, one strip each: the layout `edgetrim
compress --calib OUT/npy` reads), OUT/labels.txt (one 0/1 per file, in file order) and
OUT/batch.npy (all strips stacked, Nx3x48x192, for onnxruntime). The same seed gives the
same bytes.

Usage: python3 scripts/gen_text_direction.py OUT --count 400 --seed 2
Needs numpy and Pillow (the version pinned in scripts/requirements.txt, installed with pip
when missing: the rasteriser it bundles decides the exact pixels).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

if importlib.util.find_spec("PIL") is None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "pillow==13.0.0"])
from PIL import Image, ImageDraw, ImageFilter, ImageFont  # noqa: E402

FONTS = Path("/usr/share/fonts/truetype/dejavu")
FACES = [
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
]
WORDS = (
    "pothole crack alligator longitudinal transverse rutting patch repair lane shoulder "
    "joint spalling bleeding raveling edge kerb drain manhole marking faded severity "
    "high medium low north south east west inspection survey segment section road bridge "
    "asphalt concrete surface depth width length area chainage Route Exit Km Lane Zone"
).split()
H, W = 48, 192


def phrase(rng: np.random.Generator) -> str:
    """One to three words or numbers, e.g. 'KM 12+350 crack' or 'Lane 2 pothole 35cm'."""
    parts = []
    for _ in range(rng.integers(1, 4)):
        kind = rng.integers(0, 5)
        if kind == 0:
            parts.append(f"KM {rng.integers(0, 300)}+{rng.integers(0, 1000):03d}")
        elif kind == 1:
            parts.append(f"{rng.integers(1, 200)}{rng.choice(['cm', 'mm', 'm', '%'])}")
        else:
            word = str(rng.choice(WORDS))
            case = rng.integers(0, 3)
            parts.append(word.upper() if case == 0 else word.capitalize() if case == 1 else word)
    return " ".join(parts)


def strip(rng: np.random.Generator) -> Image.Image:
    """An upright RGB text crop: text plus a few pixels of margin on a textured background."""
    font = ImageFont.truetype(str(FONTS / FACES[rng.integers(0, len(FACES))]), int(rng.integers(18, 44)))
    text = phrase(rng)
    left, top, right, bottom = font.getbbox(text)
    pad = rng.integers(2, 9, size=4)
    size = (right - left + pad[0] + pad[2], bottom - top + pad[1] + pad[3])
    bg = rng.integers(150, 256, size=3) if rng.random() < 0.8 else rng.integers(0, 90, size=3)
    fg = rng.integers(0, 80, size=3) if bg.mean() > 120 else rng.integers(180, 256, size=3)
    img = Image.new("RGB", size, tuple(int(c) for c in bg))
    ImageDraw.Draw(img).text((pad[0] - left, pad[1] - top), text, font=font, fill=tuple(int(c) for c in fg))
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    noisy = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(0, 12), (size[1], size[0], 1))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def preprocess(img: Image.Image) -> np.ndarray:
    """PaddleOCR's resize_norm_img for the classifier: BGR, height 48, [-1, 1], right pad 0."""
    w, h = img.size
    resized_w = min(W, int(math.ceil(H * w / h)))
    bgr = np.asarray(img.resize((resized_w, H), Image.BILINEAR), np.float32)[:, :, ::-1]
    out = np.zeros((1, 3, H, W), np.float32)
    out[0, :, :, :resized_w] = (bgr.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=int, default=400)
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    (args.out / "npy").mkdir(parents=True, exist_ok=True)
    batch, labels = [], []
    for i in range(args.count):
        img, label = strip(rng), i % 2
        x = preprocess(img.rotate(180) if label else img)
        np.save(args.out / "npy" / f"{i:04d}.npy", x)
        batch.append(x[0])
        labels.append(label)
    np.save(args.out / "batch.npy", np.stack(batch))
    (args.out / "labels.txt").write_text("".join(f"{label}\n" for label in labels))
    print(f"{args.out}: {args.count} strips, seed {args.seed}")


if __name__ == "__main__":
    main()
