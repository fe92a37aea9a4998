//! fp16 models (weights as float16 initializers behind `Cast(to=FLOAT)`, as written by
//! `edgetrim compress --quantize fp16`) against tract, which folds the Casts at load: the
//! weight-reading kernels (Conv in its im2col, pointwise and depthwise paths, grouped
//! Conv, ConvTranspose, MatMul, Gemm) read the float16 bytes in place, so the plan has no
//! Cast step and the same activation arena as the float32 model. Casts with any other
//! reader still run, and still agree with tract.

use crate::common::*;
use edgetrim_runtime::tract::OwnedTensor;
use edgetrim_runtime::{ArenaReport, Model, Session, Target};
use prost::Message;

/// `m` with its weights stored as float16 by the compressor's fp16 pass.
fn to_fp16(m: &ModelBuilder) -> Vec<u8> {
    let mut proto = m.proto();
    edgetrim_compress::passes::fp16::run(&mut proto).expect("fp16 pass");
    proto.encode_to_vec()
}

fn report(bytes: &[u8], inputs: &[OwnedTensor]) -> ArenaReport {
    let model = Model::parse(bytes).expect("parse");
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.dims()).collect();
    Session::arena_report_for(&model, &shapes, Target::native()).expect("plan")
}

fn casts(bytes: &[u8]) -> usize {
    let proto = edgetrim_compress::build::decode(bytes).unwrap();
    proto
        .graph
        .unwrap()
        .node
        .iter()
        .filter(|n| n.op_type == "Cast")
        .count()
}

/// The fp16 version of `m` agrees with tract, runs no Cast, and plans the float32 model's
/// activation arena with no more folded constants.
fn check_in_place(what: &str, m: &ModelBuilder, inputs: &[OwnedTensor]) {
    let half = to_fp16(m);
    assert!(casts(&half) > 0, "{what}: the fp16 pass converted nothing");
    let (nano, ops) = run_nano_with_ops(&half, inputs);
    assert_close(what, &nano, &run_tract(&half, inputs), TOL);
    assert!(!ops.iter().any(|o| o == "Cast"), "{what}: steps {ops:?}");
    let (f32_plan, f16_plan) = (report(&m.build(), inputs), report(&half, inputs));
    assert_eq!(
        f16_plan.planned, f32_plan.planned,
        "{what}: activation arena"
    );
    assert!(
        f16_plan.constants <= f32_plan.constants,
        "{what}: {f16_plan:?} vs {f32_plan:?}"
    );
}

fn conv(
    x: &[usize],
    w: &[usize],
    bias: bool,
    attrs: Vec<(&str, Attr)>,
    op: &str,
) -> (ModelBuilder, Vec<OwnedTensor>) {
    let mut inits = vec![("w", rand_f32(w, 2))];
    // Ungrouped ConvTranspose weights are [C_in, C_out, ...].
    let out_channels = if op == "ConvTranspose" { w[1] } else { w[0] };
    if bias {
        inits.push(("b", rand_f32(&[out_channels], 3)));
    }
    let extra: &[&str] = if bias { &["w", "b"] } else { &["w"] };
    let m = one_node(op, &[x], &inits, extra, 1, attrs, 13);
    (m, vec![rand_f32(x, 1)])
}

/// A Conv case: name, input shape, weight shape, attributes.
type ConvCase = (
    &'static str,
    &'static [usize],
    &'static [usize],
    Vec<(&'static str, Attr)>,
);

#[test]
fn convs_read_float16_weights_in_place() {
    let cases: Vec<ConvCase> = vec![
        (
            "3x3 stride 2 (im2col)",
            &[1, 8, 11, 10],
            &[16, 8, 3, 3],
            vec![
                ("pads", Attr::Ints(vec![1, 1, 1, 1])),
                ("strides", Attr::Ints(vec![2, 2])),
            ],
        ),
        ("1x1 (pointwise)", &[1, 8, 6, 7], &[24, 8, 1, 1], vec![]),
        (
            "depthwise 3x3",
            &[1, 16, 9, 9],
            &[16, 1, 3, 3],
            vec![
                ("group", Attr::Int(16)),
                ("pads", Attr::Ints(vec![1, 1, 1, 1])),
            ],
        ),
        (
            "grouped 3x3",
            &[2, 8, 7, 7],
            &[16, 4, 3, 3],
            vec![("group", Attr::Int(2))],
        ),
        ("1-D", &[1, 8, 20], &[16, 8, 5], vec![]),
    ];
    for (what, x, w, attrs) in cases {
        for bias in [false, true] {
            let (m, inputs) = conv(x, w, bias, attrs.clone(), "Conv");
            check_in_place(&format!("Conv {what}, bias {bias}"), &m, &inputs);
        }
    }
    let (m, inputs) = conv(
        &[1, 8, 5, 5],
        &[8, 16, 3, 3],
        true,
        vec![("strides", Attr::Ints(vec![2, 2]))],
        "ConvTranspose",
    );
    check_in_place("ConvTranspose", &m, &inputs);
}

#[test]
fn matmul_and_gemm_read_float16_weights_in_place() {
    let m = one_node(
        "MatMul",
        &[&[2, 3, 24]],
        &[("w", rand_f32(&[24, 20], 2))],
        &["w"],
        1,
        vec![],
        13,
    );
    check_in_place("MatMul", &m, &[rand_f32(&[2, 3, 24], 1)]);
    for trans_b in [0, 1] {
        let w = if trans_b == 1 { [20, 24] } else { [24, 20] };
        let m = one_node(
            "Gemm",
            &[&[3, 24]],
            &[("w", rand_f32(&w, 2)), ("c", rand_f32(&[20], 3))],
            &["w", "c"],
            1,
            vec![
                ("transB", Attr::Int(trans_b)),
                ("alpha", Attr::Float(0.5)),
                ("beta", Attr::Float(2.0)),
            ],
            13,
        );
        check_in_place(
            &format!("Gemm transB={trans_b}"),
            &m,
            &[rand_f32(&[3, 24], 1)],
        );
    }
}

/// A weight also read by an op without a float16 kernel (here Add), or a widened weight
/// that is a graph output, keeps its Cast as a step (the weights are above the plan-time
/// fold limit): more arena, same results.
#[test]
fn casts_with_other_readers_still_run() {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 64, 4, 4]);
    m.init_f32("w", &[32, 64, 1, 1], &rand_vec(2048, 2));
    m.node("Conv", &["x", "w"], &["y"], vec![]);
    m.node("Add", &["w", "w"], &["z"], vec![]);
    m.output("y", dt::FLOAT);
    m.output("z", dt::FLOAT);
    let inputs = [rand_f32(&[1, 64, 4, 4], 1)];
    let half = to_fp16(&m);
    let (nano, ops) = run_nano_with_ops(&half, &inputs);
    assert_close("shared weight", &nano, &run_tract(&half, &inputs), TOL);
    assert!(ops.iter().any(|o| o == "Cast"), "steps {ops:?}");
    assert!(report(&half, &inputs).planned > report(&m.build(), &inputs).planned);

    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 40]);
    m.init_f32("w", &[40, 40], &rand_vec(1600, 2));
    m.node("MatMul", &["x", "w"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    m.output("w", dt::FLOAT);
    let inputs = [rand_f32(&[1, 40], 1)];
    let half = to_fp16(&m);
    let (nano, ops) = run_nano_with_ops(&half, &inputs);
    assert_close("weight as output", &nano, &run_tract(&half, &inputs), TOL);
    assert!(ops.iter().any(|o| o == "Cast"), "steps {ops:?}");
}
