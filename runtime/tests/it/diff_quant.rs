//! QuantizeLinear and DequantizeLinear against tract: per tensor and per axis, int8 and
//! uint8 (and int32 for DequantizeLinear), ties, saturation, a whole QDQ Conv, a Concat
//! with its QuantizeLinear fused, and the models prepare must refuse.
//!
//! tract quantizes per tensor as `x * (1 / scale)`, the spec (and we, and onnxruntime) as
//! `x / scale`; the two agree exactly when the scale is a power of two, so the tie and
//! saturation cases use such scales, and other scales may differ by one step.

use crate::common::*;
use edgetrim_compress::build::tensor;
use edgetrim_runtime::tract::OwnedTensor;
use edgetrim_runtime::{DType, Error, Shape};

fn ints(dtype: DType, shape: &[usize], values: &[i64]) -> OwnedTensor {
    let bytes = values
        .iter()
        .flat_map(|&v| match dtype {
            DType::I8 => vec![v as i8 as u8],
            DType::U8 => vec![v as u8],
            _ => (v as i32).to_le_bytes().to_vec(),
        })
        .collect();
    OwnedTensor {
        dtype,
        shape: Shape::new(shape).unwrap(),
        bytes,
    }
}

/// `op(x, scale[, zero_point])` with x a graph input of `x_type`; scale and zero point are
/// initializers (`zero` None: omitted).
fn qdq_model(
    op: &str,
    x_type: DType,
    x_shape: &[usize],
    scale: &[f32],
    zero: Option<(DType, &[i64])>,
    axis: Option<i64>,
    opset: i64,
) -> ModelBuilder {
    let mut m = ModelBuilder::new(opset);
    m.input("x", x_type.onnx_code() as i32, x_shape);
    let dims: &[usize] = if scale.len() == 1 {
        &[]
    } else {
        &[scale.len()]
    };
    m.init_f32("s", dims, scale);
    let mut inputs = vec!["x", "s"];
    let out_type = match (op, zero) {
        ("QuantizeLinear", Some((t, _))) => t,
        ("QuantizeLinear", None) => DType::U8,
        _ => DType::F32,
    };
    if let Some((t, z)) = zero {
        let zdims = [z.len()];
        let zt = ints(t, if z.len() == 1 { &[] } else { &zdims }, z);
        m.init(tensor("z", t.onnx_code() as i32, zt.shape.dims(), zt.bytes));
        inputs.push("z");
    }
    let attrs = axis.map(|a| ("axis", Attr::Int(a))).into_iter().collect();
    m.node(op, &inputs, &["y"], attrs);
    m.output("y", out_type.onnx_code() as i32);
    m
}

fn both(model: &ModelBuilder, x: &OwnedTensor) -> (OwnedTensor, OwnedTensor) {
    let bytes = model.build();
    let ours = run_nano(&bytes, std::slice::from_ref(x)).remove(0);
    let theirs = run_tract(&bytes, std::slice::from_ref(x)).remove(0);
    assert_eq!(ours.dtype, theirs.dtype);
    assert_eq!(ours.shape.dims(), theirs.shape.dims());
    (ours, theirs)
}

/// Ties on both sides of zero, saturation at both ends, and ordinary values.
fn tie_values(scale: f32) -> Vec<f32> {
    let mut v: Vec<f32> = (-12..=12).map(|k| k as f32 * scale * 0.5).collect();
    v.extend([
        1e6,
        -1e6,
        300.0 * scale,
        -300.0 * scale,
        0.3 * scale,
        -0.7 * scale,
    ]);
    v
}

