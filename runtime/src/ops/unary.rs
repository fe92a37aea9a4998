//! Element-wise f32 activations and math functions: Relu, LeakyRelu, Sigmoid, Tanh,
//! HardSigmoid, HardSwish, Clip, Sqrt, Exp, Log, Neg, Abs, Erf, Elu, Softplus, Gelu.
//!
//! One kernel with a small enum: the match sits outside the loop, so every arm is a tight
//! loop over a slice that the compiler vectorises. Sigmoid matters most — SiLU is exported
//! as `x * Sigmoid(x)` and runs in every layer of YOLO-style detectors — so it uses
//! [`fast_exp`], a branch-free polynomial exp that vectorises (libm's `expf` does not) and
//! stays within a few ulp of it. The other transcendental functions call libm.

use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, F32Source};
use crate::with_f32;

/// Which function, with its attributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// max(x, 0)
    Relu,
    /// x if x >= 0 else alpha * x
    LeakyRelu(f32),
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// tanh x
    Tanh,
    /// max(0, min(1, alpha * x + beta))
    HardSigmoid(f32, f32),
    /// x * max(0, min(1, x / 6 + 1 / 2))
    HardSwish,
    /// min(max(x, lo), hi)
    Clip(f32, f32),
    /// √x
    Sqrt,
    /// e^x
    Exp,
    /// ln x
    Log,
    /// -x
    Neg,
    /// |x|
    Abs,
    /// The error function.
    Erf,
    /// x if x > 0 else alpha * (e^x - 1)
    Elu(f32),
    /// ln(1 + e^x)
    Softplus,
    /// x/2 * (1 + erf(x / √2))
    Gelu,
    /// x/2 * (1 + tanh(√(2/π) * (x + 0.044715 x³)))
    GeluTanh,
}

/// e^x for x in [-87, 88] to within 2 ulp, clamped outside that range (so the result is
/// always finite and normal). Branch-free so loops over it vectorise.
///
/// Cody–Waite range reduction x = n·ln2 + r with |r| ≤ ln2/2, Cephes' degree-6
/// polynomial for e^r, and 2^n built directly in the exponent bits.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds to the nearest integer in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // n sits in t's low mantissa bits; integer maths on the bits keeps this vectorisable
    // (a saturating float-to-int `as` cast does not).
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    er * scale
}

/// The logistic function via [`fast_exp`].
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + fast_exp(-x))
}

fn prepare(p: &mut Prep, op: Unary) -> Result<Op> {
    let x = p.input_of(0, DType::F32)?;
    p.output(0, DType::F32, x.shape)?;
    p.macs(x.shape.volume() as u64);
    Ok(Op::Unary(op))
}

