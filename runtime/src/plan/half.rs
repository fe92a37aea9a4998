//! fp16 weights in place: which float16 → float32 Casts vanish from the plan.
//!
//! `edgetrim compress --quantize fp16` stores each weight as a float16 initializer behind a
//! `Cast(to=FLOAT)`, so the file stays valid ONNX. Run as a step, that Cast would widen
//! the weight into an arena buffer, and RAM would grow by twice what flash saved. Instead,
//! when every reader of the Cast's output is an input whose kernel reads float16
//! constants in place ([`READERS`]), the output is defined as the float16 bytes
//! themselves: no step, no buffer, no folded copy. The kernels widen while they read
//! (see [`crate::widen`]).
//!
//! Any other reader, or the output being a graph output, keeps the Cast an ordinary step,
//! so a reader missing from the table costs RAM, never correctness.

use crate::onnx::{AttrKind, Model, Node};
use crate::tensor::DType;

/// Inputs whose prepare accepts float16 constants (`Prep::weight_input`) and whose kernel
/// reads them through `TensorRef::weights`: (op type, input indices).
const READERS: &[(&str, &[usize])] = &[
    ("Conv", &[1, 2]),
    ("ConvTranspose", &[1, 2]),
    ("MatMul", &[1]),
    ("Gemm", &[1, 2]),
];

/// ONNX's FLOAT element type code.
const FLOAT: i64 = 1;

/// Whether input `k` of `node` reads float16 constants in place.
fn reads_in_place(node: &Node, k: usize) -> bool {
    matches!(node.domain(), "" | "ai.onnx")
        && READERS
            .iter()
            .any(|&(op, inputs)| op == node.op_type() && inputs.contains(&k))
}

/// Whether `node` is a Cast that vanishes: float16 initializer to float32, read only by
/// inputs that read float16 in place (and not a graph output). Decided from the model
/// alone, so the planner sizes its step tables without these Casts before planning.
pub(super) fn vanishes(model: &Model, node: &Node) -> bool {
    let is_cast = node.op_type() == "Cast" && matches!(node.domain(), "" | "ai.onnx");
    let to_float = || {
        node.attr("to")
            .is_some_and(|a| a.kind() == AttrKind::Int && a.int() == Some(FLOAT))
    };
    if !is_cast || !to_float() {
        return false;
    }
    let (mut inputs, mut outputs) = (node.inputs(), node.outputs());
    let (Some(input), None, Some(output), None) =
        (inputs.next(), inputs.next(), outputs.next(), outputs.next())
    else {
        return false;
    };
    // The planner keeps the first initializer of a name (and graph inputs never shadow one).
    let half_constant = model
        .initializers()
        .find(|t| t.name() == input)
        .is_some_and(|t| t.dtype() == Some(DType::F16));
    half_constant
        && !output.is_empty()
        && !model.outputs().any(|o| o.name() == output)
        && model.nodes().all(|reader| {
            reader
                .inputs()
                .enumerate()
                .all(|(k, name)| name != output || reads_in_place(&reader, k))
        })
}
