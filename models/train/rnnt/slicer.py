"""Reference implementation of the `edgetrim.slice` rules (EXPORT.md) on ONNX files alone.

It reads nothing but the exported graphs and their metadata, as the Rust compressor's
`--slice` has to: the unit test checks that cutting a subnet out of a full export with these
rules gives exactly what exporting that subnet from PyTorch gives, and the Rust slicer can be
compared with this one file by file.
"""

import copy
import json

import numpy as np
from onnx import helper, numpy_helper

from .model import width_units


def keep_indices(length, size, blocks, k, where):
    """Indices kept on an axis of `blocks` blocks of `size`: the first k of each block."""
    if length != blocks * size:
        raise ValueError(f"{where}: axis has {length} entries, the rules say {blocks} x {size}")
    return np.concatenate([b * size + np.arange(k) for b in range(blocks)])


def slice_graph(proto, depth, width):
    """A sliced copy of one exported graph (encoder, predictor or joiner)."""
    proto = copy.deepcopy(proto)
    g = proto.graph
    meta = {p.key: p.value for p in proto.metadata_props}
    rules = json.loads(meta["edgetrim.slice"])
    if rules["version"] != 1:
        raise ValueError(f"edgetrim.slice version {rules['version']} is not supported")
    removed = set()
    if rules["depth"] is not None:
        layers = rules["depth"]["layers"]
        if not 1 <= depth <= len(layers):
            raise ValueError(f"depth {depth} outside 1..{len(layers)}")
        for layer in layers[depth:]:
            removed.update(layer["nodes"] + layer["initializers"] + layer["inputs"] + layer["outputs"])
        post = rules["depth"]["post"]
        node = next(n for n in g.node if n.name == post["node"])
        node.input[post["input"]] = layers[depth - 1]["output"]
        rules["depth"]["layers"] = layers[:depth]
    keep = [n for n in g.node if n.name not in removed]
    del g.node[:]
    g.node.extend(keep)
    for field in (g.initializer, g.input, g.output):
        kept = [v for v in field if v.name not in removed]
        del field[:]
        field.extend(kept)

    k = {dim: width_units(width, size) for dim, size in rules["dims"].items()}
    inits = {t.name: t for t in g.initializer}
    values = {v.name: v for v in list(g.input) + list(g.output)}
    arrays = {}
    for r in [r for r in rules["tensors"] if r["name"] not in removed]:
        where = f"{g.name}: {r['name']} axis {r['axis']}"
        size = rules["dims"][r["dim"]]
        if r["name"] in inits:
            a = arrays.get(r["name"], numpy_helper.to_array(inits[r["name"]]))
            idx = keep_indices(a.shape[r["axis"]], size, r["blocks"], k[r["dim"]], where)
            arrays[r["name"]] = np.take(a, idx, axis=r["axis"])
        else:
            d = values[r["name"]].type.tensor_type.shape.dim[r["axis"]]
            d.dim_value = len(keep_indices(d.dim_value, size, r["blocks"], k[r["dim"]], where))
    for name, a in arrays.items():
        inits[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(a), name))
    for r in [r for r in rules["attributes"] if r["node"] not in removed]:
        node = next(n for n in g.node if n.name == r["node"])
        attr = next(a for a in node.attribute if a.name == r["name"])
        attr.CopyFrom(helper.make_attribute(r["name"], k[r["dim"]]))

    rules["tensors"] = [r for r in rules["tensors"] if r["name"] not in removed]
    rules["attributes"] = [r for r in rules["attributes"] if r["node"] not in removed]
    rules["dims"] = k
    meta["edgetrim.slice"] = json.dumps(rules)
    meta["edgetrim.asr.layers"] = str(depth)
    meta["edgetrim.asr.hidden"] = str(width_units(width, int(meta["edgetrim.asr.hidden"])))
    meta["edgetrim.asr.pred_hidden"] = str(width_units(width, int(meta["edgetrim.asr.pred_hidden"])))
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    return proto


def slice_folder(graphs, depth, width):
    """{'encoder': proto, ...} -> the same dict for subnet (depth, width)."""
    return {name: slice_graph(proto, depth, width) for name, proto in graphs.items()}
