"""Export a trained RNN-T (the whole supernet or one subnet) as a streaming model folder:
encoder.onnx, predictor.onnx, joiner.onnx and tokens.txt (format: EXPORT.md).

The graphs come from `torch.onnx.export(dynamo=False, opset 17)` of small wrappers around the
dense model and are then canonicalised: Constant nodes become initializers and every node and
non-I/O tensor gets a stable name (`l2.lstm`, `l2.W`, `out.matmul`, ...), so the slicing rules
in the metadata (`edgetrim.slice`, built by `slice_rules`) can name what a depth or width cut
touches. Exporting a subnet writes what cutting the same subnet out of the full export by those
rules must give (slicer.py does that cut in Python; the test compares the two).
"""

import io
import json
import os
import warnings
from pathlib import Path

import onnx
import torch
from onnx import numpy_helper

from . import features as fe
from .data import TOKENS
from .decode import MAX_SYMBOLS
from .model import BLANK, RNNT, VOCAB, Dims, Slice, param_count

OPSET = 17
ALLOWED_OPS = {"LSTM", "MatMul", "Gemm", "Add", "Sub", "Mul", "Tanh", "Gather", "Squeeze", "Unsqueeze",
               "Reshape", "Concat", "Slice"}


class _Encoder(torch.nn.Module):
    """features [1, C, 160] + (h_i, c_i) [1, 1, H] per layer -> enc [1, C, J] + new states."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, x, *states):
        pairs = [(states[2 * i], states[2 * i + 1]) for i in range(self.m.dims.layers)]
        enc, new = self.m.encode(x.reshape(-1, 1, fe.FEATURE_DIM), self.m.full(), states=pairs, batch_first=False)
        return (enc.reshape(1, -1, self.m.dims.joint), *[t for p in new for t in p])


class _Predictor(torch.nn.Module):
    """token int64 [1, 1] + (h, c) [1, 1, P] -> pred [1, 1, J] + new state (one step)."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, token, h, c):
        pred, (h, c) = self.m.predict(token, self.m.full(), state=(h, c), batch_first=False)
        return pred, h, c


