//! Unstructured pruning: the weights of smallest magnitude become zeros.
//!
//! Every Conv, ConvTranspose, Gemm and MatMul weight (a float32 initializer in input 1)
//! loses the share R of its entries with the smallest `|w|` (`scope=layer`), or all weights
//! compete under one threshold (`scope=global`, Han et al. 2015). Ties go by position, so
//! the result is deterministic.
//!
//! Shapes do not change, so a dense runtime runs the model at the same cost and the file
//! keeps its size: the zeros only pay off once the file is compressed (they deflate well),
//! with a sparse kernel, or as the start of structured pruning. The summary says so and
//! gives the deflated sizes; [`sparsity`] measures the zeros per layer for the report.

use super::{Scope, Weights};
use crate::build::dt;
use crate::error::{Error, Result};
use crate::graph::{self, Uses};
use prost::Message;
use serde::Serialize;
use std::io::Write;
use tract_onnx::pb::{GraphProto, ModelProto, TensorProto};

const WEIGHTED: &[&str] = &["Conv", "ConvTranspose", "Gemm", "MatMul"];

/// Zeros in one layer's weight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerSparsity {
    /// The node.
    pub node: String,
    /// Weight entries.
    pub weights: u64,
    /// Of which exactly zero.
    pub zeros: u64,
}

/// Zeros in the weights of a model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sparsity {
    /// Weight entries of all layers.
    pub weights: u64,
    /// Of which exactly zero.
    pub zeros: u64,
    /// Per layer, in graph order.
    pub layers: Vec<LayerSparsity>,
}

impl Sparsity {
    /// Zeros as a share of the weights.
    pub fn share(&self) -> f64 {
        self.zeros as f64 / self.weights.max(1) as f64
    }
}

/// The weight initializer of each weighted node, in graph order: input 1 itself, or the
/// initializer behind a `DequantizeLinear` or `Cast` feeding it (int8 and fp16 models).
fn weights(g: &GraphProto) -> Vec<(String, usize)> {
    let uses = Uses::of(g);
    let inits = graph::initializer_index(g);
    let mut out = Vec::new();
    for n in &g.node {
        if !WEIGHTED.contains(&n.op_type.as_str()) {
            continue;
        }
        let Some(mut name) = n.input.get(1).map(String::as_str) else {
            continue;
        };
        if let Some(&p) = uses.producer.get(name) {
            let p = &g.node[p];
            if let (true, Some(source)) = (
                matches!(p.op_type.as_str(), "DequantizeLinear" | "Cast"),
                p.input.first(),
            ) {
                name = source;
            }
        }
        if let Some(&t) = inits.get(name) {
            out.push((graph::label(n).to_string(), t));
        }
    }
    out
}

/// Whether the element bytes `e` of data type `ty` encode zero.
fn is_zero(ty: i32, e: &[u8]) -> bool {
    match ty {
        dt::FLOAT => u32::from_le_bytes([e[0], e[1], e[2], e[3]]) & 0x7fff_ffff == 0,
        dt::FLOAT16 => u16::from_le_bytes([e[0], e[1]]) & 0x7fff == 0,
        _ => e.iter().all(|&b| b == 0),
    }
}

/// The zeros of every layer's weight (float32, float16 and int8 data; a weight shared by
/// several nodes counts once per node).
pub fn sparsity(g: &GraphProto) -> Sparsity {
    let mut s = Sparsity {
        weights: 0,
        zeros: 0,
        layers: Vec::new(),
    };
    for (node, t) in weights(g) {
        let mut t = g.initializer[t].clone();
        let Some(size) = graph::elem_size(t.data_type) else {
            continue;
        };
        if !matches!(t.data_type, dt::FLOAT | dt::FLOAT16 | dt::INT8)
            || graph::to_raw(&mut t).is_err()
        {
            continue;
        }
        let weights = (t.raw_data.len() / size) as u64;
        let zeros = t
            .raw_data
            .chunks_exact(size)
            .filter(|e| is_zero(t.data_type, e))
            .count() as u64;
        s.weights += weights;
        s.zeros += zeros;
        s.layers.push(LayerSparsity {
            node,
            weights,
            zeros,
        });
    }
    s
}

