//! The int8 Conv of QDQ models (`plan::qdq`) against the float "fake-quant" path, the exact
//! math, and tract.
//!
//! Each graph is what the compressor's int8 pass writes: `x → QuantizeLinear →
//! DequantizeLinear`, int8 weights (per-channel scales, zero point 0) and an int32 bias
//! (scale `s_x · s_w`) behind `DequantizeLinear`s, then Conv [→ SiLU/Relu/HardSigmoid/hard-swish]. The reference
//! runs the *same* graph with the dequantized weights also exposed as a graph output,
//! which keeps the planner from fusing (the weights must be observable), so it computes
//! with float kernels on the dequantized values.
//!
//! Tolerance (u = 2⁻²⁴, T = Σ|x_f·w_f| + |b| per output, K the dot-product length): the
//! int8 path sums exactly in i32 and rounds four times (acc to f32, s_x·s_w, the product,
//! the bias add), so it is within 4u·T of the exact value; the float path rounds each
//! dequantized operand and product and sums K terms, within (K + 4)u·T. Hence the int8
//! output is within 4u·T of the exact one and within (K + 8)u·T of the float path's,
//! times the activation's largest slope (1.1 for SiLU, 1.5 for hard-swish), plus 16u·|y| for the activation's own
//! rounding. tract agrees within 1e-4 of the largest output: the activation scales are
//! powers of two, where its quantizer (`x · (1/s)`) and ours (`x / s`) round identically.

use crate::common::*;
use edgetrim_compress::build::tensor;
use edgetrim_runtime::tract::OwnedTensor;
use edgetrim_runtime::{DType, Error, Model, PlanTables, Session};

const U: f64 = 1.0 / (1u64 << 24) as f64;

/// Which activation follows the conv.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Act {
    None,
    Silu,
    Relu,
    /// `HardSigmoid(alpha 0.2, beta 0.5)`, as squeeze-excite gates use it.
    HardSigmoid,
    /// Hard-swish as `Div(Mul(c, Clip(Add(c, 3), 0, 6)), 6)` (MobileNetV3 from Paddle).
    HardSwish,
}

/// One QDQ conv case.
#[derive(Clone, Debug)]
struct Case {
    c: usize,
    m: usize,
    hw: [usize; 2],
    kernel: [usize; 2],
    stride: usize,
    pad: usize,
    dilation: usize,
    group: usize,
    /// Run the grouped conv as an ungrouped one whose weights are zero across groups:
    /// the same sums, on the int8 GEMM (see `depthwise_int8_kernel_equals_the_gemm`).
    densify: bool,
    bias: bool,
    act: Act,
    /// Activation scale and zero point; `uint8` quantizes to uint8 (not fused).
    s_x: f32,
    z_x: i64,
    uint8: bool,
    /// Weight zero point (non-zero: not fused).
    z_w: i8,
    /// Whether the weight DequantizeLinear gets the zero point as an input (the
    /// compressor leaves it out: `DequantizeLinear(w_q, s_w)`).
    z_w_input: bool,
    /// A QuantizeLinear (int8, scale and zero point) on the output, which is then `y_q`.
    quantize_out: Option<(f32, i8)>,
    /// A QuantizeLinear → DequantizeLinear pair (int8, scale and zero point) between the
    /// conv and its activation, the int8 tensor `c_q` (the compressor's `--act-tables`).
    quantize_pre: Option<(f32, i8)>,
    /// One weight scale for the whole tensor (a scalar) instead of one per output channel.
    per_tensor: bool,
}

impl Case {
    fn new(c: usize, m: usize, hw: [usize; 2], kernel: [usize; 2]) -> Case {
        Case {
            c,
            m,
            hw,
            kernel,
            stride: 1,
            pad: kernel[0] / 2,
            dilation: 1,
            group: 1,
            densify: false,
            bias: true,
            act: Act::Silu,
            s_x: 1.0 / 32.0,
            z_x: -9,
            uint8: false,
            z_w: 0,
            z_w_input: true,
            quantize_out: None,
            quantize_pre: None,
            per_tensor: false,
        }
    }
}

