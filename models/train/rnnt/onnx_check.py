"""Decode with an exported model folder the way a device does (onnxruntime, batch 1, chunk by
chunk with carried LSTM states, greedy with max symbols per frame) and compare with PyTorch.

This is the check that the three graphs, their state plumbing and the folded normalisation are
right: the transcripts must equal PyTorch's greedy decoding of the same (sub)net token for token.
"""

from pathlib import Path

import numpy as np
import torch

from .data import SpeechSet, decode_ids
from .decode import error_rates, greedy
from .export import state_names
from .model import Slice


class OnnxRecogniser:
    def __init__(self, folder):
        import onnxruntime as ort

        folder = Path(folder)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.enc, self.pred, self.join = (ort.InferenceSession(str(folder / f"{n}.onnx"), opts)
                                          for n in ("encoder", "predictor", "joiner"))
        meta = self.enc.get_modelmeta().custom_metadata_map
        self.chunk = int(meta["edgetrim.asr.chunk"])
        self.blank = int(meta["edgetrim.asr.blank"])
        self.max_symbols = int(meta["edgetrim.asr.max_symbols"])
        self.layers = int(meta["edgetrim.asr.layers"])
        self.hidden = int(meta["edgetrim.asr.hidden"])
        self.pred_hidden = int(meta["edgetrim.asr.pred_hidden"])

    def _predict(self, token, h, c):
        return self.pred.run(None, {"token": np.array([[token]], dtype=np.int64), "h": h, "c": c})

    def transcribe(self, feats):
        """Stacked features [T, 160] -> (token ids, encoder output [T, J])."""
        zeros = np.zeros((1, 1, self.hidden), np.float32)
        states = {n: zeros for n in state_names(self.layers)}
        p0 = np.zeros((1, 1, self.pred_hidden), np.float32)
        pred, h, c = self._predict(self.blank, p0, p0)
        tokens, encs = [], []
        for start in range(0, feats.shape[0], self.chunk):
            x = np.zeros((1, self.chunk, feats.shape[1]), np.float32)
            n = min(self.chunk, feats.shape[0] - start)
            x[0, :n] = feats[start:start + n]
            outs = self.enc.run(None, {"x": x, **states})
            states = {name: v for name, v in zip(states, outs[1:])}
            for f in range(n):
                e = outs[0][:, f]
                encs.append(e[0])
                for _ in range(self.max_symbols):
                    logits = self.join.run(None, {"enc": e, "pred": pred[:, 0]})[0]
                    k = int(logits.argmax())
                    if k == self.blank:
                        break
                    tokens.append(k)
                    pred, h, c = self._predict(k, h, c)
        return tokens, np.stack(encs) if encs else np.zeros((0, 0), np.float32)


def check(args):
    torch.set_num_threads(2)
    rec = OnnxRecogniser(args.model)
    data = SpeechSet(args.data)
    n = len(data) if args.limit == 0 else min(args.limit, len(data))
    model = s = None
    if args.ckpt:
        from .train import load

        model, _ = load(args.ckpt)
        s = Slice.parse(args.slice) if args.slice else model.full()
    refs, hyps, same, max_diff = [], [], 0, 0.0
    for i in range(n):
        x, frames, _, _ = data.collate([i])
        ids, enc = rec.transcribe(x[0].numpy())
        refs.append(str(data.texts[i]))
        hyps.append(decode_ids(ids))
        if model is not None:
            with torch.no_grad():
                ref_enc = model.encode(x, s)[0].numpy()
            max_diff = max(max_diff, float(np.abs(ref_enc - enc).max()))
            same += greedy(model, x, frames, s)[0] == ids
    rates = error_rates(refs, hyps)
    print(f"{args.model}: {n} utterances decoded chunk by chunk with onnxruntime: WER {rates['wer'] * 100:.2f}% "
          f"CER {rates['cer'] * 100:.2f}%", flush=True)
    if model is not None:
        print(f"PyTorch {args.ckpt} slice {s}: identical transcripts {same}/{n}, "
              f"max |encoder difference| {max_diff:.2e}", flush=True)
        if same != n:
            raise SystemExit("ONNX and PyTorch transcripts differ")
