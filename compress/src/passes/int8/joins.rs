//! Int8 joins ([`super::Options::int8_joins`]): Concat, Split, MaxPool, AveragePool and
//! Add between int8 nodes.
//!
//! Without this, a CSP/ELAN block's joins run in float: each conv feeding a Concat or a
//! residual Add computes its SiLU in f32, the Concat copies four bytes a value, and a
//! QuantizeLinear rounds the result for the next conv. A join whose every output only int8
//! nodes read (convs, or other such joins) becomes an int8 node too: its float inputs get
//! pairs like any int8 node's, and so do its outputs, through their readers. The tensors a
//! Concat, Split or MaxPool touches then share one grid — the union of their calibrated
//! ranges, over every such join they are linked through — as TFLite's int8 kernels
//! require, so that `Q(DQ(q)) = q` and a runtime moves (or compares) the int8 bytes as
//! they are; an Add or AveragePool keeps a grid per tensor, since it computes new values
//! anyway ([`own_grids`]). edgetrim's runtime runs all five on int8 (`runtime/src/plan/qdq/joins.rs`);
//! onnxruntime and tract run the pairs as written.

use super::{name_matches, Target};
use crate::graph::{self, Uses};
use std::collections::HashMap;
use tract_onnx::pb::GraphProto;

/// The Concat, Split, MaxPool, AveragePool and Add nodes of `g` (not named by `keep`) whose
/// inputs are activations
/// and whose every output is read, as an activation, only by nodes of `targets` or by
/// other such joins — found as a fixed point, since a join may feed another.
pub(super) fn joins(g: &GraphProto, keep: &[String], targets: &[Target]) -> Vec<Target> {
    let uses = Uses::of(g);
    let inits = graph::initializer_index(g);
    let is_act = |name: &String| !name.is_empty() && !inits.contains_key(name.as_str());
    let mut joins: Vec<Target> = g
        .node
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let default_domain = n.domain.is_empty() || n.domain == "ai.onnx";
            let acts = match n.op_type.as_str() {
                "Concat" if n.input.iter().all(is_act) => (0..n.input.len()).collect(),
                "Split" if n.input.first().is_some_and(is_act) => vec![0],
                // (Not with its optional Indices output, which is no activation.)
                "MaxPool" if n.output.len() == 1 && is_act(&n.input[0]) => vec![0],
                "AveragePool" if is_act(&n.input[0]) => vec![0],
                "Add" if n.input.len() == 2 && n.input.iter().all(is_act) => vec![0, 1],
                _ => return None,
            };
            let kept = keep.iter().any(|p| name_matches(p, graph::label(n)));
            (default_domain && !kept).then_some(Target {
                node: i,
                acts,
                weight: None,
                bias: None,
            })
        })
        .collect();
    loop {
        let reads_as_int8 = |r: usize, y: &str| {
            targets
                .iter()
                .chain(&joins)
                .any(|t| t.node == r && t.acts.iter().any(|&s| g.node[r].input[s] == y))
        };
        let int8_out: Vec<bool> = joins
            .iter()
            .map(|t| {
                g.node[t.node].output.iter().all(|y| {
                    let readers = uses.readers(y);
                    !uses.is_fixed(y)
                        && !readers.is_empty()
                        && readers.iter().all(|&r| reads_as_int8(r, y))
                })
            })
            .collect();
        if int8_out.iter().all(|&ok| ok) {
            return joins;
        }
        let mut ok = int8_out.into_iter();
        joins.retain(|_| ok.next() == Some(true));
    }
}

/// Whether a join of this op computes new values (Add, AveragePool), so its tensors keep
/// their own grids.
pub(super) fn own_grids(op: &str) -> bool {
    matches!(op, "Add" | "AveragePool")
}

/// Gives every tensor a Concat, Split or MaxPool of `joins` reads or writes the union of
/// the calibrated `ranges` of all the tensors it is linked to through such joins. Returns
/// how many joins got one grid; one with a tensor of no range (not float32) is left
/// alone, and the runtime keeps it float.
pub(super) fn share_ranges(
    g: &GraphProto,
    joins: &[Target],
    ranges: &mut HashMap<&str, (f32, f32)>,
) -> usize {
    // Groups of tensor names, merged whenever a join links two of them.
    let mut groups: Vec<Vec<&str>> = Vec::new();
    let mut shared = 0;
    for t in joins {
        let n = &g.node[t.node];
        if own_grids(&n.op_type) {
            continue;
        }
        let members: Vec<&str> = t
            .acts
            .iter()
            .map(|&s| n.input[s].as_str())
            .chain(n.output.iter().map(String::as_str))
            .collect();
        if !members.iter().all(|&m| ranges.contains_key(m)) {
            continue;
        }
        shared += 1;
        let (linked, mut rest): (Vec<_>, Vec<_>) = std::mem::take(&mut groups)
            .into_iter()
            .partition(|grp| grp.iter().any(|m| members.contains(m)));
        let mut group: Vec<&str> = linked.into_iter().flatten().collect();
        let new: Vec<&str> = members.into_iter().filter(|m| !group.contains(m)).collect();
        group.extend(new);
        rest.push(group);
        groups = rest;
    }
    for group in &groups {
        let (lo, hi) = group
            .iter()
            .map(|&m| ranges[m])
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (l, h)| {
                (lo.min(l), hi.max(h))
            });
        for &m in group {
            if let Some(r) = ranges.get_mut(m) {
                *r = (lo, hi);
            }
        }
    }
    shared
}