/// Deterministic integers in `lo..=hi`.
fn ints(n: usize, seed: u64, lo: i64, hi: i64) -> Vec<i64> {
    rand_vec(n, seed)
        .iter()
        .map(|v| lo + ((v + 1.0) * 0.5 * (hi - lo + 1) as f32) as i64)
        .map(|v| v.min(hi))
        .collect()
}

struct Built {
    model: ModelBuilder,
    w_q: Vec<i64>,
    s_w: Vec<f32>,
    b: Vec<f32>,
}

/// The graph of `case`; `expose` adds the dequantized weights as a second output.
fn build(case: &Case, expose: bool) -> Built {
    let (cg, k) = (case.c / case.group, case.kernel);
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, case.c, case.hw[0], case.hw[1]]);
    let (xt, z_bytes) = if case.uint8 {
        (DType::U8, vec![case.z_x as u8])
    } else {
        (DType::I8, vec![case.z_x as i8 as u8])
    };
    m.init_f32("s_x", &[], &[case.s_x]);
    m.init(tensor("z_x", xt.onnx_code() as i32, &[], z_bytes));
    m.node("QuantizeLinear", &["x", "s_x", "z_x"], &["x_q"], vec![]);
    m.node("DequantizeLinear", &["x_q", "s_x", "z_x"], &["x_f"], vec![]);

    let n_w = case.m * cg * k[0] * k[1];
    let w_q = ints(n_w, 7, -127, 127);
    let s_w: Vec<f32> = match case.per_tensor {
        true => vec![0.003; case.m],
        false => (0..case.m).map(|i| 0.002 + 0.0007 * i as f32).collect(),
    };
    let w_bytes: Vec<u8> = w_q.iter().map(|&v| v as i8 as u8).collect();
    if case.densify {
        // W_dense[co, ci] = W[co, ci − g·cg] inside co's group g, else 0.
        let (taps, mg) = (k[0] * k[1], case.m / case.group);
        let mut dense = vec![0u8; case.m * case.c * taps];
        for co in 0..case.m {
            let g = co / mg;
            for ci in 0..cg {
                let src = &w_bytes[(co * cg + ci) * taps..][..taps];
                dense[(co * case.c + g * cg + ci) * taps..][..taps].copy_from_slice(src);
            }
        }
        m.init(tensor(
            "w_q",
            dt::INT8,
            &[case.m, case.c, k[0], k[1]],
            dense,
        ));
    } else {
        m.init(tensor("w_q", dt::INT8, &[case.m, cg, k[0], k[1]], w_bytes));
    }
    match case.per_tensor {
        true => m.init_f32("s_w", &[], &s_w[..1]),
        false => m.init_f32("s_w", &[case.m], &s_w),
    };
    let axis0 = vec![("axis", Attr::Int(0))];
    let mut dq_w = vec!["w_q", "s_w"];
    if case.z_w_input {
        // Shaped as the scale.
        let n = if case.per_tensor { 1 } else { case.m };
        let dims: &[usize] = if case.per_tensor { &[] } else { &[case.m] };
        m.init(tensor("z_w", dt::INT8, dims, vec![case.z_w as u8; n]));
        dq_w.push("z_w");
    }
    m.node("DequantizeLinear", &dq_w, &["w_f"], axis0.clone());
    let mut conv_in = vec!["x_f", "w_f"];
    let mut b = vec![0.0f32; case.m];
    if case.bias {
        let b_q = ints(case.m, 11, -3000, 3000);
        let s_b: Vec<f32> = s_w.iter().map(|s| s * case.s_x).collect();
        let bytes = b_q.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect();
        m.init(tensor("b_q", dt::INT32, &[case.m], bytes));
        m.init_f32("s_b", &[case.m], &s_b);
        m.node("DequantizeLinear", &["b_q", "s_b"], &["b_f"], axis0);
        b = b_q.iter().zip(&s_b).map(|(&q, s)| q as f32 * s).collect();
        conv_in.push("b_f");
    }
    let conv_out = match (case.act, case.quantize_pre) {
        (Act::None, _) => "y",
        (_, Some(_)) => "c0",
        (_, None) => "c",
    };
    m.node(
        "Conv",
        &conv_in,
        &[conv_out],
        vec![
            ("kernel_shape", Attr::Ints(vec![k[0] as i64, k[1] as i64])),
            ("strides", Attr::Ints(vec![case.stride as i64; 2])),
            ("pads", Attr::Ints(vec![case.pad as i64; 4])),
            ("dilations", Attr::Ints(vec![case.dilation as i64; 2])),
            (
                "group",
                Attr::Int(if case.densify { 1 } else { case.group as i64 }),
            ),
        ],
    );
    if let (Some((s_c, z_c)), true) = (case.quantize_pre, case.act != Act::None) {
        m.init_f32("s_c", &[], &[s_c]);
        m.init(tensor("z_c", dt::INT8, &[], vec![z_c as u8]));
        m.node("QuantizeLinear", &["c0", "s_c", "z_c"], &["c_q"], vec![]);
        m.node("DequantizeLinear", &["c_q", "s_c", "z_c"], &["c"], vec![]);
    }
    match case.act {
        Act::None => {}
        Act::Silu => {
            m.node("Sigmoid", &["c"], &["s"], vec![]);
            m.node("Mul", &["c", "s"], &["y"], vec![]);
        }
        Act::Relu => {
            m.node("Relu", &["c"], &["y"], vec![]);
        }
        Act::HardSigmoid => {
            m.node("HardSigmoid", &["c"], &["y"], vec![]);
        }
        Act::HardSwish => {
            m.init_f32("three", &[], &[3.0]);
            m.init_f32("zero", &[], &[0.0]);
            m.init_f32("six", &[], &[6.0]);
            m.node("Add", &["c", "three"], &["a"], vec![]);
            m.node("Clip", &["a", "zero", "six"], &["k"], vec![]);
            m.node("Mul", &["c", "k"], &["p"], vec![]);
            m.node("Div", &["p", "six"], &["y"], vec![]);
        }
    }
    match case.quantize_out {
        None => {
            m.output("y", dt::FLOAT);
        }
        Some((s_y, z_y)) => {
            m.init_f32("s_y", &[], &[s_y]);
            m.init(tensor("z_y", dt::INT8, &[], vec![z_y as u8]));
            m.node("QuantizeLinear", &["y", "s_y", "z_y"], &["y_q"], vec![]);
            m.output("y_q", dt::INT8);
        }
    }
    if expose {
        m.output("w_f", dt::FLOAT);
    }
    Built {
        model: m,
        w_q,
        s_w,
        b,
    }
}

