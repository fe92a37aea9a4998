//! Recurrent ops ([`mod@lstm`]): a whole sequence runs inside one step.
//!
//! Streaming speech models (RNN-T encoders and predictors) are stacks of single-layer LSTMs
//! whose state goes in and out of the graph once per chunk. A recurrence has two products:
//! the input projection `X·Wᵀ`, which does not depend on the state, and the recurrent
//! `R·h`, which needs the previous step's `h`. Both run on [`dot`]: weight rows times one
//! vector (`R·h`, per step and batch row) or [`dot::ROWS`] vectors at once (the projection
//! of a block of steps, [`Projection`]), reading each weight row once per pass straight
//! from the model bytes: f32, or int8 with one scale per gate row when planning found the
//! compressor's `DequantizeLinear(int8) → LSTM` (`plan/qdq/lstm.rs`, [`dot::Rows`]).
//!
//! Why not the packed GEMM ([`super::gemm`]) for the projection: a chunk has a few to a few
//! dozen rows, so packing Wᵀ (a strided read of the whole matrix) costs as much as the
//! product, and the register tiles are mostly padding. Measured with `edgetrim bench
//! --profile` on a 2-layer, 256-unit encoder (x86_64, AVX2): per LSTM, 8-step chunks took
//! ~500 µs with the GEMM and ~200–300 µs with [`dot`]; at 32 steps both took ~1.0–1.3 ms.
//! [`dot`] also needs no packing scratch (a GEMM's is ~1 MiB on a host).
//!
//! The gate buffer and the state live in the node's kernel scratch, so running allocates
//! nothing. This module holds what ONNX's recurrent ops share: the inputs X, W, R, B,
//! sequence_lens and initial_h, and the `direction`, `layout` and `hidden_size`
//! attributes, all checked at plan time (`prepare_seq`). The gate math is the op's own.

#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod dot;
pub mod lstm;

use super::gemm::Run;
use super::Prep;
use crate::error::Result;
use crate::target::Target;
use crate::tensor::{DType, F32View, Shape};
use crate::with_f32;
use dot::{DotKernel, Rows};
pub use lstm::{eval as eval_lstm, lstm, Lstm};

/// Which way a recurrent op walks the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// First step to last.
    Forward,
    /// Last step to first.
    Reverse,
    /// Both, with separate weights: direction 0 forward, direction 1 reverse.
    Bidirectional,
}

/// Sizes and layout of one recurrent op, fixed at plan time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seq {
    /// Steps.
    pub seq: usize,
    /// Independent sequences.
    pub batch: usize,
    /// Features per step of X.
    pub input: usize,
    /// `hidden_size`.
    pub hidden: usize,
    /// `direction`.
    pub direction: Direction,
    /// `layout = 1`: X is `[batch, seq, input]`, Y `[batch, seq, dirs, hidden]` and the
    /// states `[batch, dirs, hidden]` (instead of `[seq, batch, ..]`, `[seq, dirs, ..]`
    /// and `[dirs, batch, hidden]`).
    pub batch_first: bool,
}

impl Seq {
    /// Number of directions (1 or 2).
    pub fn dirs(&self) -> usize {
        match self.direction {
            Direction::Bidirectional => 2,
            _ => 1,
        }
    }

    /// Whether direction `d` walks from the last step to the first.
    pub fn backward(&self, d: usize) -> bool {
        match self.direction {
            Direction::Forward => false,
            Direction::Reverse => true,
            Direction::Bidirectional => d == 1,
        }
    }

    /// Element offset of step `t`, batch row `b` in X.
    fn x_offset(&self, t: usize, b: usize) -> usize {
        let row = if self.batch_first {
            b * self.seq + t
        } else {
            t * self.batch + b
        };
        row * self.input
    }

    /// Element offset of step `t`, direction `d`, batch row `b` in Y.
    pub fn y_offset(&self, t: usize, d: usize, b: usize) -> usize {
        let dirs = self.dirs();
        let row = if self.batch_first {
            (b * self.seq + t) * dirs + d
        } else {
            (t * dirs + d) * self.batch + b
        };
        row * self.hidden
    }

    /// Element offset of direction `d`, batch row `b` in a state tensor (initial_h,
    /// initial_c, Y_h, Y_c).
    pub fn state_offset(&self, d: usize, b: usize) -> usize {
        let row = if self.batch_first {
            b * self.dirs() + d
        } else {
            d * self.batch + b
        };
        row * self.hidden
    }