class _Joiner(torch.nn.Module):
    """enc [1, J] + pred [1, J] -> logits [1, 29]."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, enc, pred):
        return self.m.joint(enc, pred)


def state_names(layers):
    return [f"{k}{i}" for i in range(1, layers + 1) for k in ("h", "c")]


def _plans(dims):
    """Per graph: the op types torch emits, in order, with the node names and the names of the
    initializers each node reads (in input order)."""
    enc = [("Reshape", "in.reshape", ["in.shape"]), ("Sub", "norm.sub", ["norm.mean"]),
           ("Mul", "norm.mul", ["norm.inv_std"]), ("MatMul", "in.matmul", ["in.W"]), ("Add", "in.add", ["in.b"])]
    for i in range(1, dims.layers + 1):
        enc += [("LSTM", f"l{i}.lstm", [f"l{i}.W", f"l{i}.R", f"l{i}.B"]),
                ("Squeeze", f"l{i}.squeeze", [f"l{i}.axes"]), ("Add", f"l{i}.residual", [])]
    enc += [("MatMul", "out.matmul", ["out.W"]), ("Add", "out.add", ["out.b"]),
            ("Reshape", "out.reshape", ["out.shape"])]
    pred = [("Gather", "embed", ["embed.table"]), ("LSTM", "lstm", ["W", "R", "B"]),
            ("Squeeze", "squeeze", ["axes"]), ("MatMul", "out.matmul", ["out.W"]), ("Add", "out.add", ["out.b"])]
    join = [("Add", "add", []), ("Tanh", "tanh", []), ("Gemm", "out.gemm", ["out.W", "out.b"])]
    return {"encoder": enc, "predictor": pred, "joiner": join}


def slice_rules(dims, component):
    """The `edgetrim.slice` JSON object of one graph (documented field by field in EXPORT.md).
    Generated in layer order, so the rules of a depth-d cut are the full rules with the entries
    of layers > d dropped and `dims` replaced."""
    tensors, attributes, layers = [], [], []

    def lstm(prefix, node, dim, inputs_dim, h, c):
        for name in (f"{prefix}W", f"{prefix}R"):
            tensors.append({"name": name, "axis": 1, "dim": dim, "blocks": 4})
        if inputs_dim:
            tensors.append({"name": f"{prefix}W", "axis": 2, "dim": inputs_dim, "blocks": 1})
        tensors.append({"name": f"{prefix}R", "axis": 2, "dim": dim, "blocks": 1})
        tensors.append({"name": f"{prefix}B", "axis": 1, "dim": dim, "blocks": 8})
        for name in (h, c, f"{h}_out", f"{c}_out"):
            tensors.append({"name": name, "axis": 2, "dim": dim, "blocks": 1})
        attributes.append({"node": node, "name": "hidden_size", "dim": dim})

    if component == "encoder":
        tensors += [{"name": "in.W", "axis": 1, "dim": "enc", "blocks": 1},
                    {"name": "in.b", "axis": 0, "dim": "enc", "blocks": 1}]
        for i in range(1, dims.layers + 1):
            lstm(f"l{i}.", f"l{i}.lstm", "enc", "enc", f"h{i}", f"c{i}")
            layers.append({"nodes": [f"l{i}.lstm", f"l{i}.squeeze", f"l{i}.residual"],
                           "initializers": [f"l{i}.W", f"l{i}.R", f"l{i}.B", f"l{i}.axes"],
                           "inputs": [f"h{i}", f"c{i}"], "outputs": [f"h{i}_out", f"c{i}_out"],
                           "output": f"l{i}.residual.out"})
        tensors.append({"name": "out.W", "axis": 0, "dim": "enc", "blocks": 1})
        rules = {"version": 1, "dims": {"enc": dims.hidden}, "tensors": tensors, "attributes": attributes,
                 "depth": {"layers": layers, "post": {"node": "out.matmul", "input": 0}}}
    elif component == "predictor":
        lstm("", "lstm", "pred", None, "h", "c")
        tensors.append({"name": "out.W", "axis": 0, "dim": "pred", "blocks": 1})
        rules = {"version": 1, "dims": {"pred": dims.pred_hidden}, "tensors": tensors, "attributes": attributes,
                 "depth": None}
    else:
        rules = {"version": 1, "dims": {}, "tensors": [], "attributes": [], "depth": None}
    return rules


def metadata(dims, supernet, chunk, extra=None):
    """`edgetrim.asr.*` keys, the same in all three graphs."""
    meta = {f"edgetrim.asr.{k}": str(v) for k, v in fe.metadata().items()}
    meta.update({
        "edgetrim.asr.feature_dim": str(fe.FEATURE_DIM), "edgetrim.asr.chunk": str(chunk),
        "edgetrim.asr.blank": str(BLANK), "edgetrim.asr.vocab": str(VOCAB),
        "edgetrim.asr.max_symbols": str(MAX_SYMBOLS), "edgetrim.asr.layers": str(dims.layers),
        "edgetrim.asr.hidden": str(dims.hidden), "edgetrim.asr.pred_hidden": str(dims.pred_hidden),
        "edgetrim.asr.embed": str(dims.embed), "edgetrim.asr.joint": str(dims.joint),
        "edgetrim.asr.supernet": f"layers={supernet.layers},hidden={supernet.hidden},pred_hidden={supernet.pred_hidden}",
    })
    meta.update(extra or {})
    return meta


def _canonical(proto, plan):
    """Constants -> initializers; nodes, initializers and inner tensors renamed by `plan`."""
    g = proto.graph
    for n in [n for n in g.node if n.op_type == "Constant"]:
        t = numpy_helper.from_array(numpy_helper.to_array(n.attribute[0].t), n.output[0])
        g.initializer.append(t)
        g.node.remove(n)
    ops = [n.op_type for n in g.node]
    if ops != [p[0] for p in plan]:
        raise RuntimeError(f"torch exported {ops}, the export expects {[p[0] for p in plan]}")
    inits = {t.name for t in g.initializer}
    io = {v.name for v in list(g.input) + list(g.output)}
    rename = {}
    for node, (_, name, init_names) in zip(g.node, plan):
        node.name = name
        read = [i for i in node.input if i in inits]
        if len(read) != len(init_names):
            raise RuntimeError(f"node {name} reads initializers {read}, expected {init_names}")
        rename.update(zip(read, init_names))
        for k, out in enumerate(node.output):
            if out and out not in io:
                rename[out] = f"{name}.out" if k == 0 else f"{name}.out{k}"
    if len(set(rename[t.name] for t in g.initializer)) != len(g.initializer):
        raise RuntimeError("an initializer is read by two nodes or by none")
    for node in g.node:
        node.input[:] = [rename.get(i, i) for i in node.input]
        node.output[:] = [rename.get(o, o) for o in node.output]
        node.doc_string = ""
    for t in g.initializer:
        t.name = rename[t.name]
    order = {name: i for i, name in enumerate(n for p in plan for n in p[2])}
    inits = sorted(g.initializer, key=lambda t: order[t.name])
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.value_info[:]


def _to_onnx(module, args, inputs, outputs, plan, rules, meta, component):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # the exporter warns about LSTM batch sizes; ours is 1 and the states are inputs
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size")
        torch.onnx.export(module.eval(), args, buf, input_names=inputs, output_names=outputs,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    _canonical(proto, plan)
    bad = {n.op_type for n in proto.graph.node} - ALLOWED_OPS
    if bad:
        raise RuntimeError(f"{component}: ops {sorted(bad)} outside the agreed op set")
    proto.graph.name = component
    proto.producer_name = "edgetrim models/train/rnnt"
    del proto.metadata_props[:]
    for k, v in {**meta, "edgetrim.asr.component": component, "edgetrim.slice": json.dumps(rules)}.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def build_graphs(model, chunk, supernet_dims, extra_meta=None):
    """Dense model -> {'encoder': ModelProto, 'predictor': ..., 'joiner': ...}."""
    d = model.dims
    model = model.eval()
    plans = _plans(d)
    meta = metadata(d, supernet_dims, chunk, extra_meta)
    zeros = lambda n: torch.zeros(1, 1, n)  # noqa: E731
    names = state_names(d.layers)
    with torch.no_grad():
        return {
            "encoder": _to_onnx(_Encoder(model), (torch.zeros(1, chunk, fe.FEATURE_DIM), *[zeros(d.hidden)] * len(names)),
                                ["x", *names], ["enc", *[n + "_out" for n in names]], plans["encoder"],
                                slice_rules(d, "encoder"), meta, "encoder"),
            "predictor": _to_onnx(_Predictor(model), (torch.tensor([[BLANK]]), zeros(d.pred_hidden), zeros(d.pred_hidden)),
                                  ["token", "h", "c"], ["pred", "h_out", "c_out"], plans["predictor"],
                                  slice_rules(d, "predictor"), meta, "predictor"),
            "joiner": _to_onnx(_Joiner(model), (torch.zeros(1, d.joint), torch.zeros(1, d.joint)), ["enc", "pred"],
                               ["logits"], plans["joiner"], slice_rules(d, "joiner"), meta, "joiner"),
        }


def write_atomic(path, data):
    tmp = Path(str(path) + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_folder(graphs, out):
    """The model folder: the three graphs and tokens.txt (a README.md already there is kept)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, proto in graphs.items():
        write_atomic(out / f"{name}.onnx", proto.SerializeToString())
    write_atomic(out / "tokens.txt", ("\n".join(TOKENS) + "\n").encode())


