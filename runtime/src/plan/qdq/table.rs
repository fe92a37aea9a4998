//! Activation tables: an int8 conv whose output is quantized, dequantized into an
//! activation and (usually) quantized again becomes one QConv that stores `table[q]`.
//!
//! The graph, as the compressor's `--act-tables` writes it (TFLite's int8 activations):
//!
//! ```text
//! c   = Conv(..)                  an int8 conv (super)
//! c_q = QuantizeLinear(c)         per tensor, int8
//! c_f = DequantizeLinear(c_q)     per tensor, int8
//! y   = act(c_f)                  any pattern activation fusion knows: SiLU, Relu, Clip,
//!                                 HardSigmoid, hard-swish
//! y_q = QuantizeLinear(y)         optional (per tensor, int8): absent when a Concat or a
//!                                 float op reads y
//! ```
//!
//! `act` then only ever sees 256 inputs, so the planner runs `DequantizeLinear → act →
//! QuantizeLinear` once on each of them into a 256-entry table (int8 entries, or f32 ones
//! without `y_q`) appended to the conv's table, and the conv's epilogue stores
//! `table[c_q]` ([`Store::Int8Table`], [`Store::F32Table`]): one lookup instead of an
//! exponential and a division per value, and no f32 tensor in between. The entries come
//! from the functions the unfused steps run (`dequantize`, [`Activation::apply`],
//! [`Requant::quantize`]), so the fused conv writes what they would, bit for bit.
//!
//! [`Store::Int8Table`]: crate::ops::qgemm::Store::Int8Table
//! [`Store::F32Table`]: crate::ops::qgemm::Store::F32Table

use super::super::fuse::{only_output, Replaced, Tables};
use super::NONE;
use crate::ops::qgemm::Requant;
use crate::ops::quant::{dequantize, Direction};
use crate::ops::unary::Activation;
use crate::ops::Op;
use crate::tensor::{DType, F32Source};

/// The chain after an int8 conv that one table replaces.
pub(super) struct Tabulation {
    /// The conv's output QuantizeLinear, fused into the conv.
    pub requant: Requant,
    /// The DequantizeLinear's scale and zero point.
    scale: f32,
    zero: i64,
    act: Activation,
    /// The QuantizeLinear after the activation, if any.
    then: Option<Requant>,
    /// The steps that vanish: QuantizeLinear, DequantizeLinear, the activation's, and
    /// the last QuantizeLinear if any.
    steps: heapless::Vec<usize, 7>,
    /// What the fused conv writes: the last QuantizeLinear's output, or the activation's.
    pub out: u32,
}

impl Tabulation {
    /// The table's entry type.
    pub fn dtype(&self) -> DType {
        match self.then {
            Some(_) => DType::I8,
            None => DType::F32,
        }
    }

    /// Bytes of the table.
    pub fn bytes(&self) -> usize {
        256 * self.dtype().size()
    }

    /// Writes the table: entry `b` for the int8 value whose byte is `b`.
    pub fn fill(&self, out: &mut [u8]) {
        let mut ys: [f32; 256] =
            core::array::from_fn(|b| dequantize(i64::from(b as u8 as i8), self.scale, self.zero));
        self.act.apply(&mut ys);
        match self.then {
            Some(rq) => {
                for (o, &y) in out.iter_mut().zip(&ys) {
                    *o = rq.quantize(y);
                }
            }
            None => {
                for (o, y) in out.chunks_exact_mut(4).zip(&ys) {
                    o.copy_from_slice(&y.to_le_bytes());
                }
            }
        }
    }
}

impl Tables<'_, '_> {
    /// The chain after the conv at step `k` that a table can replace, if there is one:
    /// every tensor in it read by the next step alone, directly, and none a graph output.
    pub(super) fn tabulation(&self, k: usize) -> Option<Tabulation> {
        let c = only_output(self.io, &self.steps[k])?;
        self.buf_of(c)?;
        let (q1, requant, c_q) = self.quantized_by(c, k)?;
        let readers = self.sole_readers::<1>(self.buf_of(c_q)?, q1)?;
        let [(dq, read)] = *readers.as_slice() else {
            return None;
        };
        let Op::Quant(q) = self.steps[dq].op else {
            return None;
        };
        if read != c_q
            || q.direction != Direction::Dequantize
            || q.int != DType::I8
            || q.channels != 1
        {
            return None;
        }
        let scale = self.constant(self.input_of(dq, 1))?;
        let zero = match self.input_of(dq, 2) {
            NONE => 0,
            z => self.constant(z)?.i64_at(0),
        };
        let (act, replaced, y): (Activation, Replaced, u32) = self.pattern(dq)?;
        let mut steps = heapless::Vec::new();
        steps.extend_from_slice(&[q1, dq]).ok()?;
        steps.extend_from_slice(&replaced).ok()?;
        let last = *replaced.last()?;
        let (then, out) = match self.quantized_by(y, last) {
            Some((q2, rq, y_q)) => {
                steps.push(q2).ok()?;
                (Some(rq), y_q)
            }
            None => (None, y),
        };
        Some(Tabulation {
            requant,
            scale: crate::with_f32!(scale.f32(), |s| s.at(0)),
            zero,
            act,
            then,
            steps,
            out,
        })
    }

    /// Removes the chain `t` after the conv at step `k`, which now writes `t.out` at its
    /// own time: the intermediate tensors take no memory and the steps vanish (their
    /// MACs counted in the conv's).
    pub(super) fn tabulate(&mut self, k: usize, t: &Tabulation) {
        let out_slot = self.steps[k].io_start as usize + self.steps[k].n_in as usize;
        let c = self.io[out_slot];
        if let (Some(bc), Some(bo)) = (self.buf_of(c), self.buf_of(t.out)) {
            self.bufs[bo as usize].first = self.bufs[bc as usize].first;
        }
        self.drop_tensor(c);
        for &j in &t.steps {
            if let Some(o) = only_output(self.io, &self.steps[j]).filter(|&o| o != t.out) {
                self.drop_tensor(o);
            }
            self.steps[k].macs += self.steps[j].macs;
            self.tombstone(j);
        }
        self.io[out_slot] = t.out;
    }
}