/// Per output: the exact pre-activation value (f64, from the integers) and T.
fn exact(case: &Case, built: &Built, x: &[f32]) -> Vec<(f64, f64)> {
    let [h, w] = case.hw;
    let [kh, kw] = case.kernel;
    let (cg, mg) = (case.c / case.group, case.m / case.group);
    let (lo, hi) = if case.uint8 { (0, 255) } else { (-128, 127) };
    // Our quantizer, in f64: x / s is exact enough and s is a power of two.
    let x_f: Vec<f64> = x
        .iter()
        .map(|&v| {
            let q = ((v / case.s_x).round_ties_even() as i64 + case.z_x).clamp(lo, hi);
            (q - case.z_x) as f64 * case.s_x as f64
        })
        .collect();
    let d = case.dilation;
    let oh = (h + 2 * case.pad - (kh - 1) * d - 1) / case.stride + 1;
    let ow = (w + 2 * case.pad - (kw - 1) * d - 1) / case.stride + 1;
    let mut out = Vec::new();
    for co in 0..case.m {
        let g = co / mg;
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut sum, mut t) = (built.b[co] as f64, built.b[co].abs() as f64);
                for ci in 0..cg {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * case.stride + ky * d) as isize - case.pad as isize;
                            let ix = (ox * case.stride + kx * d) as isize - case.pad as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let xv = x_f[((g * cg + ci) * h + iy as usize) * w + ix as usize];
                            let wq = built.w_q[((co * cg + ci) * kh + ky) * kw + kx];
                            let wv = (wq - case.z_w as i64) as f64 * built.s_w[co] as f64;
                            sum += xv * wv;
                            t += (xv * wv).abs();
                        }
                    }
                }
                out.push((sum, t));
            }
        }
    }
    out
}