#[test]
fn quantize_per_tensor_matches_tract_bit_for_bit_on_ties_and_saturation() {
    for (zt, z) in [(DType::I8, 3i64), (DType::U8, 128), (DType::I8, -128)] {
        for scale in [0.25f32, 1.0, 2.0f32.powi(-7)] {
            let data = tie_values(scale);
            let x = f32_tensor(&[data.len()], &data);
            let m = qdq_model(
                "QuantizeLinear",
                DType::F32,
                &[data.len()],
                &[scale],
                Some((zt, &[z])),
                None,
                13,
            );
            let (ours, theirs) = both(&m, &x);
            assert_eq!(
                ours.bytes, theirs.bytes,
                "zero point {z} ({zt:?}), scale {scale}"
            );
        }
    }
    // Half to even, by hand: 0.5 → 0, 1.5 → 2, 2.5 → 2, -2.5 → -2; and saturation.
    let x = f32_tensor(&[6], &[0.5, 1.5, 2.5, -2.5, 1000.0, -1000.0]);
    let m = qdq_model(
        "QuantizeLinear",
        DType::F32,
        &[6],
        &[1.0],
        Some((DType::I8, &[0])),
        None,
        13,
    );
    let got = run_nano(&m.build(), &[x]).remove(0);
    assert_eq!(got.bytes, [0, 2, 2, (-2i8) as u8, 127, (-128i8) as u8]);
}

#[test]
fn quantize_without_zero_point_is_uint8() {
    let x = rand_f32(&[2, 3, 4], 1);
    let m = qdq_model(
        "QuantizeLinear",
        DType::F32,
        &[2, 3, 4],
        &[0.0625],
        None,
        None,
        13,
    );
    let (ours, theirs) = both(&m, &x);
    assert_eq!(ours.dtype, DType::U8);
    assert_eq!(ours.bytes, theirs.bytes);
    assert!(
        ours.bytes.iter().all(|&b| b <= 16),
        "negatives saturate at 0"
    );
}

#[test]
fn quantize_with_other_scales_is_within_one_step_of_tract() {
    let x = rand_f32(&[1, 8, 5, 5], 7);
    let m = qdq_model(
        "QuantizeLinear",
        DType::F32,
        &[1, 8, 5, 5],
        &[0.0137],
        Some((DType::U8, &[117])),
        None,
        13,
    );
    let (ours, theirs) = both(&m, &x);
    for (a, b) in ours.bytes.iter().zip(&theirs.bytes) {
        assert!(a.abs_diff(*b) <= 1, "{a} vs {b}");
    }
}

#[test]
fn quantize_per_axis_matches_tract_bit_for_bit() {
    let x = rand_f32(&[2, 3, 4, 5], 3);
    let scales = [0.01f32, 0.02, 0.005];
    for (axis, dims) in [(1i64, 3usize), (-3, 3)] {
        let s = &scales[..dims];
        let m = qdq_model(
            "QuantizeLinear",
            DType::F32,
            &[2, 3, 4, 5],
            s,
            Some((DType::I8, &[0, 5, -5])),
            Some(axis),
            13,
        );
        let (ours, theirs) = both(&m, &x);
        assert_eq!(ours.bytes, theirs.bytes, "axis {axis}");
    }
    // Axis 3 (last) with uint8 zero points.
    let s: Vec<f32> = (1..=5).map(|k| k as f32 * 0.003).collect();
    let m = qdq_model(
        "QuantizeLinear",
        DType::F32,
        &[2, 3, 4, 5],
        &s,
        Some((DType::U8, &[0, 64, 128, 192, 255])),
        Some(3),
        13,
    );
    let (ours, theirs) = both(&m, &x);
    assert_eq!(ours.bytes, theirs.bytes);
}

