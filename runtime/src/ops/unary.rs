//! Element-wise f32 activations and math functions: Relu, LeakyRelu, Sigmoid, Tanh,
//! HardSigmoid, HardSwish, Clip, Sqrt, Exp, Log, Neg, Abs, Erf, Elu, Softplus, Gelu.
//!
//! One kernel with a small enum: the match sits outside the loop, so every arm is a tight
//! loop over a slice that the compiler vectorises. Sigmoid matters most — SiLU is exported
//! as `x * Sigmoid(x)` and runs in every layer of YOLO-style detectors — so it uses
//! [`fast_exp`], a branch-free polynomial exp that vectorises (libm's `expf` does not) and
//! stays within a few ulp of it. The other transcendental functions call libm.
//!
//! On x86_64 with AVX2+FMA the same loops are also compiled with those features enabled
//! (8 lanes instead of 4). Rust never contracts `a * b + c` into an FMA on its own, so both
//! builds compute bit-identical results; Cortex-M only ever runs the portable one.
//!
//! [`Activation`] is the subset a producing op applies to its own output in place (the
//! planner fuses `Conv → Sigmoid → Mul` = SiLU, Relu, Clip, HardSigmoid and hard-swish
//! after a Conv), with the same per-element formulas as the standalone ops so fusing changes
//! no bit.

#[cfg(target_arch = "x86_64")]
use super::gemm::avx2_fma_available;
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

