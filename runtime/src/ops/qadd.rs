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
use super::Io;

/// One int8 input's per-tensor grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zero: i8,
}

impl Grid {
    /// The value of int8 byte `q` on this grid: [`dequantize`](super::quant::dequantize)'s
    /// `(q − z) · s`, with the difference (at most 255 in magnitude) converted from i32
    /// rather than i64 — the same float, without a 64-bit conversion on 32-bit cores.
    #[inline(always)]
    pub fn value(self, q: u8) -> f32 {
        (i32::from(q as i8) - i32::from(self.zero)) as f32 * self.scale
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::quant::dequantize;

    #[test]
    fn values_are_dequantize_bit_for_bit() {
        for zero in [i8::MIN, -7, 0, 3, i8::MAX] {
            for scale in [1.0 / 64.0, 0.0371, 3.0e-5, 1.7e3] {
                let grid = Grid { scale, zero };
                for q in 0..=255u8 {
                    let want = dequantize(i64::from(q as i8), scale, i64::from(zero));
                    assert_eq!(grid.value(q).to_bits(), want.to_bits(), "{q} {grid:?}");
                }
            }
        }
    }
}
