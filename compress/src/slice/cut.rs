//! Applying one graph's rules: the depth cut, then the width cut, then the attributes, in
//! that order (EXPORT.md). Every name a rule gives is looked up and a missing one is an
//! error naming it, because a rule that silently matched nothing would leave a tensor at
//! the old width and the graph would fail far from the cause, at plan time.

use super::rules::{Rules, RULES_KEY};
use super::width_units;
use crate::error::{Error, Result};
use crate::graph;
use crate::passes::prune::slice::cut;
use std::collections::{BTreeMap, BTreeSet};
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_shape_proto::dimension, type_proto, GraphProto,
    ValueInfoProto,
};

fn malformed(reason: impl Into<String>) -> Error {
    Error::Metadata {
        key: RULES_KEY.into(),
        reason: reason.into(),
    }
}

/// What a cut removed and kept, for the summary line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cut {
    /// Layers before and after (`None`: the graph has no depth rules).
    pub layers: Option<(usize, usize)>,
    /// Each dim's size before and after.
    pub dims: BTreeMap<String, (usize, usize)>,
    /// Nodes removed by the depth cut.
    pub nodes_removed: usize,
    /// Initializers and graph inputs/outputs whose shape changed.
    pub tensors_sliced: usize,
}

/// Cuts `g` to `depth` layers (all when `None`) and `width`; returns the cut and the rules
/// of the result. `g` is left half-edited on error: callers work on a copy.
pub fn apply(
    g: &mut GraphProto,
    rules: &Rules,
    depth: Option<usize>,
    width: f64,
) -> Result<(Cut, Rules)> {
    let mut out = rules.clone();
    let mut summary = Cut::default();
    let removed = match (&rules.depth, depth) {
        (Some(d), Some(keep)) => {
            let removed = cut_depth(g, d, keep)?;
            summary.layers = Some((d.layers.len(), keep));
            summary.nodes_removed = d.layers[keep..].iter().map(|l| l.nodes.len()).sum();
            if let Some(od) = out.depth.as_mut() {
                od.layers.truncate(keep);
            }
            removed
        }
        (Some(d), None) => {
            summary.layers = Some((d.layers.len(), d.layers.len()));
            BTreeSet::new()
        }
        (None, _) => BTreeSet::new(),
    };

    let kept: BTreeMap<String, usize> = rules
        .dims
        .iter()
        .map(|(dim, &size)| (dim.clone(), width_units(width, size)))
        .collect();
    let mut sliced = BTreeSet::new();
    for r in rules.tensors.iter().filter(|r| !removed.contains(&r.name)) {
        let (size, k) = (rules.dims[&r.dim], kept[&r.dim]);
        let keep: Vec<usize> = (0..r.blocks).flat_map(|b| b * size..b * size + k).collect();
        let what = format!("axis {} ({} x {} {})", r.axis, r.blocks, size, r.dim);
        let bad = |reason: String| Error::Tensor {
            name: r.name.clone(),
            reason,
        };
        if let Some(t) = g.initializer.iter_mut().find(|t| t.name == r.name) {
            let Some(&len) = t.dims.get(r.axis) else {
                return Err(bad(format!("{what}: the tensor has {} axes", t.dims.len())));
            };
            if len != (r.blocks * size) as i64 {
                return Err(bad(format!("{what}: the axis has {len} entries")));
            }
            cut(t, r.axis, &keep)?;
        } else {
            let infos = g.input.iter_mut().chain(g.output.iter_mut());
            let mut found = false;
            for vi in infos.filter(|v| v.name == r.name) {
                set_io_dim(vi, r.axis, r.blocks * size, keep.len())
                    .map_err(|e| bad(format!("{what}: {e}")))?;
                found = true;
            }
            if !found {
                return Err(bad(format!(
                    "named by {RULES_KEY}, but the graph has no initializer, input or output of that name"
                )));
            }
        }
        sliced.insert(r.name.as_str());
    }
    summary.tensors_sliced = sliced.len();

    for r in rules
        .attributes
        .iter()
        .filter(|r| !removed.contains(&r.node))
    {
        let Some(node) = g.node.iter_mut().find(|n| n.name == r.node) else {
            return Err(malformed(format!(
                "attribute {} of node {}: no such node",
                r.name, r.node
            )));
        };
        let err = |reason: &str| graph::node_error(node, format!("attribute {}: {reason}", r.name));
        let Some(a) = node.attribute.iter().position(|a| a.name == r.name) else {
            return Err(err(&format!("missing, but {RULES_KEY} sets it")));
        };
        if node.attribute[a].r#type != AttributeType::Int as i32 {
            return Err(err("not an integer"));
        }
        node.attribute[a].i = kept[&r.dim] as i64;
    }

    summary.dims = rules
        .dims
        .iter()
        .map(|(dim, &size)| (dim.clone(), (size, kept[dim])))
        .collect();
    out.tensors.retain(|r| !removed.contains(&r.name));
    out.attributes.retain(|r| !removed.contains(&r.node));
    out.dims = kept;
    if !g.value_info.is_empty() && summary.dims.values().any(|(a, b)| a != b) {
        // Shape hints of inner edges went stale; the runtime infers shapes from the inputs.
        g.value_info.clear();
    }
    graph::check_order(g)?;
    Ok((summary, out))
}

