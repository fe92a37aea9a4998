//! Element-wise binary arithmetic with numpy broadcasting: Add, Sub, Mul, Div, Pow.
//!
//! f32 is the compute type; int64 (and int32) are supported too because exporters do shape
//! arithmetic with these ops, which the planner folds at plan time.
//!
//! Broadcasting walks the output with an odometer over all but the innermost dim and runs a
//! tight inner loop over the innermost dim, where each operand either advances (stride 1)
//! or stays put (stride 0, a broadcast scalar run), which the compiler vectorises.

use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, F32Source, Shape, MAX_RANK};
use crate::with_f32;

/// Which arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// a + b
    Add,
    /// a - b
    Sub,
    /// a * b
    Mul,
    /// a / b
    Div,
    /// a ^ b
    Pow,
}

/// Prepared broadcast geometry (shapes right-aligned to the output rank).
#[derive(Clone, Copy, Debug)]
pub struct Binary {
    /// The arithmetic.
    pub op: BinOp,
    out: Shape,
    a_strides: [usize; MAX_RANK],
    b_strides: [usize; MAX_RANK],
}

/// numpy-style broadcast of two shapes.
pub fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
    let rank = a.rank().max(b.rank());
    let mut out = Shape::from_iter((0..rank).map(|_| 1)).ok()?;
    for i in 0..rank {
        let da = if i + a.rank() >= rank {
            a.dim(i + a.rank() - rank)
        } else {
            1
        };
        let db = if i + b.rank() >= rank {
            b.dim(i + b.rank() - rank)
        } else {
            1
        };
        out.dims_mut()[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Element strides of `s` viewed at the rank of `out`, 0 along broadcast dims.
pub fn broadcast_strides(s: &Shape, out: &Shape) -> [usize; MAX_RANK] {
    let mut st = [0; MAX_RANK];
    let own = s.strides();
    let shift = out.rank() - s.rank();
    for i in 0..s.rank() {
        if s.dim(i) != 1 {
            st[i + shift] = own[i];
        }
    }
    st
}

fn prepare(p: &mut Prep, op: BinOp) -> Result<Op> {
    p.arity(2, 2)?;
    let (a, b) = (p.input(0)?, p.input(1)?);
    if a.dtype != b.dtype {
        return Err(p.err("operands have different element types"));
    }
    if !matches!(a.dtype, DType::F32 | DType::I64 | DType::I32) {
        return Err(p.err("only float32, int64 and int32 arithmetic is supported"));
    }
    let out =
        broadcast(&a.shape, &b.shape).ok_or_else(|| p.err("operand shapes do not broadcast"))?;
    p.output(0, a.dtype, out)?;
    p.macs(out.volume() as u64);
    Ok(Op::Binary(merge_dims(Binary {
        op,
        out,
        a_strides: broadcast_strides(&a.shape, &out),
        b_strides: broadcast_strides(&b.shape, &out),
    })))
}

/// Merges adjacent dims that both operands walk contiguously (or both skip), so the
/// innermost run is as long as possible: `[1,C,H,W] * [1,C,1,1]` runs over `H·W` at once.
fn merge_dims(g: Binary) -> Binary {
    let rank = g.out.rank();
    let mut merged = Binary {
        op: g.op,
        out: Shape::SCALAR,
        a_strides: [0; MAX_RANK],
        b_strides: [0; MAX_RANK],
    };
    let mut dims = [0usize; MAX_RANK];
    let mut n = 0;
    // Walk from the innermost dim outwards, folding dim `d` into the current group when
    // stepping it equals stepping the group's whole extent for both operands.
    for d in (0..rank).rev() {
        let size = g.out.dim(d);
        if n > 0 {
            let k = n - 1;
            let fits = |st: &[usize; MAX_RANK], m: &[usize; MAX_RANK]| st[d] == m[k] * dims[k];
            if size == 1
                || fits(&g.a_strides, &merged.a_strides) && fits(&g.b_strides, &merged.b_strides)
            {
                dims[k] *= size;
                continue;
            }
        }
        dims[n] = size;
        merged.a_strides[n] = g.a_strides[d];
        merged.b_strides[n] = g.b_strides[d];
        n += 1;
    }
    // Groups were collected innermost first: reverse into row-major order.
    dims[..n].reverse();
    merged.a_strides[..n].reverse();
    merged.b_strides[..n].reverse();
    merged.out = Shape::new(&dims[..n]).unwrap_or(g.out);
    merged
}

/// Add
pub fn add(p: &mut Prep) -> Result<Op> {
    prepare(p, BinOp::Add)
}
/// Sub
pub fn sub(p: &mut Prep) -> Result<Op> {
    prepare(p, BinOp::Sub)
}
/// Mul
pub fn mul(p: &mut Prep) -> Result<Op> {
    prepare(p, BinOp::Mul)
}
/// Div
pub fn div(p: &mut Prep) -> Result<Op> {
    prepare(p, BinOp::Div)
}
/// Pow
pub fn pow(p: &mut Prep) -> Result<Op> {
    prepare(p, BinOp::Pow)
}

#[inline(always)]
fn apply_f32(op: BinOp, x: f32, y: f32) -> f32 {
    match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        BinOp::Pow => {
            // Exact for the common small integer exponents (x^2 in attention, GELU...).
            if y == 2.0 {
                x * x
            } else if y == 1.0 {
                x
            } else if y == 0.5 {
                libm::sqrtf(x)
            } else {
                libm::powf(x, y)
            }
        }
    }
}

#[inline(always)]
fn apply_i64(op: BinOp, x: i64, y: i64) -> i64 {
    match op {
        BinOp::Add => x.wrapping_add(y),
        BinOp::Sub => x.wrapping_sub(y),
        BinOp::Mul => x.wrapping_mul(y),
        // ONNX integer Div truncates; division by zero yields 0 rather than a trap.
        BinOp::Div => x.checked_div(y).unwrap_or(0),
        BinOp::Pow => u32::try_from(y).map_or(0, |e| x.wrapping_pow(e)),
    }
}

/// Calls `f(out_offset, a_offset, b_offset, len, a_step, b_step)` for each innermost run.
fn for_each_run(g: &Binary, mut f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
    let rank = g.out.rank();
    if rank == 0 {
        f(0, 0, 0, 1, 0, 0);
        return;
    }
    let inner = g.out.dim(rank - 1);
    let (sa, sb) = (g.a_strides[rank - 1], g.b_strides[rank - 1]);
    let outer: usize = g.out.dims()[..rank - 1].iter().product();
    let mut idx = [0usize; MAX_RANK];
    let (mut oa, mut ob) = (0usize, 0usize);
    for run in 0..outer {
        f(run * inner, oa, ob, inner, sa, sb);
        // odometer over dims rank-2 .. 0
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            oa += g.a_strides[d];
            ob += g.b_strides[d];
            if idx[d] < g.out.dim(d) {
                break;
            }
            oa -= g.a_strides[d] * idx[d];
            ob -= g.b_strides[d] * idx[d];
            idx[d] = 0;
        }
    }
}