#[test]
fn dequantize_per_tensor_and_per_axis_match_tract() {
    let vals: Vec<i64> = (0..24).map(|k| (k * 37 % 256) - 128).collect();
    let x8 = ints(DType::I8, &[4, 6], &vals);
    let m = qdq_model(
        "DequantizeLinear",
        DType::I8,
        &[4, 6],
        &[0.05],
        Some((DType::I8, &[-3])),
        None,
        13,
    );
    let (ours, theirs) = both(&m, &x8);
    assert_eq!(ours.bytes, theirs.bytes);
    assert_eq!(ours.to_f32_vec()[0], (-128.0 + 3.0) * 0.05);

    let u: Vec<i64> = vals.iter().map(|v| v + 128).collect();
    let xu = ints(DType::U8, &[4, 6], &u);
    let m = qdq_model(
        "DequantizeLinear",
        DType::U8,
        &[4, 6],
        &[0.5, 0.25, 2.0, 1.0],
        Some((DType::U8, &[128, 0, 1, 255])),
        Some(0),
        13,
    );
    let (ours, theirs) = both(&m, &xu);
    assert_eq!(ours.bytes, theirs.bytes);

    // int32 (biases), per axis without a zero point.
    let big: Vec<i64> = vec![i64::from(i32::MAX), i64::from(i32::MIN), 0, -7, 123456, 9];
    let x32 = ints(DType::I32, &[6], &big);
    let m = qdq_model(
        "DequantizeLinear",
        DType::I32,
        &[6],
        &[1e-6, 2e-6, 1.0, 0.5, 1e-3, 3.0],
        None,
        Some(0),
        13,
    );
    let (ours, theirs) = both(&m, &x32);
    assert_close("int32 per axis", &[ours], &[theirs], 1e-6);
}

#[test]
fn opset10_per_tensor_pair_round_trips() {
    let x = rand_f32(&[3, 7], 11);
    let mut m = ModelBuilder::new(10);
    m.input("x", dt::FLOAT, &[3, 7]);
    m.init_f32("s", &[], &[1.0 / 64.0]);
    m.init(tensor("z", dt::UINT8, &[], vec![100]));
    m.node("QuantizeLinear", &["x", "s", "z"], &["q"], vec![]);
    m.node("DequantizeLinear", &["q", "s", "z"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    let bytes = m.build();
    let ours = run_nano(&bytes, std::slice::from_ref(&x));
    assert_close(
        "qdq",
        &ours,
        &run_tract(&bytes, std::slice::from_ref(&x)),
        0.0,
    );
    for (a, b) in ours[0].to_f32_vec().iter().zip(x.to_f32_vec()) {
        assert!(
            (a - b).abs() <= 0.5 / 64.0 + 1e-7,
            "{a} vs {b}: off the grid by more than half a step"
        );
    }
}

/// A QDQ Conv as the compressor writes it: uint8 activation pair, int8 per-channel weights,
/// int32 bias, all behind DequantizeLinear.
#[test]
fn qdq_conv_matches_tract() {
    let (c, k) = (3usize, 4usize);
    let w: Vec<i64> = (0..k * c * 9)
        .map(|i| (i as i64 * 29 % 255) - 127)
        .collect();
    let ws: Vec<f32> = (0..k).map(|i| 0.002 * (i + 1) as f32).collect();
    let xs = 1.0f32 / 128.0;
    let bias: Vec<i64> = vec![1000, -2000, 0, 50];
    let bs: Vec<f32> = ws.iter().map(|s| s * xs).collect();
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, c, 6, 6]);
    m.init_f32("xs", &[], &[xs]);
    m.init(tensor("xz", dt::INT8, &[], vec![5]));
    let wq = ints(DType::I8, &[k, c, 3, 3], &w);
    m.init(tensor("wq", dt::INT8, &[k, c, 3, 3], wq.bytes));
    m.init_f32("ws", &[k], &ws);
    m.init(tensor("wz", dt::INT8, &[k], vec![0; k]));
    let bq = ints(DType::I32, &[k], &bias);
    m.init(tensor("bq", dt::INT32, &[k], bq.bytes));
    m.init_f32("bs", &[k], &bs);
    m.node("QuantizeLinear", &["x", "xs", "xz"], &["xq"], vec![]);
    m.node("DequantizeLinear", &["xq", "xs", "xz"], &["xd"], vec![]);
    m.node(
        "DequantizeLinear",
        &["wq", "ws", "wz"],
        &["wd"],
        vec![("axis", Attr::Int(0))],
    );
    m.node(
        "DequantizeLinear",
        &["bq", "bs"],
        &["bd"],
        vec![("axis", Attr::Int(0))],
    );
    m.node(
        "Conv",
        &["xd", "wd", "bd"],
        &["y"],
        vec![("pads", Attr::Ints(vec![1, 1, 1, 1]))],
    );
    m.output("y", dt::FLOAT);
    check("qdq conv", &m, &[rand_f32(&[1, c, 6, 6], 5)], TOL);
}

