//! Int8 LSTM weights: W and R as symmetric int8 with one scale per gate row.
//!
//! An LSTM's W `[dirs, 4·hidden, input]` and R `[dirs, 4·hidden, hidden]` are most of a
//! speech model's bytes. Each becomes an int8 initializer (zero point 0, range ±127) behind
//! a `DequantizeLinear(axis=1)` whose scale holds one value per gate row — the largest
//! magnitude of that row (over both directions of a bidirectional LSTM) over 127 — written
//! just before the LSTM. tract and onnxruntime dequantize and run the float LSTM;
//! edgetrim's runtime reads the int8 in place (`runtime/src/plan/qdq/lstm.rs`), so the
//! weights take a quarter of the flash and no RAM.
//!
//! Activations, B, the states and the peepholes stay float: the recurrence runs in f32 on
//! every runtime, so there is nothing to calibrate and the error is the weights' rounding
//! alone. Per-row scales need `DequantizeLinear`'s `axis` (opset 13): older models keep
//! float LSTMs. An LSTM named by `--keep-float`, or whose W or R is not a float32
//! initializer read by it alone, stays float.

use super::{name_matches, quantize_weight, Names};
use crate::build::dt;
use crate::error::Result;
use crate::graph::{self, Uses};
use std::collections::{BTreeSet, HashMap};
use tract_onnx::pb::{GraphProto, NodeProto, TensorProto};

/// Quantizes the weights of every eligible LSTM of `g` (see the module doc); returns how
/// many LSTMs now read int8 weights. The float initializers are left for the caller's
/// `drop_unused_initializers`.
pub(super) fn quantize(
    g: &mut GraphProto,
    keep: &[String],
    names: &mut Names,
    taken: &mut BTreeSet<String>,
) -> Result<usize> {
    let uses = Uses::of(g);
    let inits = graph::initializer_index(g);
    let mut new_inits: Vec<TensorProto> = Vec::new();
    let mut before: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut rewired: Vec<(usize, usize, String)> = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        let default_domain = n.domain.is_empty() || n.domain == "ai.onnx";
        if !default_domain || n.op_type != "LSTM" {
            continue;
        }
        if keep.iter().any(|p| name_matches(p, graph::label(n))) {
            continue;
        }
        // W and R: float32 rank-3 initializers read by this node only.
        let eligible = |slot: usize| {
            let name = n.input.get(slot)?;
            let t = &g.initializer[*inits.get(name.as_str())?];
            let ok = t.data_type == dt::FLOAT
                && t.dims.len() == 3
                && !graph::is_external(t)
                && uses.readers(name) == [i]
                && !uses.is_fixed(name)
                && !g.input.iter().any(|v| &v.name == name);
            ok.then_some(t)
        };
        let (Some(w), Some(r)) = (eligible(1), eligible(2)) else {
            continue;
        };
        for (slot, t) in [(1, w), (2, r)] {
            let k = names.item(taken);
            let (q, dq) = quantize_weight(t, Some(1), 127.0, (names, taken, k), &mut new_inits)?;
            before.entry(i).or_default().push(dq);
            rewired.push((i, slot, q.edge));
        }
    }
    let count = before.len();
    for (i, slot, edge) in rewired {
        g.node[i].input[slot] = edge;
    }
    let mut nodes = Vec::with_capacity(g.node.len() + 2 * count);
    for (i, n) in std::mem::take(&mut g.node).into_iter().enumerate() {
        nodes.extend(before.remove(&i).unwrap_or_default());
        nodes.push(n);
    }
    g.node = nodes;
    g.initializer.extend(new_inits);
    Ok(count)
}
