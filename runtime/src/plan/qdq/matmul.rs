//! Int8 MatMul and Gemm weights: a MatMul or Gemm whose B is a dequantized int8 constant
//! reads the int8 in place.
//!
//! The compressor's int8 pass stores a Linear layer's weight as an int8 initializer behind
//! `DequantizeLinear` (one scale per output column, or one per tensor), and its input as a
//! `QuantizeLinear → DequantizeLinear` pair. The runtime runs MatMul and Gemm on float
//! activations (the pair rounds them to the int8 grid and back), so, run as written, the
//! weight's DequantizeLinear would be a step writing the whole f32 matrix into the arena —
//! four times the int8 bytes — before the product reads it (an RNN-T encoder's input and
//! output projections: most of its int8 arena). The pattern
//!
//! ```text
//! w_f = DequantizeLinear(W_i8, s_w[, 0])   constant int8, any axis or per tensor, zero point 0
//! y   = MatMul(x, w_f) | Gemm(x, w_f[, c])  w_f read by this step only
//! ```
//!
//! becomes a MatMul/Gemm that reads `W_i8` in slot 1 and `s_w` in its scales slot
//! ([`MATMUL_SCALES`], [`GEMM_SCALES`]: the planner gives every MatMul and Gemm step that
//! slot), dequantizing each element as the GEMM packs it
//! ([`crate::tensor::ScaledI8`]) with DequantizeLinear's own arithmetic: the product is bit
//! for bit the one the DequantizeLinear step would have fed it. The step and its buffer
//! vanish. Anything else — a non-zero zero point, uint8, a weight read by another step, an
//! int8 A — stays on the float path, which computes the same function.

use super::super::fuse::Tables;
use crate::ops::matmul::{GEMM_SCALES, MATMUL_SCALES};
use crate::ops::Op;

impl Tables<'_, '_> {
    /// Rewires every MatMul and Gemm whose B is dequantized int8 (see the module doc).
    pub(in crate::plan) fn quantize_matmuls(&mut self) {
        for k in 0..self.steps.len() {
            let scales_slot = match self.steps[k].op {
                Op::MatMul(_) => MATMUL_SCALES,
                Op::Gemm(_) => GEMM_SCALES,
                _ => continue,
            };
            if usize::from(self.steps[k].n_in) <= scales_slot {
                continue;
            }
            let weight = self.int8_weight(k, 1);
            let Some(weight) = weight.filter(|w| w.s.shape.volume() == w.quant.channels) else {
                continue;
            };
            // The quantized axis of W: the one `quant`'s layout describes (any one for a
            // single scale).
            let (quant, dims) = (weight.quant, weight.w.shape.dims());
            let axis = (0..dims.len()).find(|&a| {
                quant.channels == 1
                    || (dims[a] == quant.channels
                        && dims[a + 1..].iter().product::<usize>() == quant.inner)
            });
            let Some(axis) = axis else {
                continue;
            };
            let start = self.steps[k].io_start as usize;
            self.io[start + 1] = weight.w_q;
            self.io[start + scales_slot] = weight.scales;
            self.drop_tensor(weight.w_f);
            self.tombstone(weight.dq);
            self.steps[k].op = match self.steps[k].op {
                Op::MatMul(m) => Op::MatMul(m.with_int8_weights(axis as u8)),
                Op::Gemm(g) => Op::Gemm(g.with_int8_weights(axis as u8)),
                op => op,
            };
        }
    }
}