/// Removes the layers after the first `keep` and reconnects `post`; returns the names of
/// everything removed (what later rules skip).
fn cut_depth(
    g: &mut GraphProto,
    depth: &super::rules::Depth,
    keep: usize,
) -> Result<BTreeSet<String>> {
    if !(1..=depth.layers.len()).contains(&keep) {
        return Err(Error::Slice(format!(
            "depth={keep} outside 1..={}",
            depth.layers.len()
        )));
    }
    let mut removed = BTreeSet::new();
    for (i, layer) in depth.layers.iter().enumerate().skip(keep) {
        let lists = [
            (
                "node",
                &layer.nodes,
                g.node.iter().map(|n| &n.name).collect::<Vec<_>>(),
            ),
            (
                "initializer",
                &layer.initializers,
                g.initializer.iter().map(|t| &t.name).collect(),
            ),
            (
                "graph input",
                &layer.inputs,
                g.input.iter().map(|v| &v.name).collect(),
            ),
            (
                "graph output",
                &layer.outputs,
                g.output.iter().map(|v| &v.name).collect(),
            ),
        ];
        for (what, names, present) in lists {
            if let Some(missing) = names.iter().find(|n| !present.contains(n)) {
                return Err(malformed(format!(
                    "depth layer {}: {what} {missing} is not in the graph",
                    i + 1
                )));
            }
            removed.extend(names.iter().cloned());
        }
    }
    let output = &depth.layers[keep - 1].output;
    let post = &depth.post;
    if removed.contains(&post.node) {
        return Err(malformed(format!(
            "depth post node {} belongs to a layer",
            post.node
        )));
    }
    let Some(node) = g.node.iter_mut().find(|n| n.name == post.node) else {
        return Err(malformed(format!(
            "depth post node {}: no such node",
            post.node
        )));
    };
    let Some(slot) = node.input.get_mut(post.input) else {
        return Err(graph::node_error(
            node,
            format!(
                "{RULES_KEY} reconnects input {}, which it does not have",
                post.input
            ),
        ));
    };
    *slot = output.clone();
    g.node.retain(|n| !removed.contains(&n.name));
    g.initializer.retain(|t| !removed.contains(&t.name));
    g.input.retain(|v| !removed.contains(&v.name));
    g.output.retain(|v| !removed.contains(&v.name));
    Ok(removed)
}

/// Rewrites declared dim `axis` of a graph input/output from `from` to `to` entries.
fn set_io_dim(
    vi: &mut ValueInfoProto,
    axis: usize,
    from: usize,
    to: usize,
) -> std::result::Result<(), String> {
    let Some(type_proto::Value::TensorType(t)) = vi.r#type.as_mut().and_then(|t| t.value.as_mut())
    else {
        return Err("not a tensor".into());
    };
    let Some(dim) = t.shape.as_mut().and_then(|s| s.dim.get_mut(axis)) else {
        return Err("the declared shape has no such axis".into());
    };
    match dim.value {
        Some(dimension::Value::DimValue(v)) if v == from as i64 => {
            dim.value = Some(dimension::Value::DimValue(to as i64));
            Ok(())
        }
        Some(dimension::Value::DimValue(v)) => Err(format!("the axis has {v} entries")),
        _ => Err("the declared axis is not a fixed number".into()),
    }
}
