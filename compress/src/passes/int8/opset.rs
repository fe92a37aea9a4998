//! Raising a model's opset to 13 so that its weights can have one scale per channel.
//!
//! `DequantizeLinear` takes per-axis scales only from opset 13; before that, every int8
//! weight gets one scale for the whole tensor. On a model exported at opset 11 (still common:
//! ddddocr's YOLOX, older YOLOv5 exports) that costs accuracy — one weak channel shares the
//! grid of the strongest — and seven-bit weights (`--reduce-range`) can lose most of it.
//!
//! Between opsets 11 and 13 most ops only gained data types, so their nodes mean the same
//! under 13. (Opset 10 is not raised: its Clip and Pad take attributes where 11 takes inputs,
//! and its Resize reads scales where 11 reads a region of interest.) Four moved an attribute to an input (Split `split`, Squeeze and Unsqueeze
//! `axes`, ReduceSum `axes`); those are rewritten here, the attribute becoming an int64
//! initializer. Softmax, LogSoftmax and Hardmax changed meaning (13 normalises along one
//! axis, before that over the flattened tail), which is the same only for the last axis
//! (`axis = -1`, or the input's rank - 1 at the planned shapes). Anything else — an op not listed, another domain, a subgraph, Resize's
//! removed `tf_half_pixel_for_nn` — leaves the model at its opset, and the pass says which
//! node kept it there.

use crate::build::tensor_i64;
use crate::exec;
use std::collections::{BTreeSet, HashMap};
use tract_onnx::pb::{AttributeProto, GraphProto, ModelProto, NodeProto};

/// Ops whose opset-13 definition reads an opset 11-12 node the same way (types were added,
/// nothing removed or reinterpreted).
const SAME_UNDER_13: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "Cos",
    "CumSum",
    "DepthToSpace",
    "DequantizeLinear",
    "Div",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "HardSigmoid",
    "Identity",
    "InstanceNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LRN",
    "LSTM",
    "MatMul",
    "Max",
    "MaxPool",
    "Mean",
    "Min",
    "Mod",
    "Mul",
    "Neg",
    "Not",
    "Or",
    "Pad",
    "Pow",
    "PRelu",
    "QuantizeLinear",
    "Range",
    "Reciprocal",
    "ReduceL2",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "Relu",
    "Reshape",
    "Resize",
    "Selu",
    "Shape",
    "Sigmoid",
    "Sign",
    "Sin",
    "Size",
    "Slice",
    "Softplus",
    "SpaceToDepth",
    "Sqrt",
    "Sub",
    "Sum",
    "Tanh",
    "Tile",
    "TopK",
    "Transpose",
    "Where",
    "Xor",
];

/// The ops whose attribute (name) became their second input in opset 13.
const ATTRIBUTE_TO_INPUT: &[(&str, &str)] = &[
    ("Split", "split"),
    ("Squeeze", "axes"),
    ("Unsqueeze", "axes"),
    ("ReduceSum", "axes"),
];

/// The model's default-domain opset.
pub fn version(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version)
}

/// The ops whose `axis` means another thing from opset 13, unless it is the last one.
const AXIS_CHANGED: &[&str] = &["Softmax", "LogSoftmax", "Hardmax"];

/// Raises the model's default-domain opset to 13 if every node reads the same there (with
/// the graph inputs at `shapes`, which give the ranks Softmax needs), rewriting the four
/// attribute-to-input ops. Returns the node that prevents it (and leaves the model
/// untouched) otherwise: `"Upsample node up1"`.
pub fn raise_to_13(model: &mut ModelProto, shapes: &[&[usize]]) -> Result<(), String> {
    match version(model) {
        13.. => return Ok(()),
        ..=10 => return Err("model older than opset 11 (Clip, Pad and Resize changed)".into()),
        _ => {}
    }
    let graph = model.graph.get_or_insert_with(Default::default);
    let softmax_inputs: Vec<String> = (graph.node.iter())
        .filter(|n| AXIS_CHANGED.contains(&n.op_type.as_str()))
        .filter_map(|n| n.input.first().cloned())
        .collect();
    let planned = match softmax_inputs.is_empty() {
        true => HashMap::new(),
        false => exec::edge_shapes(model, shapes, &softmax_inputs).unwrap_or_default(),
    };
    let rank = |name: &str| planned.get(name).map(|(_, dims)| dims.len());
    let graph = model.graph.get_or_insert_with(Default::default);
    if let Some(node) = graph.node.iter().find(|n| !reads_the_same(n, rank)) {
        let name = if node.name.is_empty() {
            node.output.first().map_or("", String::as_str)
        } else {
            &node.name
        };
        return Err(format!("{} node {name}", node.op_type));
    }
    move_attributes_to_inputs(graph);
    for import in &mut model.opset_import {
        if import.domain.is_empty() || import.domain == "ai.onnx" {
            import.version = 13;
        }
    }
    Ok(())
}