    /// Shape of Y.
    pub fn y_shape(&self) -> Result<Shape> {
        let (s, b, d, h) = (self.seq, self.batch, self.dirs(), self.hidden);
        if self.batch_first {
            Shape::new(&[b, s, d, h])
        } else {
            Shape::new(&[s, d, b, h])
        }
    }

    /// Shape of a state tensor.
    pub fn state_shape(&self) -> Result<Shape> {
        let (b, d, h) = (self.batch, self.dirs(), self.hidden);
        if self.batch_first {
            Shape::new(&[b, d, h])
        } else {
            Shape::new(&[d, b, h])
        }
    }
}

/// Reads and checks what every ONNX recurrent op shares, for an op with `gates` gates per
/// hidden unit (the rows of W and R are `gates × hidden_size`): X, W, R, B (slot 3),
/// sequence_lens (slot 4), initial_h (slot 5) and the `layout`, `direction` and
/// `hidden_size` attributes.
///
/// `sequence_lens` is accepted only as a constant where every sequence runs all the steps:
/// shorter sequences would need masked steps, which the streaming models this runtime
/// serves never use.
pub(crate) fn prepare_seq(p: &Prep, gates: usize) -> Result<Seq> {
    let x = p.input_of(0, DType::F32)?.shape;
    let w = p.input_of(1, DType::F32)?.shape;
    let r = p.input_of(2, DType::F32)?.shape;
    let batch_first = match p.attr_int("layout", 0)? {
        0 => false,
        1 => true,
        _ => return Err(p.attr_err("layout", "expected 0 or 1")),
    };
    let direction = match p.attr_str("direction", "forward")? {
        "forward" => Direction::Forward,
        "reverse" => Direction::Reverse,
        "bidirectional" => Direction::Bidirectional,
        _ => return Err(p.attr_err("direction", "expected forward, reverse or bidirectional")),
    };
    if x.rank() != 3 {
        return Err(p.err("X must be 3-D"));
    }
    if r.rank() != 3 {
        return Err(p.err("R must be 3-D [num_directions, gates x hidden, hidden]"));
    }
    let (seq, batch) = if batch_first {
        (x.dim(1), x.dim(0))
    } else {
        (x.dim(0), x.dim(1))
    };
    let hidden = r.dim(2);
    if p.attr_int("hidden_size", hidden as i64)? != hidden as i64 {
        return Err(p.attr_err("hidden_size", "does not match the last dim of R"));
    }
    if seq == 0 || batch == 0 || hidden == 0 {
        return Err(p.err("the sequence, the batch and hidden_size must not be empty"));
    }
    let s = Seq {
        seq,
        batch,
        input: x.dim(2),
        hidden,
        direction,
        batch_first,
    };
    let dirs = s.dirs();
    let rows = gates
        .checked_mul(hidden)
        .ok_or_else(|| p.err("hidden_size is too large"))?;
    if w.dims() != [dirs, rows, s.input] {
        return Err(p.err(
            "W is not [num_directions, gates x hidden_size, input_size] (num_directions \
             follows the direction attribute)",
        ));
    }
    if r.dims() != [dirs, rows, hidden] {
        return Err(p.err("R is not [num_directions, gates x hidden_size, hidden_size]"));
    }
    if p.opt_input(3).is_some() {
        let b = p.input_of(3, DType::F32)?.shape;
        if b.dims() != [dirs, 2 * rows] {
            return Err(p.err("B is not [num_directions, 2 x gates x hidden_size]"));
        }
    }
    if let Some(lens) = p.opt_input(4) {
        let t = lens.tensor().ok_or_else(|| {
            p.err("sequence_lens must be a constant (run-time lengths are not supported)")
        })?;
        if !matches!(t.dtype, DType::I32 | DType::I64) || t.shape.dims() != [batch] {
            return Err(p.err("sequence_lens is not an int32 [batch_size] tensor"));
        }
        if t.i64s().any(|l| l != seq as i64) {
            return Err(p.err(
                "sequence_lens shorter than the sequence are not supported (every length \
                 must equal seq_length)",
            ));
        }
    }
    check_state(p, 5, &s)?;
    Ok(s)
}

/// Checks that optional state input `slot` (initial_h, initial_c), when present, is an f32
/// tensor of the state shape.
pub(crate) fn check_state(p: &Prep, slot: usize, s: &Seq) -> Result<()> {
    if p.opt_input(slot).is_some()
        && p.input_of(slot, DType::F32)?.shape.dims() != s.state_shape()?.dims()
    {
        return Err(p.err(
            "an initial state is not [num_directions, batch_size, hidden_size] \
             ([batch_size, num_directions, hidden_size] with layout 1)",
        ));
    }
    Ok(())
}

