//! Ops that move no data (Identity, Dropout at inference) and `Constant`.

use super::{Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, F32Source, Shape};

/// Identity, Dropout: output 0 aliases input 0 (a constant stays a constant).
pub fn view(p: &mut Prep) -> Result<Op> {
    let x = p.input(0)?;
    match x.value {
        Some(v) => p.const_output_from(0, x.dtype, x.shape, v)?,
        None => p.output(0, x.dtype, x.shape)?,
    }
    Ok(Op::View)
}

/// Dropout at inference is the identity. `training_mode = true` draws a random mask, which
/// only a ratio of 0 makes deterministic; anything else is refused rather than silently
/// run as the identity.
pub fn dropout(p: &mut Prep) -> Result<Op> {
    if p.opt_input(2).is_some() {
        let training = p.const_input(2)?;
        if training.i64s().next().unwrap_or(0) != 0 {
            let ratio = match p.opt_input(1) {
                None => 0.5,
                Some(_) => {
                    let r = p.const_input(1)?;
                    crate::with_f32!(r.f32(), |x| if x.is_empty() { 0.5 } else { x.at(0) })
                }
            };
            if ratio != 0.0 {
                return Err(p.err("training-mode Dropout is random; only inference is supported"));
            }
        }
    }
    view(p)
}

/// Constant: its `value` tensor, or a `value_float(s)` / `value_int(s)` attribute.
pub fn constant(p: &mut Prep) -> Result<Op> {
    if let Some(a) = p.attr("value") {
        let t = a
            .tensor()
            .ok_or_else(|| p.attr_err("value", "expected a tensor"))?;
        let (dtype, shape, bytes) = crate::plan::load_tensor(p.bump, t)?;
        p.const_output_from(0, dtype, shape, bytes)?;
    } else if let Some(a) = p.attr("value_float") {
        let v = a
            .float()
            .ok_or_else(|| p.attr_err("value_float", "expected a float"))?;
        p.const_output(0, DType::F32, Shape::SCALAR, |b| {
            b.copy_from_slice(&v.to_le_bytes())
        })?;
    } else if let Some(a) = p.attr("value_int") {
        let v = a
            .int()
            .ok_or_else(|| p.attr_err("value_int", "expected an integer"))?;
        p.const_output(0, DType::I64, Shape::SCALAR, |b| {
            b.copy_from_slice(&v.to_le_bytes())
        })?;
    } else if let Some(a) = p.attr("value_floats") {
        let shape = Shape::new(&[a.floats().count()])?;
        p.const_output(0, DType::F32, shape, |b| {
            for (c, v) in b.chunks_exact_mut(4).zip(a.floats()) {
                c.copy_from_slice(&v.to_le_bytes());
            }
        })?;
    } else if let Some(a) = p.attr("value_ints") {
        let shape = Shape::new(&[a.ints().count()])?;
        p.const_output(0, DType::I64, shape, |b| {
            for (c, v) in b.chunks_exact_mut(8).zip(a.ints()) {
                c.copy_from_slice(&v.to_le_bytes());
            }
        })?;
    } else {
        return Err(p.err("Constant needs a value attribute we support"));
    }
    Ok(Op::Const)
}