fn activate(act: Act, v: f64) -> f64 {
    match act {
        Act::None => v,
        Act::Silu => v / (1.0 + (-v).exp()),
        Act::Relu => v.max(0.0),
        Act::HardSigmoid => (0.2 * v + 0.5).clamp(0.0, 1.0),
        Act::HardSwish => v * (v + 3.0).clamp(0.0, 6.0) / 6.0,
    }
}

fn cases() -> Vec<(&'static str, Case)> {
    let mut v = vec![("3x3", Case::new(5, 7, [9, 11], [3, 3]))];
    let mut c = Case::new(16, 9, [6, 5], [1, 1]);
    (c.bias, c.act) = (false, Act::None);
    v.push(("pointwise, no bias, no activation", c));
    let mut c = Case::new(3, 16, [13, 10], [3, 3]);
    c.stride = 2;
    v.push(("strided", c));
    let mut c = Case::new(6, 4, [7, 7], [3, 3]);
    (c.group, c.act) = (2, Act::Relu);
    v.push(("grouped, Relu", c));
    let mut c = Case::new(12, 10, [6, 7], [1, 1]);
    c.act = Act::HardSwish;
    v.push(("pointwise, hard-swish", c));
    let mut c = Case::new(6, 8, [7, 9], [3, 3]);
    (c.group, c.per_tensor) = (2, true);
    v.push(("grouped, per-tensor weight scale", c));
    let mut c = Case::new(8, 16, [1, 1], [1, 1]);
    (c.bias, c.act) = (false, Act::HardSigmoid);
    v.push(("squeeze-excite gate, HardSigmoid", c));
    let mut c = Case::new(3, 5, [5, 9], [1, 3]);
    // No bias and a two-input weight DequantizeLinear (squeeze-excitation convs, as the
    // compressor writes them): the Conv's own io slots hold the int8 step.
    (c.pad, c.bias, c.z_x, c.z_w_input) = (0, false, 100, false);
    v.push(("odd kernel and channels, no bias, no weight zero point", c));
    let mut c = Case::new(64, 8, [6, 6], [3, 3]);
    (c.z_x, c.s_x) = (0, 1.0 / 64.0);
    v.push(("two K blocks", c));
    v.extend(depthwise_cases());
    v
}

/// Depthwise convs (one input channel per group): the direct int8 kernel.
fn depthwise_cases() -> Vec<(&'static str, Case)> {
    let mut v = Vec::new();
    let mut c = Case::new(8, 8, [9, 13], [3, 3]);
    c.group = 8;
    v.push(("depthwise 3x3", c));
    let mut c = Case::new(6, 6, [11, 10], [3, 3]);
    (c.group, c.stride, c.act) = (6, 2, Act::Relu);
    v.push(("depthwise, strided, Relu", c));
    let mut c = Case::new(8, 8, [9, 9], [3, 3]);
    (c.group, c.act, c.per_tensor) = (8, Act::HardSwish, true);
    v.push(("depthwise, hard-swish, per-tensor weight scale", c));
    let mut c = Case::new(4, 8, [7, 9], [5, 5]);
    (c.group, c.pad, c.bias, c.act, c.z_x) = (4, 1, false, Act::None, 37);
    v.push(("depthwise, multiplier 2, 5x5, no bias", c));
    let mut c = Case::new(3, 6, [12, 12], [3, 3]);
    (c.group, c.stride, c.pad, c.dilation) = (3, 2, 2, 2);
    v.push(("depthwise, multiplier 2, strided, dilated", c));
    let mut c = Case::new(5, 5, [4, 6], [3, 1]);
    (c.group, c.pad, c.z_x) = (5, 0, -128);
    v.push(("depthwise, unpadded 3x1", c));
    v
}