#[test]
fn bad_quantization_parameters_are_refused_at_prepare() {
    let refused = |m: ModelBuilder, shape: &[usize], want: &str| {
        let err = plan_err(&m, &[shape]).expect("must be refused");
        match err {
            Error::BadNode { reason, .. } | Error::BadAttribute { reason, .. } => {
                assert!(reason.contains(want), "{reason:?} should mention {want:?}")
            }
            other => panic!("unexpected error {other:?}"),
        }
    };
    let m = qdq_model(
        "QuantizeLinear",
        DType::F32,
        &[2, 3],
        &[0.1, 0.2],
        Some((DType::I8, &[0, 0])),
        Some(1),
        13,
    );
    refused(m, &[2, 3], "length");
    let m = qdq_model(
        "QuantizeLinear",
        DType::F32,
        &[2, 3],
        &[0.1],
        Some((DType::I32, &[0])),
        None,
        13,
    );
    refused(m, &[2, 3], "int8 or uint8");
    let m = qdq_model(
        "DequantizeLinear",
        DType::F32,
        &[2, 3],
        &[0.1],
        None,
        None,
        13,
    );
    refused(m, &[2, 3], "int32 input");
    let m = qdq_model(
        "DequantizeLinear",
        DType::I8,
        &[2, 3],
        &[0.1],
        Some((DType::U8, &[0])),
        None,
        13,
    );
    refused(m, &[2, 3], "zero point's type");
    let m = qdq_model(
        "DequantizeLinear",
        DType::I8,
        &[2, 3],
        &[0.1, 0.2, 0.3],
        None,
        Some(5),
        13,
    );
    refused(m, &[2, 3], "out of range");
    let m = qdq_model(
        "QuantizeLinear",
        DType::F32,
        &[2, 3],
        &[0.1, 0.2, 0.3],
        None,
        Some(1),
        10,
    );
    refused(m, &[2, 3], "per axis");
    let mut m = qdq_model("QuantizeLinear", DType::F32, &[4], &[0.1], None, None, 21);
    m.node(
        "QuantizeLinear",
        &["x", "s"],
        &["y2"],
        vec![("block_size", Attr::Int(2))],
    );
    m.output("y2", dt::UINT8);
    refused(m, &[4], "blocked");
}

/// `Concat(x0, x1, x2) → QuantizeLinear` (int8, per tensor), the Concat's float output
/// also a graph output when `expose` (which keeps the two steps apart).
fn concat_then_quantize(shapes: &[&[usize]], axis: i64, expose: bool) -> ModelBuilder {
    let mut m = ModelBuilder::new(13);
    let names: Vec<String> = (0..shapes.len()).map(|i| format!("x{i}")).collect();
    for (name, shape) in names.iter().zip(shapes) {
        m.input(name, dt::FLOAT, shape);
    }
    // A power-of-two scale, where tract's `x * (1 / s)` and our `x / s` agree.
    m.init_f32("s", &[], &[1.0 / 64.0]);
    m.init(tensor("z", dt::INT8, &[], vec![(-3i8) as u8]));
    let inputs: Vec<&str> = names.iter().map(String::as_str).collect();
    m.node("Concat", &inputs, &["c"], vec![("axis", Attr::Int(axis))]);
    m.node("QuantizeLinear", &["c", "s", "z"], &["q"], vec![]);
    m.output("q", dt::INT8);
    if expose {
        m.output("c", dt::FLOAT);
    }
    m
}

