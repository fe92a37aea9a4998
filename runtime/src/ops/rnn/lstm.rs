//! ONNX `LSTM` (opsets 7 and 14) on the shared recurrent frame ([`super`]).
//!
//! Per step and batch row, with the gate blocks of W, R and B in ONNX order i, o, f, c:
//! `g = x·Wᵀ + h·Rᵀ + Wb + Rb`, then `i = σ(gᵢ + Pᵢ⊙c)`, `f = σ(g_f + P_f⊙c)`,
//! `ĉ = tanh(g_c)`, `c = f⊙c + i⊙ĉ`, `o = σ(g_o + P_o⊙c)`, `h = o⊙tanh(c)`; the optional
//! peepholes P are `[Pᵢ, P_o, P_f]`, and `clip` bounds every activation's input.
//!
//! Supported: forward, reverse and bidirectional; both layouts; every optional input and
//! output; peepholes; clip. Refused at plan time, naming the node: activations other than
//! the default (Sigmoid, Tanh, Tanh), `input_forget = 1`, and `sequence_lens` shorter than
//! the sequence (see `prepare_seq`). An output left unnamed gets no arena bytes.
//!
//! σ and tanh are [`sigmoid`] and [`fast_tanh`]: branch-free, so every gate's loop
//! vectorises (the activations are about a tenth of the work at hidden size 256).

use super::{check_state, prepare_seq, Projection, Rows, Seq};
use crate::error::Result;
use crate::onnx::AttrKind;
#[cfg(target_arch = "x86_64")]
use crate::ops::gemm::avx2_fma_available;
use crate::ops::gemm::Run;
use crate::ops::unary::{fast_tanh, sigmoid};
use crate::ops::{Io, Op, Prep};
use crate::tensor::{DType, F32Source, Shape, TensorRef};
use crate::with_f32;

/// Gates per hidden unit: i, o, f, c.
const GATES: usize = 4;

/// Input slots of a planned LSTM step: the node's eight (X, W, R, B, sequence_lens,
/// initial_h, initial_c, P), then the per-row scales of W and R, which planning fills when
/// it reads the weights as int8 ([`Lstm::with_int8_weights`]).
pub const SLOTS: usize = 10;
/// Slot of W's scales (R's follow).
pub(crate) const SCALES: usize = 8;

/// A prepared LSTM.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lstm {
    seq: Seq,
    proj: Projection,
    /// `clip`: every activation's input is bounded to `[-clip, clip]`.
    clip: Option<f32>,
    /// W and R are int8 constants (`n` bytes per row) with their scales in slots
    /// [`SCALES`] and [`SCALES`]` + 1`, not f32.
    int8: bool,
}

impl Lstm {
    /// This LSTM reading W and R as symmetric int8 with one f32 scale per row of `gates ×
    /// hidden_size`, shared by the directions (what `DequantizeLinear(axis=1)` of
    /// `[num_directions, gates × hidden_size, k]` int8 with zero point 0 computes); the
    /// planner puts the int8 tensors in slots 1 and 2 and their scales in slots 8 and 9.
    pub(crate) fn with_int8_weights(self) -> Lstm {
        Lstm { int8: true, ..self }
    }

    /// Whether W and R are read as int8.
    pub fn int8_weights(&self) -> bool {
        self.int8
    }

    /// Gate rows per direction (`gates × hidden_size`): the length of an int8 weight's
    /// per-row scales.
    pub(crate) fn gate_rows(&self) -> usize {
        GATES * self.seq.hidden
    }
}