/// Checks the int8 output of `case` against the exact math and the float path, and the
/// step names of both; returns the int8 output for further checks.
fn check_case(what: &str, case: &Case, fused_op: Option<&str>) -> OwnedTensor {
    let x = rand_f32(&[1, case.c, case.hw[0], case.hw[1]], 3);
    let x = f32_tensor(
        x.shape.dims(),
        &x.to_f32_vec().iter().map(|v| v * 3.0).collect::<Vec<_>>(),
    );
    let built = build(case, false);
    let (outs, ops) = run_nano_with_ops(&built.model.build(), std::slice::from_ref(&x));
    let (reference, ref_ops) =
        run_nano_with_ops(&build(case, true).model.build(), std::slice::from_ref(&x));
    match fused_op {
        Some(op) => {
            assert!(ops.iter().any(|o| o == op), "{what}: steps {ops:?}");
            assert!(
                !ops.iter().any(|o| o == "DequantizeLinear"),
                "{what}: every DequantizeLinear is gone: {ops:?}"
            );
        }
        None => {
            assert!(
                !ops.iter().any(|o| o.starts_with("QConv")),
                "{what}: {ops:?}"
            );
            // The small weight DequantizeLinear is still folded at plan time; only the
            // activation's runs.
            let dq = ops.iter().filter(|o| *o == "DequantizeLinear").count();
            assert_eq!(dq, 1, "{what}: {ops:?}");
        }
    }
    assert!(
        !ref_ops.iter().any(|o| o.starts_with("QConv")),
        "{what}: exposed weights must not fuse: {ref_ops:?}"
    );
    let k = (case.c / case.group * case.kernel[0] * case.kernel[1]) as f64;
    // The activation's largest slope: hard-swish's is 1.5 (at x = 3).
    let slope = match case.act {
        Act::Silu => 1.1,
        Act::HardSwish => 1.5,
        _ => 1.0,
    };
    let (got, float) = (outs[0].to_f32_vec(), reference[0].to_f32_vec());
    let exact = exact(case, &built, &x.to_f32_vec());
    assert_eq!(got.len(), exact.len(), "{what}: output size");
    for (i, ((&g, &f), &(e, t))) in got.iter().zip(&float).zip(&exact).enumerate() {
        let e = activate(case.act, e);
        let own = 16.0 * U * e.abs() + f64::MIN_POSITIVE;
        // The fallback computes in float, so it gets the float bound against exact.
        let int_bound = if fused_op.is_some() { 4.0 } else { k + 4.0 };
        let to_exact = slope * int_bound * U * t + own;
        let to_float = slope * (k + 8.0) * U * t + own;
        assert!(
            (g as f64 - e).abs() <= to_exact,
            "{what}: y[{i}] = {g}, exact {e} (bound {to_exact})"
        );
        assert!(
            (g as f64 - f as f64).abs() <= to_float,
            "{what}: y[{i}] = {g}, float path {f} (bound {to_float})"
        );
    }
    let tract = run_tract(&built.model.build(), std::slice::from_ref(&x));
    assert_close(what, &outs, &tract, 1e-4);
    outs.into_iter().next().unwrap()
}

#[test]
fn int8_conv_matches_the_float_path_and_exact_math() {
    for (what, case) in cases() {
        let op = match case.act {
            Act::None => "QConv",
            Act::Silu => "QConv+SiLU",
            Act::Relu => "QConv+Relu",
            Act::HardSigmoid => "QConv+HardSigmoid",
            Act::HardSwish => "QConv+HardSwish",
        };
        check_case(what, &case, Some(op));
    }
}

