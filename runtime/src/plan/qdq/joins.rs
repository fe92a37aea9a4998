//! Int8 joins: the Concat, Split, Add and pooling steps between int8 tensors run on them.
//!
//! The compressor's `--int8-joins` quantizes the tensors a CSP/ELAN block joins, cuts and
//! pools as well as the convs' inputs. In standard QDQ form:
//!
//! ```text
//! x_i = DequantizeLinear(x_q_i, s_i, z_i)     every data input, per tensor, int8
//! y.. = Concat(x_0, x_1, ..) / Split(x_0) / MaxPool(x_0) / AveragePool(x_0) / Add(x_0, x_1)
//! y_q = QuantizeLinear(y, s, z)               the only reader of each output
//! ```
//!
//! - **Concat, Split, MaxPool** on one grid for every input and output (as TFLite's int8
//!   kernels require, and as the compressor writes them): `Q(DQ(q)) = q` for every int8
//!   `q` (the float `(q − z) · s` is within half an ulp of the exact product, so dividing
//!   by `s` rounds back to `q − z`), and these ops only move or compare values (a
//!   quantization keeps their order), so the step runs on `x_q_i` and writes `y_q`
//!   directly: a byte copy or a byte max instead of a dequantization, a four-byte op and a
//!   quantization per value. Concat and Split are byte moves of any element type; the
//!   pool has an int8 path ([`crate::ops::pool`]).
//! - **Add** of two same-shape tensors on any grids becomes a [`QAdd`], which computes the
//!   three steps' arithmetic per element without the f32 tensors; an **AveragePool** on any
//!   grids dequantizes, pools and requantizes plane by plane in its scratch.
//!
//! The QuantizeLinear steps vanish, as do the DequantizeLinear ones that nobody else reads
//! ([`Tables::quantize`]'s cleanup). Grids that differ where one is needed, per-axis or
//! uint8 ones, a view between the steps, or another reader of an output leave the float
//! path, which computes the same function.

use super::super::fuse::{inputs, Tables};
use super::NONE;
use crate::ops::binary::BinOp;
use crate::ops::pool::Pool;
use crate::ops::qadd::QAdd;
use crate::ops::qgemm::Requant;
use crate::ops::quant::Grid;
use crate::ops::{Op, MAX_INPUTS, MAX_OUTPUTS};
use crate::tensor::{DType, F32Source};

/// An int8 input of a join: the float input's DequantizeLinear source and grid.
#[derive(Clone, Copy)]
struct In {
    source: u32,
    grid: Grid,
}

/// An output of a join: its f32 tensor, the QuantizeLinear step that alone reads it, that
/// step's int8 output, and its grid.
#[derive(Clone, Copy)]
struct Out {
    y: u32,
    q_step: usize,
    y_q: u32,
    requant: Requant,
}

