//! Concat and Split: joining and cutting tensors along one axis.
//!
//! Both are byte moves independent of the element type: with the dims before the axis
//! flattened into `outer`, each input (Concat) or output (Split) owns one contiguous block
//! per outer index, so eval is `outer × n` `memcpy`s. Exporters also run them on int64
//! shape vectors, which the planner folds at plan time through the same eval.
//!
//! In QDQ models a Concat of float branches is often read by a QuantizeLinear alone (the
//! next int8 conv's input): the planner then fuses it ([`Concat::with_requant`]) and the
//! copy quantizes each block on the way, so the float result never exists.

use super::qgemm::Requant;
use super::quant::quantize_f32s;
use super::shape::ints_param;
use super::{Io, Op, Prep, MAX_OUTPUTS};
use crate::error::Result;
use crate::tensor::{resolve_axis, Shape};

/// Prepared Concat or Split: the axis (block sizes are read from the bound shapes).
#[derive(Clone, Copy, Debug)]
pub struct AxisCopy {
    axis: u8,
}

impl AxisCopy {
    fn outer(&self, s: &Shape) -> usize {
        s.dims()[..self.axis as usize].iter().product()
    }
    /// Bytes of one block of `s` (its dims from the axis on).
    fn block(&self, s: &Shape, elem: usize) -> usize {
        s.dims()[self.axis as usize..].iter().product::<usize>() * elem
    }
}

/// Prepared Concat: the axis, and the QuantizeLinear fused into the copy, if any.
#[derive(Clone, Copy, Debug)]
pub struct Concat {
    copy: AxisCopy,
    requant: Option<Requant>,
}

impl Concat {
    /// This Concat writing its float32 result quantized to int8 by `requant`.
    pub fn with_requant(self, requant: Requant) -> Concat {
        Concat {
            requant: Some(requant),
            ..self
        }
    }

    /// The fused output quantization, if any.
    pub fn requant(&self) -> Option<Requant> {
        self.requant
    }

    /// The step's name in profiles.
    pub fn op_name(&self) -> &'static str {
        match self.requant {
            Some(_) => "Concat+Q",
            None => "Concat",
        }
    }
}

/// Concat(axis): all inputs share dtype and every dim but `axis`.
pub fn concat(p: &mut Prep) -> Result<Op> {
    p.arity(1, p.n_inputs())?;
    let first = p.input(0)?;
    let rank = first.shape.rank();
    let axis = p.attr_int("axis", i64::MIN)?;
    if axis == i64::MIN {
        return Err(p.attr_err("axis", "is required"));
    }
    let axis = resolve_axis(axis, rank).ok_or_else(|| p.attr_err("axis", "out of range"))?;
    let mut out = first.shape;
    out.dims_mut()[axis] = 0;
    for i in 0..p.n_inputs() {
        let x = p.input(i)?;
        if x.dtype != first.dtype {
            return Err(p.err("inputs have different element types"));
        }
        let same_dims = x.shape.rank() == rank
            && (0..rank).all(|d| d == axis || x.shape.dim(d) == first.shape.dim(d));
        if !same_dims {
            return Err(p.err("inputs differ in a dim other than the concat axis"));
        }
        out.dims_mut()[axis] += x.shape.dim(axis);
    }
    p.output(0, first.dtype, out)?;
    Ok(Op::Concat(Concat {
        copy: AxisCopy { axis: axis as u8 },
        requant: None,
    }))
}

/// Split(axis = 0): sizes from the `split` attribute (before opset 13) or input 1, else
/// equal chunks over the outputs (the last one smaller when the dim does not divide, as
/// opset 18's `num_outputs` specifies).
pub fn split(p: &mut Prep) -> Result<Op> {
    p.arity(1, 2)?;
    let x = p.input(0)?;
    let axis = resolve_axis(p.attr_int("axis", 0)?, x.shape.rank())
        .ok_or_else(|| p.attr_err("axis", "out of range"))?;
    let dim = x.shape.dim(axis);
    let n = p.n_outputs();
    let num_outputs = p.attr_int("num_outputs", n as i64)?;
    if num_outputs != n as i64 {
        return Err(p.attr_err("num_outputs", "differs from the node's output count"));
    }
    let mut sizes: heapless::Vec<usize, MAX_OUTPUTS> = heapless::Vec::new();
    match ints_param::<MAX_OUTPUTS>(p, 1, "split", 13)? {
        Some(given) => {
            for &s in given.iter() {
                let s = usize::try_from(s).map_err(|_| p.err("a split size is negative"))?;
                let _ = sizes.push(s);
            }
            if sizes.len() != n || sizes.iter().sum::<usize>() != dim {
                return Err(p.err("split sizes do not add up to the dim or the output count"));
            }
        }
        None => {
            if n == 0 {
                return Err(p.err("needs at least one output"));
            }
            let chunk = dim.div_ceil(n);
            for k in 0..n {
                let _ = sizes.push(chunk.min(dim.saturating_sub(k * chunk)));
            }
        }
    }
    for (k, &s) in sizes.iter().enumerate() {
        let mut shape = x.shape;
        shape.dims_mut()[axis] = s;
        p.output(k, x.dtype, shape)?;
    }
    Ok(Op::Split(AxisCopy { axis: axis as u8 }))
}

/// Concat eval: each input's blocks interleaved per outer index (quantized on the way
/// when a QuantizeLinear is fused: float32 inputs, one int8 byte per element out).
pub fn eval_concat(c: &Concat, io: &mut Io) {
    let out = &mut io.outputs[0];
    let copy = c.copy;
    let mut cursor = 0;
    for o in 0..copy.outer(&out.shape) {
        for x in io.inputs.iter().flatten() {
            let n = copy.block(&x.shape, 1);
            let dst = &mut out.bytes[cursor..][..n * out.dtype.size()];
            match c.requant {
                None => {
                    let block = dst.len();
                    dst.copy_from_slice(&x.bytes[o * block..][..block]);
                }
                Some(r) => crate::with_f32!(x.f32(), |xs| quantize_f32s(xs, o * n, dst, r)),
            }
            cursor += dst.len();
        }
    }
}

/// Split eval: the input's rows dealt out to the outputs per outer index.
pub fn eval_split(c: &AxisCopy, io: &mut Io) {
    let x = io.input(0);
    let elem = x.dtype.size();
    let mut cursor = 0;
    for o in 0..c.outer(&x.shape) {
        for y in io.outputs.iter_mut() {
            let block = c.block(&y.shape, elem);
            y.bytes[o * block..][..block].copy_from_slice(&x.bytes[cursor..cursor + block]);
            cursor += block;
        }
    }
}
