//! ReduceSum, ReduceMean, ReduceMax, ReduceMin over any set of axes.
//!
//! Prepare merges neighbouring dims that are both reduced or both kept (a [N, C, H, W]
//! mean over H and W becomes [N·C kept, H·W reduced]), so eval walks at most a handful of
//! dims. The innermost merged dim is a contiguous run: when it is reduced the run folds to
//! one value, otherwise it is combined element-wise into a contiguous output row — either
//! way a tight loop.
//!
//! Axes come from the `axes` attribute up to opset 17 (ReduceSum: 12) and from an optional
//! constant input after, where `noop_with_empty_axes` decides what no axes mean.

use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, F32Source, Shape, MAX_RANK};
use crate::with_f32;

/// Which reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    /// Σ
    Sum,
    /// Σ / count
    Mean,
    /// Largest.
    Max,
    /// Smallest.
    Min,
}

impl ReduceKind {
    fn identity(self) -> f32 {
        match self {
            ReduceKind::Sum | ReduceKind::Mean => 0.0,
            ReduceKind::Max => f32::NEG_INFINITY,
            ReduceKind::Min => f32::INFINITY,
        }
    }

    #[inline(always)]
    fn combine(self, acc: f32, x: f32) -> f32 {
        match self {
            ReduceKind::Sum | ReduceKind::Mean => acc + x,
            ReduceKind::Max => acc.max(x),
            ReduceKind::Min => acc.min(x),
        }
    }
}

/// A prepared reduction over merged dims.
#[derive(Clone, Copy, Debug)]
pub struct Reduce {
    kind: ReduceKind,
    /// Merged input dims.
    dims: [usize; MAX_RANK],
    /// Bit `i` set when merged dim `i` is reduced.
    reduced: u8,
    rank: u8,
    /// Elements folded into each output (divisor of the mean).
    count: usize,
}

/// Merges runs of neighbouring dims with the same reduced flag; dims of size 1 join
/// either side. Returns (dims, reduced mask, rank).
fn merge(shape: &Shape, reduced: &[bool]) -> ([usize; MAX_RANK], u8, u8) {
    let (mut dims, mut mask, mut rank) = ([1usize; MAX_RANK], 0u8, 0usize);
    for (&d, &r) in shape.dims().iter().zip(reduced) {
        if d == 1 {
            continue;
        }
        let prev_reduced = rank > 0 && mask & (1 << (rank - 1)) != 0;
        if rank > 0 && prev_reduced == r {
            dims[rank - 1] *= d;
        } else {
            dims[rank] = d;
            if r {
                mask |= 1 << rank;
            }
            rank += 1;
        }
    }
    (dims, mask, rank as u8)
}

fn prepare(p: &mut Prep, kind: ReduceKind, axes_input_from: i64) -> Result<Op> {
    let x = p.input_of(0, DType::F32)?;
    let rank = x.shape.rank();
    let keepdims = p.attr_int("keepdims", 1)? != 0;
    let mut reduced = [false; MAX_RANK];
    let mut any = false;
    let mut mark = |p: &Prep, axis: i64| -> Result<()> {
        let a = x
            .shape
            .axis(axis)
            .ok_or_else(|| p.attr_err("axes", "axis out of range"))?;
        if reduced[a] {
            return Err(p.attr_err("axes", "axis listed twice"));
        }
        reduced[a] = true;
        any = true;
        Ok(())
    };
    let noop_if_empty = if p.opset() < axes_input_from {
        p.arity(1, 1)?;
        if let Some(axes) = p.attr_ints::<MAX_RANK>("axes")? {
            for &a in axes.iter() {
                mark(p, a)?;
            }
        }
        false
    } else {
        p.arity(1, 2)?;
        if p.opt_input(1).is_some() {
            let axes = p.const_input(1)?;
            if !matches!(axes.dtype, DType::I64 | DType::I32) || axes.shape.rank() > 1 {
                return Err(p.err("axes must be a 1-D integer tensor"));
            }
            for a in axes.i64s() {
                mark(p, a)?;
            }
        }
        p.attr_int("noop_with_empty_axes", 0)? != 0
    };
    if !any && !noop_if_empty {
        reduced[..rank].fill(true);
    }
    let mut out = Shape::SCALAR;
    let mut count = 1;
    for (i, &d) in x.shape.dims().iter().enumerate() {
        if reduced[i] {
            count *= d;
            if keepdims {
                out.push(1)?;
            }
        } else {
            out.push(d)?;
        }
    }
    let (dims, mask, merged_rank) = merge(&x.shape, &reduced[..rank]);
    p.output(0, DType::F32, out)?;
    p.macs(x.shape.volume() as u64);
    Ok(Op::Reduce(Reduce {
        kind,
        dims,
        reduced: mask,
        rank: merged_rank,
        count,
    }))
}

