#!/usr/bin/env python3
"""Writes a tiny random streaming RNN-T (encoder, predictor, joiner) exported the way the
real one is, so the runtime's LSTM path is tested on the graphs torch actually emits.

`torch.onnx.export(..., dynamo=False)` at opset 17, as the RNN-T export does (see
models/train/rnnt/): the TorchScript exporter turns each `nn.LSTM` into one ONNX `LSTM`
node (gates reordered to i, o, f, c; both biases in B), with the state tensors going in
as `initial_h` / `initial_c` and out as `Y_h` / `Y_c`, plus the Squeeze / Transpose /
Unsqueeze glue around it. Weights are random (seeded): only the graph shape matters.

- encoder.onnx: x [1, C, F] (C stacked frames, batch first) and h1, c1, h2, c2 [1, 1, H]
  -> Linear -> LSTM -> LSTM -> Linear -> enc [1, C, J] and the four new states;
- predictor.onnx: token int64 [1, 1] and h, c [1, 1, P] -> Embedding (a Gather) -> LSTM
  -> Linear -> pred [1, 1, J] and the new states;
- joiner.onnx: enc [1, J] and pred [1, J] -> Add -> Tanh -> Linear -> logits [1, V].

The committed toy sizes keep the files a few KiB (runtime/tests/data/rnnt-toy/); `--feat`,
`--hidden` etc. write a bigger encoder for timing, e.g.

    python3 scripts/gen_rnnt_toy.py --out /tmp/rnnt-big --feat 160 --hidden 256 --chunk 8

Usage: python3 scripts/gen_rnnt_toy.py [--out DIR] (default runtime/tests/data/rnnt-toy)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "runtime" / "tests" / "data" / "rnnt-toy"
OPSET = 17


class Encoder(nn.Module):
    def __init__(self, feat: int, hidden: int, joint: int) -> None:
        super().__init__()
        self.inp = nn.Linear(feat, hidden)
        self.lstm1 = nn.LSTM(hidden, hidden, batch_first=True)
        self.lstm2 = nn.LSTM(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, joint)

    def forward(self, x, h1, c1, h2, c2):
        y = self.inp(x)
        y, (h1, c1) = self.lstm1(y, (h1, c1))
        y, (h2, c2) = self.lstm2(y, (h2, c2))
        return self.out(y), h1, c1, h2, c2


class Predictor(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int, joint: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.out = nn.Linear(hidden, joint)

    def forward(self, token, h, c):
        y, (h, c) = self.lstm(self.embed(token), (h, c))
        return self.out(y), h, c


class Joiner(nn.Module):
    def __init__(self, joint: int, vocab: int) -> None:
        super().__init__()
        self.out = nn.Linear(joint, vocab)

    def forward(self, enc, pred):
        return self.out(torch.tanh(enc + pred))


def export(model: nn.Module, args: tuple, names: tuple[list[str], list[str]], path: Path) -> None:
    inputs, outputs = names
    torch.onnx.export(
        model.eval(),
        args,
        str(path),
        input_names=inputs,
        output_names=outputs,
        opset_version=OPSET,
        dynamo=False,
    )
    print(f"{path} ({path.stat().st_size} bytes)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--feat", type=int, default=12, help="stacked feature size F")
    ap.add_argument("--chunk", type=int, default=4, help="stacked frames per chunk C")
    ap.add_argument("--hidden", type=int, default=16, help="encoder LSTM size H")
    ap.add_argument("--pred-hidden", type=int, default=12, help="predictor LSTM size P")
    ap.add_argument("--embed", type=int, default=8)
    ap.add_argument("--joint", type=int, default=10, help="joiner size J")
    ap.add_argument("--vocab", type=int, default=29)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    a.out.mkdir(parents=True, exist_ok=True)

    state = lambda n: torch.randn(1, 1, n)  # noqa: E731
    enc = Encoder(a.feat, a.hidden, a.joint)
    export(
        enc,
        (torch.randn(1, a.chunk, a.feat), state(a.hidden), state(a.hidden), state(a.hidden), state(a.hidden)),
        (["x", "h1", "c1", "h2", "c2"], ["enc", "h1_out", "c1_out", "h2_out", "c2_out"]),
        a.out / "encoder.onnx",
    )
    pred = Predictor(a.vocab, a.embed, a.pred_hidden, a.joint)
    export(
        pred,
        (torch.tensor([[3]], dtype=torch.int64), state(a.pred_hidden), state(a.pred_hidden)),
        (["token", "h", "c"], ["pred", "h_out", "c_out"]),
        a.out / "predictor.onnx",
    )
    join = Joiner(a.joint, a.vocab)
    export(
        join,
        (torch.randn(1, a.joint), torch.randn(1, a.joint)),
        (["enc", "pred"], ["logits"]),
        a.out / "joiner.onnx",
    )


if __name__ == "__main__":
    main()
