"""The streaming RNN-T, built as a TODM supernet whose subnets are cut by depth and width.

Architecture (all LSTMs unidirectional, so running a whole utterance equals streaming it chunk
by chunk with carried state):
- encoder: per-bin normalisation (mean/inv_std buffers, folded into the export) -> Linear(160,
  H) -> L residual single-layer LSTMs (x + LSTM(x), hidden H) -> Linear(H, J);
- predictor: Embedding(29, E) -> LSTM(E, P) -> Linear(P, J); the start symbol is blank;
- joiner: Linear(J, 29)(tanh(enc + pred)).

A subnet (`Slice(depth, width)`) keeps the first `depth` encoder layers, the shared output
projection reading layer `depth`'s output, and the first k = round(width * H) hidden units of
every encoder tensor (k_p = round(width * P) for the predictor): in an LSTM weight each of the
four gate blocks keeps its first k rows, and every consumer of a sliced vector keeps its first k
input columns. The residual stream makes the first-k units of every layer output the same
"coordinates" for every subnet, which is what lets one output projection serve all depths.
`sliced_state()` turns a subnet into a dense standalone model of the same class, which is what
the export writes and what the compressor's ONNX slicer has to reproduce.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .features import FEATURE_DIM

VOCAB = 29
BLANK = 0


def width_units(width, size):
    """Hidden units kept by a width fraction: floor(width * size + 0.5), at least 1.

    The Rust slicer uses the same rounding (EXPORT.md), so `--slice width=0.5` means the same
    tensors in Python and in the compressor."""
    return max(1, min(size, int(math.floor(width * size + 0.5))))


@dataclass(frozen=True)
class Slice:
    depth: int
    width: float

    @staticmethod
    def parse(text):
        """'depth=3,width=0.5' -> Slice(3, 0.5)."""
        fields = dict(part.split("=", 1) for part in text.split(","))
        if set(fields) != {"depth", "width"}:
            raise ValueError(f"slice {text!r}: expected depth=D,width=W")
        return Slice(int(fields["depth"]), float(fields["width"]))

    def __str__(self):
        return f"depth={self.depth},width={self.width:g}"


@dataclass(frozen=True)
class Dims:
    layers: int = 4
    hidden: int = 192
    pred_hidden: int = 192
    embed: int = 64
    joint: int = 128

    def sliced(self, s):
        if not 1 <= s.depth <= self.layers or not 0.0 < s.width <= 1.0:
            raise ValueError(f"slice {s} outside the supernet (depth 1..{self.layers}, width (0, 1])")
        return Dims(s.depth, width_units(s.width, self.hidden), width_units(s.width, self.pred_hidden),
                    self.embed, self.joint)


class GatedLSTM(nn.Module):
    """One LSTM layer (PyTorch gate order i, f, g, o) that can run on its first-k hidden units
    and first-k_in inputs, through the same fused kernel `nn.LSTM` uses."""

    def __init__(self, input_size, hidden):
        super().__init__()
        self.input_size, self.hidden = input_size, hidden
        bound = 1.0 / math.sqrt(hidden)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden, input_size).uniform_(-bound, bound))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden, hidden).uniform_(-bound, bound))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden).uniform_(-bound, bound))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden).uniform_(-bound, bound))

    def params(self, k_in, k):
        """[W_ih, W_hh, b_ih, b_hh] keeping the first k rows of each gate block."""
        if k == self.hidden and k_in == self.input_size:
            return [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]
        h = self.hidden
        return [
            self.weight_ih.view(4, h, -1)[:, :k, :k_in].reshape(4 * k, k_in),
            self.weight_hh.view(4, h, h)[:, :k, :k].reshape(4 * k, k),
            self.bias_ih.view(4, h)[:, :k].reshape(4 * k),
            self.bias_hh.view(4, h)[:, :k].reshape(4 * k),
        ]

    def forward(self, x, k_in, k, state=None, batch_first=True):
        """x [B, T, k_in] (or [T, B, k_in]) -> (y, (h, c)); state is (h, c) each [1, B, k]."""
        if state is None:
            zeros = x.new_zeros(1, x.shape[0 if batch_first else 1], k)
            state = (zeros, zeros)
        y, h, c = torch.lstm(x, state, self.params(k_in, k), True, 1, 0.0, self.training, False, batch_first)
        return y, (h, c)


class RNNT(nn.Module):
    def __init__(self, dims=Dims()):
        super().__init__()
        self.dims = dims
        d = dims
        self.register_buffer("mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("inv_std", torch.ones(FEATURE_DIM))
        self.enc_in = nn.Linear(FEATURE_DIM, d.hidden)
        self.enc = nn.ModuleList(GatedLSTM(d.hidden, d.hidden) for _ in range(d.layers))
        self.enc_out = nn.Linear(d.hidden, d.joint)
        self.embed = nn.Embedding(VOCAB, d.embed)
        self.pred = GatedLSTM(d.embed, d.pred_hidden)
        self.pred_out = nn.Linear(d.pred_hidden, d.joint)
        self.joint_out = nn.Linear(d.joint, VOCAB)

    def full(self):
        return Slice(self.dims.layers, 1.0)

    def encode(self, x, s, dropout=0.0, states=None, batch_first=True):
        """features [B, T, 160] -> [B, T, J] for subnet s; with `states` (a list of (h, c) per
        layer) it runs one chunk and also returns the new states."""
        k = width_units(s.width, self.dims.hidden)
        h = F.linear((x - self.mean) * self.inv_std, self.enc_in.weight[:k], self.enc_in.bias[:k])
        new_states = []
        for i in range(s.depth):
            y, st = self.enc[i](h, k, k, None if states is None else states[i], batch_first)
            h = h + F.dropout(y, dropout, self.training)
            new_states.append(st)
        out = F.linear(h, self.enc_out.weight[:, :k], self.enc_out.bias)
        return out if states is None else (out, new_states)

    def predict(self, y, s, dropout=0.0, state=None, batch_first=True):
        """tokens [B, U] (already starting with blank) -> ([B, U, J], (h, c))."""
        k = width_units(s.width, self.dims.pred_hidden)
        e = F.dropout(self.embed(y), dropout, self.training)
        g, st = self.pred(e, self.dims.embed, k, state, batch_first)
        g = F.dropout(g, dropout, self.training)
        return F.linear(g, self.pred_out.weight[:, :k], self.pred_out.bias), st

    def joint(self, enc, pred):
        """Broadcasting joiner: enc [..., J] + pred [..., J] -> logits [..., 29]."""
        return self.joint_out(torch.tanh(enc + pred))

    def forward(self, x, targets, s, dropout=0.0):
        """Training lattice: features [B, T, 160], targets [B, U] -> logits [B, T, U+1, 29]."""
        blank = targets.new_full((targets.shape[0], 1), BLANK)
        pred, _ = self.predict(torch.cat([blank, targets], 1), s, dropout)
        enc = self.encode(x, s, dropout)
        return self.joint(enc[:, :, None, :], pred[:, None, :, :])

    @torch.no_grad()
    def sliced_state(self, s):
        """State dict of the dense standalone model `RNNT(self.dims.sliced(s))` for subnet s."""
        d = self.dims.sliced(s)
        k, kp = d.hidden, d.pred_hidden
        out = {"mean": self.mean, "inv_std": self.inv_std,
               "enc_in.weight": self.enc_in.weight[:k], "enc_in.bias": self.enc_in.bias[:k],
               "enc_out.weight": self.enc_out.weight[:, :k], "enc_out.bias": self.enc_out.bias,
               "embed.weight": self.embed.weight,
               "pred_out.weight": self.pred_out.weight[:, :kp], "pred_out.bias": self.pred_out.bias,
               "joint_out.weight": self.joint_out.weight, "joint_out.bias": self.joint_out.bias}
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        for i in range(s.depth):
            out.update({f"enc.{i}.{n}": t for n, t in zip(names, self.enc[i].params(k, k))})
        out.update({f"pred.{n}": t for n, t in zip(names, self.pred.params(d.embed, kp))})
        return {n: t.detach().clone() for n, t in out.items()}

    def standalone(self, s):
        """The subnet as a dense model of its own (what an exported slice contains)."""
        m = RNNT(self.dims.sliced(s))
        m.load_state_dict(self.sliced_state(s))
        return m.eval()


def param_count(d):
    """Parameters of a dense model with dims d (closed form: building one would draw from the
    global random stream and break bit-exact resumption)."""
    lstm = lambda n_in, n: 4 * n * (n_in + n) + 8 * n  # noqa: E731
    return (FEATURE_DIM * d.hidden + d.hidden + d.layers * lstm(d.hidden, d.hidden) + d.hidden * d.joint + d.joint
            + VOCAB * d.embed + lstm(d.embed, d.pred_hidden) + d.pred_hidden * d.joint + d.joint
            + d.joint * VOCAB + VOCAB)


def macs_per_second(d, symbols_per_second):
    """Multiply-accumulates per second of audio in greedy streaming decoding: 25 encoder frames,
    one predictor step per emitted symbol, one joiner call per frame plus one per symbol."""
    frames = 1000 / 40
    lstm = lambda n_in, n: 4 * n * (n_in + n)  # noqa: E731
    encoder = FEATURE_DIM * d.hidden + d.layers * lstm(d.hidden, d.hidden) + d.hidden * d.joint
    predictor = lstm(d.embed, d.pred_hidden) + d.pred_hidden * d.joint
    return frames * encoder + symbols_per_second * predictor + (frames + symbols_per_second) * d.joint * VOCAB
