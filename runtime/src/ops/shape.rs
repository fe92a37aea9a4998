//! Shape-only ops: Reshape, Flatten, Squeeze, Unsqueeze (views), Shape and Size (constants).
//!
//! With fixed input shapes none of these move data. The first four return [`Op::View`]:
//! the output aliases the input's bytes (and stays a constant when the input is one). Shape
//! and Size are known at plan time, so they become constants, which lets the planner fold
//! the `Shape -> Gather -> Unsqueeze -> Concat -> Reshape` chains PyTorch exports for
//! `x.view(B, C, -1)` away entirely.

use super::{Fact, Op, Prep};
use crate::error::Result;
use crate::tensor::{resolve_axis, DType, Shape, MAX_RANK};

/// An int list given as attribute `attr` before opset `input_since` and as constant input
/// `k` from then on (`None` when absent). Used by every op whose axes/sizes moved from
/// attributes to inputs.
pub(crate) fn ints_param<const N: usize>(
    p: &Prep,
    k: usize,
    attr: &str,
    input_since: i64,
) -> Result<Option<heapless::Vec<i64, N>>> {
    if p.opset() < input_since {
        return p.attr_ints::<N>(attr);
    }
    if p.opt_input(k).is_none() {
        return Ok(None);
    }
    let t = p.const_input(k)?;
    if t.shape.rank() > 1 || !matches!(t.dtype, DType::I64 | DType::I32) {
        return Err(p.err("an axes/shape/sizes input is not a 1-D int64 tensor"));
    }
    let mut v = heapless::Vec::new();
    for x in t.i64s() {
        v.push(x)
            .map_err(|_| p.err("an axes/shape/sizes input is too long"))?;
    }
    Ok(Some(v))
}

/// Declares output 0 as input `x` reinterpreted with `shape`.
fn view_as<'a>(p: &mut Prep<'_, 'a>, x: Fact<'a>, shape: Shape) -> Result<Op> {
    match x.value {
        Some(v) => p.const_output_from(0, x.dtype, shape, v)?,
        None => p.output(0, x.dtype, shape)?,
    }
    Ok(Op::View)
}

/// The target of a Reshape: `0` copies the input dim (unless `allowzero`), one `-1` is
/// inferred. `None` when the request is invalid or the element count differs.
pub fn reshape_target(input: &Shape, request: &[i64], allowzero: bool) -> Option<Shape> {
    let mut out = Shape::SCALAR;
    let mut infer = None;
    for (i, &v) in request.iter().enumerate() {
        let d = match v {
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            0 if !allowzero => (i < input.rank()).then(|| input.dim(i))?,
            v => usize::try_from(v).ok()?,
        };
        out.push(d).ok()?;
    }
    if let Some(i) = infer {
        let known = out.volume();
        if known == 0 || !input.volume().is_multiple_of(known) {
            return None;
        }
        out.dims_mut()[i] = input.volume() / known;
    }
    (out.volume() == input.volume()).then_some(out)
}

/// Reshape(data, shape), allowzero (opset 14).
pub fn reshape(p: &mut Prep) -> Result<Op> {
    p.arity(2, 2)?;
    let x = p.input(0)?;
    let request = ints_param::<MAX_RANK>(p, 1, "shape", 5)?
        .ok_or_else(|| p.err("the shape input is required"))?;
    let allowzero = p.attr_int("allowzero", 0)? != 0;
    let out = reshape_target(&x.shape, &request, allowzero)
        .ok_or_else(|| p.err("the requested shape does not fit the input's element count"))?;
    view_as(p, x, out)
}

/// Flatten(axis = 1): to 2-D `[prod(dims[..axis]), prod(dims[axis..])]`.
pub fn flatten(p: &mut Prep) -> Result<Op> {
    p.arity(1, 1)?;
    let x = p.input(0)?;
    let rank = x.shape.rank() as i64;
    let axis = p.attr_int("axis", 1)?;
    if !(-rank..=rank).contains(&axis) {
        return Err(p.attr_err("axis", "out of range"));
    }
    let axis = if axis < 0 { axis + rank } else { axis } as usize;
    let (head, tail) = x.shape.dims().split_at(axis);
    let out = Shape::new(&[head.iter().product(), tail.iter().product()])?;
    view_as(p, x, out)
}

