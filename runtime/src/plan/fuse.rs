//! Activation fusion: a Conv (float or [int8](super::qdq)) whose output only feeds an
//! activation writes the activation's output itself and the activation's steps vanish.
//!
//! Patterns (after all steps exist, before memory planning):
//! - SiLU as exporters write it: `c = Conv(..)`, `s = Sigmoid(c)`, `y = Mul(c, s)` (either
//!   operand order, no broadcasting);
//! - `y = Relu(c)`, `y = Clip(c)` (bounds already constant in the prepared op),
//!   `y = HardSigmoid(c)` and `y = HardSwish(c)`;
//! - hard-swish as exporters without the HardSwish op write it (MobileNetV3 from
//!   PaddlePaddle, PyTorch before opset 14): `Div(Mul(c, Clip(Add(c, 3), 0, 6)), 6)`, the
//!   Mul's operands in either order.
//!
//! Only when `c` and every intermediate are read by exactly those steps, through no view,
//! and are not graph outputs: then nobody can observe them and the fused Conv writes `y` directly. The
//! activation formulas are the standalone ops' ([`Activation`]), so fusing changes no bit.
//! Lifetimes are fixed up for the memory planner: `y` is now written at the Conv's time and
//! `c` and the intermediates take no memory (their buffers shrink to zero bytes and the tensors lose their
//! storage).
//!
//! After each conv's activation, an int8 conv also takes the QuantizeLinear that alone
//! reads its output ([`Tables::requantize_at`]): it then writes the int8 tensor itself.

use super::memory::Buf;
use super::{Step, Storage, TensorInfo, NONE};
use crate::ops::binary::BinOp;
use crate::ops::unary::{Activation, Unary};
use crate::ops::Op;
use crate::tensor::{DType, F32Source};

/// The steps an activation fusion removes, in graph order.
pub(super) type Replaced = heapless::Vec<usize, 4>;

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

    /// The activation that can be fused into the conv (or other single-output step) at
    /// step `k`, with the steps it replaces and the tensor the fused step writes.
    pub(super) fn pattern(&self, k: usize) -> Option<(Activation, Replaced, u32)> {
        let c = only_output(self.io, &self.steps[k])?;
        let readers = self.sole_readers::<3>(self.buf_of(c)?, k)?;
        let (act, replaced) = match *readers.as_slice() {
            [(j, t)] if t == c => {
                let Op::Unary(u) = self.steps[j].op else {
                    return None;
                };
                (Activation::of_unary(u)?, Replaced::from_slice(&[j]).ok()?)
            }
            [(j1, t1), (j2, t2)] if t1 == c && t2 == c && j1 != j2 => self
                .silu(c, j1, j2)
                .or_else(|| self.silu(c, j2, j1))
                .or_else(|| self.hard_swish(c, j1, j2))
                .or_else(|| self.hard_swish(c, j2, j1))?,
            _ => return None,
        };
        // Every replaced step writes one tensor of the conv's shape (no broadcasting); the
        // last one's is what the fused conv writes.
        let shape = self.tensors[c as usize].shape;
        let mut y = NONE;
        for &j in &replaced {
            y = only_output(self.io, &self.steps[j])?;
            if self.tensors[y as usize].shape != shape {
                return None;
            }
        }
        self.buf_of(y)?;
        Some((act, replaced, y))
    }

    /// The single reader of step `j`'s output, read directly: `(step, its input slots)`.
    fn next_of(&self, j: usize) -> Option<(usize, &[u32])> {
        let out = only_output(self.io, &self.steps[j])?;
        match *self.sole_readers::<1>(self.buf_of(out)?, j)?.as_slice() {
            [(next, t)] if t == out => Some((next, inputs(self.io, &self.steps[next]))),
            _ => None,
        }
    }

    /// Whether `t` is a constant f32 scalar equal to `value`.
    fn is_scalar(&self, t: u32, value: f32) -> bool {
        self.constant(t).is_some_and(|v| {
            v.dtype == DType::F32
                && v.shape.volume() == 1
                && crate::with_f32!(v.f32(), |x| x.at(0)) == value
        })
    }

    /// SiLU: `sig = Sigmoid(c)` and `mul = Mul(c, s)`, the Sigmoid's output read by the
    /// Mul alone.
    fn silu(&self, c: u32, sig: usize, mul: usize) -> Option<(Activation, Replaced)> {
        let is_sigmoid = matches!(self.steps[sig].op, Op::Unary(Unary::Sigmoid));
        if !is_sigmoid || !self.is_binary(mul, BinOp::Mul) {
            return None;
        }
        let s = only_output(self.io, &self.steps[sig])?;
        let (next, mul_in) = self.next_of(sig)?;
        if next != mul || !(mul_in == [c, s] || mul_in == [s, c]) {
            return None;
        }
        Some((Activation::Silu, Replaced::from_slice(&[sig, mul]).ok()?))
    }

    /// Decomposed hard-swish: `add = Add(c, 3)`, `Clip(add, 0, 6)`, `mul = Mul(c, clip)`,
    /// `Div(mul, 6)`, each intermediate read by the next step alone.
    fn hard_swish(&self, c: u32, add: usize, mul: usize) -> Option<(Activation, Replaced)> {
        let add_in = inputs(self.io, &self.steps[add]);
        let three = match *add_in {
            [a, b] if a == c => b,
            [a, b] if b == c => a,
            _ => return None,
        };
        if !self.is_binary(add, BinOp::Add) || !self.is_scalar(three, 3.0) {
            return None;
        }
        let (clip, _) = self.next_of(add)?;
        if !matches!(self.steps[clip].op, Op::Unary(Unary::Clip(lo, hi)) if lo == 0.0 && hi == 6.0)
        {
            return None;
        }
        let k = only_output(self.io, &self.steps[clip])?;
        let (next, mul_in) = self.next_of(clip)?;
        if next != mul
            || !self.is_binary(mul, BinOp::Mul)
            || !(mul_in == [c, k] || mul_in == [k, c])
        {
            return None;
        }
        let m = only_output(self.io, &self.steps[mul])?;
        let (div, div_in) = self.next_of(mul)?;
        if !self.is_binary(div, BinOp::Div)
            || div_in.len() != 2
            || div_in[0] != m
            || !self.is_scalar(div_in[1], 6.0)
        {
            return None;
        }
        let replaced = Replaced::from_slice(&[add, clip, mul, div]).ok()?;
        Some((Activation::HardSwishDecomposed, replaced))
    }

    /// Whether step `j` is the binary op `op`.
    fn is_binary(&self, j: usize, op: BinOp) -> bool {
        matches!(self.steps[j].op, Op::Binary(b) if b.op == op)
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
            // (One with an output quantization or table already ends on that.)
            Op::QConv(c) if c.activation().is_none() && c.requant().is_none() => {
                Some(Op::QConv(c.with_activation(act)))
            }
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
