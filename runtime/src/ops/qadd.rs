//! QAdd: an Add between int8 tensors that writes int8 (fused by the planner from
//! `DequantizeLinear ×2 → Add → QuantizeLinear`, `plan/qdq/joins.rs`) — the residual Add of
//! a CSP bottleneck in a model whose convs run on int8.
//!
//! `y = Q(DQ(a) + DQ(b))` per element, through the standalone steps' own arithmetic
//! (dequantize as `(q − z) · s` in f32, one f32 add, [`Requant::quantize`]), so the fused
//! step writes what the three steps would, bit for bit, with no f32 tensor in between.
//! (TFLite's int8 ADD rescales both inputs in fixed point instead; that computes a slightly
//! different function, and the float reference is what tract and onnxruntime run.)

use super::qgemm::Requant;
use super::quant::Grid;
use super::Io;

/// A prepared int8 Add of two same-shape tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QAdd {
    /// Input grids.
    pub a: Grid,
    /// (See `a`.)
    pub b: Grid,
    /// The output's quantization.
    pub out: Requant,
}

/// Adds element by element.
pub fn eval(q: &QAdd, io: &mut Io) {
    let (a, b) = (io.input(0).bytes, io.input(1).bytes);
    let out = &mut *io.outputs[0].bytes;
    for ((y, &a), &b) in out.iter_mut().zip(a).zip(b) {
        *y = q.out.quantize(q.a.value(a) + q.b.value(b));
    }
}
