//! Softmax and LogSoftmax.
//!
//! Both opset conventions reduce to one geometry, `outer × len × inner`, normalising over
//! `len`: from opset 13 the op works along one axis (`inner` is what follows it); before
//! 13 the input is flattened to 2-D at the axis, so `len` spans every dim from the axis on
//! and `inner` is 1. The common `inner == 1` case runs over contiguous rows; otherwise
//! whole `inner`-long rows are combined at a time (max and sum kept in scratch) so loops
//! stay contiguous too. Exponentials use the vectorisable [`fast_exp`].

use super::unary::fast_exp;
use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, F32Source};
use crate::with_f32;

/// A prepared (Log)Softmax.
#[derive(Clone, Copy, Debug)]
pub struct Softmax {
    log: bool,
    outer: usize,
    len: usize,
    inner: usize,
}

fn prepare(p: &mut Prep, log: bool) -> Result<Op> {
    p.arity(1, 1)?;
    let x = p.input_of(0, DType::F32)?;
    let dims = x.shape.dims();
    let old = p.opset() < 13;
    let axis = p.attr_int("axis", if old { 1 } else { -1 })?;
    let rank = dims.len().max(1);
    let axis = crate::tensor::resolve_axis(axis, rank)
        .ok_or_else(|| p.attr_err("axis", "out of range"))?;
    let axis = axis.min(dims.len());
    let outer = dims[..axis].iter().product();
    let (len, inner) = if old {
        (dims[axis..].iter().product(), 1)
    } else {
        (
            dims.get(axis).copied().unwrap_or(1),
            dims.get(axis + 1..).map_or(1, |d| d.iter().product()),
        )
    };
    p.output(0, DType::F32, x.shape)?;
    p.macs(x.shape.volume() as u64);
    if inner > 1 {
        p.scratch(2 * inner * 4);
    }
    Ok(Op::Softmax(Softmax {
        log,
        outer,
        len,
        inner,
    }))
}

/// Softmax.
pub fn softmax(p: &mut Prep) -> Result<Op> {
    prepare(p, false)
}

/// LogSoftmax.
pub fn log_softmax(p: &mut Prep) -> Result<Op> {
    prepare(p, true)
}

/// One contiguous row.
fn row<S: F32Source>(log: bool, x: S, base: usize, out: &mut [f32]) {
    let max = (0..out.len()).fold(f32::NEG_INFINITY, |m, i| m.max(x.at(base + i)));
    let mut sum = 0.0;
    for (i, y) in out.iter_mut().enumerate() {
        let shifted = x.at(base + i) - max;
        let e = fast_exp(shifted);
        sum += e;
        *y = if log { shifted } else { e };
    }
    if log {
        let ln = libm::logf(sum);
        out.iter_mut().for_each(|y| *y -= ln);
    } else {
        let inv = 1.0 / sum;
        out.iter_mut().for_each(|y| *y *= inv);
    }
}

/// One `len × inner` block normalised along `len`, `inner` columns at a time.
fn block<S: F32Source>(log: bool, x: S, base: usize, out: &mut [f32], scratch: &mut [f32]) {
    let inner = scratch.len() / 2;
    let (max, sum) = scratch.split_at_mut(inner);
    max.fill(f32::NEG_INFINITY);
    sum.fill(0.0);
    for r in 0..out.len() / inner {
        let at = base + r * inner;
        max.iter_mut()
            .enumerate()
            .for_each(|(j, m)| *m = m.max(x.at(at + j)));
    }
    for (r, y) in out.chunks_exact_mut(inner).enumerate() {
        let at = base + r * inner;
        for (j, v) in y.iter_mut().enumerate() {
            let shifted = x.at(at + j) - max[j];
            let e = fast_exp(shifted);
            sum[j] += e;
            *v = if log { shifted } else { e };
        }
    }
    if log {
        sum.iter_mut().for_each(|s| *s = libm::logf(*s));
        for y in out.chunks_exact_mut(inner) {
            y.iter_mut().zip(sum.iter()).for_each(|(v, l)| *v -= l);
        }
    } else {
        sum.iter_mut().for_each(|s| *s = 1.0 / *s);
        for y in out.chunks_exact_mut(inner) {
            y.iter_mut().zip(sum.iter()).for_each(|(v, s)| *v *= s);
        }
    }
}

/// Computes the output.
pub fn eval(g: &Softmax, io: &mut Io) {
    let x = io.input(0);
    let out = io.outputs[0].f32_mut();
    let size = g.len * g.inner;
    if size == 0 {
        return;
    }
    with_f32!(x.f32(), |x| {
        for (o, y) in out.chunks_exact_mut(size).enumerate().take(g.outer) {
            if g.inner == 1 {
                row(g.log, x, o * size, y);
            } else {
                // Only asked for (and so only aligned) when inner > 1.
                let scratch: &mut [f32] = bytemuck::cast_slice_mut(&mut io.scratch[..8 * g.inner]);
                block(g.log, x, o * size, y, scratch);
            }
        }
    })
}
