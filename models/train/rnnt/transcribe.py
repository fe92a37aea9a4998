"""PyTorch's transcripts of a speech folder, token by token: the reference the Rust streaming
recogniser (`edgetrim-models` asr, `edgetrim eval-asr`) must reproduce exactly.

Features come straight from the WAVs through features.py (no feature cache is written into
the folder), and decoding is decode.greedy, one utterance at a time. The JSON lists, per
utterance, its id, reference text, token ids and decoded text, so a test can compare ids
without PyTorch.
"""

import json
from pathlib import Path

import torch

from . import features as fe
from .data import decode_ids, read_transcripts, read_wav
from .decode import error_rates, greedy
from .model import Slice


def transcribe(args):
    from .train import load

    torch.set_num_threads(args.threads)
    model, _ = load(args.ckpt)
    s = Slice.parse(args.slice) if args.slice else model.full()
    folder = Path(args.data)
    rows = read_transcripts(folder)
    if args.limit:
        rows = rows[: args.limit]
    out = []
    for ident, _voice, text in rows:
        feats = torch.from_numpy(fe.features(read_wav(folder / "wav" / f"{ident}.wav")))
        ids = greedy(model, feats[None], torch.tensor([feats.shape[0]]), s)[0] if feats.shape[0] else []
        out.append({"id": ident, "reference": text, "tokens": ids, "text": decode_ids(ids)})
    rates = error_rates([u["reference"] for u in out], [u["text"] for u in out])
    print(f"{args.ckpt} slice {s}: {len(out)} utterances, WER {rates['wer'] * 100:.2f}% "
          f"CER {rates['cer'] * 100:.2f}%", flush=True)
    doc = {"ckpt": str(args.ckpt), "slice": str(s), "data": str(folder), **rates, "utterances": out}
    Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