/// A QuantizeLinear that alone reads a Concat joins it: the copy quantizes each block (on
/// every axis, so blocks of every size), bit for bit what the two steps write, and what
/// tract writes; the float concat never takes arena memory.
#[test]
fn quantize_after_concat_fuses_bit_exactly() {
    let cases: &[(&[&[usize]], i64)] = &[
        (&[&[1, 16, 6, 7], &[1, 8, 6, 7], &[1, 3, 6, 7]], 1),
        (&[&[2, 3, 4], &[2, 5, 4], &[2, 1, 4]], 1),
        (&[&[2, 3, 5], &[2, 3, 1], &[2, 3, 2]], -1),
        (&[&[3, 4], &[1, 4], &[2, 4]], 0),
    ];
    for (k, &(shapes, axis)) in cases.iter().enumerate() {
        let what = format!("{shapes:?} axis {axis}");
        // Values up to ±4 saturate at ±2 with this scale: both ends are exercised.
        let inputs: Vec<OwnedTensor> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let t = rand_f32(s, (10 * k + i) as u64);
                let v: Vec<f32> = t.to_f32_vec().iter().map(|v| v * 4.0).collect();
                f32_tensor(s, &v)
            })
            .collect();
        let fused = concat_then_quantize(shapes, axis, false).build();
        let unfused = concat_then_quantize(shapes, axis, true).build();
        let (got, ops) = run_nano_with_ops(&fused, &inputs);
        let (want, ref_ops) = run_nano_with_ops(&unfused, &inputs);
        assert_eq!(ops, ["Concat+Q"], "{what}");
        assert_eq!(ref_ops, ["Concat", "QuantizeLinear"], "{what}");
        assert_eq!(got[0].dtype, DType::I8, "{what}");
        assert_eq!(got[0].bytes, want[0].bytes, "{what}");
        assert_eq!(
            got[0].bytes,
            run_tract(&fused, &inputs)[0].bytes,
            "{what}: tract"
        );
        let saturated = got[0]
            .bytes
            .iter()
            .filter(|&&b| b == 127 || b == 128)
            .count();
        assert!(saturated > 0 && saturated < got[0].bytes.len(), "{what}");
        let planned = |bytes: &[u8]| {
            let model = edgetrim_runtime::Model::parse(bytes).unwrap();
            edgetrim_runtime::Session::arena_report(&model, shapes)
                .unwrap()
                .planned
        };
        assert!(planned(&fused) < planned(&unfused), "{what}: arena");
    }
}

