//! Queries and edits over a decoded `GraphProto`: who produces and who reads each edge,
//! initializer lookup, renaming edges, dropping nodes, and tensor data as numbers.
//!
//! Passes rewrite the graph through these helpers so that every pass keeps the same
//! invariants: nodes stay topologically ordered, graph input and output names never
//! change, and an edge that a nested subgraph (If/Loop/Scan body) reads from the outer
//! scope is never renamed or removed — such references are invisible in the node's input
//! list, so they are collected once ([`Uses::pinned`]) and treated as extra graph outputs.

use crate::build::dt;
use crate::error::{Error, Result};
use std::collections::{BTreeSet, HashMap, HashSet};
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_shape_proto::dimension, type_proto, AttributeProto,
    GraphProto, NodeProto, TensorProto, ValueInfoProto,
};

/// The name to show for a node: its name, or its first output's when unnamed.
pub fn label(node: &NodeProto) -> &str {
    if node.name.is_empty() {
        node.output.first().map_or("?", String::as_str)
    } else {
        &node.name
    }
}

/// An error about `node`.
pub fn node_error(node: &NodeProto, reason: impl Into<String>) -> Error {
    Error::Node {
        node: label(node).to_string(),
        op: node.op_type.clone(),
        reason: reason.into(),
    }
}

/// Who produces and who reads every edge of a graph (a snapshot: rebuild after edits).
#[derive(Debug, Default)]
pub struct Uses {
    /// Edge name → index of the node producing it.
    pub producer: HashMap<String, usize>,
    /// Edge name → indices of the nodes reading it (once per node, in node order).
    pub consumers: HashMap<String, Vec<usize>>,
    /// Names of graph outputs.
    pub outputs: HashSet<String>,
    /// Names read by nested subgraphs from the outer scope.
    pub pinned: HashSet<String>,
}

impl Uses {
    /// Indexes `g`.
    pub fn of(g: &GraphProto) -> Uses {
        let mut uses = Uses {
            outputs: g.output.iter().map(|o| o.name.clone()).collect(),
            pinned: subgraph_refs(g),
            ..Default::default()
        };
        for (i, node) in g.node.iter().enumerate() {
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                uses.producer.insert(out.clone(), i);
            }
            for input in node.input.iter().filter(|o| !o.is_empty()) {
                let readers = uses.consumers.entry(input.clone()).or_default();
                if readers.last() != Some(&i) {
                    readers.push(i);
                }
            }
        }
        uses
    }

    /// Whether `name` must keep its name and producer: a graph output or read by a subgraph.
    pub fn is_fixed(&self, name: &str) -> bool {
        self.outputs.contains(name) || self.pinned.contains(name)
    }

    /// The nodes reading `name`.
    pub fn readers(&self, name: &str) -> &[usize] {
        self.consumers.get(name).map_or(&[], Vec::as_slice)
    }
}

/// The subgraphs held in a node's attributes.
pub fn subgraphs(node: &NodeProto) -> impl Iterator<Item = &GraphProto> {
    node.attribute
        .iter()
        .flat_map(|a| a.g.iter().chain(a.graphs.iter()))
}

/// Names that nested subgraphs of `g` read but do not define themselves.
fn subgraph_refs(g: &GraphProto) -> HashSet<String> {
    let mut refs = HashSet::new();
    for sub in g.node.iter().flat_map(subgraphs) {
        let mut defined: HashSet<&str> = sub.input.iter().map(|v| v.name.as_str()).collect();
        defined.extend(sub.initializer.iter().map(|t| t.name.as_str()));
        for node in &sub.node {
            for input in node.input.iter().filter(|i| !i.is_empty()) {
                if !defined.contains(input.as_str()) {
                    refs.insert(input.clone());
                }
            }
            defined.extend(node.output.iter().map(String::as_str));
        }
        // Deeper levels read from this scope or ours; keep whatever they reach for.
        refs.extend(subgraph_refs(sub));
    }
    refs
}

/// Checks that every node reads only edges defined before it (graph inputs, initializers,
/// earlier nodes' outputs): the passes rely on the topological order ONNX requires.
pub fn check_order(g: &GraphProto) -> Result<()> {
    let mut defined: HashSet<&str> = g.input.iter().map(|v| v.name.as_str()).collect();
    defined.extend(g.initializer.iter().map(|t| t.name.as_str()));
    for node in &g.node {
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            if !defined.contains(input.as_str()) {
                let later = g.node.iter().any(|n| n.output.contains(input));
                let reason = if later {
                    format!("reads {input} before the node producing it (graph is not topologically sorted)")
                } else {
                    format!("reads {input}, which no node, graph input or initializer defines")
                };
                return Err(node_error(node, reason));
            }
        }
        defined.extend(node.output.iter().map(String::as_str));
    }
    for out in &g.output {
        if !defined.contains(out.name.as_str()) {
            return Err(Error::Unsupported(format!(
                "graph output {} is never produced",
                out.name
            )));
        }
    }
    Ok(())
}

