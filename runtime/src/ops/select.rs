//! Equal and Where, with numpy broadcasting.
//!
//! PyTorch exports shape code with these (`Where(Equal(shape, -1), 1, shape)` before an
//! Expand, attention masks); with fixed shapes their inputs are constant and the planner
//! folds them, but they also run on activations. Both are element moves driven by one
//! odometer over the output that advances each operand by its broadcast stride; the
//! strides come from the bound shapes, so the prepared op is just its kind.

use super::binary::{broadcast, broadcast_strides};
use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, Shape, TensorRef, MAX_RANK};

/// Which selection op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// `a == b`, a bool tensor.
    Equal,
    /// `cond ? x : y`.
    Where,
}

/// Equal(a, b): same-typed operands, bool output.
pub fn equal(p: &mut Prep) -> Result<Op> {
    p.arity(2, 2)?;
    let (a, b) = (p.input(0)?, p.input(1)?);
    if a.dtype != b.dtype {
        return Err(p.err("operands have different element types"));
    }
    let out =
        broadcast(&a.shape, &b.shape).ok_or_else(|| p.err("operand shapes do not broadcast"))?;
    p.output(0, DType::Bool, out)?;
    Ok(Op::Select(Select::Equal))
}

/// Where(cond, x, y): bool condition, same-typed branches.
pub fn where_(p: &mut Prep) -> Result<Op> {
    p.arity(3, 3)?;
    let (c, x, y) = (p.input(0)?, p.input(1)?, p.input(2)?);
    if c.dtype != DType::Bool {
        return Err(p.err("the condition must be bool"));
    }
    if x.dtype != y.dtype {
        return Err(p.err("the branches have different element types"));
    }
    let out = broadcast(&c.shape, &x.shape)
        .and_then(|s| broadcast(&s, &y.shape))
        .ok_or_else(|| p.err("operand shapes do not broadcast"))?;
    p.output(0, x.dtype, out)?;
    Ok(Op::Select(Select::Where))
}

/// Calls `f(out_index, operand_offsets)` for every output element in order.
fn for_each<const N: usize>(
    out: &Shape,
    operands: [&Shape; N],
    mut f: impl FnMut(usize, [usize; N]),
) {
    let strides = operands.map(|s| broadcast_strides(s, out));
    let rank = out.rank();
    let mut idx = [0usize; MAX_RANK];
    let mut at = [0usize; N];
    for i in 0..out.volume() {
        f(i, at);
        for d in (0..rank).rev() {
            idx[d] += 1;
            for (k, st) in strides.iter().enumerate() {
                at[k] += st[d];
            }
            if idx[d] < out.dim(d) {
                break;
            }
            for (k, st) in strides.iter().enumerate() {
                at[k] -= st[d] * idx[d];
            }
            idx[d] = 0;
        }
    }
}

/// Element `i` of a float tensor as f64, for value (not bit) comparison.
fn float_at(t: &TensorRef, i: usize) -> f64 {
    let b = &t.bytes[i * t.dtype.size()..];
    match t.dtype {
        DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]).into(),
        DType::F16 => half::f16::from_le_bytes([b[0], b[1]]).into(),
        _ => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
    }
}

/// Computes the output.
pub fn eval(s: &Select, io: &mut Io) {
    match s {
        Select::Equal => {
            let (a, b) = (io.input(0), io.input(1));
            let out = &mut io.outputs[0];
            let n = a.dtype.size();
            let float = matches!(a.dtype, DType::F32 | DType::F16 | DType::F64);
            for_each(&out.shape, [&a.shape, &b.shape], |i, [ia, ib]| {
                let eq = if float {
                    // -0.0 equals 0.0 and NaN equals nothing: compare values, not bits.
                    float_at(&a, ia) == float_at(&b, ib)
                } else {
                    a.bytes[ia * n..][..n] == b.bytes[ib * n..][..n]
                };
                out.bytes[i] = u8::from(eq);
            });
        }
        Select::Where => {
            let (c, x, y) = (io.input(0), io.input(1), io.input(2));
            let out = &mut io.outputs[0];
            let n = x.dtype.size();
            for_each(
                &out.shape,
                [&c.shape, &x.shape, &y.shape],
                |i, [ic, ix, iy]| {
                    let src = if c.bytes[ic] != 0 {
                        &x.bytes[ix * n..][..n]
                    } else {
                        &y.bytes[iy * n..][..n]
                    };
                    out.bytes[i * n..][..n].copy_from_slice(src);
                },
            );
        }
    }
}
