"""Greedy RNN-T decoding and WER/CER, the way the device decodes.

Per encoder frame the joiner is asked up to `max_symbols` times: a non-blank argmax is emitted
and advances the predictor by one step; blank (or the limit) moves on to the next frame. The
encoder is causal (unidirectional LSTMs), so encoding a whole utterance gives the frames a
chunked streaming encoder gives; the ONNX check (onnx_check.py) decodes chunk by chunk and must
produce the same tokens.
"""

import torch

from .data import decode_ids
from .model import BLANK

MAX_SYMBOLS = 3  # per 40 ms frame: speech has at most ~1 character per 40 ms on these voices


@torch.no_grad()
def greedy(model, x, frames, s, max_symbols=MAX_SYMBOLS):
    """Batched greedy decoding of subnet s: features [B, T, 160] -> list of token-id lists."""
    B = x.shape[0]
    enc = model.encode(x, s)
    pred, state = model.predict(torch.full((B, 1), BLANK, dtype=torch.int64, device=x.device), s)
    out = [[] for _ in range(B)]
    for t in range(int(frames.max())):
        active = frames > t
        for _ in range(max_symbols):
            k = model.joint(enc[:, t], pred[:, 0]).argmax(-1)
            emit = active & (k != BLANK)
            if not emit.any():
                break
            new_pred, new_state = model.predict(k[:, None], s, state=state)
            pred = torch.where(emit[:, None, None], new_pred, pred)
            state = tuple(torch.where(emit[None, :, None], n, o) for n, o in zip(new_state, state))
            for b in emit.nonzero()[:, 0].tolist():
                out[b].append(int(k[b]))
            active = emit
    return out


def edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, row[0] = row[0], i
        for j in range(1, len(b) + 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
    return row[-1]


def error_rates(refs, hyps):
    """Corpus WER and CER (errors / reference words or characters) and sentence accuracy."""
    we = sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps))
    ce = sum(edit_distance(r, h) for r, h in zip(refs, hyps))
    words = sum(len(r.split()) for r in refs)
    chars = sum(len(r) for r in refs)
    return {"wer": we / max(1, words), "cer": ce / max(1, chars),
            "sentence_acc": sum(r == h for r, h in zip(refs, hyps)) / max(1, len(refs))}


def transcribe(model, dataset, s, batch=64):
    """Transcripts of every utterance of a SpeechSet, in dataset order."""
    model.eval()
    hyps = [""] * len(dataset)
    for idx in dataset.batches(batch):
        x, frames, _, _ = dataset.collate(idx)
        device = next(model.parameters()).device
        x, frames = x.to(device), frames.to(device)
        for i, ids in zip(idx, greedy(model, x, frames, s)):
            hyps[i] = decode_ids(ids)
    return hyps


def evaluate(model, dataset, s):
    hyps = transcribe(model, dataset, s)
    return error_rates([str(t) for t in dataset.texts], hyps), hyps
