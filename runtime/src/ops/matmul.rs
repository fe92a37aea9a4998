//! MatMul (numpy semantics) and Gemm, both on the packed GEMM ([`super::gemm`]).
//!
//! MatMul broadcasts its batch dims and promotes 1-D operands; each batch is one GEMM with
//! its own operand offsets (attention's `[B, heads, N, d] × [B, heads, d, N]`). When B has no
//! batch of its own and A's rows are contiguous (a Linear layer on `[B, T, C]`), the batch is
//! folded into M so the weight is packed once per block instead of once per batch.
//!
//! Gemm's `transA`/`transB` are strided views (swapped strides), `alpha` is applied while
//! packing A, and `beta · C` is written into Y before the product accumulates onto it.
//!
//! B (and Gemm's C) may be float16 constants (an fp16 model's weights), widened as B is
//! packed. B may also be an int8 constant read through the scales of the DequantizeLinear
//! that planning removed (`plan/qdq/matmul.rs`, [`MatMul::with_int8_weights`]): dequantized
//! as it is packed, so the product is bit for bit that of the f32 weights, which never sit
//! in the arena.

use super::binary::{broadcast, broadcast_strides};
use super::gemm::{GemmPlan, GemmWeights, Matrix};
use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, F32Source, ScaledI8, Shape, MAX_RANK};
use crate::with_weights;

/// Most batch dims: an operand's last two dims are its matrix. (Arrays of this length, not
/// a [`Shape`] and rank-long strides: every plan step is as large as the largest op, and
/// this was the second largest.)
const MAX_BATCH: usize = MAX_RANK - 2;

/// A prepared MatMul.
#[derive(Clone, Copy, Debug)]
pub struct MatMul {
    /// Broadcast batch dims of the output, the first `batch_rank` (none when M took the
    /// batch: A's batch folded into its rows).
    batch: [usize; MAX_BATCH],
    batch_rank: u8,
    a_strides: [usize; MAX_BATCH],
    b_strides: [usize; MAX_BATCH],
    m: usize,
    n: usize,
    k: usize,
    gemm: GemmPlan,
    /// B's quantized axis when it is read as int8 (scales in [`MATMUL_SCALES`]).
    int8: Option<u8>,
}

/// The io slot of an int8 MatMul weight's scales (the planner gives every MatMul step it).
pub const MATMUL_SCALES: usize = 2;

/// The io slot of an int8 Gemm weight's scales (the planner gives every Gemm step it).
pub const GEMM_SCALES: usize = 3;

/// B of a MatMul or Gemm: the stored f32/float16 constant or arena tensor, or the int8
/// constant in slot 1 with its scales in `scales_slot`, one per index of B's `axis` (or one
/// for the whole tensor). Only the axis is kept in the op, the rest follows from the
/// tensors: every plan step is as large as the largest op.
fn weights<'t>(io: &Io<'t>, int8_axis: Option<u8>, scales_slot: usize) -> GemmWeights<'t> {
    let b = io.input(1);
    match int8_axis {
        Some(axis) => {
            let scales = io.input(scales_slot);
            GemmWeights::Int8(ScaledI8 {
                q: b.bytes,
                scales: scales.bytes,
                channels: scales.shape.volume(),
                inner: b.shape.dims()[usize::from(axis) + 1..].iter().product(),
            })
        }
        None => GemmWeights::View(b.weights()),
    }
}

/// Splits a MatMul operand into (batch dims, rows, cols), promoting 1-D.
fn matrix_dims(s: &Shape, is_a: bool) -> Result<(Shape, usize, usize)> {
    let d = s.dims();
    Ok(match d.len() {
        1 if is_a => (Shape::SCALAR, 1, d[0]),
        1 => (Shape::SCALAR, d[0], 1),
        r => (Shape::new(&d[..r - 2])?, d[r - 2], d[r - 1]),
    })
}

