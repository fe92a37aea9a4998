#!/usr/bin/env python3
"""Vendors ONNX backend node test cases for the runtime's conformance test.

The ONNX repository's backend node tests (`onnx/backend/test/data/node/test_*`) are
produced by the case generators in `onnx.backend.test.case.node`; the pip package ships
the generators but not the data (and `python -m onnx.backend.test.cmd_tools
generate-data` in onnx 1.23 only writes the model-zoo stubs), so this script calls the
generators itself and writes the same layout:

    OUT/<case>/model.onnx
    OUT/<case>/test_data_set_0/input_<k>.pb, output_<k>.pb   (TensorProto)

Only the cases listed in WHITELIST.txt are written (tract's suite-onnx/node.txt idea).
edgetrim plans a model for fixed input shapes and needs shapes, axes, pads, scales and
weights to be constants, so every graph input that is not a *data* input of the op is
turned into an initializer holding the case's value, and the remaining data inputs are
renumbered. Each converted case is checked with onnx.checker and, when onnxruntime can
run it, against the expected outputs, so the conversion cannot silently change a case.

WHITELIST.txt: one case per line, `#` starts a comment. Options after the name:
`data=0,2` overrides which node input slots stay graph inputs (the default comes from
ALL_DATA / NO_DATA / DEFAULT_DATA_SLOTS below); `outputs=1` keeps only the first graph
outputs (drops optional training outputs such as LayerNormalization's Mean/InvStdDev);
`f32` turns int32 data inputs and outputs into float32 (exact for the small integers
these cases use), for data-movement ops whose only cases are int32 (Pad edge/reflect/wrap).

Usage:
    python3 scripts/gen_onnx_node_tests.py            # (re)write the whitelisted cases
    python3 scripts/gen_onnx_node_tests.py --suggest  # list convertible cases whose ops
                                                      # are all in the runtime REGISTRY
    python3 scripts/gen_onnx_node_tests.py --add      # add those to WHITELIST.txt, vendor

The generated data is derived from the ONNX project (Apache-2.0).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "runtime" / "tests" / "data" / "onnx-node"
REGISTRY_SRC = ROOT / "runtime" / "src" / "ops" / "mod.rs"

#: Ops whose every input is activation data (elementwise, variadic, MatMul).
ALL_DATA = {
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "MatMul", "Concat", "Max", "Min", "Sum",
    "Mean", "Where", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And",
    "Or", "Xor",
}
#: Ops whose inputs are all shapes or scalars (their output is folded at plan time).
NO_DATA = {"ConstantOfShape", "Range"}
#: Everything else: input 0 is the data, the rest (weights, shapes, axes, pads, scales,
#: slopes, ...) become initializers.
DEFAULT_DATA_SLOTS = {0}

#: Element types of graph inputs and outputs (f32 data, i64 indices and shapes);
#: initializers may be any type the runtime reads (a bool Where condition, ...).
ALLOWED_TYPES = {np.dtype(np.float32), np.dtype(np.int64)}
#: WHITELIST.txt's heading over the commented-out failing cases.
FAILING_MARKER = "# ---- Failing"
#: Cases larger than this (model and data, bytes) are skipped to keep the repo small.
MAX_CASE_BYTES = 96 * 1024


class Options:
    """Per-case whitelist options."""

    def __init__(self, data: set[int] | None = None, outputs: int | None = None, f32: bool = False):
        self.data = data
        self.outputs = outputs
        self.f32 = f32


def parse_whitelist(path: Path) -> dict[str, Options]:
    """Active whitelist entries: case name -> options."""
    cases: dict[str, Options] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, *opts = line.split()
        options = Options()
        for opt in opts:
            key, _, value = opt.partition("=")
            if key == "data":
                options.data = {int(v) for v in value.split(",") if v}
            elif key == "outputs":
                options.outputs = int(value)
            elif opt == "f32":
                options.f32 = True
            else:
                sys.exit(f"{path}: unknown option {opt!r} for {name}")
        cases[name] = options
    return cases


def mentioned_in_whitelist(path: Path) -> set[str]:
    """Every case name in the whitelist, including commented-out (failing) ones."""
    return set(re.findall(r"\btest_[A-Za-z0-9_]+", path.read_text())) if path.exists() else set()


def registry_ops() -> set[str]:
    """Op names in the runtime's REGISTRY table."""
    src = REGISTRY_SRC.read_text()
    table = src[src.index("pub static REGISTRY"):]
    table = table[: table.index("];")]
    return set(re.findall(r'\("([A-Za-z]+)",', table))


