//! Int8 joins: a Concat or Split between int8 tensors of one grid moves the int8 bytes.
//!
//! The compressor's `--int8-joins` quantizes the tensors a CSP/ELAN block joins and cuts
//! as well as the convs' inputs, with one grid for every input and output of a join (as
//! TFLite's int8 Concatenation and Split require). In standard QDQ form:
//!
//! ```text
//! x_i = DequantizeLinear(x_q_i, s, z)      every input, per tensor, int8, one grid
//! y.. = Concat(x_0, x_1, ..) / Split(x_0)
//! y_q = QuantizeLinear(y, s, z)            the only reader of each output, the same grid
//! ```
//!
//! On one grid `QuantizeLinear(DequantizeLinear(q)) = q` for every int8 `q` (the float
//! `(q − z) · s` is within half an ulp of the exact product, so dividing by `s` rounds back
//! to `q − z`), and both ops only move values, so the step can run on `x_q_i` and write
//! `y_q` directly: a byte copy instead of a dequantization, a four-byte copy and a
//! quantization per value, and no f32 tensor. The QuantizeLinear steps vanish, as do the
//! DequantizeLinear ones that nobody else reads ([`Tables::quantize`]'s cleanup). Grids
//! that differ, per-axis or uint8 ones, a view between the steps, or another reader of an
//! output, leave the float path, which computes the same function.

use super::super::fuse::{inputs, Tables};
use super::NONE;
use crate::ops::{Op, MAX_INPUTS, MAX_OUTPUTS};
use crate::tensor::{DType, F32Source};

/// A per-tensor int8 grid, compared exactly: the scale's bits and the zero point.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Grid {
    scale: u32,
    zero: i64,
}

impl Tables<'_, '_> {
    /// The grid of the per-tensor int8 QuantizeLinear or DequantizeLinear at step `j`,
    /// whose scale and zero point are constants.
    fn grid(&self, j: usize) -> Option<Grid> {
        let Op::Quant(q) = self.steps[j].op else {
            return None;
        };
        if q.int != DType::I8 || q.channels != 1 {
            return None;
        }
        let scale = self.constant(self.input_of(j, 1))?;
        let zero = match self.input_of(j, 2) {
            NONE => 0,
            z => self.constant(z)?.i64_at(0),
        };
        Some(Grid {
            scale: crate::with_f32!(scale.f32(), |s| s.at(0)).to_bits(),
            zero,
        })
    }

    /// Runs every Concat and Split whose inputs are dequantized from, and whose outputs
    /// quantized to, one int8 grid on the int8 tensors (see the module doc).
    pub(super) fn join_int8(&mut self) {
        for k in 0..self.steps.len() {
            if matches!(self.steps[k].op, Op::Split(_))
                || matches!(self.steps[k].op, Op::Concat(c) if c.requant().is_none())
            {
                self.join_at(k);
            }
        }
    }

    fn join_at(&mut self, k: usize) {
        let step = self.steps[k];
        let mut grid = None;
        let mut x_q = heapless::Vec::<u32, MAX_INPUTS>::new();
        // (A Split's other input is its constant sizes.)
        let data = match step.op {
            Op::Split(_) => 1,
            _ => step.n_in as usize,
        };
        for &x in &inputs(self.io, &step)[..data.min(step.n_in as usize)] {
            let Some((dq, _)) = self.dequantized_by(x) else {
                return;
            };
            let source = self.input_of(dq, 0);
            let g = self.grid(dq);
            if g.is_none()
                || grid.is_some_and(|grid| Some(grid) != g)
                || self.buf_of(source).is_none()
                || x_q.push(source).is_err()
            {
                return;
            }
            grid = g;
        }
        let outs = step.io_start as usize + step.n_in as usize;
        let mut y_q = heapless::Vec::<(usize, u32, u32), MAX_OUTPUTS>::new();
        for &y in &self.io[outs..][..step.n_out as usize] {
            let Some((j, _, q)) = self.quantized_by(y, k) else {
                return;
            };
            if grid.is_none() || self.grid(j) != grid || y_q.push((j, y, q)).is_err() {
                return;
            }
        }
        for (slot, &t) in x_q.iter().enumerate() {
            self.io[step.io_start as usize + slot] = t;
            if let Some(b) = self.buf_of(t) {
                let buf = &mut self.bufs[b as usize];
                buf.last = buf.last.max(k as u32 + 1);
            }
        }
        for (slot, &(j, y, q)) in y_q.iter().enumerate() {
            if let (Some(b_y), Some(b_q)) = (self.buf_of(y), self.buf_of(q)) {
                self.bufs[b_q as usize].first = self.bufs[b_y as usize].first;
            }
            self.drop_tensor(y);
            self.tombstone(j);
            self.io[outs + slot] = q;
        }
    }
}