/// MatMul: numpy `matmul` on f32.
pub fn matmul(p: &mut Prep) -> Result<Op> {
    p.arity(2, 2)?;
    let (a, b) = (p.input_of(0, DType::F32)?.shape, p.weight_input(1)?.shape);
    if a.rank() == 0 || b.rank() == 0 {
        return Err(p.err("MatMul operands must have at least one dim"));
    }
    let (a_batch, m, k) = matrix_dims(&a, true)?;
    let (b_batch, kb, n) = matrix_dims(&b, false)?;
    if k != kb {
        return Err(p.err("inner dimensions do not match"));
    }
    let batch =
        broadcast(&a_batch, &b_batch).ok_or_else(|| p.err("batch dims do not broadcast"))?;
    let mut out = batch;
    if a.rank() > 1 {
        out.push(m)?;
    }
    if b.rank() > 1 {
        out.push(n)?;
    }
    p.output(0, DType::F32, out)?;
    let batches = batch.volume();
    p.macs((batches * m * n * k) as u64);
    let scale = |mut st: [usize; MAX_RANK], by: usize| {
        st.iter_mut().for_each(|s| *s *= by);
        st
    };
    let a_strides = scale(broadcast_strides(&a_batch, &batch), m * k);
    let b_strides = scale(broadcast_strides(&b_batch, &batch), k * n);
    let (batch, m) = if b_batch.volume() == 1 && a_batch.volume() == batches {
        (Shape::SCALAR, batches * m)
    } else {
        (batch, m)
    };
    // (At most MAX_BATCH: `matrix_dims` leaves rank - 2 dims at most.)
    let first = |dims: &[usize]| core::array::from_fn(|d| dims.get(d).copied().unwrap_or(0));
    let gemm = GemmPlan::for_target(p.target(), m, n, k);
    p.scratch(4 * gemm.scratch_floats());
    Ok(Op::MatMul(MatMul {
        batch: first(batch.dims()),
        batch_rank: batch.rank() as u8,
        a_strides: first(&a_strides),
        b_strides: first(&b_strides),
        m,
        n,
        k,
        gemm,
        int8: None,
    }))
}

impl MatMul {
    /// This MatMul reading B as int8 with one scale per index of `axis`, or per tensor
    /// (see the module doc).
    pub(crate) fn with_int8_weights(self, axis: u8) -> MatMul {
        MatMul {
            int8: Some(axis),
            ..self
        }
    }

    /// Whether B is read as int8.
    pub fn int8_weights(&self) -> bool {
        self.int8.is_some()
    }
}

/// Runs a prepared MatMul.
pub fn eval_matmul(mm: &MatMul, io: &mut Io) {
    let (a, b) = (io.input(0), weights(io, mm.int8, MATMUL_SCALES));
    let out = io.outputs[0].f32_mut();
    out.fill(0.0);
    if out.is_empty() {
        return;
    }
    let scratch: &mut [f32] = bytemuck::cast_slice_mut(io.scratch);
    let (m, n, k) = (mm.m, mm.n, mm.k);
    let dims = &mm.batch[..mm.batch_rank as usize];
    // Compiled once: the operands resolve their representations per row run.
    let a = a.f32();
    for (i, c) in out.chunks_exact_mut(m * n).enumerate() {
        // Offsets of batch i: its multi-index (last dim fastest) against the strides.
        let (mut rest, mut a_off, mut b_off) = (i, 0, 0);
        for d in (0..dims.len()).rev() {
            let idx = rest % dims[d];
            rest /= dims[d];
            a_off += idx * mm.a_strides[d];
            b_off += idx * mm.b_strides[d];
        }
        let (am, bm) = (
            Matrix::row_major(a, a_off, k),
            Matrix::row_major(b, b_off, n),
        );
        mm.gemm.run(am, bm, 1.0, c, n, scratch);
    }
}

