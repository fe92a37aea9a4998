//! Per-layer fidelity of an int8 model: which quantized layers cost the most accuracy.
//!
//! The whole-model SQNR says how far the outputs moved, not where. Here every quantized
//! Conv/Gemm/MatMul of the QDQ model (a node whose activation input comes through a
//! `QuantizeLinear → DequantizeLinear` pair) has its output compared with the same edge of
//! the model before quantization, on the same input; the int8 pass keeps node and edge
//! names, so the edges line up by name.
//!
//! That SQNR accumulates the error of every layer before it. To rank layers by what they
//! *add*, the relative noise power at the layer's float activation input (`10^(-SQNR/10)`)
//! is subtracted from the one at its output: what remains is the noise this layer's input
//! and weight rounding added, expressed as an SQNR of its own ([`Layer::added_sqnr_db`]).
//! That assumes a layer passes noise on at the same ratio to signal as it passes the
//! signal: a first-order estimate, cheap (one run of each model) and good enough to choose
//! which layers to give back to float first.

use crate::exec;
use crate::graph::{self, Uses};
use crate::passes;
use crate::report::fidelity;
use serde::Serialize;

/// One quantized layer.
#[derive(Clone, Debug, Serialize)]
pub struct Layer {
    /// The node's label (what `--keep-float` patterns match).
    pub node: String,
    /// Its op type.
    pub op: String,
    /// SQNR of its output against the float model's, in dB (`None`: identical).
    pub sqnr_db: Option<f64>,
    /// The SQNR of the noise this layer added itself, in dB (`None`: none measurable);
    /// the lower, the more this layer costs.
    pub added_sqnr_db: Option<f64>,
}

/// A quantized node: its label, op, output edge and float activation inputs.
struct Quantized {
    node: String,
    op: String,
    output: String,
    acts: Vec<String>,
}

/// The float edge behind `edge` when it is the output of a `Q → DQ` pair.
fn float_source(g: &tract_onnx::pb::GraphProto, uses: &Uses, edge: &str) -> Option<String> {
    let dq = &g.node[*uses.producer.get(edge)?];
    if dq.op_type != "DequantizeLinear" {
        return None;
    }
    let q = &g.node[*uses.producer.get(dq.input.first()?)?];
    (q.op_type == "QuantizeLinear").then(|| q.input.first().cloned())?
}

fn quantized_nodes(g: &tract_onnx::pb::GraphProto) -> Vec<Quantized> {
    let uses = Uses::of(g);
    g.node
        .iter()
        .filter(|n| matches!(n.op_type.as_str(), "Conv" | "Gemm" | "MatMul"))
        .filter_map(|n| {
            let acts: Vec<String> = n
                .input
                .iter()
                .filter_map(|i| float_source(g, &uses, i))
                .collect();
            (!acts.is_empty()).then(|| Quantized {
                node: graph::label(n).to_string(),
                op: n.op_type.clone(),
                output: n.output.first().cloned().unwrap_or_default(),
                acts,
            })
        })
        .collect()
}

/// Relative noise power of an SQNR in dB (0 for identical outputs).
fn noise(sqnr_db: Option<f64>) -> f64 {
    sqnr_db.map_or(0.0, |s| 10f64.powf(-s / 10.0))
}

/// Every quantized layer of `quantized` (graph order) measured against `reference`, the
/// model the int8 pass started from, on `inputs` (raw bytes per graph input; `None`:
/// seeded random). The runtime's error as text when either model cannot run.
pub fn int8_layers(
    reference: &[u8],
    quantized: &[u8],
    shapes: &[&[usize]],
    inputs: Option<&[Vec<u8>]>,
) -> Result<Vec<Layer>, String> {
    let q_model = passes::decode(quantized).map_err(|e| e.to_string())?;
    let r_model = passes::decode(reference).map_err(|e| e.to_string())?;
    let (Some(qg), Some(rg)) = (&q_model.graph, &r_model.graph) else {
        return Ok(Vec::new());
    };
    let layers = quantized_nodes(qg);
    let produced: std::collections::HashSet<&str> = rg
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    // Graph inputs are exact in both models: they are not probed (their noise is 0).
    let mut edges: Vec<String> = Vec::new();
    for l in &layers {
        for e in std::iter::once(&l.output).chain(&l.acts) {
            if produced.contains(e.as_str()) && !edges.contains(e) {
                edges.push(e.clone());
            }
        }
    }
    if edges.is_empty() {
        return Ok(Vec::new());
    }
    let want = exec::measure(&exec::probe(&r_model, &edges), shapes, inputs)?;
    let got = exec::measure(&exec::probe(&q_model, &edges), shapes, inputs)?;
    let sqnr = |edge: &str| -> Option<f64> {
        let i = edges.iter().position(|e| e == edge)?;
        let f = fidelity(&want.outputs[i..=i], &got.outputs[i..=i])?;
        Some(f.sqnr_db).filter(|s| s.is_finite())
    };
    Ok(layers
        .iter()
        .map(|l| {
            let out = sqnr(&l.output);
            let before = l.acts.iter().map(|a| noise(sqnr(a))).fold(0.0, f64::max);
            let added = noise(out) - before;
            Layer {
                node: l.node.clone(),
                op: l.op.clone(),
                sqnr_db: out,
                added_sqnr_db: (added > 0.0).then(|| -10.0 * added.log10()),
            }
        })
        .collect())
}

/// `layers` from the most to the least costly (lowest added SQNR first; layers that added
/// no measurable noise last, in graph order).
pub fn most_costly_first(layers: &[Layer]) -> Vec<&Layer> {
    let mut order: Vec<&Layer> = layers.iter().collect();
    order.sort_by(|a, b| match (a.added_sqnr_db, b.added_sqnr_db) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    order
}
