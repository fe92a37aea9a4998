//! Slice: a strided window of the input, run as a [strided copy](super::strided).
//!
//! starts/ends/axes/steps come as constant inputs (opset 10+) or attributes (opset 1-9).
//! Each sliced axis resolves, per the spec's clamping rules, to a first index and a count;
//! the output then reads the input at `first · stride` with stride `step · stride`
//! (negative steps read backwards). Out-of-range starts and ends clamp rather than fail,
//! as exporters emit `INT64_MAX` for "to the end".

use super::shape::ints_param;
use super::strided::Strided;
use super::{Op, Prep};
use crate::error::Result;
use crate::tensor::{resolve_axis, MAX_RANK};

/// One sliced axis resolved against its dim: the first index read and how many are read.
/// Implements the ONNX clamping rules; `step` must be non-zero.
pub fn resolve(start: i64, end: i64, step: i64, dim: usize) -> (usize, usize) {
    let d = dim as i64;
    let wrap = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (start, end) = (wrap(start), wrap(end));
    let (start, end) = if step > 0 {
        (start.clamp(0, d), end.clamp(0, d))
    } else {
        (start.clamp(-1, d - 1), end.clamp(-1, d - 1))
    };
    let span = if step > 0 { end - start } else { start - end };
    let count = if span > 0 {
        (span as u64 - 1) / step.unsigned_abs() + 1
    } else {
        0
    };
    (start.max(0) as usize, count as usize)
}

/// Slice (opset 1 attributes, opset 10+ inputs).
pub fn slice(p: &mut Prep) -> Result<Op> {
    if p.opset() < 10 {
        p.arity(1, 1)?;
    } else {
        p.arity(3, 5)?;
    }
    let x = p.input(0)?;
    let rank = x.shape.rank();
    let starts =
        ints_param::<MAX_RANK>(p, 1, "starts", 10)?.ok_or_else(|| p.err("starts is required"))?;
    let ends =
        ints_param::<MAX_RANK>(p, 2, "ends", 10)?.ok_or_else(|| p.err("ends is required"))?;
    let axes = ints_param::<MAX_RANK>(p, 3, "axes", 10)?;
    let steps = ints_param::<MAX_RANK>(p, 4, "steps", 10)?;
    let n = starts.len();
    if ends.len() != n
        || axes.as_ref().is_some_and(|a| a.len() != n)
        || steps.as_ref().is_some_and(|s| s.len() != n)
    {
        return Err(p.err("starts, ends, axes and steps differ in length"));
    }

    let in_strides = x.shape.strides();
    let mut out = x.shape;
    let mut strides = [0isize; MAX_RANK];
    for k in 0..rank {
        strides[k] = in_strides[k] as isize;
    }
    let mut offset = 0usize;
    let mut seen = [false; MAX_RANK];
    for i in 0..n {
        let axis = match &axes {
            Some(a) => resolve_axis(a[i], rank).ok_or_else(|| p.err("axis out of range"))?,
            None if i < rank => i,
            None => return Err(p.err("more slice parameters than dims")),
        };
        if core::mem::replace(&mut seen[axis], true) {
            return Err(p.err("an axis is sliced twice"));
        }
        let step = steps.as_ref().map_or(1, |s| s[i]);
        if step == 0 {
            return Err(p.err("a step is zero"));
        }
        let (first, count) = resolve(starts[i], ends[i], step, x.shape.dim(axis));
        out.dims_mut()[axis] = count;
        if count > 0 {
            offset += first * in_strides[axis];
        }
        strides[axis] *= step as isize;
    }
    p.output(0, x.dtype, out)?;
    Ok(Op::Strided(Strided::new(
        &out,
        &strides[..rank],
        offset,
        x.dtype.size(),
    )))
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn clamps_like_the_spec() {
        assert_eq!(resolve(1, 3, 1, 5), (1, 2));
        assert_eq!(resolve(0, i64::MAX, 2, 5), (0, 3));
        assert_eq!(resolve(-2, i64::MAX, 1, 5), (3, 2));
        assert_eq!(resolve(i64::MIN, 2, 1, 5), (0, 2));
        // Reversal: start clamps to dim - 1, end to -1.
        assert_eq!(resolve(-1, i64::MIN, -1, 5), (4, 5));
        assert_eq!(resolve(10, 0, -2, 5), (4, 2));
        assert_eq!(resolve(3, 3, 1, 5), (3, 0));
        assert_eq!(resolve(0, 3, -1, 5), (0, 0));
        assert_eq!(resolve(0, 1, 1, 0), (0, 0));
    }
}
