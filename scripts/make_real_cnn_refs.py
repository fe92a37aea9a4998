#!/usr/bin/env python3
"""Computes the onnxruntime reference outputs that tests/it/real_cnn.rs compares against.

The inputs are deterministic patterns the Rust test also builds (exact in both: integer
math and a few f64 operations in the same order, one rounding to f32), so only the outputs
are committed:

- cls_ref.npy: the PaddleOCR text-direction classifier's 1x2 output at 1x3x48x192;
- det_ref_stride13.npy: every 13th row and column (13 is coprime to the 48-row text
  period, so the samples cross every part of a line) of the PP-OCRv4 detector's
  1x1x640x640 probability map at 1x3x640x640 on a synthetic page of text-like strokes
  (noise alone leaves the map at zero); the full map is 1.6 MB. Written only when
  scripts/fetch_real_models.sh has fetched the detector.

Usage: python3 scripts/make_real_cnn_refs.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "real-cnn"
CLS = DATA / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
DET = DATA / "fetched" / "ch_PP-OCRv4_det_infer.onnx"
CLS_SHAPE = (1, 3, 48, 192)
DET_SHAPE = (1, 3, 640, 640)
DET_STRIDE = 13


def noise(shape: tuple[int, ...]) -> np.ndarray:
    """f64 noise[i] = ((i * 7919) mod 2003) / 1001.5 - 1 over the flattened tensor."""
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    return (((i * 7919) % 2003).astype(np.float64) / 1001.5 - 1.0).reshape(shape)


def text_page(shape: tuple[int, ...]) -> np.ndarray:
    """Dark strokes (-1) in 24-pixel text lines on light paper (+1), plus 0.1 x noise."""
    y = np.arange(shape[2])[:, None]
    x = np.arange(shape[3])[None, :]
    in_line = (y % 48 >= 12) & (y % 48 < 36)
    in_glyph = (x % 20 < 14) & ((x // 20 + y // 48) % 7 != 0)
    on_stroke = (((x // 3) * 5 + (y // 3) * 3) % 4 == 0) | (x % 20 % 7 == 0)
    paper = np.where(in_line & in_glyph & on_stroke, -1.0, 1.0)
    return paper + 0.1 * noise(shape)


def run(model: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})
    return out


def main() -> None:
    cls = run(CLS, noise(CLS_SHAPE))
    np.save(DATA / "cls_ref.npy", cls)
    print(f"cls_ref.npy {cls.shape}: {cls.ravel()}")
    if DET.exists():
        det = run(DET, text_page(DET_SHAPE))[:, :, ::DET_STRIDE, ::DET_STRIDE]
        np.save(DATA / f"det_ref_stride{DET_STRIDE}.npy", np.ascontiguousarray(det))
        print(f"det_ref_stride{DET_STRIDE}.npy {det.shape}: mean {det.mean():.4f} max {det.max():.4f}")
    else:
        print(f"{DET} is absent (scripts/fetch_real_models.sh): detector reference not updated")


if __name__ == "__main__":
    main()
