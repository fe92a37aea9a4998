#!/usr/bin/env python3
"""Where the bytes of a QDQ int8 ONNX file go, and how small renaming could make it.

    python3 scripts/int8-size-breakdown.py S8.onnx [F32.onnx]

Prints the bytes of int8 weights, int32 biases, float scales and the graph's framing
(nodes, names, attributes), then the file size after each of three metadata strippings
that `edgetrim compress` deliberately does NOT do (they lose the node and tensor names
that --keep-float patterns and profiles use): internal tensors renamed to short names,
node names dropped, default Conv attributes dropped. Last, a lower bound for any file that
holds this graph's nodes, attributes and initializer data, however it names them (one-letter
names, no alignment padding). With F32.onnx it
also prints each size as "x smaller than" that file, and the ceiling of that ratio for
any int8 file: F32.onnx with each int8 weight's 4 bytes made 1 and every other byte kept
(biases, constants, graph), no QDQ nodes at all. Needs the `onnx` package (scripts/requirements.txt).
"""
import sys

import onnx

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def short(k):
    s = ""
    while True:
        s = DIGITS[k % 36] + s
        k //= 36
        if k == 0:
            return s


def default_conv_attr(n, a):
    """Whether attribute `a` of node `n` is a Conv attribute the file can leave out."""
    return n.op_type == "Conv" and (
        (a.name in ("dilations", "strides") and all(v == 1 for v in a.ints))
        or (a.name == "pads" and all(v == 0 for v in a.ints))
        or (a.name == "group" and a.i == 1)
        or a.name == "kernel_shape"
    )


def size(m):
    return len(m.SerializeToString())


def main():
    m = onnx.load(sys.argv[1])
    on_disk = len(open(sys.argv[1], "rb").read())
    ref = len(open(sys.argv[2], "rb").read()) if len(sys.argv) > 2 else None
    g = m.graph

    def line(what, n):
        ratio = f"  ({ref / n:.3f}x smaller than {sys.argv[2]})" if ref else ""
        print(f"{what:<44} {n:>10,} B{ratio}")

    by_type = {}
    for t in g.initializer:
        name = onnx.TensorProto.DataType.Name(t.data_type)
        by_type[name] = by_type.get(name, 0) + len(t.raw_data)
    line("file", on_disk)
    # The sizes below are re-serialized by onnx, whose encoding differs by a few hundred
    # bytes from the file's (the layout pass's alignment padding): compare them with this.
    line("the same model re-serialized by onnx", size(m))
    for name, n in sorted(by_type.items(), key=lambda kv: -kv[1]):
        print(f"  {name + ' initializer data':<42} {n:>10,} B")
    print(f"  {'nodes (%d)' % len(g.node):<42} {sum(size(n) for n in g.node):>10,} B")

    keep = {v.name for v in g.input} | {v.name for v in g.output}
    keep |= {t.name for t in g.initializer}
    names = {}
    for n in g.node:
        for o in n.output:
            if o not in keep and o not in names:
                names[o] = short(len(names))
    for n in g.node:
        n.input[:] = [names.get(x, x) for x in n.input]
        n.output[:] = [names.get(x, x) for x in n.output]
    line("internal tensors renamed", size(m))
    for n in g.node:
        n.name = ""
    line("+ node names dropped", size(m))
    for n in g.node:
        kept = [a for a in n.attribute if not default_conv_attr(n, a)]
        del n.attribute[:]
        n.attribute.extend(kept)
    line("+ default Conv attributes dropped", size(m))

    # What protobuf cannot leave out of this graph, counted low: one-letter names (3 B per
    # reference: tag, length, letter), no node names, no metadata, no graph inputs or
    # outputs. Per initializer: its data with its tag and length, its dims, its data type
    # and its name, 2 B of framing. Per node: 2 B of framing, its op_type field (18 B for
    # DequantizeLinear), its inputs and outputs, and its attributes but the Conv ones at
    # their defaults (kernel_shape too: the weight's shape gives it).
    def varint(v):
        return max(1, (v.bit_length() + 6) // 7)

    def tensor_floor(t):
        data = len(t.raw_data)
        return 2 + 2 + 3 + sum(1 + varint(d) for d in t.dims) + 1 + varint(data) + data

    def node_floor(n):
        refs = 3 * (len(n.input) + len(n.output))
        attrs = sum(2 + len(a.SerializeToString()) for a in n.attribute if not default_conv_attr(n, a))
        return 2 + 2 + len(n.op_type) + refs + attrs

    floor = sum(tensor_floor(t) for t in g.initializer) + sum(node_floor(n) for n in g.node)
    line("lower bound, any naming of this graph", floor)
    if ref:
        weights = sum(len(t.raw_data) for t in g.initializer if t.data_type == 3 and len(t.dims))
        line("F32.onnx with its weights int8, no QDQ", ref - 3 * weights)


if __name__ == "__main__":
    main()
