//! QuantizeLinear and DequantizeLinear: the float reference ("fake-quant") semantics of
//! QDQ models.
//!
//! A QDQ model marks every quantized tensor with a `QuantizeLinear → DequantizeLinear` pair
//! and stores int8 weights behind a `DequantizeLinear`. Run as written, each pair rounds a
//! float tensor to the int8 grid and back, so the float kernels compute what an integer
//! kernel would, up to accumulation order. That is the reference the integer kernels are
//! checked against: the planner recognises `DequantizeLinear → Conv` on int8 operands and
//! runs it as one i8×i8→i32 kernel (`plan::qdq`, [`super::conv::QConv`]); QuantizeLinear
//! stays the step that writes the int8 activation, and both ops remain the fallback for
//! every other placement.
//!
//! Semantics are those of opset 13+ (opset 10 is the per-tensor subset):
//! - `y = saturate(round_half_to_even(x / scale) + zero_point)` and
//!   `y = (x - zero_point) * scale`, computed in f32 (the integer difference in i64, so an
//!   int32 input cannot overflow);
//! - scale and zero point are either one value (per tensor: a scalar or a 1-element 1-D
//!   tensor) or a 1-D tensor with one value per index of `axis` (per axis, default axis 1);
//! - QuantizeLinear writes the zero point's type, uint8 when it is omitted (int8 and
//!   uint8); DequantizeLinear reads int8, uint8 and int32 (the latter for int32 biases);
//! - blocked quantization (opset 21 `block_size`) and the 4/16-bit and float8 types are
//!   refused at prepare time.
//!
//! Scale and zero point are read at run time, so they need not be constants (tract and
//! onnxruntime's fused kernels want them constant; the compressor always writes them so).

use super::qgemm::Requant;
use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::F32Source;
use crate::tensor::{resolve_axis, DType, TensorRef};
use crate::with_f32;

/// Which way the op converts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// float → integer (QuantizeLinear).
    Quantize,
    /// integer → float (DequantizeLinear).
    Dequantize,
}

/// Prepared QuantizeLinear / DequantizeLinear.
#[derive(Clone, Copy, Debug)]
pub struct Quant {
    /// Which way.
    pub direction: Direction,
    /// The integer type (output of Quantize, input of Dequantize).
    pub int: DType,
    /// Scale / zero point values: 1 per tensor, else the size of the quantized axis.
    pub channels: usize,
    /// Elements between two consecutive indices of the quantized axis (1 per tensor).
    pub inner: usize,
}

/// QuantizeLinear(x, y_scale[, y_zero_point]).
pub fn quantize_linear(p: &mut Prep) -> Result<Op> {
    prepare(p, Direction::Quantize)
}

/// DequantizeLinear(x, x_scale[, x_zero_point]).
pub fn dequantize_linear(p: &mut Prep) -> Result<Op> {
    prepare(p, Direction::Dequantize)
}

fn prepare(p: &mut Prep, direction: Direction) -> Result<Op> {
    p.arity(2, 3)?;
    if p.attr_int("block_size", 0)? != 0 {
        return Err(p.attr_err("block_size", "blocked quantization is not supported"));
    }
    let x = p.input(0)?;
    let scale = p.input_of(1, DType::F32)?;
    let zero_point = p.opt_input(2);
    let int = match direction {
        Direction::Quantize => {
            if x.dtype != DType::F32 {
                return Err(p.err("expects float32 input"));
            }
            let int = zero_point.map_or(DType::U8, |z| z.dtype);
            if !matches!(int, DType::I8 | DType::U8) {
                return Err(p.err("the zero point must be int8 or uint8"));
            }
            int
        }
        Direction::Dequantize => {
            if !matches!(x.dtype, DType::I8 | DType::U8 | DType::I32) {
                return Err(p.err("expects int8, uint8 or int32 input"));
            }
            if zero_point.is_some_and(|z| z.dtype != x.dtype) {
                return Err(p.err("the zero point's type differs from the input's"));
            }
            x.dtype
        }
    };
    let values = scale.shape.volume();
    let per_tensor = values == 1 && scale.shape.rank() <= 1;
    let (channels, inner) = if per_tensor {
        (1, 1)
    } else {
        if scale.shape.rank() != 1 || p.opset() < 13 {
            return Err(p.err("the scale must be a scalar or a 1-D tensor (per axis, opset 13+)"));
        }
        let axis = resolve_axis(p.attr_int("axis", 1)?, x.shape.rank())
            .ok_or_else(|| p.attr_err("axis", "out of range for the input's rank"))?;
        if x.shape.dim(axis) != values {
            return Err(p.err("the scale's length differs from the input's size along axis"));
        }
        (values, x.shape.dims()[axis + 1..].iter().product())
    };
    if zero_point
        .is_some_and(|z| z.shape.volume() != values || z.shape.rank() != scale.shape.rank())
    {
        return Err(p.err("the zero point's shape differs from the scale's"));
    }
    let out = match direction {
        Direction::Quantize => int,
        Direction::Dequantize => DType::F32,
    };
    p.output(0, out, x.shape)?;
    Ok(Op::Quant(Quant {
        direction,
        int,
        channels,
        inner,
    }))
}

