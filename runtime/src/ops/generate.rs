//! Ops that make tensors from shapes: ConstantOfShape, Range, Expand, Tile.
//!
//! Exporters emit these around shape code (position ids, masks, broadcast helpers). Range
//! is always computed at plan time (its length depends on its values). ConstantOfShape is
//! a fill kernel, so a large one lives in the planned arena rather than the persistent tail
//! unless the planner folds it. Expand and Tile are affine reads of their input and run as
//! [strided copies](super::strided): Expand with stride 0 along broadcast dims, Tile as a
//! view of twice the rank where each dim `d` repeated `r` times becomes `[r, d]` with
//! strides `[0, stride]`.

use super::binary::{broadcast, broadcast_strides};
use super::shape::ints_param;
use super::strided::Strided;
use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, Shape, MAX_RANK};

/// Prepared ConstantOfShape: one element repeated.
#[derive(Clone, Copy, Debug)]
pub struct Fill {
    value: [u8; 8],
    elem: u8,
}

/// The 1-D shape input `k` as dims.
fn shape_input(p: &Prep, k: usize) -> Result<Shape> {
    let dims =
        ints_param::<MAX_RANK>(p, k, "shape", 0)?.ok_or_else(|| p.err("needs a shape input"))?;
    let mut out = Shape::SCALAR;
    for &d in dims.iter() {
        out.push(usize::try_from(d).map_err(|_| p.err("a dim in the shape input is negative"))?)?;
    }
    Ok(out)
}

/// ConstantOfShape(shape), value = float32 0 by default.
pub fn constant_of_shape(p: &mut Prep) -> Result<Op> {
    p.arity(1, 1)?;
    let shape = shape_input(p, 0)?;
    let mut fill = Fill {
        value: [0; 8],
        elem: 4,
    };
    let mut dtype = DType::F32;
    if let Some(a) = p.attr("value") {
        let t = a
            .tensor()
            .ok_or_else(|| p.attr_err("value", "expected a tensor"))?;
        let (dt, s, bytes) = crate::plan::load_tensor(p.bump, t)?;
        if s.volume() != 1 {
            return Err(p.attr_err("value", "must hold exactly one element"));
        }
        dtype = dt;
        fill.elem = dt.size() as u8;
        fill.value[..bytes.len()].copy_from_slice(bytes);
    }
    p.output(0, dtype, shape)?;
    Ok(Op::Fill(fill))
}

/// Writes the fill value everywhere.
pub fn eval_fill(f: &Fill, io: &mut Io) {
    let v = &f.value[..f.elem as usize];
    io.outputs[0]
        .bytes
        .chunks_exact_mut(v.len())
        .for_each(|c| c.copy_from_slice(v));
}

/// Range(start, limit, delta), all constant scalars of one type.
pub fn range(p: &mut Prep) -> Result<Op> {
    p.arity(3, 3)?;
    let (start, limit, delta) = (p.const_input(0)?, p.const_input(1)?, p.const_input(2)?);
    if start.dtype != limit.dtype || start.dtype != delta.dtype {
        return Err(p.err("start, limit and delta differ in type"));
    }
    if [start, limit, delta].iter().any(|t| t.shape.volume() != 1) {
        return Err(p.err("start, limit and delta must be scalars"));
    }
    let dtype = start.dtype;
    let size = dtype.size();
    match dtype {
        DType::F32 => {
            let f = |t: crate::tensor::TensorRef| {
                f32::from_le_bytes([t.bytes[0], t.bytes[1], t.bytes[2], t.bytes[3]])
            };
            let (s, l, d) = (f(start), f(limit), f(delta));
            if d == 0.0 || !d.is_finite() {
                return Err(p.err("delta is zero or not finite"));
            }
            let n = libm::ceilf((l - s) / d).max(0.0) as usize;
            p.const_output(0, dtype, Shape::new(&[n])?, |b| {
                for (i, c) in b.chunks_exact_mut(size).enumerate() {
                    c.copy_from_slice(&(s + i as f32 * d).to_le_bytes());
                }
            })?;
        }
        DType::I64 | DType::I32 | DType::I16 => {
            let (s, l, d) = (start.i64_at(0), limit.i64_at(0), delta.i64_at(0));
            if d == 0 {
                return Err(p.err("delta is zero"));
            }
            let span = l.saturating_sub(s);
            let n = if (span > 0) == (d > 0) && span != 0 {
                (span.unsigned_abs() - 1) / d.unsigned_abs() + 1
            } else {
                0
            };
            let n = usize::try_from(n).map_err(|_| p.err("range too long"))?;
            p.const_output(0, dtype, Shape::new(&[n])?, |b| {
                for (i, c) in b.chunks_exact_mut(size).enumerate() {
                    let v = s.wrapping_add((i as i64).wrapping_mul(d));
                    c.copy_from_slice(&v.to_le_bytes()[..size]);
                }
            })?;
        }
        _ => return Err(p.err("Range supports float32, int64, int32 and int16")),
    }
    Ok(Op::Const)
}

/// Expand(input, shape): numpy broadcast of the input to the shape.
pub fn expand(p: &mut Prep) -> Result<Op> {
    p.arity(2, 2)?;
    let x = p.input(0)?;
    let target = shape_input(p, 1)?;
    let out = broadcast(&x.shape, &target).ok_or_else(|| p.err("the input does not broadcast"))?;
    let st = broadcast_strides(&x.shape, &out);
    let mut strides = [0isize; MAX_RANK];
    for k in 0..out.rank() {
        strides[k] = st[k] as isize;
    }
    p.output(0, x.dtype, out)?;
    Ok(Op::Strided(Strided::new(
        &out,
        &strides[..out.rank()],
        0,
        x.dtype.size(),
    )))
}

/// Tile(input, repeats): the input repeated `repeats[k]` times along dim `k`.
pub fn tile(p: &mut Prep) -> Result<Op> {
    p.arity(2, 2)?;
    let x = p.input(0)?;
    let rank = x.shape.rank();
    let repeats = ints_param::<MAX_RANK>(p, 1, "repeats", 0)?
        .ok_or_else(|| p.err("needs a repeats input"))?;
    if repeats.len() != rank {
        return Err(p.err("repeats needs one entry per input dim"));
    }
    if 2 * rank > MAX_RANK {
        return Err(p.err("Tile supports inputs of rank 4 or less"));
    }
    let in_strides = x.shape.strides();
    let mut out = Shape::SCALAR;
    let mut view = Shape::SCALAR;
    let mut strides = [0isize; MAX_RANK];
    for k in 0..rank {
        let r = usize::try_from(repeats[k]).map_err(|_| p.err("a repeat count is negative"))?;
        out.push(r * x.shape.dim(k))?;
        view.push(r)?;
        view.push(x.shape.dim(k))?;
        strides[2 * k + 1] = in_strides[k] as isize;
    }
    p.output(0, x.dtype, out)?;
    Ok(Op::Strided(Strided::new(
        &view,
        &strides[..2 * rank],
        0,
        x.dtype.size(),
    )))
}