/// Size of `bytes` deflated (zlib, default level): what a compressed download or firmware
/// image would carry.
pub fn deflated_len(bytes: &[u8]) -> usize {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(bytes);
    z.finish().map_or(bytes.len(), |v| v.len())
}

/// Runs weight pruning; returns a one-line summary.
pub fn run(model: &mut ModelProto, opts: &Weights) -> Result<String> {
    let dense = model.encode_to_vec();
    let g = model
        .graph
        .as_mut()
        .ok_or_else(|| Error::Decode("the model has no graph".into()))?;
    let graph_inputs: std::collections::HashSet<&str> =
        g.input.iter().map(|v| v.name.as_str()).collect();
    // Each float32 weight once, in graph order.
    let mut targets: Vec<usize> = Vec::new();
    for (_, t) in weights(g) {
        let init = &g.initializer[t];
        if init.data_type == dt::FLOAT
            && !graph::is_external(init)
            && !graph_inputs.contains(init.name.as_str())
            && !targets.contains(&t)
        {
            targets.push(t);
        }
    }
    let mut values: Vec<Vec<f32>> = Vec::with_capacity(targets.len());
    for &t in &targets {
        values.push(graph::f32s(&g.initializer[t])?);
    }
    let ratio = f64::from(opts.ratio);
    match opts.scope {
        Scope::Global => {
            let mut all: Vec<(f32, usize, usize)> = values
                .iter()
                .enumerate()
                .flat_map(|(l, v)| v.iter().enumerate().map(move |(i, w)| (w.abs(), l, i)))
                .collect();
            let k = (ratio * all.len() as f64).floor() as usize;
            if k > 0 {
                all.select_nth_unstable_by(k - 1, order);
                for &(_, l, i) in &all[..k] {
                    values[l][i] = 0.0;
                }
            }
        }
        _ => {
            for v in &mut values {
                let mut order_of: Vec<(f32, usize, usize)> =
                    v.iter().enumerate().map(|(i, w)| (w.abs(), 0, i)).collect();
                let k = (ratio * v.len() as f64).floor() as usize;
                if k > 0 {
                    order_of.select_nth_unstable_by(k - 1, order);
                    for &(_, _, i) in &order_of[..k] {
                        v[i] = 0.0;
                    }
                }
            }
        }
    }
    let mut per_layer: Vec<f64> = Vec::with_capacity(targets.len());
    for (&t, v) in targets.iter().zip(&values) {
        let zeros = v.iter().filter(|&&w| w == 0.0).count();
        per_layer.push(zeros as f64 / v.len().max(1) as f64);
        let init: &mut TensorProto = &mut g.initializer[t];
        if graph::f32s(init)?.iter().filter(|&&w| w == 0.0).count() != zeros {
            let dims: Vec<usize> = init.dims.iter().map(|&d| d as usize).collect();
            *init = crate::build::tensor_f32(&init.name, &dims, v);
        }
    }
    let s = sparsity(g);
    let (lo, hi) = per_layer
        .iter()
        .fold((1f64, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let sparse = model.encode_to_vec();
    Ok(format!(
        "{:.1}% of {} weights zero in {} layers ({}, per layer {:.1}-{:.1}%); the zeros are \
         stored: the file keeps its size and only shrinks compressed (deflated {} -> {} bytes)",
        100.0 * s.share(),
        s.weights,
        s.layers.len(),
        opts.scope,
        100.0 * lo.min(hi),
        100.0 * hi,
        deflated_len(&dense),
        deflated_len(&sparse),
    ))
}

/// Smallest magnitude first, then by position.
fn order(a: &(f32, usize, usize), b: &(f32, usize, usize)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
}