/// Zero point `c` widened to i64 (0 when omitted).
#[inline]
fn zero_at(zero_point: Option<TensorRef<'_>>, c: usize) -> i64 {
    zero_point.map_or(0, |z| z.i64_at(c))
}

/// The integer range of `int` as f32.
fn bounds(int: DType) -> (f32, f32) {
    match int {
        DType::I8 => (i8::MIN.into(), i8::MAX.into()),
        _ => (u8::MIN.into(), u8::MAX.into()),
    }
}

/// `saturate(round_half_to_even(x / scale) + zero_point)` as the integer type's value
/// (NaN gives 0).
#[inline(always)]
pub fn quantize(x: f32, scale: f32, zero_point: i64, lo: f32, hi: f32) -> i32 {
    round_to_grid(x / scale, zero_point, lo, hi)
}

/// `1 / scale` when multiplying by it gives `x / scale` bit for bit for every `x`: `scale`
/// a power of two (of either sign) whose reciprocal is a normal float. Then both round the
/// same exact value `x · 2⁻ᵏ` once. Quantizing multiplies instead of divides (a Cortex-M4's
/// `VDIV` takes 14 cycles, `VMUL` one): the compressor's `--pow2-scales` writes such scales.
pub fn exact_reciprocal(scale: f32) -> Option<f32> {
    let recip = 1.0 / scale;
    let pow2 = scale.is_normal() && scale.to_bits() & 0x007f_ffff == 0;
    (pow2 && recip.is_normal()).then_some(recip)
}

/// [`quantize`] of `v = x / scale`, already divided: `v` rounded half to even, plus
/// `zero_point`, saturated to `[lo, hi]`; a NaN quantizes as 0.0 does, to the zero point.
/// On an Arm core with a floating-point unit one `VCVTR` does the rounding
/// ([`round_to_grid_portable`] is the definition, which every path equals bit for bit).
#[inline(always)]
pub fn round_to_grid(v: f32, zero_point: i64, lo: f32, hi: f32) -> i32 {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    return round_to_grid_vcvtr(v, zero_point, lo, hi);
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    round_to_grid_portable(v, zero_point, lo, hi)
}

/// The definition of [`round_to_grid`], in portable floating point.
#[inline(always)]
pub fn round_to_grid_portable(v: f32, zero_point: i64, lo: f32, hi: f32) -> i32 {
    // Adding 1.5·2²³ rounds to an integer, half to even (the default rounding mode, which
    // Rust never changes), and leaves it in the low mantissa bits, for |v| ≤ 2²²; larger
    // values saturate anyway, so they are clamped first. Unlike libm's rint and a
    // saturating float-to-int cast, this all vectorises.
    const MAGIC: f32 = 12_582_912.0;
    let zp = zero_point.clamp(-(1 << 22), 1 << 22) as i32;
    // (A NaN is caught here, and the bounds are constants: clamp cannot panic.)
    let v = if v.is_nan() {
        0.0
    } else {
        v.clamp(-4_194_304.0, 4_194_304.0)
    };
    let rounded = (v + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32;
    // max/min rather than clamp: no panic path, so loops over this vectorise.
    (rounded + zp).max(lo as i32).min(hi as i32)
}

/// [`round_to_grid`] on an Arm core with a VFP (Cortex-M4F/M7/M33): `VCVTR.S32.F32` rounds
/// half to even (the FPSCR's default mode, which Rust never changes), saturates at the i32
/// range and turns a NaN into 0, all in one instruction, where the portable code tests and
/// clamps in floating point, which takes about twice the instructions on a Cortex-M4.
/// Equal to [`round_to_grid_portable`] for every zero point a quantized ONNX type holds
/// (|zp| < 2¹⁶, so that a saturated value stays saturated): the firmware's self-test
/// checks NaNs, infinities, halves, the edges of the ranges and a sweep of bit patterns.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
#[inline(always)]
fn round_to_grid_vcvtr(v: f32, zero_point: i64, lo: f32, hi: f32) -> i32 {
    let zp = zero_point.clamp(-(1 << 22), 1 << 22) as i32;
    let (rounded, _saved): (i32, u32);
    // SAFETY: register-only VFP instructions of the hard-float ABI this build targets; no
    // memory or stack is touched. Rust's `sreg` operands need the double-precision `vfp2`
    // feature, which a Cortex-M4F lacks, so the block borrows s15 and gives it back: an
    // operand register holds its value meanwhile, and every other register is as it was
    // (an exception in between stacks and restores s0-s15 itself). VCVTR may set FPSCR's
    // cumulative exception bits, hence no `preserves_flags`. Tested on the device by the
    // firmware's self-test.
    unsafe {
        core::arch::asm!(
            "vmov {saved}, s15",
            "vmov s15, {x}",
            "vcvtr.s32.f32 s15, s15",
            "vmov {r}, s15",
            "vmov s15, {saved}",
            x = in(reg) v.to_bits(),
            r = lateout(reg) rounded,
            saved = out(reg) _saved,
            options(pure, nomem, nostack),
        )
    };
    rounded.saturating_add(zp).max(lo as i32).min(hi as i32)
}

/// `(x - zero_point) * scale`.
#[inline]
pub fn dequantize(x: i64, scale: f32, zero_point: i64) -> f32 {
    (x - zero_point) as f32 * scale
}

/// A per-tensor int8 grid: what an int8 kernel reading a dequantized tensor needs of its
/// DequantizeLinear.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zero: i8,
}