#[test]
fn unsupported_patterns_run_on_the_float_path() {
    let mut c = Case::new(5, 7, [9, 11], [3, 3]);
    c.z_w = 3;
    check_case("weight zero point 3", &c, None);
    let mut c = Case::new(5, 7, [9, 11], [3, 3]);
    (c.uint8, c.z_x) = (true, 128);
    check_case("uint8 activation", &c, None);
}

/// The direct int8 depthwise kernel ends on the int8 GEMM's sums and runs its epilogue:
/// each depthwise case equals, bit for bit, the same conv run ungrouped on the GEMM with
/// the weights zero across groups (`Case::densify`) — f32 outputs and fused int8 ones.
#[test]
fn depthwise_int8_kernel_equals_the_gemm_bit_for_bit() {
    for (what, case) in depthwise_cases() {
        for quantize_out in [None, Some((0.043, -5))] {
            let case = Case {
                quantize_out,
                ..case.clone()
            };
            let dense = Case {
                densify: true,
                ..case.clone()
            };
            let x = rand_f32(&[1, case.c, case.hw[0], case.hw[1]], 9);
            let (direct, ops) =
                run_nano_with_ops(&build(&case, false).model.build(), std::slice::from_ref(&x));
            let (gemm, dense_ops) = run_nano_with_ops(
                &build(&dense, false).model.build(),
                std::slice::from_ref(&x),
            );
            for ops in [&ops, &dense_ops] {
                assert!(
                    ops.iter().any(|o| o.starts_with("QConv")),
                    "{what}: {ops:?}"
                );
                assert!(
                    !ops.iter().any(|o| o == "DequantizeLinear"),
                    "{what}: {ops:?}"
                );
            }
            assert_eq!(direct[0].dtype, gemm[0].dtype, "{what}");
            assert_eq!(direct[0].bytes, gemm[0].bytes, "{what} ({quantize_out:?})");
        }
    }
}

/// A QuantizeLinear alone reading the int8 conv's output is fused into it ("…+Q"): the
/// int8 tensor equals, byte for byte, what the standalone step writes from the unfused
/// conv's f32 output — the same graph with that f32 output also exposed, which keeps it
/// observable and so unfused — for every case (one and two K blocks, groups, strides,
/// depthwise), and the fused plan needs less arena (no f32 output tensor), or no more
/// where that tensor is not the peak's.
#[test]
fn output_quantize_fuses_into_the_int8_conv_bit_exactly() {
    for (what, mut case) in cases() {
        case.quantize_out = Some((0.043, -5));
        let x = rand_f32(&[1, case.c, case.hw[0], case.hw[1]], 5);
        let built = build(&case, false).model;
        let mut exposed = build(&case, false).model;
        exposed.output("y", dt::FLOAT);
        let (fused, ops) = run_nano_with_ops(&built.build(), std::slice::from_ref(&x));
        let (unfused, ref_ops) = run_nano_with_ops(&exposed.build(), std::slice::from_ref(&x));
        // (The input's QuantizeLinear stays in both.)
        let quantizes = |ops: &[String]| ops.iter().filter(|o| *o == "QuantizeLinear").count();
        assert!(
            ops.iter()
                .any(|o| o.starts_with("QConv") && o.ends_with("+Q"))
                && quantizes(&ops) == 1,
            "{what}: {ops:?}"
        );
        assert!(
            ref_ops
                .iter()
                .any(|o| o.starts_with("QConv") && !o.ends_with("+Q"))
                && quantizes(&ref_ops) == 2,
            "{what}: {ref_ops:?}"
        );
        assert_eq!(fused[0].dtype, DType::I8, "{what}");
        assert_eq!(fused[0].bytes, unfused[0].bytes, "{what}: int8 output");
        let distinct: std::collections::BTreeSet<u8> = fused[0].bytes.iter().copied().collect();
        assert!(
            distinct.len() > 8,
            "{what}: too few distinct values: {distinct:?}"
        );
        let arena = |m: &ModelBuilder| {
            let bytes = m.build();
            let model = Model::parse(&bytes).unwrap();
            Session::arena_report(&model, &[&[1, case.c, case.hw[0], case.hw[1]]])
                .unwrap()
                .planned
        };
        // Less whenever the f32 output is no smaller than the input; a strided depthwise
        // conv's output is, and the input's own quantization then sets the peak.
        let (fused_arena, unfused_arena) = (arena(&built), arena(&exposed));
        if fused[0].bytes.len() >= case.c * case.hw[0] * case.hw[1] {
            assert!(fused_arena < unfused_arena, "{what}: arena");
        } else {
            assert!(fused_arena <= unfused_arena, "{what}: arena");
        }
    }
}

