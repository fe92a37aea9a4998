//! Shared helpers: run a model on our runtime and on tract, compare outputs, and pick
//! nodes and initializers out of a decoded model.

use edgetrim_compress::exec;
use edgetrim_compress::passes::{self, Context, Pass, Pipeline};
use edgetrim_compress::pb::ModelProto;
use edgetrim_runtime::tract::TractSession;

/// Runs `passes` on `bytes`; returns the final model's bytes.
pub fn compress(bytes: &[u8], list: &[Pass], ctx: &Context) -> Vec<u8> {
    let stages = Pipeline::new(list.to_vec())
        .run(bytes, ctx)
        .expect("pipeline");
    stages.last().expect("a stage").bytes.clone()
}

/// Deterministic values in [-1, 1) (+ `offset`).
pub fn vals(n: usize, seed: u32, offset: f32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| {
            ((i.wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)) % 2000) as f32 / 1000.0 - 1.0
                + offset
        })
        .collect()
}

/// Decodes model bytes.
pub fn decode(bytes: &[u8]) -> ModelProto {
    passes::decode(bytes).expect("decode")
}

/// Op types of the model's nodes, in order.
pub fn ops(bytes: &[u8]) -> Vec<String> {
    decode(bytes)
        .graph
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.clone())
        .collect()
}

/// How many nodes of `op` the model has.
pub fn count(bytes: &[u8], op: &str) -> usize {
    ops(bytes).iter().filter(|o| *o == op).count()
}

/// Outputs on our runtime for seeded random inputs of `shapes` (`&[]`: declared).
pub fn nano(bytes: &[u8], shapes: &[&[usize]]) -> Vec<Vec<f64>> {
    exec::measure(bytes, shapes, None)
        .unwrap_or_else(|e| panic!("nano runtime: {e}"))
        .outputs
}

/// Outputs on tract for the same seeded random inputs as [`nano`] (float32 inputs).
pub fn tract(bytes: &[u8], shapes: &[&[usize]]) -> Vec<Vec<f64>> {
    let mut s = TractSession::new(bytes, shapes).expect("tract loads the model");
    for (k, shape) in shapes.iter().enumerate() {
        let n = shape.iter().product();
        let data = exec::random_input(edgetrim_runtime::DType::F32, n, k);
        s.set_input_bytes(k, &data).expect("tract input");
    }
    s.run().expect("tract runs the model");
    (0..s.output_count())
        .map(|i| {
            let o = s.output(i);
            match o.dtype {
                edgetrim_runtime::DType::F32 => o
                    .bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).into())
                    .collect(),
                _ => o.i64s().map(|v| v as f64).collect(),
            }
        })
        .collect()
}

/// Largest absolute difference, relative to `max(1, max |reference|)`.
pub fn rel_diff(reference: &[Vec<f64>], got: &[Vec<f64>]) -> f64 {
    assert_eq!(reference.len(), got.len(), "output count");
    let mut worst = 0f64;
    for (r, g) in reference.iter().zip(got) {
        assert_eq!(r.len(), g.len(), "output size");
        let scale = r.iter().fold(1f64, |m, v| m.max(v.abs()));
        for (a, b) in r.iter().zip(g) {
            worst = worst.max((a - b).abs() / scale);
        }
    }
    worst
}

/// Largest absolute difference.
pub fn abs_diff(reference: &[Vec<f64>], got: &[Vec<f64>]) -> f64 {
    assert_eq!(reference.len(), got.len(), "output count");
    reference
        .iter()
        .zip(got)
        .flat_map(|(r, g)| {
            assert_eq!(r.len(), g.len(), "output size");
            r.iter().zip(g).map(|(a, b)| (a - b).abs())
        })
        .fold(0f64, f64::max)
}
