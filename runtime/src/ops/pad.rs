//! Pad: constant, reflect and edge padding (negative pads crop).
//!
//! Pads are a constant input from opset 11 (with an optional `constant_value` input and,
//! from opset 18, `axes`) and attributes before. Every output index maps back to an input
//! index per dim, or to "outside" in constant mode. Eval walks output rows: the middle of
//! each row is one contiguous copy from the input row, only the padded ends go element by
//! element.

use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, F32Source, Shape, MAX_RANK};
use crate::with_f32;

/// What the padded border holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadMode {
    /// This value.
    Constant(f32),
    /// The input mirrored about its edge (edge not repeated).
    Reflect,
    /// The edge value repeated.
    Edge,
}

/// A prepared Pad.
#[derive(Clone, Copy, Debug)]
pub struct Pad {
    mode: PadMode,
    input: Shape,
    output: Shape,
    /// Padding before each dim (negative crops).
    begin: [isize; MAX_RANK],
}

impl Pad {
    /// The input index of output index `o` along a dim of `len` starting at `begin`, or
    /// `None` where constant padding shows.
    #[inline]
    fn source(&self, o: usize, len: usize, begin: isize) -> Option<usize> {
        let i = o as isize - begin;
        let n = len as isize;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        match self.mode {
            PadMode::Constant(_) => None,
            PadMode::Edge => Some(i.clamp(0, n - 1) as usize),
            PadMode::Reflect => Some(if i < 0 { -i } else { 2 * (n - 1) - i } as usize),
        }
    }
}

/// Pad.
pub fn pad(p: &mut Prep) -> Result<Op> {
    let x = p.input_of(0, DType::F32)?;
    let rank = x.shape.rank();
    let mut pads = [0i64; 2 * MAX_RANK];
    let mut value = 0.0;
    if p.opset() < 11 {
        p.arity(1, 1)?;
        let v = p
            .attr_ints::<{ 2 * MAX_RANK }>("pads")?
            .ok_or_else(|| p.attr_err("pads", "required"))?;
        if v.len() != 2 * rank {
            return Err(p.attr_err("pads", "expected two values per dim"));
        }
        pads[..2 * rank].copy_from_slice(&v);
        value = p.attr_float("value", 0.0)?;
    } else {
        p.arity(2, 4)?;
        let given = p.const_input(1)?;
        if given.dtype != DType::I64 || given.shape.rank() != 1 {
            return Err(p.err("pads must be a 1-D int64 tensor"));
        }
        // The dims the pads refer to: all, or the `axes` input's.
        let mut axes = [0usize; MAX_RANK];
        let n_axes = if p.opt_input(3).is_some() {
            let a = p.const_input(3)?;
            if !matches!(a.dtype, DType::I64 | DType::I32) || a.shape.volume() > rank {
                return Err(p.err("axes must be integers, at most one per dim"));
            }
            for (k, v) in a.i64s().enumerate() {
                axes[k] = x
                    .shape
                    .axis(v)
                    .ok_or_else(|| p.err("an axis is out of range"))?;
            }
            a.shape.volume()
        } else {
            axes.iter_mut().enumerate().for_each(|(k, a)| *a = k);
            rank
        };
        if given.shape.volume() != 2 * n_axes {
            return Err(p.err("pads must hold two values per padded dim"));
        }
        for k in 0..n_axes {
            pads[axes[k]] = given.i64_at(k);
            pads[rank + axes[k]] = given.i64_at(n_axes + k);
        }
        if p.opt_input(2).is_some() {
            let v = p.const_input(2)?;
            if v.dtype != DType::F32 || v.shape.volume() != 1 {
                return Err(p.err("constant_value must be a float32 scalar"));
            }
            value = with_f32!(v.f32(), |v| v.at(0));
        }
    }
    let mode = match p.attr_str("mode", "constant")? {
        "constant" => PadMode::Constant(value),
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        _ => return Err(p.attr_err("mode", "only constant, reflect and edge are supported")),
    };
    let mut output = x.shape;
    let mut begin = [0isize; MAX_RANK];
    for d in 0..rank {
        let (b, e, n) = (pads[d], pads[rank + d], x.shape.dim(d) as i64);
        let len = n + b + e;
        if len < 0 {
            return Err(p.err("pads crop more than the whole dim"));
        }
        let reach = b.max(e);
        let fits = match mode {
            PadMode::Constant(_) => true,
            PadMode::Edge => reach <= 0 || n >= 1,
            PadMode::Reflect => reach <= 0 || reach < n,
        };
        if !fits {
            return Err(
                p.err("reflect pads must be smaller than the dim, edge needs a non-empty dim")
            );
        }
        output.dims_mut()[d] = len as usize;
        begin[d] = b as isize;
    }
    p.output(0, DType::F32, output)?;
    Ok(Op::Pad(Pad {
        mode,
        input: x.shape,
        output,
        begin,
    }))
}

fn run<S: F32Source>(g: &Pad, x: S, out: &mut [f32]) {
    let rank = g.output.rank();
    if rank == 0 {
        out[0] = x.at(0);
        return;
    }
    let fill = match g.mode {
        PadMode::Constant(v) => v,
        _ => 0.0,
    };
    let last = rank - 1;
    let (w_in, w_out, b) = (g.input.dim(last), g.output.dim(last), g.begin[last]);
    if w_out == 0 {
        return;
    }
    let strides = g.input.strides();
    // Output columns fed by the contiguous middle of the input row.
    let lo = b.clamp(0, w_out as isize) as usize;
    let hi = (b + w_in as isize).clamp(lo as isize, w_out as isize) as usize;
    let mut idx = [0usize; MAX_RANK];
    for row in out.chunks_exact_mut(w_out) {
        let mut base = Some(0usize);
        for d in 0..last {
            base = base.and_then(|o| {
                g.source(idx[d], g.input.dim(d), g.begin[d])
                    .map(|i| o + i * strides[d])
            });
        }
        match base {
            None => row.fill(fill),
            Some(base) => {
                let border = |o: usize| g.source(o, w_in, b).map_or(fill, |i| x.at(base + i));
                row[..lo]
                    .iter_mut()
                    .enumerate()
                    .for_each(|(o, v)| *v = border(o));
                if hi > lo {
                    // lo >= b here, so the input column lo - b is in range.
                    let start = base + (lo as isize - b) as usize;
                    row[lo..hi]
                        .iter_mut()
                        .enumerate()
                        .for_each(|(k, v)| *v = x.at(start + k));
                }
                row[hi..]
                    .iter_mut()
                    .enumerate()
                    .for_each(|(k, v)| *v = border(hi + k));
            }
        }
        for d in (0..last).rev() {
            idx[d] += 1;
            if idx[d] < g.output.dim(d) {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Computes the output.
pub fn eval(g: &Pad, io: &mut Io) {
    let x = io.input(0);
    let out = io.outputs[0].f32_mut();
    with_f32!(x.f32(), |x| run(g, x, out))
}
