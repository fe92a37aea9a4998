//! Activation fusion: a Conv (float or [int8](super::qdq)) whose output only feeds an
//! activation writes the activation's output itself and the activation's steps vanish.
//!
//! Patterns (after all steps exist, before memory planning):
//! - SiLU as exporters write it: `c = Conv(..)`, `s = Sigmoid(c)`, `y = Mul(c, s)` (either
//!   operand order, no broadcasting);
//! - `y = Relu(c)` and `y = Clip(c)` (bounds already constant in the prepared op).
//!
//! Only when `c` (and `s`) are read by exactly those steps, through no view, and are not
//! graph outputs: then nobody can observe them and the fused Conv writes `y` directly. The
//! activation formulas are the standalone ops' ([`Activation`]), so fusing changes no bit.
//! Lifetimes are fixed up for the memory planner: `y` is now written at the Conv's time and
//! `c`/`s` take no memory (their buffers shrink to zero bytes and the tensors lose their
//! storage).
//!
//! After each conv's activation, an int8 conv also takes the QuantizeLinear that alone
//! reads its output ([`Tables::requantize_at`]): it then writes the int8 tensor itself.

use super::memory::Buf;
use super::{Step, Storage, TensorInfo, NONE};
use crate::ops::binary::BinOp;
use crate::ops::unary::{Activation, Unary};
use crate::ops::Op;

/// The plan tables fusion rewrites.
pub(super) struct Tables<'p, 'a> {
    pub steps: &'p mut [Step],
    pub io: &'p mut [u32],
    pub tensors: &'p mut [TensorInfo<'a>],
    pub bufs: &'p mut [Buf],
    /// Graph output tensors.
    pub outputs: &'p [u32],
}

/// A step's input tensor ids.
pub(super) fn inputs<'p>(io: &'p [u32], s: &Step) -> &'p [u32] {
    &io[s.io_start as usize..][..s.n_in as usize]
}

/// A step's single output tensor id, if it has exactly one.
pub(super) fn only_output(io: &[u32], s: &Step) -> Option<u32> {
    (s.n_out == 1).then(|| io[s.io_start as usize + s.n_in as usize])
}

impl Tables<'_, '_> {
    pub(super) fn buf_of(&self, t: u32) -> Option<u32> {
        match self.tensors[t as usize].storage {
            Storage::Buf(b) => Some(b),
            _ => None,
        }
    }

    /// Reads of buffer `b` by steps other than `except`, as (step, tensor) pairs, when there
    /// are at most `N` of them and `b` holds no graph output; `None` otherwise.
    pub(super) fn sole_readers<const N: usize>(
        &self,
        b: u32,
        except: usize,
    ) -> Option<heapless::Vec<(usize, u32), N>> {
        let in_b = |t: u32| t != NONE && self.buf_of(t) == Some(b);
        if self.outputs.iter().any(|&t| in_b(t)) {
            return None;
        }
        let mut found = heapless::Vec::new();
        for (k, s) in self.steps.iter().enumerate() {
            if k == except || matches!(s.op, Op::Const) {
                continue;
            }
            for &t in inputs(self.io, s).iter().filter(|&&t| in_b(t)) {
                found.push((k, t)).ok()?;
            }
        }
        Some(found)
    }

    /// The activation that can be fused into the conv at step `k`, with the steps it
    /// replaces and the tensor the fused step writes.
    fn pattern(&self, k: usize) -> Option<(Activation, heapless::Vec<usize, 2>, u32)> {
        let c = only_output(self.io, &self.steps[k])?;
        let readers = self.sole_readers::<3>(self.buf_of(c)?, k)?;
        let shape = self.tensors[c as usize].shape;
        let same_shape = |t: u32| self.tensors[t as usize].shape == shape;
        let mut replaced = heapless::Vec::new();
        let op_of = |j: usize| self.steps[j].op;
        match *readers.as_slice() {
            [(j, t)] if t == c => {
                let Op::Unary(u) = op_of(j) else { return None };
                let act = Activation::of_unary(u)?;
                let y = only_output(self.io, &self.steps[j]).filter(|&y| same_shape(y))?;
                self.buf_of(y)?;
                let _ = replaced.push(j);
                Some((act, replaced, y))
            }
            [(j1, t1), (j2, t2)] if t1 == c && t2 == c && j1 != j2 => {
                let (sig, mul) = match (op_of(j1), op_of(j2)) {
                    (Op::Unary(Unary::Sigmoid), Op::Binary(b)) if b.op == BinOp::Mul => (j1, j2),
                    (Op::Binary(b), Op::Unary(Unary::Sigmoid)) if b.op == BinOp::Mul => (j2, j1),
                    _ => return None,
                };
                let s = only_output(self.io, &self.steps[sig])?;
                let s_readers = self.sole_readers::<1>(self.buf_of(s)?, sig)?;
                let mul_in = inputs(self.io, &self.steps[mul]);
                let operands_ok = s_readers.as_slice() == [(mul, s)]
                    && (mul_in == [c, s] || mul_in == [s, c])
                    && same_shape(s);
                let y = only_output(self.io, &self.steps[mul]).filter(|&y| same_shape(y))?;
                if !operands_ok || self.buf_of(y).is_none() {
                    return None;
                }
                let _ = replaced.push(sig);
                let _ = replaced.push(mul);
                Some((Activation::Silu, replaced, y))
            }
            _ => None,
        }
    }

    /// Frees tensor `t`: no storage, a zero-byte buffer.
    pub(super) fn drop_tensor(&mut self, t: u32) {
        if let Some(b) = self.buf_of(t) {
            self.bufs[b as usize].size = 0;
        }
        self.tensors[t as usize].storage = Storage::Undefined;
    }

    fn fuse_at(&mut self, k: usize) {
        let op = self.steps[k].op;
        let fused = |act| match op {
            Op::Conv(c) if c.activation().is_none() => Some(Op::Conv(c.with_activation(act))),
            Op::QConv(c) if c.activation().is_none() => Some(Op::QConv(c.with_activation(act))),
            _ => None,
        };
        if fused(Activation::Relu).is_none() {
            return;
        }
        let Some((act, replaced, y)) = self.pattern(k) else {
            return;
        };
        let out_slot = self.steps[k].io_start as usize + self.steps[k].n_in as usize;
        let c = self.io[out_slot];
        let (Some(bc), Some(by)) = (self.buf_of(c), self.buf_of(y)) else {
            return;
        };
        self.bufs[by as usize].first = self.bufs[bc as usize].first;
        self.drop_tensor(c);
        for &j in &replaced {
            let s = self.steps[j];
            if let Some(out) = only_output(self.io, &s).filter(|&t| t != y) {
                self.drop_tensor(out);
            }
            if s.scratch != NONE {
                self.bufs[s.scratch as usize].size = 0;
            }
            self.steps[k].macs += s.macs;
            // Tombstone: prepared ops are never `Const`, so `compact` drops exactly these.
            self.steps[j].op = Op::Const;
        }
        self.io[out_slot] = y;
        if let Some(op) = fused(act) {
            self.steps[k].op = op;
        }
    }

    /// Fuses every pattern and returns the number of steps left (moved to the front, in
    /// order).
    pub fn fuse(mut self) -> usize {
        for k in 0..self.steps.len() {
            self.fuse_at(k);
            self.requantize_at(k);
        }
        let mut n = 0;
        for k in 0..self.steps.len() {
            if !matches!(self.steps[k].op, Op::Const) {
                self.steps[n] = self.steps[k];
                n += 1;
            }
        }
        n
    }
}