def untrained(dims_text, seed):
    """A freshly initialised supernet ('layers=3,hidden=8,...'; unnamed dims keep their
    defaults), seeded: the source of the compressor's test fixtures, which check the Rust
    slicer against this export without a training run."""
    fields = dict(part.split("=", 1) for part in dims_text.split(","))
    torch.manual_seed(seed)
    return RNNT(Dims(**{k: int(v) for k, v in fields.items()})).eval()


def export(args):
    if args.untrained:
        model = untrained(args.untrained, args.seed)
        extra = {"edgetrim.train.epochs": "0", "edgetrim.train.recipe": f"models/train/rnnt untrained seed {args.seed}"}
    else:
        from .train import load

        model, state = load(args.ckpt)
        extra = {"edgetrim.train.epochs": str(state["epoch"]), "edgetrim.train.recipe": "models/train/rnnt"}
        if state["config"]["supernet"]:
            # The subnets sandwich sampling trained: the compressor's --slice auto picks among them.
            extra["edgetrim.train.widths"] = ",".join(f"{w:g}" for w in state["config"]["widths"])
            extra["edgetrim.train.min_depth"] = str(state["config"]["min_depth"])
    s = Slice.parse(args.slice) if args.slice else model.full()
    sub = model.standalone(s)
    graphs = build_graphs(sub, args.chunk, model.dims, extra)
    write_folder(graphs, args.output)
    print(f"wrote {args.output}: slice {s} of {model.dims}, {param_count(sub.dims) / 1e6:.3f} M params, chunk {args.chunk} "
          f"({args.chunk * 40} ms)", flush=True)