/// Squeeze: removes the listed unit dims (all unit dims when none are listed).
pub fn squeeze(p: &mut Prep) -> Result<Op> {
    p.arity(1, 2)?;
    let x = p.input(0)?;
    let rank = x.shape.rank();
    let mut drop = [false; MAX_RANK];
    match ints_param::<MAX_RANK>(p, 1, "axes", 13)? {
        Some(axes) => {
            for &a in axes.iter() {
                let a = resolve_axis(a, rank).ok_or_else(|| p.err("axis out of range"))?;
                if x.shape.dim(a) != 1 {
                    return Err(p.err("squeezes a dim that is not 1"));
                }
                drop[a] = true;
            }
        }
        None => (0..rank).for_each(|a| drop[a] = x.shape.dim(a) == 1),
    }
    let out = Shape::from_iter((0..rank).filter(|&a| !drop[a]).map(|a| x.shape.dim(a)))?;
    view_as(p, x, out)
}

/// Unsqueeze: inserts unit dims at the listed positions of the output.
pub fn unsqueeze(p: &mut Prep) -> Result<Op> {
    p.arity(1, 2)?;
    let x = p.input(0)?;
    let axes =
        ints_param::<MAX_RANK>(p, 1, "axes", 13)?.ok_or_else(|| p.err("axes are required"))?;
    let rank = x.shape.rank() + axes.len();
    if rank > MAX_RANK {
        return Err(p.err("the result has too many dims"));
    }
    let mut unit = [false; MAX_RANK];
    for &a in axes.iter() {
        let a = resolve_axis(a, rank).ok_or_else(|| p.err("axis out of range"))?;
        if core::mem::replace(&mut unit[a], true) {
            return Err(p.err("an axis is listed twice"));
        }
    }
    let mut dims = x.shape.dims().iter();
    let out = Shape::from_iter((0..rank).map(|a| {
        if unit[a] {
            1
        } else {
            dims.next().copied().unwrap_or(1)
        }
    }))?;
    view_as(p, x, out)
}

/// Shape (start/end from opset 15): the input's dims as a constant int64 vector.
pub fn shape(p: &mut Prep) -> Result<Op> {
    p.arity(1, 1)?;
    let x = p.input(0)?;
    let rank = x.shape.rank() as i64;
    let clamp = |v: i64| if v < 0 { v + rank } else { v }.clamp(0, rank) as usize;
    let start = clamp(p.attr_int("start", 0)?);
    let end = clamp(p.attr_int("end", rank)?);
    let dims = &x.shape.dims()[start..end.max(start)];
    let out = Shape::new(&[dims.len()])?;
    p.const_output(0, DType::I64, out, |b| {
        for (c, &d) in b.chunks_exact_mut(8).zip(dims) {
            c.copy_from_slice(&(d as i64).to_le_bytes());
        }
    })?;
    Ok(Op::Const)
}

/// Size: the input's element count as a constant int64 scalar.
pub fn size(p: &mut Prep) -> Result<Op> {
    p.arity(1, 1)?;
    let n = p.input(0)?.shape.volume() as i64;
    p.const_output(0, DType::I64, Shape::SCALAR, |b| {
        b.copy_from_slice(&n.to_le_bytes())
    })?;
    Ok(Op::Const)
}

#[cfg(test)]
mod tests {
    use super::reshape_target;
    use crate::tensor::Shape;
    use std::vec;

    #[test]
    fn reshape_copies_zeros_and_infers_minus_one() {
        let x = Shape::new(&[2, 3, 4]).unwrap();
        let t = |r: &[i64], z| reshape_target(&x, r, z).map(|s| s.dims().to_vec());
        assert_eq!(t(&[0, -1], false), Some(vec![2, 12]));
        assert_eq!(t(&[-1], false), Some(vec![24]));
        assert_eq!(t(&[4, 0, 2], false), Some(vec![4, 3, 2]));
        assert_eq!(t(&[5, -1], false), None);
        assert_eq!(t(&[-1, -1], false), None);
        assert_eq!(t(&[0, 24], true), None);
        let empty = Shape::new(&[0, 3]).unwrap();
        assert_eq!(
            reshape_target(&empty, &[3, 0], true).map(|s| s.dims().to_vec()),
            Some(vec![3, 0])
        );
    }
}