impl Grid {
    /// The value of int8 byte `q` on this grid: [`dequantize`]'s
    /// `(q − z) · s`, with the difference (at most 255 in magnitude) converted from i32
    /// rather than i64 — the same float, without a 64-bit conversion on 32-bit cores.
    #[inline(always)]
    pub fn value(self, q: u8) -> f32 {
        (i32::from(q as i8) - i32::from(self.zero)) as f32 * self.scale
    }
}

/// Quantizes `xs` into `out` with one scale and zero point.
#[inline(always)]
fn quantize_all(xs: &[f32], out: &mut [u8], scale: f32, zero_point: i64, lo: f32, hi: f32) {
    match exact_reciprocal(scale) {
        Some(recip) => {
            for (y, &x) in out.iter_mut().zip(xs) {
                *y = round_to_grid(x * recip, zero_point, lo, hi) as u8;
            }
        }
        None => {
            for (y, &x) in out.iter_mut().zip(xs) {
                *y = quantize(x, scale, zero_point, lo, hi) as u8;
            }
        }
    }
}

/// [`quantize_all`] compiled for AVX2 (8 lanes instead of 4; the same operations, so the
/// same bits).
///
/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_all_avx2(xs: &[f32], out: &mut [u8], scale: f32, zp: i64, lo: f32, hi: f32) {
    quantize_all(xs, out, scale, zp, lo, hi)
}

/// [`quantize_all`] on the widest vectors this CPU has.
fn quantize_run(xs: &[f32], out: &mut [u8], scale: f32, zero_point: i64, lo: f32, hi: f32) {
    #[cfg(target_arch = "x86_64")]
    if crate::ops::gemm::avx2_fma_available() {
        // SAFETY: just checked that the CPU has AVX2.
        unsafe { quantize_all_avx2(xs, out, scale, zero_point, lo, hi) };
        return;
    }
    quantize_all(xs, out, scale, zero_point, lo, hi)
}

/// Quantizes `out.len()` values of `xs` from index `start` to int8 with `r`, as a per-tensor
/// int8 QuantizeLinear does (for ops that fuse one: Concat).
pub fn quantize_f32s<S: F32Source>(xs: S, start: usize, out: &mut [u8], r: Requant) {
    match xs.run(start, out.len()) {
        Some(run) => {
            let (lo, hi) = bounds(DType::I8);
            quantize_run(run, out, r.scale, i64::from(r.zero), lo, hi)
        }
        None => {
            for (k, y) in out.iter_mut().enumerate() {
                *y = r.quantize(xs.at(start + k));
            }
        }
    }
}