/// Whether `node` means the same under opset 13 (after [`move_attributes_to_inputs`]);
/// `rank` gives a tensor's rank where it is known.
fn reads_the_same(node: &NodeProto, rank: impl Fn(&str) -> Option<usize>) -> bool {
    let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
    let default_domain = node.domain.is_empty() || node.domain == "ai.onnx";
    let no_subgraph = node
        .attribute
        .iter()
        .all(|a| a.g.is_none() && a.graphs.is_empty());
    let op = node.op_type.as_str();
    let known = match op {
        "Softmax" | "LogSoftmax" | "Hardmax" => attr("axis").is_some_and(|a| {
            let last = node
                .input
                .first()
                .and_then(|x| rank(x))
                .map(|r| r as i64 - 1);
            a.i == -1 || Some(a.i) == last
        }),
        "Resize" => {
            attr("coordinate_transformation_mode").is_none_or(|a| a.s != b"tf_half_pixel_for_nn")
        }
        _ => SAME_UNDER_13.contains(&op) || ATTRIBUTE_TO_INPUT.iter().any(|(o, _)| *o == op),
    };
    default_domain && no_subgraph && known
}

/// Turns the attributes that opset 13 reads as inputs into int64 initializers.
fn move_attributes_to_inputs(graph: &mut GraphProto) {
    let mut taken: BTreeSet<String> = crate::graph::names(graph);
    let mut new_inits = Vec::new();
    for node in &mut graph.node {
        let Some((_, attribute)) = ATTRIBUTE_TO_INPUT.iter().find(|(o, _)| *o == node.op_type)
        else {
            continue;
        };
        let Some(at) = node.attribute.iter().position(|a| a.name == *attribute) else {
            continue; // absent: the input is left out too, with the same default
        };
        let AttributeProto { ints, .. } = node.attribute.remove(at);
        let base = format!(
            "{}_{attribute}",
            node.output.first().map_or("", String::as_str)
        );
        let name = (0..)
            .map(|i| match i {
                0 => base.clone(),
                i => format!("{base}{i}"),
            })
            .find(|n| !taken.contains(n))
            .unwrap_or_default();
        taken.insert(name.clone());
        new_inits.push(tensor_i64(&name, &[ints.len()], &ints));
        // Opset 13's second input; Split and Squeeze/Unsqueeze/ReduceSum have one input before.
        node.input.truncate(1);
        node.input.push(name);
    }
    graph.initializer.extend(new_inits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{dt, Attr, ModelBuilder};

    #[test]
    fn moves_attributes_to_inputs_and_raises_the_import() {
        let mut m = ModelBuilder::new(11);
        m.input("x", dt::FLOAT, &[2, 4])
            .node(
                "Split",
                &["x"],
                &["a", "b"],
                vec![("axis", Attr::Int(1)), ("split", Attr::Ints(vec![1, 3]))],
            )
            .node(
                "Unsqueeze",
                &["a"],
                &["u"],
                vec![("axes", Attr::Ints(vec![0]))],
            )
            .node("Softmax", &["b"], &["s"], vec![("axis", Attr::Int(1))])
            .output("u", dt::FLOAT)
            .output("s", dt::FLOAT);
        let mut model = m.proto();
        raise_to_13(&mut model, &[]).unwrap();
        assert_eq!(version(&model), 13);
        let g = model.graph.as_ref().unwrap();
        assert_eq!(g.node[0].input, ["x", "a_split"]);
        assert_eq!(g.node[0].attribute.len(), 1, "axis stays an attribute");
        assert_eq!(g.node[1].input, ["a", "u_axes"]);
        assert!(g.node[1].attribute.is_empty());
        let ints = |name: &str| {
            let t = g.initializer.iter().find(|t| t.name == name).unwrap();
            assert_eq!(t.data_type, dt::INT64);
            crate::graph::i64s(t).unwrap()
        };
        assert_eq!(ints("a_split"), [1, 3]);
        assert_eq!(ints("u_axes"), [0]);
    }

    #[test]
    fn opset_10_stays() {
        let mut m = ModelBuilder::new(10);
        m.input("x", dt::FLOAT, &[2, 4])
            .node("Relu", &["x"], &["y"], vec![])
            .output("y", dt::FLOAT);
        let mut model = m.proto();
        assert!(raise_to_13(&mut model, &[]).is_err());
        assert_eq!(version(&model), 10);
    }

    #[test]
    fn names_the_node_that_keeps_the_opset() {
        for (op, attrs) in [
            ("Softmax", vec![("axis", Attr::Int(0))]),
            ("Upsample", vec![]),
            (
                "Resize",
                vec![(
                    "coordinate_transformation_mode",
                    Attr::Str("tf_half_pixel_for_nn".into()),
                )],
            ),
        ] {
            let mut m = ModelBuilder::new(11);
            m.input("x", dt::FLOAT, &[2, 4])
                .node("Relu", &["x"], &["r"], vec![])
                .node(op, &["r"], &["y"], attrs)
                .output("y", dt::FLOAT);
            let mut model = m.proto();
            let before = model.clone();
            assert_eq!(
                raise_to_13(&mut model, &[]),
                Err(format!("{op} node {op}_1"))
            );
            assert_eq!(model, before, "{op}: the model is left as it was");
        }
    }
}
