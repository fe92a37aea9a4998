//! The int8 pass: QDQ models that stay within quantization tolerance of the float model on
//! our runtime and on tract, store their weights as int8, come out byte-identical twice,
//! and leave `--keep-float` nodes alone. Then the same on the two real models.

use crate::common::{compress, count, decode, nano, tract};
use edgetrim_compress::build::{dt, Attr, ModelBuilder};
use edgetrim_compress::passes::calib::Method;
use edgetrim_compress::passes::{int8, Context, Pass, Pipeline};
use edgetrim_compress::pb::ModelProto;
use edgetrim_compress::report::fidelity;
use std::path::Path;

const CLEAN_INT8: &[Pass] = &[Pass::Clean, Pass::Int8, Pass::Layout];
const CLEAN: &[Pass] = &[Pass::Clean, Pass::Layout];

/// Deterministic weights in [-scale, scale).
fn weights(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// `x (1x c x 12x12) → conv3x3 → Relu → conv3x3 → Relu → head (1x1 conv)`, nodes named
/// conv1, relu1, conv2, relu2, head/conv; weight-dominated when `c` is large.
fn conv_model(c: usize, opset: i64) -> Vec<u8> {
    let mut m = ModelBuilder::new(opset);
    m.input("x", dt::FLOAT, &[1, c, 12, 12]);
    let fan = |k: usize| 1.0 / ((c * k * k) as f32).sqrt();
    m.init_f32(
        "w1",
        &[2 * c, c, 3, 3],
        &weights(2 * c * c * 9, 1, fan(3) * 1.7),
    );
    m.init_f32("b1", &[2 * c], &weights(2 * c, 2, 0.1));
    m.init_f32(
        "w2",
        &[2 * c, 2 * c, 3, 3],
        &weights(4 * c * c * 9, 3, fan(3) * 1.2),
    );
    m.init_f32("b2", &[2 * c], &weights(2 * c, 4, 0.1));
    m.init_f32("w3", &[4, 2 * c, 1, 1], &weights(8 * c, 5, fan(1)));
    let pads = || vec![("pads", Attr::Ints(vec![1, 1, 1, 1]))];
    m.node("Conv", &["x", "w1", "b1"], &["c1"], pads());
    m.node("Relu", &["c1"], &["r1"], vec![]);
    m.node("Conv", &["r1", "w2", "b2"], &["c2"], pads());
    m.node("Relu", &["c2"], &["r2"], vec![]);
    m.node("Conv", &["r2", "w3"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    let mut proto = m.proto();
    let names = ["conv1", "relu1", "conv2", "relu2", "head/conv"];
    for (n, name) in proto.graph.as_mut().unwrap().node.iter_mut().zip(names) {
        n.name = name.into();
    }
    prost::Message::encode_to_vec(&proto)
}

fn cosine(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    fidelity(a, b).expect("same output sizes").cosine
}

/// The Conv nodes whose weight (input 1) comes from a DequantizeLinear of an int8
/// initializer, by node name.
fn int8_convs(model: &ModelProto) -> Vec<String> {
    let g = model.graph.as_ref().unwrap();
    let int8_inits: Vec<&str> = g
        .initializer
        .iter()
        .filter(|t| t.data_type == dt::INT8)
        .map(|t| t.name.as_str())
        .collect();
    g.node
        .iter()
        .filter(|n| n.op_type == "Conv")
        .filter(|n| {
            g.node.iter().any(|d| {
                d.op_type == "DequantizeLinear"
                    && d.output[0] == n.input[1]
                    && int8_inits.contains(&d.input[0].as_str())
            })
        })
        .map(|n| n.name.clone())
        .collect()
}

#[test]
fn small_conv_model_stays_within_quantization_tolerance_on_both_runtimes() {
    let original = conv_model(8, 13);
    let shapes: &[&[usize]] = &[&[1, 8, 12, 12]];
    let q = compress(&original, CLEAN_INT8, &Context::default());
    let model = decode(&q);
    assert_eq!(int8_convs(&model), ["conv1", "conv2", "head/conv"]);
    // One activation pair per Conv input (x, r1, r2), one weight DQ per Conv, two biases.
    assert_eq!(count(&q, "QuantizeLinear"), 3);
    assert_eq!(count(&q, "DequantizeLinear"), 3 + 3 + 2);
    let g = model.graph.as_ref().unwrap();
    let biases = g
        .initializer
        .iter()
        .filter(|t| t.data_type == dt::INT32)
        .count();
    assert_eq!(biases, 2, "biases are int32");
    assert!(
        g.initializer
            .iter()
            .all(|t| t.data_type != dt::FLOAT || t.dims.len() <= 1),
        "no float weight is left"
    );
    let reference = nano(&original, shapes);
    let ours = nano(&q, shapes);
    let c = cosine(&reference, &ours);
    assert!(c > 0.999, "int8 vs float cosine {c}");
    assert!(c < 1.0 - 1e-9, "the model must actually be quantized ({c})");
    let theirs = tract(&q, shapes);
    assert!(cosine(&reference, &theirs) > 0.999);
    assert!(
        cosine(&ours, &theirs) > 0.99999,
        "tract and our runtime run the same QDQ model"
    );
}

#[test]
fn weight_dominated_model_shrinks_at_least_3_5x() {
    let original = conv_model(48, 13);
    let f32_bytes = compress(&original, CLEAN, &Context::default()).len();
    let q = compress(&original, CLEAN_INT8, &Context::default());
    let ratio = f32_bytes as f64 / q.len() as f64;
    assert!(
        ratio >= 3.5,
        "f32 {f32_bytes} B / int8 {} B = {ratio:.2}",
        q.len()
    );
}

#[test]
fn output_is_deterministic() {
    let original = conv_model(8, 13);
    for method in [Method::MinMax, Method::Entropy] {
        let ctx = Context {
            int8: int8::Options {
                method,
                ..Default::default()
            },
            ..Context::default()
        };
        let a = compress(&original, CLEAN_INT8, &ctx);
        let b = compress(&original, CLEAN_INT8, &ctx);
        assert!(a == b, "{method}: two runs differ");
    }
}

#[test]
fn keep_float_leaves_the_named_node_float() {
    let original = conv_model(8, 13);
    let ctx = Context {
        int8: int8::Options {
            keep_float: vec!["head/*".into()],
            ..Default::default()
        },
        ..Context::default()
    };
    let q = compress(&original, CLEAN_INT8, &ctx);
    let model = decode(&q);
    assert_eq!(int8_convs(&model), ["conv1", "conv2"]);
    let g = model.graph.as_ref().unwrap();
    let head = g.node.iter().find(|n| n.name == "head/conv").unwrap();
    assert_eq!(head.input[0], "r2", "the head reads the float activation");
    let w3 = g
        .initializer
        .iter()
        .find(|t| t.name == head.input[1])
        .unwrap();
    assert_eq!(w3.data_type, dt::FLOAT);
    assert_eq!(count(&q, "QuantizeLinear"), 2);
    let summary = &Pipeline::new(CLEAN_INT8.to_vec())
        .run(&original, &ctx)
        .unwrap()[1]
        .summary;
    assert!(summary.contains("1 kept float"), "{summary}");
}

#[test]
fn opset_11_is_raised_to_13_for_per_channel_scales_unless_a_node_reads_otherwise() {
    let per_channel = Context {
        int8: int8::Options {
            per_tensor_sqnr_db: None,
            ..Default::default()
        },
        ..Default::default()
    };
    let original = conv_model(8, 11);
    let q = compress(&original, CLEAN_INT8, &per_channel);
    let m = decode(&q);
    assert_eq!(m.opset_import[0].version, 13);
    let g = m.graph.unwrap();
    let axes = g
        .node
        .iter()
        .filter(|n| n.op_type == "DequantizeLinear" && n.attribute.iter().any(|a| a.name == "axis"))
        .count();
    assert_eq!(axes, 5, "3 weights and 2 biases per channel");
    let shapes: &[&[usize]] = &[&[1, 8, 12, 12]];
    assert!(cosine(&nano(&original, shapes), &tract(&q, shapes)) > 0.995);

    // Softmax over axis 1 means another thing under opset 13: the model stays at 11, and its
    // weights get one scale each.
    let mut proto = decode(&original);
    let g = proto.graph.as_mut().unwrap();
    g.node.push(edgetrim_compress::pb::NodeProto {
        name: "probs".into(),
        op_type: "Softmax".into(),
        input: vec!["y".into()],
        output: vec!["p".into()],
        attribute: vec![edgetrim_compress::pb::AttributeProto {
            name: "axis".into(),
            i: 1,
            r#type: 2, // INT
            ..Default::default()
        }],
        ..Default::default()
    });
    g.output[0].name = "p".into();
    let softmax = prost::Message::encode_to_vec(&proto);
    let runs = Pipeline::new(CLEAN_INT8.to_vec())
        .run(&softmax, &per_channel)
        .unwrap();
    let summary = &runs[1].summary;
    assert!(
        summary.contains("per-tensor: opset 11, and a Softmax node probs keeps it below 13"),
        "{summary}"
    );
    let q = compress(&softmax, CLEAN_INT8, &per_channel);
    let g = decode(&q).graph.unwrap();
    for n in g.node.iter().filter(|n| n.op_type == "DequantizeLinear") {
        assert!(
            n.attribute.is_empty(),
            "{}: no axis before opset 13",
            n.name
        );
        let s = g.initializer.iter().find(|t| t.name == n.input[1]).unwrap();
        assert!(s.dims.is_empty(), "{}: scalar scale", n.name);
    }
    assert!(cosine(&nano(&softmax, shapes), &tract(&q, shapes)) > 0.995);
}

#[test]
fn given_calibration_inputs_are_used_and_checked() {
    let original = conv_model(4, 13);
    let volume = 4 * 12 * 12;
    // Inputs 100x larger than the seeded test input: the activation ranges follow them.
    let big: Vec<u8> = weights(volume, 9, 100.0)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let ctx = |samples| Context {
        calib: Some(samples),
        ..Context::default()
    };
    let q = compress(&original, CLEAN_INT8, &ctx(vec![vec![big]]));
    let g = decode(&q).graph.unwrap();
    let quantize_x = g
        .node
        .iter()
        .find(|n| n.op_type == "QuantizeLinear" && n.input[0] == "x")
        .expect("x is quantized");
    let x_scale = g
        .initializer
        .iter()
        .find(|t| t.name == quantize_x.input[1])
        .expect("x's scale");
    let s = f32::from_le_bytes(x_scale.raw_data[..4].try_into().unwrap());
    assert!(s > 100.0 / 255.0, "scale {s} follows the calibration data");
    let err = Pipeline::new(CLEAN_INT8.to_vec())
        .run(&original, &ctx(vec![vec![vec![0u8; 12]]]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("calibration input 0") && err.contains("12 bytes"),
        "{err}"
    );
}

fn repo(path: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Quantizes a real model with random calibration and checks size, fidelity, and that
/// tract runs it like we do.
fn real_model(path: &str, shape: &[usize], min_ratio: f64, min_cosine: f64) {
    let original = repo(path);
    let ctx = Context {
        input_shapes: Some(vec![shape.to_vec()]),
        ..Context::default()
    };
    let f32_bytes = compress(&original, CLEAN, &ctx).len();
    let q = compress(&original, CLEAN_INT8, &ctx);
    let ratio = f32_bytes as f64 / q.len() as f64;
    assert!(ratio >= min_ratio, "{path}: size ratio {ratio:.2}");
    let shapes: &[&[usize]] = &[shape];
    let reference = nano(&original, shapes);
    let ours = nano(&q, shapes);
    let c = cosine(&reference, &ours);
    assert!(c >= min_cosine, "{path}: int8 vs float cosine {c}");
    // Not bit-exact: a last-bit difference in a float Conv flips a value that sits on a
    // rounding tie of the next QuantizeLinear, and a deep model carries such flips on (the
    // same happens between any two float backends, onnxruntime included).
    let t = cosine(&ours, &tract(&q, shapes));
    assert!(t >= 0.999, "{path}: tract vs ours cosine {t}");
}

#[test]
fn ppocr_classifier_int8() {
    // Opset 11: per-tensor weights; a small model, so graph overhead weighs on the ratio.
    real_model(
        "tests/data/real-cnn/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        &[1, 3, 48, 192],
        2.5,
        0.995,
    );
}

#[test]
fn yolo9tr_int8() {
    real_model("models/zoo/yolo9tr-s.onnx", &[1, 3, 224, 224], 3.7, 0.999);
}

/// Gemm (transB, bias) then MatMul with a constant right operand then MatMul of two
/// activations: weight axes follow each op's layout, and both runtimes agree.
#[test]
fn gemm_and_matmul_are_quantized_along_their_output_columns() {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[4, 32]);
    m.init_f32("wg", &[24, 32], &weights(24 * 32, 11, 0.3));
    m.init_f32("bg", &[24], &weights(24, 12, 0.1));
    m.init_f32("wm", &[24, 16], &weights(24 * 16, 13, 0.3));
    m.node(
        "Gemm",
        &["x", "wg", "bg"],
        &["g"],
        vec![("transB", Attr::Int(1))],
    );
    m.node("MatMul", &["g", "wm"], &["h"], vec![]);
    m.node("Transpose", &["h"], &["ht"], vec![]);
    m.node("MatMul", &["h", "ht"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    let original = m.build();
    let per_channel = Context {
        int8: int8::Options {
            per_tensor_sqnr_db: None,
            ..Default::default()
        },
        ..Context::default()
    };
    let q = compress(&original, CLEAN_INT8, &per_channel);
    let g = decode(&q).graph.unwrap();
    // The axis of the DequantizeLinear feeding input 1 of the first `op` node.
    let axis_of = |op: &str| {
        let reader = g.node.iter().find(|n| n.op_type == op).unwrap();
        let dq = g
            .node
            .iter()
            .find(|n| n.op_type == "DequantizeLinear" && n.output[0] == reader.input[1])
            .unwrap();
        dq.attribute[0].i
    };
    assert_eq!(axis_of("Gemm"), 0, "transB: output channels are rows");
    assert_eq!(axis_of("MatMul"), 1, "MatMul: output channels are columns");
    // x, g, and both operands of the last MatMul (h is shared with the second MatMul).
    assert_eq!(count(&q, "QuantizeLinear"), 4);
    let shapes: &[&[usize]] = &[&[4, 32]];
    let (reference, ours) = (nano(&original, shapes), nano(&q, shapes));
    assert!(cosine(&reference, &ours) > 0.999);
    assert!(cosine(&ours, &tract(&q, shapes)) > 0.99999);
}

/// The Conv nodes whose weight has one scale per output channel (a rank-1 scale).
fn per_channel_convs(model: &ModelProto) -> Vec<String> {
    let g = model.graph.as_ref().unwrap();
    g.node
        .iter()
        .filter(|n| n.op_type == "Conv")
        .filter(|conv| {
            g.node.iter().any(|d| {
                d.op_type == "DequantizeLinear"
                    && d.output[0] == conv.input[1]
                    && g.initializer
                        .iter()
                        .any(|t| t.name == d.input[1] && t.dims.len() == 1)
            })
        })
        .map(|n| n.name.clone())
        .collect()
}

/// Weights of even range get one scale per tensor; a weight whose channels differ 1000x in
/// range keeps one per channel (its small channels would round to zero on one grid);
/// `per_tensor_sqnr_db: None` keeps every weight per channel.
#[test]
fn weights_go_per_tensor_only_where_one_grid_is_fine() {
    let mut proto = decode(&conv_model(8, 13));
    let g = proto.graph.as_mut().unwrap();
    let w2 = g.initializer.iter_mut().find(|t| t.name == "w2").unwrap();
    // Output channels 1.. of w2 (16 x 16 x 3 x 3) shrink 1000x.
    let mut values: Vec<f32> = w2
        .float_data
        .drain(..)
        .chain(
            w2.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap())),
        )
        .collect();
    for v in &mut values[16 * 9..] {
        *v /= 1000.0;
    }
    w2.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let original = prost::Message::encode_to_vec(&proto);
    let q = compress(&original, CLEAN_INT8, &Context::default());
    assert_eq!(per_channel_convs(&decode(&q)), ["conv2"]);
    let shapes: &[&[usize]] = &[&[1, 8, 12, 12]];
    assert!(cosine(&nano(&original, shapes), &nano(&q, shapes)) > 0.999);
    let ctx = Context {
        int8: int8::Options {
            per_tensor_sqnr_db: None,
            ..Default::default()
        },
        ..Context::default()
    };
    let all = compress(&original, CLEAN_INT8, &ctx);
    assert_eq!(
        per_channel_convs(&decode(&all)),
        ["conv1", "conv2", "head/conv"]
    );
    assert!(q.len() < all.len(), "per-tensor scales take fewer bytes");
}

/// What the pass adds is named by role letter and number, without node names: a name is
/// written once per reader, so long ones cost a real model 6% of its int8 file.
#[test]
fn added_tensors_get_short_names_and_nodes_none() {
    let original = conv_model(8, 13);
    let before: Vec<String> = decode(&original)
        .graph
        .unwrap()
        .initializer
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let g = decode(&compress(&original, CLEAN_INT8, &Context::default()))
        .graph
        .unwrap();
    let added: Vec<&str> = g
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| !before.iter().any(|b| b == n))
        .collect();
    assert!(!added.is_empty());
    for name in added {
        let (role, number) = name.split_at(1);
        assert!("wbszqd".contains(role), "{name}");
        assert!(number.parse::<usize>().is_ok(), "{name}");
    }
    for n in &g.node {
        if n.op_type.ends_with("Linear") {
            assert!(n.name.is_empty(), "{}", n.name);
        }
    }
}
