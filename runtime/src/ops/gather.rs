//! Gather: pick slices of `data` along one axis by index.
//!
//! Exporters use it both on shapes (`Shape -> Gather(0)`, folded at plan time) and on
//! activations (embedding lookups, taking the class token). With the dims before the axis
//! flattened into `outer` and those after it into one contiguous block, eval is
//! `outer × indices` `memcpy`s of one block each, for any element type.
//!
//! Constant indices are range-checked at plan time. Run-time indices cannot raise an error
//! (eval is infallible), so an out-of-range one is clamped into the axis.

use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{resolve_axis, DType, Shape};

/// Prepared Gather.
#[derive(Clone, Copy, Debug)]
pub struct Gather {
    /// Product of the data dims before the axis.
    outer: usize,
    /// Length of the gathered axis.
    axis_len: usize,
    /// Bytes of one slice (data dims after the axis).
    block: usize,
}

/// Gather(data, indices), axis = 0.
pub fn gather(p: &mut Prep) -> Result<Op> {
    p.arity(2, 2)?;
    let (data, indices) = (p.input(0)?, p.input(1)?);
    if !matches!(indices.dtype, DType::I64 | DType::I32) {
        return Err(p.err("indices must be int64 or int32"));
    }
    let axis = resolve_axis(p.attr_int("axis", 0)?, data.shape.rank())
        .ok_or_else(|| p.attr_err("axis", "out of range"))?;
    let (before, after) = data.shape.dims().split_at(axis);
    let axis_len = after[0];
    if axis_len == 0 && indices.shape.volume() > 0 {
        return Err(p.err("gathers from an empty axis"));
    }
    if let Some(t) = indices.tensor() {
        let n = axis_len as i64;
        if t.i64s().any(|i| !(-n..n).contains(&i)) {
            return Err(p.err("an index is out of range"));
        }
    }
    let mut out = Shape::from_iter(before.iter().copied())?;
    for &d in indices.shape.dims().iter().chain(&after[1..]) {
        out.push(d)?;
    }
    p.output(0, data.dtype, out)?;
    Ok(Op::Gather(Gather {
        outer: before.iter().product(),
        axis_len,
        block: after[1..].iter().product::<usize>() * data.dtype.size(),
    }))
}

/// Copies the indexed slices.
pub fn eval(g: &Gather, io: &mut Io) {
    let (data, indices) = (io.input(0), io.input(1));
    let out = &mut *io.outputs[0].bytes;
    let n = indices.shape.volume();
    let len = g.axis_len as i64;
    let mut cursor = 0;
    for o in 0..g.outer {
        for j in 0..n {
            let i = indices.i64_at(j);
            let i = if i < 0 { i + len } else { i }.clamp(0, len - 1) as usize;
            let src = (o * g.axis_len + i) * g.block;
            out[cursor..cursor + g.block].copy_from_slice(&data.bytes[src..src + g.block]);
            cursor += g.block;
        }
    }
}