/// How the input projection `X·Wᵀ` is computed: in blocks of steps, each block's rows
/// (step-major, then batch) accumulated into the gate buffer [`dot::ROWS`] at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Projection {
    /// Steps per block: the gate buffer holds one block.
    pub block: usize,
    /// Gate rows per step and batch row (`gates × hidden`).
    n: usize,
    /// The product kernel (also the recurrent product's).
    pub kernel: DotKernel,
}

impl Projection {
    /// The weights are read once per pass of [`dot::ROWS`] rows whatever the block, so the
    /// block only trades RAM for locality: on a host the whole sequence is one block (W's
    /// passes run back to back, then R's steps), while a Cortex-M, whose RAM is scarcer than
    /// its cache is useful (it has none), keeps the gate buffer at one pass's rows.
    pub fn plan(target: Target, s: &Seq, n: usize) -> Projection {
        let block = match target {
            Target::Host => s.seq,
            Target::CortexM => s.seq.min(dot::ROWS.div_ceil(s.batch)),
        };
        Projection {
            block,
            n,
            kernel: DotKernel::for_target(target),
        }
    }

    /// Scratch floats [`Projection::run`] needs: one pass's rows of X.
    pub fn scratch_floats(&self, s: &Seq) -> usize {
        dot::ROWS * s.input
    }

    /// `gates[(t - t0)·batch + b] += x[t, b] · Wᵀ` for the `steps` steps from `t0`, with W
    /// the `n × input` matrix `w`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        s: &Seq,
        x: F32View<'_>,
        w: Rows<'_>,
        t0: usize,
        steps: usize,
        gates: &mut [f32],
        scratch: &mut [f32],
    ) {
        if s.input == 0 {
            return;
        }
        let n = self.n;
        let rows = StepRows { x, s: *s, t0 };
        let m = steps * s.batch;
        let xs = &mut scratch[..dot::ROWS * s.input];
        for r0 in (0..m).step_by(dot::ROWS) {
            let pass = dot::ROWS.min(m - r0);
            for (r, x) in xs.chunks_exact_mut(s.input).take(pass).enumerate() {
                rows.read_row(r0 + r, x);
            }
            let out = &mut gates[r0 * n..];
            match pass {
                dot::ROWS => self.kernel.mul_rows(w, xs, out, n),
                _ => {
                    for (r, x) in xs.chunks_exact(s.input).take(pass).enumerate() {
                        self.kernel.mul_one(w, x, &mut out[r * n..]);
                    }
                }
            }
        }
    }
}

/// The rows of X for a block of steps from `t0`, step-major then batch (both layouts: row
/// `r` is step `t0 + r / batch`, batch row `r % batch`).
#[derive(Clone, Copy)]
struct StepRows<'x> {
    x: F32View<'x>,
    s: Seq,
    t0: usize,
}

impl StepRows<'_> {
    /// Copies row `r` into `out`.
    fn read_row(&self, r: usize, out: &mut [f32]) {
        let (t, b) = (self.t0 + r / self.s.batch, r % self.s.batch);
        let start = self.s.x_offset(t, b);
        with_f32!(self.x, |x| x.copy_run(start, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_both_layouts() {
        let mut s = Seq {
            seq: 3,
            batch: 2,
            input: 5,
            hidden: 4,
            direction: Direction::Bidirectional,
            batch_first: false,
        };
        // Y [seq, dirs, batch, hidden], states [dirs, batch, hidden], X [seq, batch, input].
        assert_eq!(s.y_offset(2, 1, 1), ((2 * 2 + 1) * 2 + 1) * 4);
        assert_eq!(s.state_offset(1, 0), 2 * 4);
        assert_eq!(s.x_offset(1, 1), 3 * 5);
        s.batch_first = true;
        // Y [batch, seq, dirs, hidden], states [batch, dirs, hidden], X [batch, seq, input].
        assert_eq!(s.y_offset(2, 1, 1), ((3 + 2) * 2 + 1) * 4);
        assert_eq!(s.state_offset(1, 0), 4);
        assert_eq!(s.x_offset(1, 1), 4 * 5);
        assert_eq!(s.y_shape().unwrap().dims(), [2, 3, 2, 4]);
    }
}