/// ReduceSum (axes input from opset 13).
pub fn reduce_sum(p: &mut Prep) -> Result<Op> {
    prepare(p, ReduceKind::Sum, 13)
}

/// ReduceMean (axes input from opset 18).
pub fn reduce_mean(p: &mut Prep) -> Result<Op> {
    prepare(p, ReduceKind::Mean, 18)
}

/// ReduceMax (axes input from opset 18).
pub fn reduce_max(p: &mut Prep) -> Result<Op> {
    prepare(p, ReduceKind::Max, 18)
}

/// ReduceMin (axes input from opset 18).
pub fn reduce_min(p: &mut Prep) -> Result<Op> {
    prepare(p, ReduceKind::Min, 18)
}

fn run<S: F32Source>(g: &Reduce, x: S, out: &mut [f32]) {
    let kind = g.kind;
    out.fill(kind.identity());
    let rank = g.rank as usize;
    let is_reduced = |d: usize| g.reduced & (1 << d) != 0;
    // Output strides over the merged dims (0 along reduced ones).
    let mut out_strides = [0usize; MAX_RANK];
    let mut acc = 1;
    for d in (0..rank).rev() {
        if !is_reduced(d) {
            out_strides[d] = acc;
            acc *= g.dims[d];
        }
    }
    let (inner, inner_reduced) = match rank {
        0 => (1, true),
        _ => (g.dims[rank - 1], is_reduced(rank - 1)),
    };
    let outer_rank = rank.saturating_sub(1);
    let outer: usize = g.dims[..outer_rank].iter().product();
    let mut idx = [0usize; MAX_RANK];
    let mut o = 0usize;
    for run in 0..outer {
        let base = run * inner;
        if inner_reduced {
            out[o] = (0..inner).fold(out[o], |a, i| kind.combine(a, x.at(base + i)));
        } else {
            out[o..o + inner]
                .iter_mut()
                .enumerate()
                .for_each(|(i, y)| *y = kind.combine(*y, x.at(base + i)));
        }
        for d in (0..outer_rank).rev() {
            idx[d] += 1;
            o += out_strides[d];
            if idx[d] < g.dims[d] {
                break;
            }
            o -= out_strides[d] * idx[d];
            idx[d] = 0;
        }
    }
    if kind == ReduceKind::Mean {
        let inv = 1.0 / g.count as f32;
        out.iter_mut().for_each(|y| *y *= inv);
    }
}

/// Computes the output.
pub fn eval(g: &Reduce, io: &mut Io) {
    let x = io.input(0);
    let out = io.outputs[0].f32_mut();
    with_f32!(x.f32(), |x| run(g, x, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_joins_neighbours_with_the_same_role() {
        let s = Shape::new(&[2, 3, 1, 4, 5]).unwrap();
        let (dims, mask, rank) = merge(&s, &[false, false, true, true, true]);
        assert_eq!((&dims[..rank as usize], mask), (&[6, 20][..], 0b10));
        let (dims, mask, rank) = merge(&s, &[true, false, false, true, false]);
        assert_eq!((&dims[..rank as usize], mask), (&[2, 3, 4, 5][..], 0b0101));
    }
}