/// Converts every element.
pub fn eval(q: &Quant, io: &mut Io) {
    let x = io.input(0);
    let scale = io.input(1);
    let zero_point = io.inputs.get(2).copied().flatten();
    let out = &mut *io.outputs[0].bytes;
    let n = x.shape.volume();
    let inner = q.inner.max(1);
    with_f32!(scale.f32(), |s| match q.direction {
        Direction::Quantize => {
            let (lo, hi) = bounds(q.int);
            if let (1, crate::tensor::F32View::Slice(xs)) = (q.channels, x.f32()) {
                // Per tensor (every activation of a QDQ model): one flat, vectorised loop.
                let (sc, zp) = (s.at(0), zero_at(zero_point, 0));
                quantize_run(&xs[..n], &mut out[..n], sc, zp, lo, hi);
                return;
            }
            with_f32!(x.f32(), |xs| {
                for (block, ys) in out[..n].chunks_mut(inner).enumerate() {
                    let c = block % q.channels;
                    let (sc, zp) = (s.at(c), zero_at(zero_point, c));
                    let start = block * inner;
                    for (k, y) in ys.iter_mut().enumerate() {
                        *y = quantize(xs.at(start + k), sc, zp, lo, hi) as u8;
                    }
                }
            })
        }
        Direction::Dequantize => {
            let ys: &mut [f32] = bytemuck::cast_slice_mut(out);
            for (block, ys) in ys[..n].chunks_mut(inner).enumerate() {
                let c = block % q.channels;
                let (sc, zp) = (s.at(c), zero_at(zero_point, c));
                let start = block * inner;
                for (k, y) in ys.iter_mut().enumerate() {
                    *y = dequantize(x.i64_at(start + k), sc, zp);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_values_are_dequantize_bit_for_bit() {
        for zero in [i8::MIN, -7, 0, 3, i8::MAX] {
            for scale in [1.0 / 64.0, 0.0371, 3.0e-5, 1.7e3] {
                let grid = Grid { scale, zero };
                for q in 0..=255u8 {
                    let want = dequantize(i64::from(q as i8), scale, i64::from(zero));
                    assert_eq!(grid.value(q).to_bits(), want.to_bits(), "{q} {grid:?}");
                }
            }
        }
    }

    /// A power-of-two scale quantizes by multiplication exactly as by division: normal,
    /// subnormal, huge, halfway, signed-zero and NaN inputs alike; other scales (and ones
    /// whose reciprocal is not normal) keep the division.
    #[test]
    fn exact_reciprocals_quantize_like_the_division() {
        let (lo, hi) = bounds(DType::I8);
        let mut xs = std::vec![0.0f32, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        xs.extend([
            1e-40,
            -3e-39,
            f32::MIN_POSITIVE,
            1e30,
            -7e37,
            2.5,
            3.5,
            -0.5,
            0.75,
        ]);
        // Deterministic spread over many magnitudes.
        let mut bits = 0x3f80_0001u32;
        for _ in 0..20_000 {
            bits = bits.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            xs.push(f32::from_bits(bits));
        }
        let mut checked = 0;
        for k in [-126, -40, -7, -1, 0, 3, 20, 126] {
            for sign in [1.0f32, -1.0] {
                let scale = sign * 2f32.powi(k);
                let recip = exact_reciprocal(scale).expect("a power of two");
                for &x in &xs {
                    for zp in [0, -5, 100] {
                        let (q, fast) = (
                            quantize(x, scale, zp, lo, hi),
                            round_to_grid(x * recip, zp, lo, hi),
                        );
                        assert_eq!(q, fast, "x {x:e} scale {scale:e} zp {zp}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 900_000);
        for scale in [
            0.1f32,
            3.0,
            1.5 * 2f32.powi(-20),
            0.0,
            f32::NAN,
            2f32.powi(-127),
            2f32.powi(127),
        ] {
            assert_eq!(exact_reciprocal(scale), None, "{scale:e}");
        }
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let (lo, hi) = bounds(DType::I8);
        assert_eq!(quantize(2.5, 1.0, 0, lo, hi), 2);
        assert_eq!(quantize(3.5, 1.0, 0, lo, hi), 4);
        assert_eq!(quantize(-2.5, 1.0, 0, lo, hi), -2);
        assert_eq!(quantize(1000.0, 1.0, 0, lo, hi), 127);
        assert_eq!(quantize(-1000.0, 1.0, 0, lo, hi), -128);
        let (lo, hi) = bounds(DType::U8);
        assert_eq!(quantize(-1.0, 0.5, 10, lo, hi), 8);
        assert_eq!(quantize(-100.0, 0.5, 10, lo, hi), 0);
        assert_eq!(dequantize(8, 0.5, 10), -1.0);
        assert_eq!(
            dequantize(i64::from(i32::MIN), 1.0, 5),
            i32::MIN as f32 - 5.0
        );
    }
}
