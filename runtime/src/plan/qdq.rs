//! QDQ fusion: a Conv whose operands are dequantized int8 runs on int8.
//!
//! The pattern, as the compressor's int8 pass writes it (after all steps exist, before
//! [activation fusion](super::fuse), which then fuses SiLU/Relu/Clip into the int8 conv
//! the same way):
//!
//! ```text
//! x_q = QuantizeLinear(x)          (stays: writes the int8 activation once)
//! x_f = DequantizeLinear(x_q, s_x, z_x)        per tensor, int8
//! w_f = DequantizeLinear(W_i8, s_w[, 0])       constant int8, per tensor or axis 0, zero point 0
//! b_f = bias: absent, constant f32, or DequantizeLinear of a constant
//! y   = Conv(x_f, w_f[, b_f])                  depthwise too (a direct int8 kernel)
//! ```
//!
//! becomes `y = QConv(x_q, W_i8, table)`: the weights are read in place as int8 (the
//! weight DequantizeLinear step and its f32 buffer vanish — less flash traffic, less
//! arena), and `table` (`[s_x·s_w] ++ [bias[c]] ++ [Σ W[c]]`: one multiplier for a
//! per-tensor weight scale or one per channel, so 8 or 12 bytes per output channel) is
//! built once into the arena's persistent tail. `w_f` must be read by this Conv only (its
//! tensor entry is reused for the table) and `x_f` may have other readers: its
//! DequantizeLinear step is dropped once no step reads it any more, as are bias ones.
//! Anything else — uint8 activations, non-zero weight zero points, per-axis activation
//! scales — is left to the float (fake-quant) path, which computes the same function.
//!
//! Later, after [activation fusion](super::fuse), a per-tensor int8 `QuantizeLinear`
//! that is the only reader of such a conv's (activated) output joins it too: the conv's
//! epilogue writes the int8 tensor, which is what the next int8 conv reads, so between two
//! int8 convs nothing runs and no f32 tensor exists. One that alone reads a Concat's
//! output joins the Concat the same way (the branches of a CSP/ELAN block are joined and
//! quantized in one pass).
//!
//! Before that, a Concat, Split or MaxPool between int8 tensors of one grid, and an Add or
//! AveragePool between int8 tensors, are rewired to run on the int8 tensors themselves ([`joins`]):
//! nothing is dequantized.
//!
//! When that int8 output is only dequantized into an activation whose output is quantized
//! again (or read as float), the planner tabulates the chain instead ([`table`]): the conv
//! stores `table[q]` and no activation runs.
//!
//! The rewired step needs four io slots `[x_q, W_i8, table, y]`: the Conv's own, since the
//! planner gives every Conv three input slots (an empty one when it has no bias), so the io
//! table never grows.

mod joins;
mod lstm;
mod matmul;
mod table;

use super::fuse::{inputs, only_output, Tables};
use super::{Storage, TensorInfo, FOLD_LIMIT, NONE};
use crate::arena::Bump;
use crate::error::Result;
use crate::ops::conv::{Conv, QConv};
use crate::ops::kernels::Kernels;
use crate::ops::qgemm::{row_sums, Requant};
use crate::ops::quant::{dequantize, Direction, Quant};
use crate::ops::{Io, Op};
use crate::target::Target;
use crate::tensor::{DType, F32Source, Shape, TensorMut, TensorRef};
use table::Tabulation;

/// What one matched Conv turns into.
struct Match<'a> {
    q: QConv,
    x_q: u32,
    w_q: u32,
    w_f: u32,
    dq_w: usize,
    /// Per-tensor activation scale.
    s_x: f32,
    /// The int8 weights.
    w: TensorRef<'a>,
    /// Weight scale: one value, or one per output channel.
    s_w: TensorRef<'a>,
    bias: Bias<'a>,
}