/// Applies `f` over every innermost run; aligned operands take slice loops without bounds
/// checks that the compiler vectorises.
#[inline(always)]
fn run_f32_with<A: F32Source, B: F32Source>(
    g: &Binary,
    a: A,
    b: B,
    out: &mut [f32],
    f: impl Fn(f32, f32) -> f32,
) {
    for_each_run(g, |o, ia, ib, len, sa, sb| {
        let out = &mut out[o..o + len];
        match (sa, sb) {
            (1, 1) => match (a.run(ia, len), b.run(ib, len)) {
                (Some(xa), Some(xb)) => {
                    for ((y, &p), &q) in out.iter_mut().zip(xa).zip(xb) {
                        *y = f(p, q);
                    }
                }
                _ => {
                    for (i, y) in out.iter_mut().enumerate() {
                        *y = f(a.at(ia + i), b.at(ib + i));
                    }
                }
            },
            (1, 0) => {
                let q = b.at(ib);
                match a.run(ia, len) {
                    Some(xa) => out.iter_mut().zip(xa).for_each(|(y, &p)| *y = f(p, q)),
                    None => {
                        for (i, y) in out.iter_mut().enumerate() {
                            *y = f(a.at(ia + i), q);
                        }
                    }
                }
            }
            (0, 1) => {
                let p = a.at(ia);
                match b.run(ib, len) {
                    Some(xb) => out.iter_mut().zip(xb).for_each(|(y, &q)| *y = f(p, q)),
                    None => {
                        for (i, y) in out.iter_mut().enumerate() {
                            *y = f(p, b.at(ib + i));
                        }
                    }
                }
            }
            _ => {
                for (i, y) in out.iter_mut().enumerate() {
                    *y = f(a.at(ia + i * sa), b.at(ib + i * sb));
                }
            }
        }
    });
}

fn run_f32<A: F32Source, B: F32Source>(g: &Binary, a: A, b: B, out: &mut [f32]) {
    // One monomorphised loop per arithmetic: no match inside the element loop.
    match g.op {
        BinOp::Add => run_f32_with(g, a, b, out, |x, y| x + y),
        BinOp::Sub => run_f32_with(g, a, b, out, |x, y| x - y),
        BinOp::Mul => run_f32_with(g, a, b, out, |x, y| x * y),
        BinOp::Div => run_f32_with(g, a, b, out, |x, y| x / y),
        BinOp::Pow => run_f32_with(g, a, b, out, |x, y| apply_f32(BinOp::Pow, x, y)),
    }
}

/// Computes the output.
pub fn eval(g: &Binary, io: &mut Io) {
    let (a, b) = (io.input(0), io.input(1));
    let out = &mut io.outputs[0];
    match out.dtype {
        DType::F32 => {
            let out = out.f32_mut();
            with_f32!(a.f32(), |x| with_f32!(b.f32(), |y| run_f32(g, x, y, out)))
        }
        dtype => {
            let size = dtype.size();
            let bytes = &mut *out.bytes;
            for_each_run(g, |o, ia, ib, len, sa, sb| {
                for i in 0..len {
                    let v = apply_i64(g.op, a.i64_at(ia + i * sa), b.i64_at(ib + i * sb));
                    let dst = &mut bytes[(o + i) * size..(o + i + 1) * size];
                    dst.copy_from_slice(&v.to_le_bytes()[..size]);
                }
            });
        }
    }
}
