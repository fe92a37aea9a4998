#!/usr/bin/env python3
"""Labelled held-out data for ddddocr's click-target detector (a YOLOX, see
scripts/fetch_real_models.sh): 416 x 416 scenes with 3 to 6 glyphs to find.

The detector finds the characters a "click the letters in order" captcha asks for. It has no
public test set, so this renders one: a cluttered background (a smooth colour field, random
ellipses, rectangles and lines, blur and noise) with letters and digits in the DejaVu fonts
Debian ships, random size (26-52 px), rotation (up to 45 degrees), colour and, on half of them,
an outline in another colour; glyphs do not overlap. Each box is the glyph's ink, tight.

Writes OUT/images/0000.png ..., OUT/labels/0000.txt (YOLO format: `0 cx cy w h`,
normalised), OUT/npy/0000.npy (float32 1x3x416x416: the scene as ddddocr feeds it, BGR in
0-255, no letterbox since the scene is already 416 x 416; the layout `edgetrim compress
--calib OUT/npy` reads). The same seed gives the same bytes.

Usage: python3 scripts/gen_click_targets.py OUT --count 200 --seed 2
Needs numpy and Pillow (see scripts/gen_text_direction.py, whose fonts it uses).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
from gen_text_direction import FACES, FONTS
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIZE = 416
GLYPHS = "ABCDEFGHJKLMNPQRSTUVWXYZabdefghkmnqrt2345679"


def background(rng: random.Random) -> Image.Image:
    grid = np.array([[[rng.randint(0, 255) for _ in range(3)] for _ in range(4)] for _ in range(4)], np.uint8)
    img = Image.fromarray(grid).resize((SIZE, SIZE), Image.BICUBIC)
    draw = ImageDraw.Draw(img, "RGBA")
    for _ in range(rng.randint(8, 30)):
        colour = tuple(rng.randint(0, 255) for _ in range(3)) + (rng.randint(60, 200),)
        x0, y0 = rng.randint(-50, SIZE), rng.randint(-50, SIZE)
        x1, y1 = x0 + rng.randint(10, 200), y0 + rng.randint(10, 200)
        shape = rng.choice(("ellipse", "rectangle", "line"))
        if shape == "line":
            draw.line((x0, y0, x1, y1), fill=colour, width=rng.randint(1, 6))
        else:
            getattr(draw, shape)((x0, y0, x1, y1), fill=colour)
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5)))


def glyph(rng: random.Random) -> Image.Image:
    """A rotated glyph on a transparent canvas cropped to its ink, outlined in another colour
    half of the time."""
    size = rng.randint(26, 52)
    font = ImageFont.truetype(str(FONTS / rng.choice(FACES)), size)
    canvas = Image.new("RGBA", (3 * size, 3 * size))
    fill, stroke = (tuple(rng.randint(0, 255) for _ in range(3)) for _ in range(2))
    width = 2 if rng.random() < 0.5 else 0
    ImageDraw.Draw(canvas).text((size, size // 2), rng.choice(GLYPHS), font=font, fill=fill,
                                stroke_width=width, stroke_fill=stroke)
    canvas = canvas.rotate(rng.uniform(-45, 45), resample=Image.BICUBIC)
    return canvas.crop(canvas.getchannel("A").getbbox())


def scene(rng: random.Random) -> tuple[Image.Image, list[list[int]]]:
    img = background(rng)
    boxes: list[list[int]] = []
    for _ in range(rng.randint(3, 6)):
        for _attempt in range(30):
            ink = glyph(rng)
            x, y = rng.randint(0, SIZE - ink.width), rng.randint(0, SIZE - ink.height)
            box = [x, y, x + ink.width, y + ink.height]
            if all(box[2] < b[0] or b[2] < box[0] or box[3] < b[1] or b[3] < box[1] for b in boxes):
                img.paste(ink, (x, y), ink)
                boxes.append(box)
                break
    noise = np.random.default_rng(rng.randint(0, 2**32 - 1)).normal(0, rng.uniform(2, 10), (SIZE, SIZE, 3))
    pixels = np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels), boxes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--seed", type=int, default=2)
    args = p.parse_args()
    for sub in ("images", "labels", "npy"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    glyphs = 0
    for i in range(args.count):
        img, boxes = scene(rng)
        name = f"{i:04d}"
        img.save(args.out / "images" / f"{name}.png")
        (args.out / "labels" / f"{name}.txt").write_text("".join(
            f"0 {(b[0] + b[2]) / 2 / SIZE:.6f} {(b[1] + b[3]) / 2 / SIZE:.6f} "
            f"{(b[2] - b[0]) / SIZE:.6f} {(b[3] - b[1]) / SIZE:.6f}\n" for b in boxes))
        bgr = np.asarray(img, np.float32)[:, :, ::-1].transpose(2, 0, 1)[None]
        np.save(args.out / "npy" / f"{name}.npy", np.ascontiguousarray(bgr))
        glyphs += len(boxes)
    print(f"wrote {args.count} scenes ({glyphs} glyphs) to {args.out}")


if __name__ == "__main__":
    main()
