"""Read an exported model folder back into a PyTorch checkpoint: the inverse of export.py.

Training checkpoints live in runs/ and are not committed, but the zoo's ONNX graphs are: they
hold every weight of the supernet (the EMA weights the export wrote). Importing them gives a
checkpoint that `train --init` warm-starts from and that `eval`, `export` and `check` read, so
a later session can keep training the committed supernet instead of starting over.

The export's renaming (export._plans) fixes where each weight lives; ONNX LSTMs order their gate
blocks i, o, f, c where PyTorch uses i, f, g, o, and keep both biases in one [1, 8H] tensor.
`import_folder` re-exports what it read and insists that every initializer comes back bit for bit,
so a folder it accepts round-trips exactly.
"""

from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from .export import build_graphs
from .model import RNNT, Dims

# PyTorch gate block k is ONNX gate block TORCH_FROM_ONNX[k] (i, f, g, o <- i, o, f, c).
TORCH_FROM_ONNX = [0, 2, 3, 1]


def _weights(proto):
    return {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}


def _gates(t, hidden):
    """[4H, ...] in ONNX gate order -> PyTorch gate order."""
    blocks = t.reshape(4, hidden, *t.shape[1:])
    return blocks[TORCH_FROM_ONNX].reshape(t.shape)


def _lstm(w, prefix, hidden):
    """An ONNX LSTM's W [1, 4H, I], R [1, 4H, H], B [1, 8H] -> GatedLSTM parameters."""
    b = w[f"{prefix}B"][0]
    return {"weight_ih": _gates(w[f"{prefix}W"][0], hidden), "weight_hh": _gates(w[f"{prefix}R"][0], hidden),
            "bias_ih": _gates(b[:4 * hidden], hidden), "bias_hh": _gates(b[4 * hidden:], hidden)}


def read_folder(folder):
    """Model folder -> (Dims, state dict of RNNT(dims), encoder metadata, the folder's weights
    per graph as they are in the files)."""
    folder = Path(folder)
    protos = {name: onnx.load(folder / f"{name}.onnx") for name in ("encoder", "predictor", "joiner")}
    meta = {p.key: p.value for p in protos["encoder"].metadata_props}
    dims = Dims(*(int(meta[f"edgetrim.asr.{k}"]) for k in ("layers", "hidden", "pred_hidden", "embed", "joint")))
    files = {name: _weights(proto) for name, proto in protos.items()}
    enc, pred, join = files["encoder"], files["predictor"], files["joiner"]
    state = {"mean": enc["norm.mean"].reshape(-1), "inv_std": enc["norm.inv_std"].reshape(-1),
             "enc_in.weight": enc["in.W"].T, "enc_in.bias": enc["in.b"],
             "enc_out.weight": enc["out.W"].T, "enc_out.bias": enc["out.b"],
             "embed.weight": pred["embed.table"],
             "pred_out.weight": pred["out.W"].T, "pred_out.bias": pred["out.b"],
             "joint_out.weight": join["out.W"], "joint_out.bias": join["out.b"]}
    for i in range(dims.layers):
        state.update({f"enc.{i}.{k}": v for k, v in _lstm(enc, f"l{i + 1}.", dims.hidden).items()})
    state.update({f"pred.{k}": v for k, v in _lstm(pred, "", dims.pred_hidden).items()})
    return dims, {k: v.contiguous() for k, v in state.items()}, meta, files


def import_folder(folder):
    """Model folder -> (RNNT in eval mode, checkpoint `state` as train.load returns it). Raises if
    re-exporting the model would not reproduce the folder's initializers exactly."""
    dims, weights, meta, files = read_folder(folder)
    model = RNNT(dims)
    model.load_state_dict(weights)
    model.eval()
    again = build_graphs(model, int(meta["edgetrim.asr.chunk"]), dims)
    for name, proto in again.items():
        for t in proto.graph.initializer:
            if not np.array_equal(numpy_helper.to_array(t), files[name][t.name].numpy()):
                raise ValueError(f"{folder}/{name}.onnx: {t.name} does not round-trip through the import")
    supernet = "edgetrim.train.widths" in meta
    config = {"dims": asdict(dims), "supernet": supernet, "slice": None,
              "widths": [float(w) for w in meta["edgetrim.train.widths"].split(",")] if supernet else [1.0],
              "min_depth": int(meta.get("edgetrim.train.min_depth", dims.layers))}
    state = {"epoch": int(meta.get("edgetrim.train.epochs", 0)), "config": config, "imported_from": str(folder)}
    return model, state


def cmd_import(args):
    model, state = import_folder(args.model)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"ema": model.state_dict(), "state": state}, out)
    print(f"wrote {out}: {model.dims} from {args.model} (all initializers round-trip bit for bit)", flush=True)