def collect_cases() -> dict[str, object]:
    """All node test cases of the installed onnx, by name."""
    from onnx.backend.test.case import node

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return {c.name: c for c in node.collect_testcases()}


def base_node(name: str, cases: dict) -> onnx.NodeProto:
    """The op under test (for `_expanded` cases, the node the function expands)."""
    base = cases[name.split("_expanded")[0]]
    return base.model.graph.node[0]


def data_slots_of(node: onnx.NodeProto, override: set[int] | None) -> set[int]:
    """Node input slots that stay graph inputs (activation data)."""
    if override is not None:
        return override
    if node.op_type in ALL_DATA:
        return set(range(len(node.input)))
    if node.op_type in NO_DATA:
        return set()
    return DEFAULT_DATA_SLOTS


def convert(name: str, cases: dict, options: Options):
    """The case with non-data inputs as initializers: (model, inputs, outputs) or a
    reason it cannot be vendored."""
    case = cases[name]
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    # Scalars (Clip bounds, Pad values, Range limits) come as numpy scalars.
    inputs, outputs = ([np.asarray(a) if isinstance(a, np.generic) else a for a in arrays]
                       for arrays in case.data_sets[0])
    if not all(isinstance(a, np.ndarray) for a in inputs + outputs):
        return "inputs or outputs are not all tensors"

    node = base_node(name, cases)
    present_slots = [slot for slot, x in enumerate(node.input) if x]
    data = data_slots_of(node, options.data)
    graph = model.graph
    kept_inputs, kept_values = [], []
    for k, (vi, value) in enumerate(zip(list(graph.input), inputs)):
        if present_slots[k] in data:
            kept_inputs.append(vi)
            kept_values.append(as_f32(value, vi) if options.f32 else value)
        else:
            graph.initializer.append(numpy_helper.from_array(value, vi.name))
            if model.ir_version >= 4:
                continue
            kept_inputs.append(vi)  # IR 3 requires initializers to be declared inputs
    del graph.input[:]
    graph.input.extend(kept_inputs)
    if options.outputs is not None:
        del graph.output[options.outputs:]
        outputs = outputs[: options.outputs]
        if len(graph.node) == 1:  # trailing optional outputs may be omitted in the node too
            del graph.node[0].output[options.outputs:]
    if options.f32:
        outputs = [as_f32(v, vi) for v, vi in zip(outputs, graph.output)]
    if not all(a.dtype in ALLOWED_TYPES for a in kept_values + outputs):
        return "graph inputs or outputs are not all float32/int64"
    onnx.checker.check_model(model)
    return model, kept_values, outputs


def as_f32(value: np.ndarray, vi: onnx.ValueInfoProto) -> np.ndarray:
    """An int32 graph input or output retyped as float32 (value and declaration)."""
    if value.dtype != np.int32:
        return value
    vi.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    return value.astype(np.float32)


