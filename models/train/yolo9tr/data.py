"""YOLO-format folders (as `edgetrim datagen pavement` writes them) loaded once into RAM.

Decoding PNGs every epoch would take one of the two cores away from training, so a folder is
decoded once into a uint8 tensor (6,000 images at 224 px are 0.9 GB) and batches are sliced
from it. Images must already be square at the training size: the generator renders them so.
"""

from pathlib import Path

import numpy as np
import torch
from PIL import Image


class YoloFolder:
    def __init__(self, root, size):
        root = Path(root)
        files = sorted((root / "images").glob("*.png"))
        if not files:
            raise SystemExit(f"no images in {root / 'images'}")
        self.images = torch.empty(len(files), size, size, 3, dtype=torch.uint8)
        self.labels = []
        for i, f in enumerate(files):
            img = Image.open(f).convert("RGB")
            if img.size != (size, size):
                raise SystemExit(f"{f}: {img.size[0]}x{img.size[1]}, expected {size}x{size}")
            self.images[i] = torch.from_numpy(np.array(img))
            rows = []
            label = root / "labels" / (f.stem + ".txt")
            if label.exists():
                for line in label.read_text().split("\n"):
                    if line.strip():
                        c, cx, cy, w, h = (float(v) for v in line.split())
                        rows.append([c, (cx - w / 2) * size, (cy - h / 2) * size, (cx + w / 2) * size, (cy + h / 2) * size])
            self.labels.append(torch.tensor(rows, dtype=torch.float32).reshape(-1, 5))
        self.size = size

    def __len__(self):
        return len(self.labels)

    def batch(self, index, augment=False, generator=None):
        """Images `[b, 3, s, s]` in [0, 1] and a list of `[n, 5]` targets (class, x0 y0 x1 y1)."""
        x = self.images[index].permute(0, 3, 1, 2).float().div_(255.0)
        targets = [self.labels[i].clone() for i in index.tolist()]
        if augment:
            b = x.shape[0]
            # Horizontal flip: a mirrored road is still a road.
            flip = torch.rand(b, generator=generator) < 0.5
            x[flip] = x[flip].flip(-1)
            for i in torch.nonzero(flip).flatten().tolist():
                t = targets[i]
                t[:, [1, 3]] = self.size - t[:, [3, 1]]
            # Photometric jitter: brightness, contrast, saturation.
            bright = 1 + (torch.rand(b, 1, 1, 1, generator=generator) - 0.5) * 0.4
            contrast = 1 + (torch.rand(b, 1, 1, 1, generator=generator) - 0.5) * 0.4
            sat = 1 + (torch.rand(b, 1, 1, 1, generator=generator) - 0.5) * 0.6
            grey = x.mean(1, keepdim=True)
            x = grey + (x - grey) * sat
            mean = x.mean((1, 2, 3), keepdim=True)
            x = ((x - mean) * contrast + mean) * bright
            x = x.clamp_(0, 1)
        return x, targets