/// An activation between a QuantizeLinear/DequantizeLinear pair after the int8 conv and,
/// or not, a QuantizeLinear becomes a table in the conv ("QConv+Q+Table+Q" with int8
/// entries, "QConv+Q+Table" with f32 ones): its output equals, byte for byte, what the
/// unfused steps write — the same graph with the pre-activation `c_q` also exposed, which
/// keeps the chain observable and so unfused — for every activation and conv case
/// (groups, strides, depthwise, two K blocks), and no activation or DequantizeLinear step
/// is left.
#[test]
fn activation_tables_fuse_into_the_int8_conv_bit_exactly() {
    for (what, case) in cases() {
        for act in [Act::Silu, Act::HardSwish, Act::HardSigmoid, Act::Relu] {
            // (A power-of-two pre-activation scale quantizes by multiplication.)
            for (quantize_out, pre) in [(None, 0.05), (Some((0.043, -5)), 0.05), (None, 0.0625)] {
                let case = Case {
                    act,
                    quantize_pre: Some((pre, 7)),
                    quantize_out,
                    ..case.clone()
                };
                let what = format!("{what}, {act:?}, {quantize_out:?}, {pre}");
                let x = rand_f32(&[1, case.c, case.hw[0], case.hw[1]], 13);
                let built = build(&case, false).model;
                let mut exposed = build(&case, false).model;
                exposed.output("c_q", dt::INT8);
                let (fused, ops) = run_nano_with_ops(&built.build(), std::slice::from_ref(&x));
                let (unfused, ref_ops) =
                    run_nano_with_ops(&exposed.build(), std::slice::from_ref(&x));
                let table_op = match quantize_out {
                    Some(_) => "QConv+Q+Table+Q",
                    None => "QConv+Q+Table",
                };
                assert!(ops.iter().any(|o| o == table_op), "{what}: {ops:?}");
                let gone = [
                    "DequantizeLinear",
                    "Sigmoid",
                    "Mul",
                    "Relu",
                    "HardSigmoid",
                    "Div",
                ];
                assert!(
                    !ops.iter().any(|o| gone.contains(&o.as_str())),
                    "{what}: {ops:?}"
                );
                assert!(
                    ref_ops.iter().any(|o| o == "QConv+Q")
                        && ref_ops.iter().any(|o| o == "DequantizeLinear"),
                    "{what}: {ref_ops:?}"
                );
                let dtype = if quantize_out.is_some() {
                    DType::I8
                } else {
                    DType::F32
                };
                assert_eq!(fused[0].dtype, dtype, "{what}");
                assert_eq!(fused[0].bytes, unfused[0].bytes, "{what}");
                let width = dtype.size();
                let distinct: std::collections::BTreeSet<&[u8]> =
                    fused[0].bytes.chunks(width).collect();
                // (HardSigmoid's 0..1 spans 23 steps of 0.043: the smallest cases hit 6.)
                assert!(
                    distinct.len() >= 5,
                    "{what}: {} distinct values",
                    distinct.len()
                );
            }
        }
    }
}