/// LSTM(X, W, R, B, sequence_lens, initial_h, initial_c, P) -> (Y, Y_h, Y_c).
pub fn lstm(p: &mut Prep) -> Result<Op> {
    p.arity(3, 8)?;
    if p.n_outputs() > 3 {
        return Err(p.err("LSTM has at most three outputs (Y, Y_h, Y_c)"));
    }
    let s = prepare_seq(p, GATES)?;
    check_state(p, 6, &s)?;
    if p.opt_input(7).is_some()
        && p.input_of(7, DType::F32)?.shape.dims() != [s.dirs(), 3 * s.hidden]
    {
        return Err(p.err("P is not [num_directions, 3 x hidden_size]"));
    }
    if let Some(a) = p.attr("activations") {
        let defaults = ["Sigmoid", "Tanh", "Tanh"];
        let default = a.kind() == AttrKind::Strings
            && a.strings().count() == defaults.len() * s.dirs()
            && a.strings()
                .zip(defaults.iter().cycle())
                .all(|(got, want)| got.eq_ignore_ascii_case(want.as_bytes()));
        if !default {
            return Err(p.attr_err(
                "activations",
                "only the default Sigmoid, Tanh, Tanh are supported",
            ));
        }
    }
    if p.attr_int("input_forget", 0)? != 0 {
        return Err(p.attr_err(
            "input_forget",
            "coupled input and forget gates (1) are not supported",
        ));
    }
    let clip = match p.attr("clip") {
        None => None,
        Some(_) => match p.attr_float("clip", 0.0)? {
            t if t > 0.0 => Some(t),
            _ => return Err(p.attr_err("clip", "must be positive")),
        },
    };

    let mut named = [false; 3];
    for (k, name) in p.node().outputs().take(3).enumerate() {
        named[k] = !name.is_empty();
    }
    let shapes = [s.y_shape()?, s.state_shape()?, s.state_shape()?];
    for k in 0..p.n_outputs() {
        let shape = if named[k] {
            shapes[k]
        } else {
            Shape::new(&[0])?
        };
        p.output(k, DType::F32, shape)?;
    }

    let n = GATES * s.hidden;
    let proj = Projection::plan(p.target(), &s, n);
    let bytes = (proj.block * s.batch)
        .checked_mul(n)
        .and_then(|g| g.checked_add(s.batch.checked_mul(2 * s.hidden)?))
        .and_then(|f| f.checked_add(proj.scratch_floats(&s)))
        .and_then(|f| f.checked_mul(4))
        .ok_or_else(|| p.err("the working memory is too large to address"))?;
    p.scratch(bytes);
    let rows = (s.dirs() * s.seq * s.batch) as u64;
    p.macs(rows.saturating_mul((n * (s.input + s.hidden)) as u64));
    Ok(Op::Lstm(Lstm {
        seq: s,
        proj,
        clip,
        int8: false,
    }))
}

/// Runs a prepared LSTM, compiled for AVX2 where the CPU has it so the gate activations run
/// eight lanes wide (bit for bit the same: Rust never fuses a multiply and an add on its
/// own). The products' kernel is the one chosen at plan time ([`Projection::kernel`]).
pub fn eval(l: &Lstm, io: &mut Io) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma_available() {
        // SAFETY: `avx2_fma_available` just saw AVX2 and FMA on this CPU (or the build
        // requires them), which is all `run_avx2` needs.
        return unsafe { run_avx2(l, io) };
    }
    run(l, io)
}

/// [`run`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(l: &Lstm, io: &mut Io) {
    run(l, io)
}

/// Every direction, block by block: biases and the block's input projection into the gate
/// buffer, then the steps in order.
#[inline(always)]
fn run(l: &Lstm, io: &mut Io) {
    let s = &l.seq;
    let (hs, n, block) = (s.hidden, GATES * s.hidden, l.proj.block);
    let slot = |k: usize| io.inputs.get(k).copied().flatten();
    let (x, w, r) = (io.input(0), io.input(1), io.input(2));
    let (bias, h0, c0, peep) = (slot(3), slot(5), slot(6), slot(7));
    let scratch: &mut [f32] = bytemuck::cast_slice_mut(io.scratch);
    let (gates, rest) = scratch.split_at_mut(block * s.batch * n);
    let (h, rest) = rest.split_at_mut(s.batch * hs);
    let (c, work) = rest.split_at_mut(s.batch * hs);
    // Unnamed outputs are empty (see `lstm`).
    let mut outs = io
        .outputs
        .iter_mut()
        .map(|t| t.f32_mut())
        .map(|v| (!v.is_empty()).then_some(v));
    let (mut y, mut y_h, mut y_c) = (
        outs.next().flatten(),
        outs.next().flatten(),
        outs.next().flatten(),
    );

    for d in 0..s.dirs() {
        for b in 0..s.batch {
            let at = s.state_offset(d, b);
            load(&mut h[b * hs..][..hs], h0, at);
            load(&mut c[b * hs..][..hs], c0, at);
        }
        let blocks = s.seq.div_ceil(block);
        for k in 0..blocks {
            let k = if s.backward(d) { blocks - 1 - k } else { k };
            let t0 = k * block;
            let steps = block.min(s.seq - t0);
            let g = &mut gates[..steps * s.batch * n];
            match bias {
                Some(bt) => {
                    with_f32!(bt.f32(), |bv| {
                        let base = d * 2 * n;
                        for (j, v) in g[..n].iter_mut().enumerate() {
                            *v = bv.at(base + j) + bv.at(base + n + j);
                        }
                    });
                    for row in 1..steps * s.batch {
                        g.copy_within(..n, row * n);
                    }
                }
                None => g.fill(0.0),
            }
            let w_d = weights(l, w, slot(SCALES), d, s.input);
            l.proj.run(s, x.f32(), w_d, t0, steps, g, work);
            let r_d = weights(l, r, slot(SCALES + 1), d, hs);
            let at = Step { d, t0, steps };
            recur(l, r_d, at, g, h, c, peep, &mut y);
        }
        for b in 0..s.batch {
            let at = s.state_offset(d, b);
            if let Some(y_h) = y_h.as_deref_mut() {
                y_h[at..][..hs].copy_from_slice(&h[b * hs..][..hs]);
            }
            if let Some(y_c) = y_c.as_deref_mut() {
                y_c[at..][..hs].copy_from_slice(&c[b * hs..][..hs]);
            }
        }
    }
}

