//! Int8 LSTM weights: an LSTM whose W and R are dequantized int8 constants reads the int8
//! in place.
//!
//! The compressor's int8 pass stores an LSTM's W and R as int8 initializers with one scale
//! per gate row, behind `DequantizeLinear(axis=1)` (plain ONNX: tract and onnxruntime
//! dequantize and run the float LSTM). Run as written, each DequantizeLinear is a step that
//! writes the whole f32 matrix into the arena, four times the int8 bytes, before the LSTM
//! reads it. The pattern
//!
//! ```text
//! w_f = DequantizeLinear(W_i8, s_w[, 0])   constant int8 [dirs, 4·hidden, k], zero point 0,
//!                                           f32 scale per row (axis 1, 4·hidden values)
//! r_f = DequantizeLinear(R_i8, s_r[, 0])   the same for R
//! ... = LSTM(x, w_f, r_f, ...)             w_f and r_f read by this LSTM only
//! ```
//!
//! becomes an LSTM that reads `W_i8` and `R_i8` in slots 1 and 2 and their scales in slots
//! 8 and 9 (every planned LSTM step has [`SLOTS`] input slots for them); the two
//! DequantizeLinear steps and their buffers vanish. The products sum `q·x` in f32 and scale
//! once per row ([`crate::ops::rnn::dot::Rows::I8`]), which differs from
//! dequantize-then-multiply only by f32 rounding. Anything else — per-tensor or
//! per-direction scales, non-zero zero points, a weight read by another step, only one of
//! W and R int8 — stays on the float path, which computes the same function.

use super::super::fuse::Tables;
use super::Int8Weight;
use crate::ops::rnn::lstm::{SCALES, SLOTS};
use crate::ops::rnn::Lstm;
use crate::ops::Op;

impl<'a> Tables<'_, 'a> {
    /// Rewires every LSTM whose W and R are per-row dequantized int8 (see the module doc).
    pub(in crate::plan) fn quantize_lstms(&mut self) {
        for k in 0..self.steps.len() {
            let Op::Lstm(l) = self.steps[k].op else {
                continue;
            };
            let (Some(w), Some(r)) = (
                self.per_row_int8_weight(k, 1, &l),
                self.per_row_int8_weight(k, 2, &l),
            ) else {
                continue;
            };
            let start = self.steps[k].io_start as usize;
            for (slot, m) in [(1, w), (2, r)] {
                self.io[start + slot] = m.w_q;
                self.io[start + SCALES + slot - 1] = m.scales;
                self.drop_tensor(m.w_f);
                self.tombstone(m.dq);
            }
            self.steps[k].op = Op::Lstm(l.with_int8_weights());
        }
    }

    /// Input `slot` of LSTM step `k` when it is a per-row dequantized int8 constant that
    /// only this step reads.
    fn per_row_int8_weight(&self, k: usize, slot: usize, l: &Lstm) -> Option<Int8Weight<'a>> {
        if usize::from(self.steps[k].n_in) < SLOTS {
            return None;
        }
        let m = self.int8_weight(k, slot)?;
        let rows = l.gate_rows();
        let per_row = m.quant.channels == rows
            && m.w.shape.rank() == 3
            && m.w.shape.dim(1) == rows
            && m.quant.inner == m.w.shape.dim(2)
            && m.s.shape.volume() == rows;
        per_row.then_some(m)
    }
}
