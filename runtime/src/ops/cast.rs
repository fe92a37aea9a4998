//! Cast between f32, f16, f64, i8, u8, i16, i32, i64 and bool.
//!
//! Each element is read into the widest value of its kind (i64 for integers and bool, f64
//! for floats, both exact) and written out with Rust's `as` conversions, as tract does:
//! integers wrap, floats truncate toward zero and saturate (NaN to 0), anything non-zero is
//! `true` (the spec leaves out-of-range float to integer casts undefined). f16 goes
//! through the `half` crate with round-to-nearest-even. Casting to the same type is a
//! plain copy.

use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::DType;
use half::f16;

/// Prepared Cast.
#[derive(Clone, Copy, Debug)]
pub struct Cast {
    from: DType,
    to: DType,
}

/// Cast(to).
pub fn cast(p: &mut Prep) -> Result<Op> {
    p.arity(1, 1)?;
    let x = p.input(0)?;
    let code = p.attr_int("to", -1)?;
    let to = DType::from_onnx(code).ok_or_else(|| p.attr_err("to", "unsupported target type"))?;
    p.output(0, to, x.shape)?;
    Ok(Op::Cast(Cast { from: x.dtype, to }))
}

/// One element, widened without loss.
#[derive(Clone, Copy)]
enum Scalar {
    Int(i64),
    Float(f64),
}

#[inline]
fn read(dtype: DType, b: &[u8]) -> Scalar {
    match dtype {
        DType::F32 => Scalar::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]).into()),
        DType::F16 => Scalar::Float(f16::from_le_bytes([b[0], b[1]]).into()),
        DType::F64 => Scalar::Float(f64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ])),
        DType::I8 => Scalar::Int(i64::from(b[0] as i8)),
        DType::U8 => Scalar::Int(i64::from(b[0])),
        DType::Bool => Scalar::Int(i64::from(b[0] != 0)),
        DType::I16 => Scalar::Int(i16::from_le_bytes([b[0], b[1]]).into()),
        DType::I32 => Scalar::Int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]).into()),
        DType::I64 => Scalar::Int(i64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ])),
    }
}

/// `v` converted with `as` to `$t`.
macro_rules! conv {
    ($v:expr, $t:ty) => {
        match $v {
            Scalar::Int(i) => i as $t,
            Scalar::Float(f) => f as $t,
        }
    };
}

#[inline]
fn write(dtype: DType, v: Scalar, out: &mut [u8]) {
    match dtype {
        DType::F32 => out.copy_from_slice(&conv!(v, f32).to_le_bytes()),
        DType::F64 => out.copy_from_slice(&conv!(v, f64).to_le_bytes()),
        DType::F16 => out.copy_from_slice(&f16::from_f64(conv!(v, f64)).to_le_bytes()),
        DType::Bool => out[0] = u8::from(conv!(v, f64) != 0.0),
        DType::I8 => out[0] = conv!(v, i8) as u8,
        DType::U8 => out[0] = conv!(v, u8),
        DType::I16 => out.copy_from_slice(&conv!(v, i16).to_le_bytes()),
        DType::I32 => out.copy_from_slice(&conv!(v, i32).to_le_bytes()),
        DType::I64 => out.copy_from_slice(&conv!(v, i64).to_le_bytes()),
    }
}

/// Converts every element.
pub fn eval(c: &Cast, io: &mut Io) {
    let x = io.input(0);
    let out = &mut *io.outputs[0].bytes;
    if c.from == c.to {
        out.copy_from_slice(x.bytes);
        return;
    }
    let (si, so) = (c.from.size(), c.to.size());
    for (src, dst) in x.bytes.chunks_exact(si).zip(out.chunks_exact_mut(so)) {
        write(c.to, read(c.from, src), dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast(from: DType, to: DType, src: &[u8]) -> [u8; 8] {
        let mut out = [0u8; 8];
        write(to, read(from, src), &mut out[..to.size()]);
        out
    }

    #[test]
    fn conversions_wrap_truncate_and_saturate() {
        let f = |v: f32| v.to_le_bytes();
        assert_eq!(
            cast(DType::F32, DType::I32, &f(-2.7))[..4],
            (-2i32).to_le_bytes()
        );
        assert_eq!(cast(DType::F32, DType::U8, &f(300.0))[0], 255);
        assert_eq!(cast(DType::I64, DType::U8, &(-1i64).to_le_bytes())[0], 255);
        assert_eq!(cast(DType::F32, DType::Bool, &f(0.1))[0], 1);
        assert_eq!(cast(DType::I32, DType::Bool, &0i32.to_le_bytes())[0], 0);
        let h = cast(DType::F32, DType::F16, &f(1.0 / 3.0));
        assert_eq!(h[..2], f16::from_f32(1.0 / 3.0).to_le_bytes());
        let back = cast(DType::F16, DType::F32, &h[..2]);
        assert_eq!(back[..4], f16::from_f32(1.0 / 3.0).to_f32().to_le_bytes());
    }
}