/// `Split` then `Concat` between int8 tensors as the compressor's `--int8-joins` writes
/// them: `a_q [1,4,3,5]` and `b_q [1,2,3,5]` dequantized, `a` split into 1 + 3 channels,
/// each part quantized and dequantized, then `Concat(a1, b, a0)` quantized. Every grid is
/// `grid` except the Concat's output, which is `out_grid`; with `expose`, the Split's and
/// Concat's float outputs are graph outputs too (which keeps every step apart).
fn split_concat_int8(grid: (f32, i8), out_grid: (f32, i8), expose: bool) -> ModelBuilder {
    let mut m = ModelBuilder::new(13);
    m.input("a_q", dt::INT8, &[1, 4, 3, 5]);
    m.input("b_q", dt::INT8, &[1, 2, 3, 5]);
    m.init_f32("s", &[], &[grid.0]);
    m.init(tensor("z", dt::INT8, &[], vec![grid.1 as u8]));
    m.init_f32("s_out", &[], &[out_grid.0]);
    m.init(tensor("z_out", dt::INT8, &[], vec![out_grid.1 as u8]));
    m.init(tensor(
        "sizes",
        dt::INT64,
        &[2],
        [1i64, 3].iter().flat_map(|v| v.to_le_bytes()).collect(),
    ));
    m.node("DequantizeLinear", &["a_q", "s", "z"], &["a"], vec![]);
    m.node("DequantizeLinear", &["b_q", "s", "z"], &["b"], vec![]);
    m.node(
        "Split",
        &["a", "sizes"],
        &["a0", "a1"],
        vec![("axis", Attr::Int(1))],
    );
    for part in ["a0", "a1"] {
        let (q, d) = (format!("{part}_q"), format!("{part}_d"));
        m.node("QuantizeLinear", &[part, "s", "z"], &[&q], vec![]);
        m.node("DequantizeLinear", &[&q, "s", "z"], &[&d], vec![]);
    }
    m.node(
        "Concat",
        &["a1_d", "b", "a0_d"],
        &["c"],
        vec![("axis", Attr::Int(1))],
    );
    m.node("QuantizeLinear", &["c", "s_out", "z_out"], &["c_q"], vec![]);
    m.output("c_q", dt::INT8);
    if expose {
        m.output("a0", dt::FLOAT);
        m.output("c", dt::FLOAT);
    }
    m
}

/// On one grid, a Split and a Concat between int8 tensors run on the int8 bytes: no
/// QuantizeLinear or DequantizeLinear step is left, and every byte equals what the float
/// steps write one by one (on a scale that is no power of two, so `Q(DQ(q)) = q` is
/// exercised on all 256 values) and what tract writes. A Concat whose output grid differs
/// stays on the float path.
#[test]
fn split_and_concat_on_one_int8_grid_move_bytes() {
    let all_bytes = |n: usize, seed: usize| {
        let bytes: Vec<i64> = (0..n)
            .map(|i| ((i * 97 + seed) % 256) as i64 - 128)
            .collect();
        bytes
    };
    let inputs = [
        ints(DType::I8, &[1, 4, 3, 5], &all_bytes(60, 3)),
        ints(DType::I8, &[1, 2, 3, 5], &all_bytes(30, 200)),
    ];
    let grid = (0.0371, -7);
    let fused = split_concat_int8(grid, grid, false).build();
    let (got, ops) = run_nano_with_ops(&fused, &inputs);
    assert_eq!(ops, ["Split", "Concat"]);
    let (want, ref_ops) = run_nano_with_ops(&split_concat_int8(grid, grid, true).build(), &inputs);
    let steps = |op: &str| ref_ops.iter().filter(|o| *o == op).count();
    assert_eq!(
        (steps("QuantizeLinear"), steps("DequantizeLinear")),
        (3, 4),
        "{ref_ops:?}"
    );
    assert_eq!(got[0].bytes, want[0].bytes);
    assert_eq!(got[0].bytes, run_tract(&fused, &inputs)[0].bytes, "tract");
    // a1 then b then a0: the int8 bytes themselves.
    let a = &inputs[0].bytes;
    let expected: Vec<u8> = [&a[15..60], &inputs[1].bytes[..], &a[..15]].concat();
    assert_eq!(got[0].bytes, expected);

    let other = split_concat_int8(grid, (1.0 / 32.0, 3), false).build();
    let (got, ops) = run_nano_with_ops(&other, &inputs);
    assert!(ops.contains(&"Concat+Q".to_string()), "{ops:?}");
    assert_eq!(got[0].bytes, run_tract(&other, &inputs)[0].bytes, "tract");
}