/// Where the float bias comes from.
enum Bias<'a> {
    None,
    Float(TensorRef<'a>),
    /// `DequantizeLinear(q, scale[, zero_point])` of constants.
    Dequantized(TensorRef<'a>, TensorRef<'a>, Option<TensorRef<'a>>),
}

/// A step's input read through `DequantizeLinear(W_i8, s_f32[, 0])` of constants that no
/// other step reads: the int8 weights that LSTM ([`lstm`]), MatMul and Gemm ([`matmul`])
/// read in place, once their own layout checks pass.
struct Int8Weight<'a> {
    /// The DequantizeLinear step (tombstoned by the rewrite).
    dq: usize,
    /// Its f32 output, the step's input as written (dropped by the rewrite).
    w_f: u32,
    /// The int8 constant.
    w_q: u32,
    /// The f32 scales.
    scales: u32,
    /// The DequantizeLinear's layout (quantized axis).
    quant: Quant,
    /// The values of `w_q` and `scales`.
    w: TensorRef<'a>,
    s: TensorRef<'a>,
}

impl<'a> Tables<'_, 'a> {
    /// Input `slot` of step `k` as an [`Int8Weight`], when it is one.
    fn int8_weight(&self, k: usize, slot: usize) -> Option<Int8Weight<'a>> {
        let w_f = self.input_of(k, slot);
        let (dq, quant) = self.dequantized_by(w_f)?;
        let (w_q, scales) = (self.input_of(dq, 0), self.input_of(dq, 1));
        let (w, s) = (self.constant(w_q)?, self.constant(scales)?);
        let ok = quant.int == DType::I8
            && w.dtype == DType::I8
            && s.dtype == DType::F32
            && self.zero_or_absent(self.input_of(dq, 2))
            && self.sole_readers::<0>(self.buf_of(w_f)?, k).is_some();
        ok.then_some(Int8Weight {
            dq,
            w_f,
            w_q,
            scales,
            quant,
            w,
            s,
        })
    }

    /// The constant value of tensor `t`.
    pub(super) fn constant(&self, t: u32) -> Option<TensorRef<'a>> {
        let info = self.tensors.get(t as usize)?;
        match info.storage {
            Storage::Const(bytes) => Some(TensorRef {
                dtype: info.dtype,
                shape: info.shape,
                bytes,
            }),
            _ => None,
        }
    }

    /// The live step that writes `t`, with its DequantizeLinear parameters when it is one.
    fn dequantized_by(&self, t: u32) -> Option<(usize, Quant)> {
        self.steps
            .iter()
            .position(|s| !matches!(s.op, Op::Const) && only_output(self.io, s) == Some(t))
            .and_then(|j| match self.steps[j].op {
                Op::Quant(q) if q.direction == Direction::Dequantize => Some((j, q)),
                _ => None,
            })
    }

    /// The input slot `i` of step `j`, or NONE.
    fn input_of(&self, j: usize, i: usize) -> u32 {
        inputs(self.io, &self.steps[j])
            .get(i)
            .copied()
            .unwrap_or(NONE)
    }

    /// Whether every value of an optional integer zero point is 0.
    fn zero_or_absent(&self, t: u32) -> bool {
        t == NONE
            || self
                .constant(t)
                .is_some_and(|z| (0..z.shape.volume()).all(|i| z.i64_at(i) == 0))
    }

    fn match_at(&self, k: usize, conv: Conv, target: Target) -> Option<Match<'a>> {
        let step = &self.steps[k];
        // The rewired step reuses the Conv's four io slots (`input_slots` gives it three
        // inputs; only a Conv planned some other way could have fewer).
        if step.n_in < 3 || step.n_out != 1 {
            return None;
        }
        let ins = inputs(self.io, step);
        let (x_f, w_f, b_f) = (ins[0], ins[1], ins.get(2).copied().unwrap_or(NONE));
        let channels = conv.channels();
        // Weights: constant int8, zero point 0, scale per tensor or per output channel.
        let (dq_w, qw) = self.dequantized_by(w_f)?;
        let (w_q, s_w) = (self.input_of(dq_w, 0), self.input_of(dq_w, 1));
        let per_channel_ok = qw.channels == 1
            || (qw.channels == channels
                && qw.inner * channels == self.tensors[w_q as usize].shape.volume());
        let w = self.constant(w_q)?;
        if qw.int != DType::I8
            || !per_channel_ok
            || !self.zero_or_absent(self.input_of(dq_w, 2))
            || self.sole_readers::<0>(self.buf_of(w_f)?, k).is_none()
        {
            return None;
        }
        let s_w = self.constant(s_w)?;
        // Activation: int8 in an arena buffer, per tensor, constant scale and zero point.
        let (dq_x, qx) = self.dequantized_by(x_f)?;
        let x_q = self.input_of(dq_x, 0);
        self.buf_of(x_q)?;
        if qx.int != DType::I8 || qx.channels != 1 {
            return None;
        }
        let s_x = self.constant(self.input_of(dq_x, 1))?.f32();
        let z_x = match self.input_of(dq_x, 2) {
            NONE => 0,
            z => self.constant(z)?.i64_at(0) as i8,
        };
        let bias = match b_f {
            NONE => Bias::None,
            b => match self.constant(b) {
                Some(t) => Bias::Float(t),
                None => {
                    let (dq_b, qb) = self.dequantized_by(b)?;
                    let c = |i| self.constant(self.input_of(dq_b, i));
                    let zero = match self.input_of(dq_b, 2) {
                        NONE => None,
                        _ => Some(c(2)?),
                    };
                    if qb.channels != 1 && qb.channels != channels {
                        return None;
                    }
                    Bias::Dequantized(c(0)?, c(1)?, zero)
                }
            },
        };
        Some(Match {
            q: conv.quantized(target, z_x, w.bytes)?,
            x_q,
            w_q,
            w_f,
            dq_w,
            s_x: crate::with_f32!(s_x, |s| s.at(0)),
            w,
            s_w,
            bias,
        })
    }

    /// Builds the `[mul] ++ [bias] ++ [w_sum] ++ [activation]` table of `m` in the arena's
    /// tail: one `mul` for a per-tensor weight scale (most convs), else one per channel;
    /// one bias and one weight row sum per channel; then the activation table of `tab`.
    fn table(m: &Match<'a>, tab: Option<&Tabulation>, bump: &mut Bump<'a>) -> Result<&'a [u8]> {
        let n = m.q.channels();
        let per = |t: &TensorRef, c: usize| if t.shape.volume() == 1 { 0 } else { c };
        let n_mul = if m.s_w.shape.volume() == 1 { 1 } else { n };
        let tab_bytes = tab.map_or(0, Tabulation::bytes);
        let bytes = bump.bytes(4 * (n_mul + 2 * n) + tab_bytes)?;
        let (mul, rest) = bytes.split_at_mut(4 * n_mul);
        let (bias, rest) = rest.split_at_mut(4 * n);
        let (sums, activation) = rest.split_at_mut(4 * n);
        if let Some(t) = tab {
            t.fill(activation);
        }
        // The tail is aligned, so the i32 view cannot fail.
        row_sums(m.w.bytes, m.q.depth(), bytemuck::cast_slice_mut(sums));
        for (c, v) in mul.chunks_exact_mut(4).enumerate() {
            let s_w = crate::with_f32!(m.s_w.f32(), |s| s.at(per(&m.s_w, c)));
            v.copy_from_slice(&(m.s_x * s_w).to_le_bytes());
        }
        for (c, v) in bias.chunks_exact_mut(4).enumerate() {
            let b = match &m.bias {
                Bias::None => 0.0,
                Bias::Float(t) => crate::with_weights!(t.weights(), |t| t.at(c)),
                Bias::Dequantized(q, s, z) => {
                    let i = per(s, c);
                    let scale = crate::with_f32!(s.f32(), |s| s.at(i));
                    dequantize(q.i64_at(c), scale, z.map_or(0, |z| z.i64_at(i)))
                }
            };
            v.copy_from_slice(&b.to_le_bytes());
        }
        Ok(bytes)
    }

    /// Rewrites every matching Conv into a [`QConv`], then drops the DequantizeLinear
    /// steps nobody reads any more. Removed steps become `Op::Const` tombstones, which
    /// [`Tables::fuse`] compacts away.
    /// Folds go through `kernels`, their families recorded in `used`.
    pub fn quantize(
        &mut self,
        bump: &mut Bump<'a>,
        target: Target,
        kernels: Kernels,
        used: &mut u32,
    ) -> Result<()> {
        for k in 0..self.steps.len() {
            let Op::Conv(conv) = self.steps[k].op else {
                continue;
            };
            let Some(m) = self.match_at(k, conv, target) else {
                continue;
            };
            // (The int8 output an activation table needs may take more scratch.)
            let tab = (self.steps[k].scratch != NONE)
                .then(|| self.tabulation(k))
                .flatten();
            let table = Self::table(&m, tab.as_ref(), bump)?;
            let y = only_output(self.io, &self.steps[k]).unwrap_or(NONE);
            self.drop_tensor(m.w_f);
            self.tensors[m.w_f as usize] = TensorInfo {
                dtype: DType::F32,
                // f32 multipliers and biases, i32 sums, then any activation table: eval
                // reads it by parts.
                shape: Shape::new(&[table.len() / 4])?,
                storage: Storage::Const(table),
                ..self.tensors[m.w_f as usize]
            };
            self.tombstone(m.dq_w);
            // x_q is now read at the conv's time (step k runs at time k + 1).
            if let Some(b) = self.buf_of(m.x_q) {
                let buf = &mut self.bufs[b as usize];
                buf.last = buf.last.max(k as u32 + 1);
            }
            let step = &mut self.steps[k];
            self.io[step.io_start as usize..][..4].copy_from_slice(&[m.x_q, m.w_q, m.w_f, y]);
            step.n_in = 3;
            let q = match &tab {
                Some(t) => m.q.with_table(t.requant, t.dtype()),
                None => m.q,
            };
            step.op = Op::QConv(q);
            if step.scratch != NONE {
                self.bufs[step.scratch as usize].size = crate::arena::align_up(q.scratch_bytes());
            }
            if let Some(t) = tab {
                self.tabulate(k, &t);
            }
        }
        self.join_int8();
        for j in 0..self.steps.len() {
            let Op::Quant(q) = self.steps[j].op else {
                continue;
            };
            let Some(out) = only_output(self.io, &self.steps[j]) else {
                continue;
            };
            let unread = self
                .buf_of(out)
                .and_then(|b| self.sole_readers::<0>(b, j))
                .is_some();
            if q.direction == Direction::Dequantize && unread {
                self.drop_tensor(out);
                self.tombstone(j);
            } else if deferred(&self.steps[j].op) {
                self.fold(j, out, bump, kernels, used)?;
            }
        }
        Ok(())
    }

    /// Folds a [deferred](deferred) weight DequantizeLinear that no int8 conv took, as
    /// planning folds every small constant node: its value goes to the arena's tail and
    /// the step vanishes. Larger ones stay steps (folding never trades flash for RAM).
    fn fold(
        &mut self,
        j: usize,
        out: u32,
        bump: &mut Bump<'a>,
        kernels: Kernels,
        used: &mut u32,
    ) -> Result<()> {
        let info = self.tensors[out as usize];
        if info.nbytes() > FOLD_LIMIT {
            return Ok(());
        }
        let mut io = Io {
            inputs: heapless::Vec::new(),
            outputs: heapless::Vec::new(),
            scratch: &mut [],
        };
        for &t in inputs(self.io, &self.steps[j]) {
            let value = match t {
                NONE => None,
                // An input that is not constant: it stays a step.
                t => Some(match self.constant(t) {
                    Some(v) => v,
                    None => return Ok(()),
                }),
            };
            let _ = io.inputs.push(value);
        }
        let bytes: &'a mut [u8] = bump.bytes(info.nbytes())?;
        let _ = io.outputs.push(TensorMut {
            dtype: info.dtype,
            shape: info.shape,
            bytes,
        });
        kernels.fold(&self.steps[j].op, &mut io, used)?;
        let value: &'a [u8] = io.outputs.pop().map_or(&[], |t| t.bytes);
        self.drop_tensor(out);
        self.tensors[out as usize].storage = Storage::Const(value);
        self.tombstone(j);
        Ok(())
    }

    /// Fuses the QuantizeLinear that alone reads the output of the int8 conv or the Concat
    /// at step `k` into it ([`QConv::with_requant`], [`Concat::with_requant`]): per tensor,
    /// int8, constant scale and zero point, reading a float32 tensor directly (not through
    /// a view). The step then writes the int8 tensor at its own time, and the f32 one and
    /// the QuantizeLinear step vanish. Runs after activation fusion, so a conv's output is
    /// the activation's.
    ///
    /// [`Concat::with_requant`]: crate::ops::concat::Concat::with_requant
    pub(super) fn requantize_at(&mut self, k: usize) {
        let (op, scratch) = (self.steps[k].op, self.steps[k].scratch);
        let fusable = match op {
            Op::QConv(c) => c.requant().is_none() && scratch != NONE,
            Op::Concat(c) => c.requant().is_none(),
            _ => false,
        };
        let Some(y) = only_output(self.io, &self.steps[k]).filter(|_| fusable) else {
            return;
        };
        let Some((j, requant, y_q)) = self.quantized_by(y, k) else {
            return;
        };
        let (Some(b_y), Some(b_q)) = (self.buf_of(y), self.buf_of(y_q)) else {
            return;
        };
        self.bufs[b_q as usize].first = self.bufs[b_y as usize].first;
        self.drop_tensor(y);
        self.tombstone(j);
        let step = &mut self.steps[k];
        self.io[step.io_start as usize + step.n_in as usize] = y_q;
        step.op = match op {
            Op::QConv(conv) => {
                let conv = conv.with_requant(requant);
                self.bufs[scratch as usize].size = crate::arena::align_up(conv.scratch_bytes());
                Op::QConv(conv)
            }
            Op::Concat(concat) => Op::Concat(concat.with_requant(requant)),
            other => other,
        };
    }

    /// The QuantizeLinear that alone reads the f32 tensor `t` (which step `writer`
    /// writes), directly: per tensor, int8, constant scale and zero point, writing an
    /// arena buffer. Its step, parameters and output.
    fn quantized_by(&self, t: u32, writer: usize) -> Option<(usize, Requant, u32)> {
        if self.tensors[t as usize].dtype != DType::F32 {
            return None;
        }
        let readers = self.sole_readers::<1>(self.buf_of(t)?, writer)?;
        let [(j, read)] = *readers.as_slice() else {
            return None;
        };
        let Op::Quant(q) = self.steps[j].op else {
            return None;
        };
        let per_tensor_int8 =
            q.direction == Direction::Quantize && q.int == DType::I8 && q.channels == 1;
        let scale = self.constant(self.input_of(j, 1))?;
        let zero = self.constant(self.input_of(j, 2))?;
        let y_q = only_output(self.io, &self.steps[j])?;
        self.buf_of(y_q)?;
        let requant = Requant::new(
            crate::with_f32!(scale.f32(), |s| s.at(0)),
            zero.i64_at(0) as i8,
        );
        (read == t && per_tensor_int8).then_some((j, requant, y_q))
    }

    /// Removes step `j` (its scratch too).
    fn tombstone(&mut self, j: usize) {
        if self.steps[j].scratch != NONE {
            self.bufs[self.steps[j].scratch as usize].size = 0;
        }
        self.steps[j].op = Op::Const;
    }
}

/// Whether planning leaves this node's all-constant outputs unfolded for this pass: a
/// weight DequantizeLinear (int8), which an int8 conv reads in place instead. The pass
/// folds those left over ([`Tables::fold`]).
pub(super) fn deferred(op: &Op) -> bool {
    matches!(op, Op::Quant(q) if q.direction == Direction::Dequantize && q.int == DType::I8)
}