macro_rules! simple {
    ($($(#[$doc:meta])* $name:ident => $op:expr;)*) => {$(
        $(#[$doc])*
        pub fn $name(p: &mut Prep) -> Result<Op> {
            p.arity(1, 1)?;
            prepare(p, $op)
        }
    )*};
}

simple! {
    /// Relu
    relu => Unary::Relu;
    /// Sigmoid
    sigmoid_op => Unary::Sigmoid;
    /// Tanh
    tanh => Unary::Tanh;
    /// HardSwish
    hard_swish => Unary::HardSwish;
    /// Sqrt
    sqrt => Unary::Sqrt;
    /// Exp
    exp => Unary::Exp;
    /// Log
    log => Unary::Log;
    /// Neg
    neg => Unary::Neg;
    /// Abs
    abs => Unary::Abs;
    /// Erf
    erf => Unary::Erf;
    /// Softplus
    softplus => Unary::Softplus;
}

/// LeakyRelu (alpha = 0.01).
pub fn leaky_relu(p: &mut Prep) -> Result<Op> {
    p.arity(1, 1)?;
    let alpha = p.attr_float("alpha", 0.01)?;
    prepare(p, Unary::LeakyRelu(alpha))
}

/// HardSigmoid (alpha = 0.2, beta = 0.5).
pub fn hard_sigmoid(p: &mut Prep) -> Result<Op> {
    p.arity(1, 1)?;
    let alpha = p.attr_float("alpha", 0.2)?;
    let beta = p.attr_float("beta", 0.5)?;
    prepare(p, Unary::HardSigmoid(alpha, beta))
}

/// Elu (alpha = 1).
pub fn elu(p: &mut Prep) -> Result<Op> {
    p.arity(1, 1)?;
    let alpha = p.attr_float("alpha", 1.0)?;
    prepare(p, Unary::Elu(alpha))
}

/// Gelu (opset 20; approximate = none | tanh).
pub fn gelu(p: &mut Prep) -> Result<Op> {
    p.arity(1, 1)?;
    let op = match p.attr_str("approximate", "none")? {
        "none" => Unary::Gelu,
        "tanh" => Unary::GeluTanh,
        _ => return Err(p.attr_err("approximate", "expected none or tanh")),
    };
    prepare(p, op)
}

/// Clip: bounds are `min`/`max` attributes before opset 11, optional constant inputs
/// from opset 11 on.
pub fn clip(p: &mut Prep) -> Result<Op> {
    let (lo, hi) = if p.opset() < 11 {
        p.arity(1, 1)?;
        (
            p.attr_float("min", f32::NEG_INFINITY)?,
            p.attr_float("max", f32::INFINITY)?,
        )
    } else {
        p.arity(1, 3)?;
        let bound = |i: usize, default: f32| -> Result<f32> {
            if p.opt_input(i).is_none() {
                return Ok(default);
            }
            let t = p.const_input(i)?;
            if t.dtype != DType::F32 || t.shape.volume() != 1 {
                return Err(p.err("Clip bounds must be float32 scalars"));
            }
            Ok(with_f32!(t.f32(), |v| v.at(0)))
        };
        (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?)
    };
    prepare(p, Unary::Clip(lo, hi))
}

#[inline(always)]
fn map<S: F32Source>(x: S, out: &mut [f32], f: impl Fn(f32) -> f32) {
    out.iter_mut()
        .enumerate()
        .for_each(|(i, y)| *y = f(x.at(i)));
}

/// One loop per op, each with its function inlined, so each vectorises on its own.
fn run<S: F32Source>(op: Unary, x: S, out: &mut [f32]) {
    match op {
        Unary::Relu => map(x, out, |v| v.max(0.0)),
        Unary::LeakyRelu(a) => map(x, out, |v| if v >= 0.0 { v } else { a * v }),
        Unary::Sigmoid => map(x, out, sigmoid),
        Unary::Tanh => map(x, out, libm::tanhf),
        Unary::HardSigmoid(a, b) => map(x, out, |v| (a * v + b).clamp(0.0, 1.0)),
        Unary::HardSwish => map(x, out, |v| v * (v * (1.0 / 6.0) + 0.5).clamp(0.0, 1.0)),
        // Not f32::clamp: it panics when lo > hi, which a model may ask for.
        Unary::Clip(lo, hi) => map(x, out, |v| v.max(lo).min(hi)),
        Unary::Sqrt => map(x, out, libm::sqrtf),
        Unary::Exp => map(x, out, libm::expf),
        Unary::Log => map(x, out, libm::logf),
        Unary::Neg => map(x, out, |v| -v),
        Unary::Abs => map(x, out, f32::abs),
        Unary::Erf => map(x, out, libm::erff),
        Unary::Elu(a) => map(x, out, |v| if v > 0.0 { v } else { a * libm::expm1f(v) }),
        // ln(1 + e^x) overflows for large x, where softplus(x) = x.
        Unary::Softplus => map(x, out, |v| {
            if v > 20.0 {
                v
            } else {
                libm::log1pf(libm::expf(v))
            }
        }),
        Unary::Gelu => map(x, out, |v| {
            0.5 * v * (1.0 + libm::erff(v * core::f32::consts::FRAC_1_SQRT_2))
        }),
        Unary::GeluTanh => map(x, out, |v| {
            const K: f32 = 0.797_884_6; // √(2/π)
            0.5 * v * (1.0 + libm::tanhf(K * (v + 0.044_715 * v * v * v)))
        }),
    }
}

/// Computes the output.
pub fn eval(op: &Unary, io: &mut Io) {
    let x = io.input(0);
    let out = io.outputs[0].f32_mut();
    with_f32!(x.f32(), |x| run(*op, x, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_tracks_libm_within_a_few_ulp() {
        let mut x = -87.0f32;
        while x <= 88.0 {
            let (got, want) = (fast_exp(x), libm::expf(x));
            assert!(
                ((got - want) / want).abs() <= 1e-6,
                "exp({x}) = {got}, libm says {want}"
            );
            x += 0.001_37;
        }
    }

    #[test]
    fn fast_exp_clamps_to_finite_values() {
        assert!(fast_exp(1000.0).is_finite());
        assert!(fast_exp(-1000.0) > 0.0);
        assert!(sigmoid(-200.0) < 1e-37);
        assert_eq!(sigmoid(200.0), 1.0);
    }

    #[test]
    fn sigmoid_is_accurate() {
        let mut x = -30.0f32;
        while x <= 30.0 {
            let want = 1.0 / (1.0 + libm::expf(-x));
            let got = sigmoid(x);
            assert!(((got - want) / want).abs() <= 1e-6, "sigmoid({x})");
            x += 0.0103;
        }
    }
}