/// Direction `d`'s `gates × hidden_size` rows of `k` weights in `t` (W or R): f32, or int8
/// with the per-row `scales` that every direction shares.
fn weights<'t>(
    l: &Lstm,
    t: TensorRef<'t>,
    scales: Option<TensorRef<'t>>,
    d: usize,
    k: usize,
) -> Rows<'t> {
    let n = l.gate_rows();
    match (l.int8, scales) {
        (true, Some(sc)) => Rows::I8 {
            q: &t.bytes[d * n * k..][..n * k],
            scales: &sc.bytes[..4 * n],
        },
        _ => Rows::F32(&t.bytes[4 * d * n * k..][..4 * n * k]),
    }
}

/// Copies one row of an initial state into `dst` (zeros without one).
fn load(dst: &mut [f32], src: Option<TensorRef>, at: usize) {
    match src {
        Some(t) => with_f32!(t.f32(), |v| v.copy_run(at, dst)),
        None => dst.fill(0.0),
    }
}

/// Which block of which direction [`recur`] runs.
#[derive(Clone, Copy)]
struct Step {
    d: usize,
    t0: usize,
    steps: usize,
}

/// The block's steps in the direction's order: `R·h` onto each row's projected gates,
/// then the cell update, then `h` into Y.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn recur(
    l: &Lstm,
    r: Rows,
    at: Step,
    gates: &mut [f32],
    h: &mut [f32],
    c: &mut [f32],
    peep: Option<TensorRef>,
    y: &mut Option<&mut [f32]>,
) {
    let s = &l.seq;
    let (hs, n, Step { d, t0, steps }) = (s.hidden, GATES * s.hidden, at);
    for i in 0..steps {
        let t = if s.backward(d) {
            t0 + steps - 1 - i
        } else {
            t0 + i
        };
        for b in 0..s.batch {
            let g = &mut gates[((t - t0) * s.batch + b) * n..][..n];
            let (hb, cb) = (&mut h[b * hs..][..hs], &mut c[b * hs..][..hs]);
            l.proj.kernel.mul_one(r, hb, g);
            cell(g, cb, hb, peep.map(|p| (p, d * 3 * hs)), l.clip);
            if let Some(y) = y.as_deref_mut() {
                y[s.y_offset(t, d, b)..][..hs].copy_from_slice(hb);
            }
        }
    }
}

/// Bounds `xs` to `[-t, t]` (NaN-safe: `f32::clamp` would panic on a NaN bound).
#[inline(always)]
fn clamp(xs: &mut [f32], t: f32) {
    xs.iter_mut().for_each(|v| *v = v.max(-t).min(t));
}

/// One cell update: `g` holds the pre-activations (blocks i, o, f, c; projections and
/// biases summed), `c` and `h` the state, updated in place. `peep` is the peephole tensor
/// with the offset of this direction's `[Pᵢ, P_o, P_f]`.
#[inline(always)]
fn cell(
    g: &mut [f32],
    c: &mut [f32],
    h: &mut [f32],
    peep: Option<(TensorRef, usize)>,
    clip: Option<f32>,
) {
    let hs = h.len();
    let (i, rest) = g.split_at_mut(hs);
    let (o, rest) = rest.split_at_mut(hs);
    let (f, cand) = rest.split_at_mut(hs);
    if let Some((p, at)) = peep {
        with_f32!(p.f32(), |p| for j in 0..hs {
            i[j] += p.at(at + j) * c[j];
            f[j] += p.at(at + 2 * hs + j) * c[j];
        });
    }
    if let Some(t) = clip {
        for block in [&mut *i, &mut *f, &mut *cand] {
            clamp(block, t);
        }
    }
    i.iter_mut().for_each(|v| *v = sigmoid(*v));
    f.iter_mut().for_each(|v| *v = sigmoid(*v));
    cand.iter_mut().for_each(|v| *v = fast_tanh(*v));
    for ((c, &f), (&i, &g)) in c.iter_mut().zip(&*f).zip(i.iter().zip(&*cand)) {
        *c = f * *c + i * g;
    }
    if let Some((p, at)) = peep {
        with_f32!(p.f32(), |p| for j in 0..hs {
            o[j] += p.at(at + hs + j) * c[j];
        });
    }
    if let Some(t) = clip {
        clamp(o, t);
    }
    for ((h, &o), &c) in h.iter_mut().zip(&*o).zip(&*c) {
        *h = sigmoid(o) * fast_tanh(c);
    }
}