/// A prepared Gemm.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    trans_a: bool,
    trans_b: bool,
    alpha: f32,
    beta: f32,
    /// Element strides of C's rows and columns as broadcast to M × N (0 where broadcast);
    /// `None` without C.
    c_strides: Option<(usize, usize)>,
    m: usize,
    n: usize,
    k: usize,
    gemm: GemmPlan,
    /// B's quantized axis when it is read as int8 (scales in [`GEMM_SCALES`]).
    int8: Option<u8>,
}

/// Gemm: `Y = alpha · A' · B' + beta · C`.
pub fn gemm(p: &mut Prep) -> Result<Op> {
    p.arity(2, 3)?;
    let (a, b) = (p.input_of(0, DType::F32)?.shape, p.weight_input(1)?.shape);
    if a.rank() != 2 || b.rank() != 2 {
        return Err(p.err("Gemm operands must be 2-D"));
    }
    let trans_a = p.attr_int("transA", 0)? != 0;
    let trans_b = p.attr_int("transB", 0)? != 0;
    let (m, k) = if trans_a {
        (a.dim(1), a.dim(0))
    } else {
        (a.dim(0), a.dim(1))
    };
    let (kb, n) = if trans_b {
        (b.dim(1), b.dim(0))
    } else {
        (b.dim(0), b.dim(1))
    };
    if k != kb {
        return Err(p.err("inner dimensions do not match"));
    }
    let out = Shape::new(&[m, n])?;
    let c_strides = match p.opt_input(2) {
        None => None,
        Some(_) => {
            let s = p.weight_input(2)?.shape;
            if s.rank() > 2 || broadcast(&s, &out) != Some(out) {
                return Err(p.err("C does not broadcast to M x N"));
            }
            let st = broadcast_strides(&s, &out);
            Some((st[0], st[1]))
        }
    };
    p.output(0, DType::F32, out)?;
    p.macs((m * n * k) as u64);
    let gemm = GemmPlan::for_target(p.target(), m, n, k);
    p.scratch(4 * gemm.scratch_floats());
    Ok(Op::Gemm(Gemm {
        trans_a,
        trans_b,
        alpha: p.attr_float("alpha", 1.0)?,
        beta: p.attr_float("beta", 1.0)?,
        c_strides,
        m,
        n,
        k,
        gemm,
        int8: None,
    }))
}

impl Gemm {
    /// This Gemm reading B as int8 with one scale per index of `axis`, or per tensor
    /// (see the module doc).
    pub(crate) fn with_int8_weights(self, axis: u8) -> Gemm {
        Gemm {
            int8: Some(axis),
            ..self
        }
    }

    /// Whether B is read as int8.
    pub fn int8_weights(&self) -> bool {
        self.int8.is_some()
    }
}

/// Runs a prepared Gemm.
pub fn eval_gemm(g: &Gemm, io: &mut Io) {
    let (a, b) = (io.input(0), weights(io, g.int8, GEMM_SCALES));
    let c = io.inputs.get(2).copied().flatten();
    let out = io.outputs[0].f32_mut();
    let (m, n, k) = (g.m, g.n, g.k);
    if out.is_empty() {
        return;
    }
    match (c, g.c_strides) {
        (Some(c), Some((rs, cs))) if g.beta != 0.0 => with_weights!(c.weights(), |c| {
            for (i, row) in out.chunks_exact_mut(n).enumerate() {
                for (j, y) in row.iter_mut().enumerate() {
                    *y = g.beta * c.at(i * rs + j * cs);
                }
            }
        }),
        _ => out.fill(0.0),
    }
    let scratch: &mut [f32] = bytemuck::cast_slice_mut(io.scratch);
    let a = a.f32();
    let am = if g.trans_a {
        Matrix::transposed(a, 0, m)
    } else {
        Matrix::row_major(a, 0, k)
    };
    let bm = if g.trans_b {
        Matrix::transposed(b, 0, k)
    } else {
        Matrix::row_major(b, 0, n)
    };
    g.gemm.run(am, bm, g.alpha, out, n, scratch);
}