/// tanh via [`fast_exp`], branch-free so loops over it vectorise (libm's `tanhf` does not):
/// the LSTM runs two tanh per hidden unit and step. `(1 - e) / (1 + e)` with
/// `e = e^(-2|x|)` never overflows; the sign is copied back from `x`. Within 2e-7 absolute
/// of `tanhf` (near 0 the error is the rounding of `1 - e`, so it is not relative there).
#[inline(always)]
pub fn fast_tanh(x: f32) -> f32 {
    let e = fast_exp(-2.0 * f32::abs(x));
    let t = (1.0 - e) / (1.0 + e);
    f32::from_bits(t.to_bits() | (x.to_bits() & 0x8000_0000))
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

/// `out[i] = f(x[i])`: over a slice when the input is aligned (no bounds checks, so the
/// loop vectorises), element by element from unaligned bytes otherwise.
#[inline(always)]
fn map<S: F32Source>(x: S, out: &mut [f32], f: impl Fn(f32) -> f32) {
    match x.run(0, out.len()) {
        Some(xs) => out.iter_mut().zip(xs).for_each(|(y, &v)| *y = f(v)),
        None => out
            .iter_mut()
            .enumerate()
            .for_each(|(i, y)| *y = f(x.at(i))),
    }
}

/// One loop per op, each with its function inlined, so each vectorises on its own.
#[inline(always)]
fn run<S: F32Source>(op: Unary, x: S, out: &mut [f32]) {
    match op {
        Unary::Relu => map(x, out, |v| v.max(0.0)),
        Unary::LeakyRelu(a) => map(x, out, |v| if v >= 0.0 { v } else { a * v }),
        Unary::Sigmoid => map(x, out, sigmoid),
        Unary::Tanh => map(x, out, libm::tanhf),
        Unary::HardSigmoid(a, b) => map(x, out, |v| hard_sigmoid_of(v, a, b)),
        Unary::HardSwish => map(x, out, hard_swish_of),
        Unary::Clip(lo, hi) => map(x, out, |v| clip_of(v, lo, hi)),
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

/// [`run`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<S: F32Source>(op: Unary, x: S, out: &mut [f32]) {
    run(op, x, out)
}

/// Runs `op` with the widest SIMD this CPU has (the results do not depend on it).
fn run_best<S: F32Source>(op: Unary, x: S, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma_available() {
        // SAFETY: `avx2_fma_available` just saw AVX2 and FMA on this CPU (or the build
        // requires them), which is all `run_avx2` needs.
        return unsafe { run_avx2(op, x, out) };
    }
    run(op, x, out)
}

/// Computes the output.
pub fn eval(op: &Unary, io: &mut Io) {
    let x = io.input(0);
    let out = io.outputs[0].f32_mut();
    with_f32!(x.f32(), |x| run_best(*op, x, out))
}

/// `x = f(x)` over a run, on a Cortex-M: a plain loop. It has no float vectors, so the
/// other targets' blocks of 16 and 8 would only multiply the code.
#[inline(always)]
#[cfg(target_arch = "arm")]
fn each(xs: &mut [f32], f: impl Fn(f32) -> f32) {
    for v in xs {
        *v = f(*v);
    }
}

/// `x = f(x)` over a short run (a 16-wide GEMM tile row): in fixed blocks of 16, which LLVM
/// turns into two (AVX2) or four (SSE) independent vector chains — sigmoid is one long
/// dependency chain, so a lone vector would wait on latency — then one block of 8, where an
/// ordinary loop would be unrolled to 32 and leave short runs to its scalar tail.
#[inline(always)]
#[cfg(not(target_arch = "arm"))]
fn each(xs: &mut [f32], f: impl Fn(f32) -> f32) {
    let mut blocks = xs.chunks_exact_mut(16);
    for block in &mut blocks {
        for v in block {
            *v = f(*v);
        }
    }
    let mut halves = blocks.into_remainder().chunks_exact_mut(8);
    for half in &mut halves {
        for v in half {
            *v = f(*v);
        }
    }
    for v in halves.into_remainder() {
        *v = f(*v);
    }
}

/// `x = f(x)` over `rows` rows of `cols` values, `stride` apart, in `c`.
#[inline(always)]
fn each_row(
    (c, rows, cols, stride): (&mut [f32], usize, usize, usize),
    f: impl Fn(f32) -> f32 + Copy,
) {
    for i in 0..rows {
        each(&mut c[i * stride..][..cols], f);
    }
}

/// [`each_row`] compiled once rather than inlined into every kernel's epilogue: for the
/// activations of MobileNet-style models, which detectors and most firmware never link
/// (inlined, they cost a Cortex-M firmware 6 KB of code it does not run).
#[inline(never)]
fn each_row_out_of_line(tile: (&mut [f32], usize, usize, usize), f: impl Fn(f32) -> f32 + Copy) {
    each_row(tile, f)
}

/// ONNX Clip. Not `f32::clamp`: it panics when lo > hi, which a model may ask for, and it
/// returns NaN for NaN where max-then-min gives `lo`.
#[inline(always)]
fn clip_of(v: f32, lo: f32, hi: f32) -> f32 {
    v.max(lo).min(hi)
}

/// ONNX HardSigmoid: `clamp(alpha * x + beta, 0, 1)`.
#[inline(always)]
fn hard_sigmoid_of(v: f32, alpha: f32, beta: f32) -> f32 {
    (alpha * v + beta).clamp(0.0, 1.0)
}

/// ONNX HardSwish: `x * HardSigmoid(x)` with alpha 1/6, beta 0.5.
#[inline(always)]
fn hard_swish_of(v: f32) -> f32 {
    v * hard_sigmoid_of(v, 1.0 / 6.0, 0.5)
}

/// An activation fused into the op that produces its input: applied in place to the
/// producer's output while it is still in cache, it saves the standalone steps' passes
/// over memory. Each formula is the standalone op's, so fused and unfused runs agree bit
/// for bit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `x * sigmoid(x)` (exported as `Mul(x, Sigmoid(x))`).
    Silu,
    /// max(x, 0)
    Relu,
    /// min(max(x, lo), hi)
    Clip(f32, f32),
    /// ONNX HardSigmoid(alpha, beta), as MobileNetV3's squeeze-excite gates use it.
    HardSigmoid(f32, f32),
    /// ONNX HardSwish.
    HardSwish,
    /// Hard-swish as exporters without the HardSwish op write it, and in their rounding
    /// order: `Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)` (PaddlePaddle, PyTorch before opset
    /// 14). Not the same bits as [`Activation::HardSwish`], hence its own variant.
    HardSwishDecomposed,
}

impl Activation {
    /// The activation a standalone unary op computes, when it can be fused.
    pub fn of_unary(op: Unary) -> Option<Activation> {
        match op {
            Unary::Relu => Some(Activation::Relu),
            Unary::Clip(lo, hi) => Some(Activation::Clip(lo, hi)),
            Unary::HardSigmoid(a, b) => Some(Activation::HardSigmoid(a, b)),
            Unary::HardSwish => Some(Activation::HardSwish),
            _ => None,
        }
    }

    /// The op name of a Conv step with this activation fused, for profiles ("Conv+SiLU").
    pub fn conv_op_name(self) -> &'static str {
        match self {
            Activation::Silu => "Conv+SiLU",
            Activation::Relu => "Conv+Relu",
            Activation::Clip(..) => "Conv+Clip",
            Activation::HardSigmoid(..) => "Conv+HardSigmoid",
            Activation::HardSwish | Activation::HardSwishDecomposed => "Conv+HardSwish",
        }
    }

    /// Applies the activation to `xs` in place. Inlined so that a caller compiled for AVX2
    /// gets the 8-wide loop.
    #[inline(always)]
    pub fn apply(self, xs: &mut [f32]) {
        let n = xs.len();
        self.apply_rows(xs, 1, n, n)
    }

    /// Applies the activation to `rows` rows of `cols` values, `stride` apart, in `c`
    /// (an output tile of a GEMM). One match per tile, outside the loops.
    #[inline(always)]
    pub fn apply_rows(self, c: &mut [f32], rows: usize, cols: usize, stride: usize) {
        let tile = (c, rows, cols, stride);
        match self {
            Activation::Silu => each_row(tile, |v| v * sigmoid(v)),
            Activation::Relu => each_row(tile, |v| v.max(0.0)),
            Activation::Clip(lo, hi) => each_row(tile, |v| clip_of(v, lo, hi)),
            Activation::HardSigmoid(a, b) => {
                each_row_out_of_line(tile, |v| hard_sigmoid_of(v, a, b))
            }
            Activation::HardSwish => each_row_out_of_line(tile, hard_swish_of),
            Activation::HardSwishDecomposed => {
                each_row_out_of_line(tile, |v| v * clip_of(v + 3.0, 0.0, 6.0) / 6.0)
            }
        }
    }

    /// [`Activation::apply_rows`] compiled for AVX2 + FMA.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn apply_rows_avx2(self, c: &mut [f32], rows: usize, cols: usize, stride: usize) {
        self.apply_rows(c, rows, cols, stride)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::LeF32;

    const EVERY_OP: [Unary; 17] = [
        Unary::Relu,
        Unary::LeakyRelu(0.1),
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::HardSigmoid(0.2, 0.5),
        Unary::HardSwish,
        Unary::Clip(-0.5, 2.0),
        Unary::Sqrt,
        Unary::Exp,
        Unary::Log,
        Unary::Neg,
        Unary::Abs,
        Unary::Erf,
        Unary::Elu(1.0),
        Unary::Softplus,
        Unary::Gelu,
        Unary::GeluTanh,
    ];

    /// The SIMD build, the slice path and the unaligned-bytes path all give the portable
    /// element-by-element bits (odd length: vector tails too).
    #[test]
    fn every_path_matches_the_portable_loop_bit_for_bit() {
        let xs: std::vec::Vec<f32> = (0..1001).map(|i| (i as f32 - 500.0) * 0.037).collect();
        let mut bytes = std::vec![0u8; 4 * xs.len() + 1];
        for (b, v) in bytes[1..].chunks_exact_mut(4).zip(&xs) {
            b.copy_from_slice(&v.to_le_bytes());
        }
        for op in EVERY_OP {
            let want: std::vec::Vec<u32> = (0..xs.len())
                .map(|i| {
                    let mut y = [0.0];
                    run(op, &xs[i..i + 1], &mut y);
                    y[0].to_bits()
                })
                .collect();
            let (mut fast, mut unaligned) = (std::vec![0.0; xs.len()], std::vec![0.0; xs.len()]);
            run_best(op, &xs[..], &mut fast);
            run_best(op, LeF32(&bytes[1..]), &mut unaligned);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
            assert_eq!(bits(&fast), want, "{op:?}");
            assert_eq!(bits(&unaligned), want, "{op:?} from bytes");
        }
    }

    /// A fused activation computes what the standalone ops compute.
    #[test]
    fn activations_match_the_standalone_ops() {
        let xs: std::vec::Vec<f32> = (0..203).map(|i| (i as f32 - 100.0) * 0.11).collect();
        for (act, op) in [
            (Activation::Relu, Unary::Relu),
            (Activation::Clip(-0.5, 2.0), Unary::Clip(-0.5, 2.0)),
            (Activation::Silu, Unary::Sigmoid),
            (
                Activation::HardSigmoid(0.2, 0.5),
                Unary::HardSigmoid(0.2, 0.5),
            ),
            (Activation::HardSwish, Unary::HardSwish),
            (Activation::HardSwishDecomposed, Unary::Clip(0.0, 6.0)),
        ] {
            let mut want = std::vec![0.0; xs.len()];
            match act {
                // The Add, Clip, Mul and Div steps, one after the other.
                Activation::HardSwishDecomposed => {
                    let added: std::vec::Vec<f32> = xs.iter().map(|x| x + 3.0).collect();
                    run(op, &added[..], &mut want);
                    want.iter_mut()
                        .zip(&xs)
                        .for_each(|(k, x)| *k = (x * *k) / 6.0);
                }
                _ => run(op, &xs[..], &mut want),
            }
            if act == Activation::Silu {
                want.iter_mut().zip(&xs).for_each(|(s, x)| *s *= x);
            }
            let mut got = xs.clone();
            act.apply(&mut got);
            assert_eq!(got, want, "{act:?}");
            #[cfg(target_arch = "x86_64")]
            if avx2_fma_available() {
                let mut wide = xs.clone();
                // SAFETY: AVX2 and FMA were just detected.
                unsafe { act.apply_rows_avx2(&mut wide, 1, xs.len(), xs.len()) };
                assert_eq!(wide, want, "{act:?} avx2");
            }
        }
    }

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
    fn fast_tanh_tracks_libm() {
        let mut x = -20.0f32;
        while x <= 20.0 {
            let (got, want) = (fast_tanh(x), libm::tanhf(x));
            assert!(
                (got - want).abs() <= 2e-7,
                "tanh({x}) = {got}, libm says {want}"
            );
            x += 0.000_97;
        }
        assert_eq!(fast_tanh(0.0), 0.0);
        assert_eq!(fast_tanh(-200.0), -1.0);
        assert_eq!(fast_tanh(f32::MAX), 1.0);
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