impl Tables<'_, '_> {
    /// The grid of the per-tensor int8 DequantizeLinear at step `j`, whose scale and zero
    /// point are constants.
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
            z => self.constant(z)?.i64_at(0) as i8,
        };
        Some(Grid {
            scale: crate::with_f32!(scale.f32(), |s| s.at(0)),
            zero,
        })
    }

    /// Runs every Concat, Split, Add and MaxPool between int8 tensors on them (see the
    /// module doc).
    pub(super) fn join_int8(&mut self) {
        for k in 0..self.steps.len() {
            let n_in = self.steps[k].n_in as usize;
            match self.steps[k].op {
                // (A Split's other input is its constant sizes.)
                Op::Split(_) => self.move_int8(k, 1),
                Op::Concat(c) if c.requant().is_none() => self.move_int8(k, n_in),
                Op::Pool(p) if p.is_max() => self.move_int8(k, 1),
                Op::Pool(p) => self.average_int8(k, p),
                Op::Binary(b) if b.op == BinOp::Add => self.add_int8(k),
                _ => {}
            }
        }
    }

    /// The first `data` inputs of step `k` as int8 sources, if each is dequantized.
    fn int8_inputs(&self, k: usize, data: usize) -> Option<heapless::Vec<In, MAX_INPUTS>> {
        let mut found = heapless::Vec::new();
        for &x in inputs(self.io, &self.steps[k]).get(..data)? {
            let (dq, _) = self.dequantized_by(x)?;
            let source = self.input_of(dq, 0);
            self.buf_of(source)?;
            found
                .push(In {
                    source,
                    grid: self.grid(dq)?,
                })
                .ok()?;
        }
        Some(found)
    }

    /// The outputs of step `k`, if each is read by one int8 QuantizeLinear alone.
    fn int8_outputs(&self, k: usize) -> Option<heapless::Vec<Out, MAX_OUTPUTS>> {
        let step = &self.steps[k];
        let outs = step.io_start as usize + step.n_in as usize;
        let mut found = heapless::Vec::new();
        for &y in &self.io[outs..][..step.n_out as usize] {
            let (q_step, requant, y_q) = self.quantized_by(y, k)?;
            found
                .push(Out {
                    y,
                    q_step,
                    y_q,
                    requant,
                })
                .ok()?;
        }
        Some(found)
    }

    /// Concat, Split, MaxPool: on one grid, the step moves the int8 bytes.
    fn move_int8(&mut self, k: usize, data: usize) {
        let (Some(ins), Some(outs)) = (self.int8_inputs(k, data), self.int8_outputs(k)) else {
            return;
        };
        let Some(grid) = ins.first().map(|i| i.grid) else {
            return;
        };
        let same =
            |scale: f32, zero: i8| scale.to_bits() == grid.scale.to_bits() && zero == grid.zero;
        if ins.iter().all(|i| same(i.grid.scale, i.grid.zero))
            && outs.iter().all(|o| same(o.requant.scale, o.requant.zero))
        {
            self.rewire(k, &ins, &outs);
        }
    }

    /// Add of two same-shape int8 tensors: a [`QAdd`].
    fn add_int8(&mut self, k: usize) {
        let (Some(ins), Some(outs)) = (self.int8_inputs(k, 2), self.int8_outputs(k)) else {
            return;
        };
        let shape = |t: u32| self.tensors[t as usize].shape;
        let (&[a, b], &[out]) = (ins.as_slice(), outs.as_slice()) else {
            return;
        };
        if shape(a.source) != shape(out.y) || shape(b.source) != shape(out.y) {
            return;
        }
        self.rewire(k, &ins, &outs);
        self.steps[k].op = Op::QAdd(QAdd {
            a: a.grid,
            b: b.grid,
            out: out.requant,
        });
    }

    /// AveragePool between int8 tensors on any grids: the pool dequantizes and requantizes
    /// itself ([`Pool::with_int8`]), with two f32 planes of scratch instead of two f32
    /// tensors.
    fn average_int8(&mut self, k: usize, pool: Pool) {
        let (Some(ins), Some(outs)) = (self.int8_inputs(k, 1), self.int8_outputs(k)) else {
            return;
        };
        let (&[x], &[y]) = (ins.as_slice(), outs.as_slice()) else {
            return;
        };
        let scratch = self.steps[k].scratch;
        if scratch == NONE {
            return;
        }
        self.rewire(k, &ins, &outs);
        let pool = pool.with_int8(x.grid, y.requant);
        self.bufs[scratch as usize].size = crate::arena::align_up(pool.scratch_bytes());
        self.steps[k].op = Op::Pool(pool);
    }

    /// Step `k` now reads the int8 sources `ins` and writes the QuantizeLinear outputs of
    /// `outs`, whose steps vanish with the f32 outputs.
    fn rewire(&mut self, k: usize, ins: &[In], outs: &[Out]) {
        let step = self.steps[k];
        for (slot, i) in ins.iter().enumerate() {
            self.io[step.io_start as usize + slot] = i.source;
            if let Some(b) = self.buf_of(i.source) {
                let buf = &mut self.bufs[b as usize];
                buf.last = buf.last.max(k as u32 + 1);
            }
        }
        let first_out = step.io_start as usize + step.n_in as usize;
        for (slot, o) in outs.iter().enumerate() {
            if let (Some(b_y), Some(b_q)) = (self.buf_of(o.y), self.buf_of(o.y_q)) {
                self.bufs[b_q as usize].first = self.bufs[b_y as usize].first;
            }
            self.drop_tensor(o.y);
            self.tombstone(o.q_step);
            self.io[first_out + slot] = o.y_q;
        }
    }
}