/// `Add(DQ(a_q), DQ(b_q)) → Q` on three grids, `MaxPool(DQ(a_q)) → Q` (3×3, stride 2,
/// padded) on `a_q`'s grid and `AveragePool(DQ(b_q)) → Q` (the same window, padding not
/// counted) onto the Add's output grid, as `--int8-joins` writes them; `b_scale` is
/// `b_q`'s scale (a power of two: the int8 average pool sums integers). With `expose`,
/// the f32 outputs are graph outputs too, which keeps every step apart.
fn add_and_max_pool_int8(expose: bool, b_scale: f32) -> ModelBuilder {
    let mut m = ModelBuilder::new(13);
    m.input("a_q", dt::INT8, &[1, 3, 7, 6]);
    m.input("b_q", dt::INT8, &[1, 3, 7, 6]);
    let grids: [(&str, f32, i8); 3] = [("a", 0.0371, -7), ("b", b_scale, 40), ("y", 1.0 / 64.0, 5)];
    for (name, scale, zero) in grids {
        m.init_f32(&format!("s_{name}"), &[], &[scale]);
        m.init(tensor(
            &format!("z_{name}"),
            dt::INT8,
            &[],
            vec![zero as u8],
        ));
    }
    m.node("DequantizeLinear", &["a_q", "s_a", "z_a"], &["a"], vec![]);
    m.node("DequantizeLinear", &["b_q", "s_b", "z_b"], &["b"], vec![]);
    m.node("Add", &["a", "b"], &["sum"], vec![]);
    m.node("QuantizeLinear", &["sum", "s_y", "z_y"], &["sum_q"], vec![]);
    let pool = vec![
        ("kernel_shape", Attr::Ints(vec![3, 3])),
        ("strides", Attr::Ints(vec![2, 2])),
        ("pads", Attr::Ints(vec![1, 1, 1, 1])),
    ];
    m.node("MaxPool", &["a"], &["max"], pool.clone());
    m.node("QuantizeLinear", &["max", "s_a", "z_a"], &["max_q"], vec![]);
    m.node("AveragePool", &["b"], &["avg"], pool);
    m.node("QuantizeLinear", &["avg", "s_y", "z_y"], &["avg_q"], vec![]);
    for y in ["sum", "max", "avg"] {
        m.output(&format!("{y}_q"), dt::INT8);
    }
    if expose {
        for y in ["sum", "max", "avg"] {
            m.output(y, dt::FLOAT);
        }
    }
    m
}

/// An Add between int8 tensors runs as a QAdd, a max pool on one grid as an int8 max pool
/// and an average pool as an int8 one: every byte equals what the float steps write one by one, on all 256 values of
/// each input (saturating at both ends), and what tract writes.
#[test]
fn add_and_pools_between_int8_tensors_run_on_int8() {
    let bytes = |seed: usize| -> Vec<i64> {
        (0..126)
            .map(|i| ((i * 89 + seed) % 256) as i64 - 128)
            .collect()
    };
    let inputs = [
        ints(DType::I8, &[1, 3, 7, 6], &bytes(1)),
        ints(DType::I8, &[1, 3, 7, 6], &bytes(77)),
    ];
    // 0.0123: the pool dequantizes; 1/128 and 4: it sums integers.
    for b_scale in [0.0123, 1.0 / 128.0, 4.0] {
        let fused = add_and_max_pool_int8(false, b_scale).build();
        let (got, mut ops) = run_nano_with_ops(&fused, &inputs);
        ops.sort();
        assert_eq!(ops, ["AveragePool", "MaxPool", "QAdd"]);
        let exposed = add_and_max_pool_int8(true, b_scale).build();
        let (want, ref_ops) = run_nano_with_ops(&exposed, &inputs);
        assert!(
            ref_ops.contains(&"QuantizeLinear".to_string()),
            "{ref_ops:?}"
        );
        let tract = run_tract(&fused, &inputs);
        for k in 0..3 {
            assert_eq!(got[k].bytes, want[k].bytes, "output {k}, b scale {b_scale}");
            assert_eq!(
                got[k].bytes, tract[k].bytes,
                "output {k}, b scale {b_scale}: tract"
            );
        }
        assert!(
            got[0].bytes.contains(&127) && got[0].bytes.contains(&128),
            "saturates"
        );
    }
}