def check_with_onnxruntime(name: str, model, inputs, outputs) -> None:
    """Warns when onnxruntime disagrees with the expected outputs of a converted case."""
    try:
        import onnxruntime as ort

        ort.set_default_logger_severity(3)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        feeds = {i.name: v for i, v in zip(sess.get_inputs(), inputs)}
        got = sess.run(None, feeds)
    except Exception as e:  # onnxruntime lacks some ops/opsets: not our problem here
        print(f"  note: onnxruntime cannot run {name}: {str(e).splitlines()[0][:100]}")
        return
    for k, (g, want) in enumerate(zip(got, outputs)):
        finite = np.abs(want[np.isfinite(want)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        if g.shape != want.shape or not np.allclose(g, want, atol=1e-4 * scale, rtol=0, equal_nan=True):
            print(f"  WARNING: onnxruntime disagrees with {name} output {k}")


def write_case(out: Path, name: str, model, inputs, outputs) -> int:
    case_dir = out / name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    data_dir = case_dir / "test_data_set_0"
    data_dir.mkdir(parents=True)
    (case_dir / "model.onnx").write_bytes(model.SerializeToString())
    names = [vi.name for vi in model.graph.input if vi.name not in {t.name for t in model.graph.initializer}]
    for k, (n, v) in enumerate(zip(names, inputs)):
        (data_dir / f"input_{k}.pb").write_bytes(numpy_helper.from_array(v, n).SerializeToString())
    for k, (vi, v) in enumerate(zip(model.graph.output, outputs)):
        (data_dir / f"output_{k}.pb").write_bytes(numpy_helper.from_array(v, vi.name).SerializeToString())
    return sum(f.stat().st_size for f in case_dir.rglob("*") if f.is_file())


def suggest(cases: dict, whitelist: Path) -> list[str]:
    """Convertible cases whose ops the runtime registers, not yet in the whitelist."""
    ops = registry_ops() | {"Constant"}
    known = mentioned_in_whitelist(whitelist)
    found = []
    for name in sorted(cases):
        used = {n.op_type for n in cases[name].model.graph.node}
        if name in known or not used <= ops:
            continue
        converted = convert(name, cases, Options())
        if isinstance(converted, str):
            continue
        size = len(converted[0].SerializeToString()) + sum(a.nbytes for a in converted[1] + converted[2])
        if size <= MAX_CASE_BYTES:
            found.append(name)
    return found


def add_to_whitelist(whitelist: Path, names: list[str]) -> None:
    """Inserts `names` among the active entries, which stay sorted above FAILING_MARKER."""
    text = whitelist.read_text()
    head, sep, failing = text.partition(FAILING_MARKER)
    lines = head.rstrip("\n").split("\n")
    first = next(i for i, l in enumerate(lines) if l.strip() and not l.startswith("#"))
    active = sorted(set(lines[first:]) - {""} | set(names))
    whitelist.write_text("\n".join(lines[:first] + active) + "\n\n" + sep + failing)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--whitelist", type=Path, default=None, help="default: OUT/WHITELIST.txt")
    ap.add_argument("--suggest", action="store_true", help="list cases the REGISTRY could run")
    ap.add_argument("--add", action="store_true", help="whitelist those cases, then vendor")
    args = ap.parse_args()
    whitelist = args.whitelist or args.out / "WHITELIST.txt"
    print(f"onnx {onnx.__version__}", file=sys.stderr)
    cases = collect_cases()
    if args.suggest or args.add:
        found = suggest(cases, whitelist)
        print("\n".join(found))
        if not args.add:
            return
        add_to_whitelist(whitelist, found)

    wanted = parse_whitelist(whitelist)
    unknown = sorted(set(wanted) - set(cases))
    if unknown:
        sys.exit(f"not a node test case of onnx {onnx.__version__}: {', '.join(unknown)}")
    for stale in sorted(p for p in args.out.iterdir() if p.is_dir() and p.name not in wanted):
        shutil.rmtree(stale)
    total, failures = 0, []
    for name, options in sorted(wanted.items()):
        converted = convert(name, cases, options)
        if isinstance(converted, str):
            failures.append(f"{name}: {converted}")
            continue
        model, inputs, outputs = converted
        check_with_onnxruntime(name, model, inputs, outputs)
        size = write_case(args.out, name, model, inputs, outputs)
        if size > MAX_CASE_BYTES:
            shutil.rmtree(args.out / name)
            failures.append(f"{name}: {size} bytes is over the {MAX_CASE_BYTES} byte limit")
            continue
        total += size
    print(f"wrote {len(wanted) - len(failures)} cases, {total / 1024:.0f} KiB", file=sys.stderr)
    if failures:
        sys.exit("cannot vendor:\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    main()