/// The weights are read in place: the int8 plan's arena holds no float copy of them, and
/// the float plan of the same graph (weights exposed) does.
#[test]
fn int8_conv_keeps_weights_out_of_the_arena() {
    let case = Case::new(64, 64, [4, 4], [3, 3]);
    let report = |expose: bool| {
        let bytes = build(&case, expose).model.build();
        let model = Model::parse(&bytes).unwrap();
        Session::arena_report(&model, &[&[1, 64, 4, 4]]).unwrap()
    };
    let (int8, float) = (report(false), report(true));
    let weights = 64 * 64 * 9 * 4;
    assert!(
        int8.planned + weights <= float.planned,
        "int8 planned {} vs float {}",
        int8.planned,
        float.planned
    );
}

/// The step table in the arena's tail keeps only the steps that run (the weights'
/// DequantizeLinears and the fused activation leave none), and the tensor table only the
/// tensors they and the graph's inputs and outputs name (not the float weight, its scale
/// and zero point, nor the conv's float output); the full working tables live in the
/// arena's head while planning, and the kept tensors stay at its start, before the planned
/// region. The arena is `persistent + max(working tables, kept tensors + planned)`, exactly:
/// the session plans and runs (as in a roomy arena) in `total` aligned bytes, and one byte
/// less is refused with the typed error — both when the planned region is the larger (a 5x7
/// 3x3 conv on 9x11) and when the working tables are (a 1x1 conv on one pixel).
#[test]
fn the_plan_keeps_only_the_steps_and_tensors_that_run_and_the_arena_stays_exact() {
    let mut big = Case::new(5, 7, [9, 11], [3, 3]);
    big.quantize_out = Some((0.043, -5));
    let mut tiny = Case::new(1, 1, [1, 1], [1, 1]);
    tiny.quantize_out = Some((0.043, -5));
    let mut depthwise = Case::new(6, 12, [9, 11], [3, 3]);
    (depthwise.group, depthwise.quantize_out) = (6, Some((0.043, -5)));
    let mut dominated = [false; 2];
    for (what, case) in [
        ("planned dominates", big),
        ("working table dominates", tiny),
        ("depthwise", depthwise),
    ] {
        let shape = [1, case.c, case.hw[0], case.hw[1]];
        let x = rand_f32(&shape, 7);
        let bytes = build(&case, false).model.build();
        let model = Model::parse(&bytes).unwrap();
        let report = Session::arena_report(&model, &[&shape]).unwrap();
        let t = report.tables;
        assert!(t.work_steps >= t.steps + 4, "{what}: {t:?}");
        assert!(t.work_tensors >= t.tensors + 4, "{what}: {t:?}");
        let work = t.work_bytes();
        let kept = (t.tensors * PlanTables::ENTRY_BYTES[0]).next_multiple_of(16) + report.planned;
        dominated[usize::from(work > kept)] = true;
        assert_eq!(report.total, report.persistent + kept.max(work), "{what}");
        assert_eq!(report.for_this_target(), report.total, "{what}");

        let mut backing = vec![0u8; report.total + 16];
        let skip = backing.as_ptr().align_offset(16);
        let short = Session::new(
            &model,
            &[&shape],
            &mut backing[skip..skip + report.total - 1],
        );
        assert!(
            matches!(short, Err(Error::ArenaTooSmall { .. })),
            "{what}: {:?}",
            short.err()
        );
        let mut session =
            Session::new(&model, &[&shape], &mut backing[skip..skip + report.total]).unwrap();
        assert_eq!(session.report(), report, "{what}");
        assert_eq!(session.step_count(), t.steps, "{what}");
        session.set_input_bytes(0, &x.bytes).unwrap();
        session.run().unwrap();
        let roomy = run_nano(&bytes, std::slice::from_ref(&x));
        assert_eq!(session.output(0).bytes, &roomy[0].bytes[..], "{what}");
    }
    assert_eq!(dominated, [true, true], "both layouts are exercised");
}
