//! Cutting the chosen channels out of the model: initializers lose the rows and columns
//! of removed channels, and the attributes and constant inputs that count channels (Split
//! sizes, Slice bounds, Resize sizes, a depthwise Conv's `group`) are rewritten. Activation
//! shapes follow by themselves; their stale `value_info` entries are dropped.
//!
//! Rewritten constant inputs get fresh initializers (exporters share one `split` constant
//! between several Splits that may now need different sizes); the originals go when
//! nothing reads them.

use super::depgraph::{DepGraph, Fixup};
use crate::build::tensor_i64;
use crate::error::{Error, Result};
use crate::graph;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use tract_onnx::pb::{
    attribute_proto::AttributeType, AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto,
};

/// The channels each axis of the analysis keeps: `None` where it keeps them all.
pub type Kept = Vec<Option<Vec<usize>>>;

/// How many channels axis `a` keeps.
pub fn kept_len(dg: &DepGraph, kept: &Kept, a: usize) -> usize {
    kept[a].as_ref().map_or(dg.axes[a].size, Vec::len)
}

/// Removes the classes flagged in `removed` from `model`; returns what each axis keeps.
pub fn apply(model: &mut ModelProto, dg: &DepGraph, removed: &[bool]) -> Result<Kept> {
    let kept: Kept = dg
        .axes
        .iter()
        .enumerate()
        .map(|(a, axis)| {
            let keep: Vec<usize> = (0..axis.size)
                .filter(|&k| !dg.class_of(dg.slot_of(a, k)).is_some_and(|c| removed[c]))
                .collect();
            (keep.len() < axis.size).then_some(keep)
        })
        .collect();
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version);
    let g = model
        .graph
        .as_mut()
        .ok_or_else(|| Error::Decode("no graph".into()))?;
    // Initializers: every sliced axis, one after the other.
    let mut cuts: BTreeMap<&str, Vec<(usize, &[usize])>> = BTreeMap::new();
    for (a, keep) in kept.iter().enumerate() {
        if let Some(keep) = keep {
            let axis = &dg.axes[a];
            cuts.entry(axis.tensor.as_str())
                .or_default()
                .push((axis.axis, keep));
        }
    }
    for t in &mut g.initializer {
        if let Some(cuts) = cuts.get(t.name.as_str()) {
            for &(axis, keep) in cuts {
                cut(t, axis, keep)?;
            }
        }
    }
    let mut taken = graph::names(g);
    for f in &dg.fixups {
        fixup(g, dg, &kept, f, opset, &mut taken)?;
    }
    let changed: HashSet<&str> = cuts.keys().copied().collect();
    g.value_info.retain(|v| !changed.contains(v.name.as_str()));
    graph::drop_unused_initializers(g);
    Ok(kept)
}

/// Keeps the entries `keep` of axis `axis` of `t`.
pub fn cut(t: &mut TensorProto, axis: usize, keep: &[usize]) -> Result<()> {
    graph::to_raw(t)?;
    let size = graph::elem_size(t.data_type).ok_or_else(|| Error::Tensor {
        name: t.name.clone(),
        reason: "cannot slice this data type".into(),
    })?;
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let outer: usize = dims[..axis].iter().product();
    let inner = dims[axis + 1..].iter().product::<usize>() * size;
    let mut raw = Vec::with_capacity(outer * keep.len() * inner);
    for o in 0..outer {
        for &k in keep {
            let at = (o * dims[axis] + k) * inner;
            raw.extend_from_slice(&t.raw_data[at..at + inner]);
        }
    }
    t.raw_data = raw;
    t.dims[axis] = keep.len() as i64;
    Ok(())
}

/// Sets INT or INTS attribute `name` of `node`.
fn set_attr(node: &mut NodeProto, name: &str, ints: Option<Vec<i64>>, int: i64) {
    node.attribute.retain(|a| a.name != name);
    let mut a = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    match ints {
        Some(v) => {
            a.ints = v;
            a.r#type = AttributeType::Ints as i32;
        }
        None => {
            a.i = int;
            a.r#type = AttributeType::Int as i32;
        }
    }
    node.attribute.push(a);
}

/// Points input `slot` of node `i` at a new int64 initializer holding `values`, named
/// after the node and `what`.
fn new_ints(
    g: &mut GraphProto,
    i: usize,
    slot: usize,
    what: &str,
    values: &[i64],
    taken: &mut BTreeSet<String>,
) {
    let name = graph::fresh_name(taken, &format!("{}_{what}", graph::label(&g.node[i])));
    g.initializer
        .push(tensor_i64(&name, &[values.len()], values));
    let node = &mut g.node[i];
    while node.input.len() <= slot {
        node.input.push(String::new());
    }
    node.input[slot] = name;
}

/// The int64 values of input `slot` of node `i`.
fn ints(g: &GraphProto, i: usize, slot: usize) -> Result<Vec<i64>> {
    let name = &g.node[i].input[slot];
    let t = g
        .initializer
        .iter()
        .find(|t| &t.name == name)
        .ok_or_else(|| graph::node_error(&g.node[i], format!("{name} is not a constant")))?;
    graph::i64s(t)
}

fn fixup(
    g: &mut GraphProto,
    dg: &DepGraph,
    kept: &Kept,
    f: &Fixup,
    opset: i64,
    taken: &mut BTreeSet<String>,
) -> Result<()> {
    let len = |a: usize| kept_len(dg, kept, a) as i64;
    match f {
        Fixup::Group { node, axis } => set_attr(&mut g.node[*node], "group", None, len(*axis)),
        Fixup::Split { node, outputs } => {
            if outputs.iter().all(|&a| kept[a].is_none()) {
                return Ok(());
            }
            let sizes: Vec<i64> = outputs.iter().map(|&a| len(a)).collect();
            if opset >= 13 {
                g.node[*node].attribute.retain(|a| a.name != "num_outputs");
                new_ints(g, *node, 1, "split", &sizes, taken);
            } else {
                set_attr(&mut g.node[*node], "split", Some(sizes), 0);
            }
        }
        Fixup::Slice {
            node,
            input,
            output,
            pos,
            start,
        } => {
            if kept[*input].is_none() {
                return Ok(());
            }
            let before = kept[*input]
                .as_ref()
                .map_or(*start, |k| k.iter().take_while(|&&c| c < *start).count());
            let (mut starts, mut ends) = (ints(g, *node, 1)?, ints(g, *node, 2)?);
            starts[*pos] = before as i64;
            ends[*pos] = before as i64 + len(*output);
            new_ints(g, *node, 1, "starts", &starts, taken);
            new_ints(g, *node, 2, "ends", &ends, taken);
        }
        Fixup::ResizeSizes { node, output } => {
            if kept[*output].is_none() {
                return Ok(());
            }
            let mut sizes = ints(g, *node, 3)?;
            sizes[1] = len(*output);
            new_ints(g, *node, 3, "sizes", &sizes, taken);
        }
    }
    Ok(())
}