/// Renames edge `from` to `to` wherever a node produces or reads it.
pub fn rename_edge(g: &mut GraphProto, from: &str, to: &str) {
    for node in &mut g.node {
        for name in node.input.iter_mut().chain(node.output.iter_mut()) {
            if name == from {
                *name = to.to_string();
            }
        }
    }
}

/// Keeps the nodes whose `keep` flag is set, in order.
pub fn retain_nodes(g: &mut GraphProto, keep: &[bool]) {
    let mut flags = keep.iter();
    g.node.retain(|_| *flags.next().unwrap_or(&true));
}

/// Index of each initializer by name.
pub fn initializer_index(g: &GraphProto) -> HashMap<&str, usize> {
    g.initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect()
}

/// Every edge, tensor and value-info name in `g`: what a new name must not collide with.
pub fn names(g: &GraphProto) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    for v in g.input.iter().chain(&g.output).chain(&g.value_info) {
        names.insert(v.name.clone());
    }
    for node in &g.node {
        names.extend(node.input.iter().chain(&node.output).cloned());
        if !node.name.is_empty() {
            names.insert(node.name.clone());
        }
    }
    names
}

/// `base`, or `base_2`, `base_3`, ... : the first name not in `taken`, which it joins.
pub fn fresh_name(taken: &mut BTreeSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut k = 2;
    while taken.contains(&name) {
        name = format!("{base}_{k}");
        k += 1;
    }
    taken.insert(name.clone());
    name
}

/// Drops `value_info` entries for edges no node produces any more (renamed, folded into
/// initializers or removed), so stale shapes cannot mislead a later reader.
pub fn prune_value_info(g: &mut GraphProto) {
    let produced: HashSet<&str> = g
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    let kept: Vec<_> = g
        .value_info
        .iter()
        .filter(|v| produced.contains(v.name.as_str()))
        .cloned()
        .collect();
    g.value_info = kept;
}

/// The attribute `name` of `node`.
pub fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// INT attribute `name`, or `default`.
pub fn attr_int(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

/// FLOAT attribute `name`, or `default`.
pub fn attr_float(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

/// Sets FLOAT attribute `name` on `node`.
pub fn set_attr_float(node: &mut NodeProto, name: &str, value: f32) {
    node.attribute.retain(|a| a.name != name);
    node.attribute.push(AttributeProto {
        name: name.to_string(),
        f: value,
        r#type: AttributeType::Float as i32,
        ..Default::default()
    });
}

/// Bytes per element of an ONNX data type, for the fixed-size types.
pub fn elem_size(data_type: i32) -> Option<usize> {
    Some(match data_type {
        dt::UINT8 | dt::INT8 | dt::BOOL => 1,
        4 | 5 | dt::FLOAT16 | 16 => 2, // uint16, int16, float16, bfloat16
        dt::FLOAT | dt::INT32 | 12 => 4, // uint32
        dt::INT64 | 11 | 13 => 8,      // double, uint64
        _ => return None,
    })
}

/// Element count from the dims (`None` for negative dims or overflow).
pub fn elem_count(t: &TensorProto) -> Option<usize> {
    t.dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
}

/// Whether the tensor's data lives in another file.
pub fn is_external(t: &TensorProto) -> bool {
    t.data_location == Some(1)
}

/// Moves the typed data fields (`float_data`, `int32_data`, ...) into little-endian
/// `raw_data`, so the tensor can be used in place and aligned. Tensors that are already raw,
/// strings or external are left alone. Checks the data length against the dims.
pub fn to_raw(t: &mut TensorProto) -> Result<()> {
    if is_external(t) || t.data_type == 8 {
        return Ok(());
    }
    let bad = |reason: &str| Error::Tensor {
        name: t.name.clone(),
        reason: reason.to_string(),
    };
    let size = elem_size(t.data_type).ok_or_else(|| bad("unsupported data type"))?;
    let count = elem_count(t).ok_or_else(|| bad("negative or oversized dims"))?;
    if t.raw_data.is_empty() {
        let raw: Vec<u8> = match t.data_type {
            dt::FLOAT => t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            dt::INT64 => t.int64_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            11 => t.double_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            12 => t
                .uint64_data
                .iter()
                .flat_map(|&v| (v as u32).to_le_bytes())
                .collect(),
            13 => t.uint64_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            // int32_data carries the narrower integer types and float16 bits.
            _ => t
                .int32_data
                .iter()
                .flat_map(|v| v.to_le_bytes().into_iter().take(size))
                .collect(),
        };
        t.raw_data = raw;
        t.float_data.clear();
        t.int32_data.clear();
        t.int64_data.clear();
        t.double_data.clear();
        t.uint64_data.clear();
    }
    if t.raw_data.len() != count * size {
        return Err(bad(&format!(
            "{} data bytes for dims {:?} ({} expected)",
            t.raw_data.len(),
            t.dims,
            count * size
        )));
    }
    Ok(())
}

/// A float32 tensor's elements (typed fields or raw data).
pub fn f32s(t: &TensorProto) -> Result<Vec<f32>> {
    if t.data_type != dt::FLOAT {
        return Err(Error::Tensor {
            name: t.name.clone(),
            reason: "expected float32 data".into(),
        });
    }
    let mut t = t.clone();
    to_raw(&mut t)?;
    Ok(t.raw_data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// An integer tensor's elements (int64 or int32, typed fields or raw data): shapes, axes,
/// split sizes, slice bounds.
pub fn i64s(t: &TensorProto) -> Result<Vec<i64>> {
    let mut t = t.clone();
    to_raw(&mut t)?;
    match t.data_type {
        dt::INT64 => Ok(t
            .raw_data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect()),
        dt::INT32 => Ok(t
            .raw_data
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]).into())
            .collect()),
        _ => Err(Error::Tensor {
            name: t.name.clone(),
            reason: "expected int64 or int32 data".into(),
        }),
    }
}

/// Removes initializers no node reads any more (replaced weights, sliced constants) unless
/// they are graph inputs or outputs; returns how many.
pub fn drop_unused_initializers(g: &mut GraphProto) -> usize {
    let uses = Uses::of(g);
    let graph_inputs: HashSet<String> = g.input.iter().map(|v| v.name.clone()).collect();
    let before = g.initializer.len();
    g.initializer.retain(|t| {
        !uses.readers(&t.name).is_empty()
            || uses.is_fixed(&t.name)
            || graph_inputs.contains(&t.name)
    });
    before - g.initializer.len()
}

/// Parameter count and bytes of a graph: initializers plus `Constant` node values.
pub fn params(g: &GraphProto) -> (u64, u64) {
    let constants = g
        .node
        .iter()
        .filter(|n| n.op_type == "Constant")
        .filter_map(|n| attr(n, "value").and_then(|a| a.t.as_ref()));
    let (mut count, mut bytes) = (0u64, 0u64);
    for t in g.initializer.iter().chain(constants) {
        let n = elem_count(t).unwrap_or(0) as u64;
        count += n;
        bytes += n * elem_size(t.data_type).unwrap_or(0) as u64;
    }
    (count, bytes)
}

/// The shape of `name`'s declared graph input, when all its dims are fixed.
pub fn declared_dims(g: &GraphProto, name: &str) -> Option<Vec<usize>> {
    let vi = g.input.iter().find(|v| v.name == name)?;
    let Some(type_proto::Value::TensorType(t)) = vi.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    t.shape
        .as_ref()?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(dimension::Value::DimValue(v)) => usize::try_from(v).ok(),
            _ => None,
        })
        .collect()
}

/// Replaces the declared dims of the graph inputs or outputs in `infos` named `name`
/// (keeping the element type).
pub fn set_declared_dims(infos: &mut [ValueInfoProto], name: &str, dims: &[usize]) {
    for vi in infos.iter_mut().filter(|v| v.name == name) {
        let elem_type = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t.elem_type,
            _ => continue,
        };
        *vi = ValueInfoProto {
            doc_string: std::mem::take(&mut vi.doc_string),
            ..crate::build::value_info(name, elem_type, Some(dims))
        };
    }
}

/// The graph inputs that are not initializers (the model's real inputs), in order.
pub fn real_inputs(g: &GraphProto) -> Vec<&ValueInfoProto> {
    let inits = initializer_index(g);
    g.input
        .iter()
        .filter(|v| !inits.contains_key(v.name.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_names_do_not_collide() {
        let mut taken: BTreeSet<String> = ["w".to_string(), "w_2".to_string()].into();
        assert_eq!(fresh_name(&mut taken, "w"), "w_3");
        assert_eq!(fresh_name(&mut taken, "w"), "w_4");
        assert_eq!(fresh_name(&mut taken, "b"), "b");
    }

    #[test]
    fn typed_fields_move_to_raw_data_and_lengths_are_checked() {
        let mut t = TensorProto {
            name: "t".into(),
            data_type: dt::FLOAT16,
            dims: vec![2],
            int32_data: vec![0x3c00, 0xc000],
            ..Default::default()
        };
        to_raw(&mut t).unwrap();
        assert_eq!(t.raw_data, [0x00, 0x3c, 0x00, 0xc0]);
        assert!(t.int32_data.is_empty());
        let mut short = TensorProto {
            name: "short".into(),
            data_type: dt::INT64,
            dims: vec![3],
            int64_data: vec![1, 2],
            ..Default::default()
        };
        let err = to_raw(&mut short).unwrap_err();
        assert!(err.to_string().starts_with("tensor short:"), "{err}");
    }
}
