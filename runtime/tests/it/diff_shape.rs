//! Reshape, Flatten, Squeeze, Unsqueeze, Shape, Size against tract, the PyTorch
//! `x.view(B, C, -1)` export chain folded away, and bad shapes refused with an error.

use crate::common::*;
use edgetrim_runtime::{Error, Model, Session};

/// Plans `m` and returns the session's kernel step count, or the planning error.
fn plan(m: &ModelBuilder, shapes: &[&[usize]]) -> Result<usize, Error> {
    let bytes = m.build();
    let model = Model::parse(&bytes).unwrap();
    let mut arena = vec![0u8; 1 << 20];
    Session::new(&model, shapes, &mut arena).map(|s| s.step_count())
}

fn assert_bad_node(m: &ModelBuilder, shapes: &[&[usize]], what: &str) {
    let err = plan(m, shapes).err();
    assert!(
        matches!(err, Some(Error::BadNode { .. })),
        "{what}: {err:?}"
    );
}

/// `op(x, const)` followed by a Relu so the view feeds a real kernel.
fn with_const(
    op: &str,
    x: &[usize],
    c: &[i64],
    attrs: Vec<(&str, Attr)>,
    opset: i64,
) -> ModelBuilder {
    let mut m = ModelBuilder::new(opset);
    m.input("x", dt::FLOAT, x);
    m.init_i64("c", &[c.len()], c);
    m.node(op, &["x", "c"], &["v"], attrs);
    m.node("Add", &["v", "v"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    m
}

#[test]
fn reshape_zero_minus_one_and_allowzero() {
    let cases: &[(&[usize], &[i64], i64)] = &[
        (&[2, 3, 4], &[0, -1], 0),
        (&[2, 3, 4], &[-1], 0),
        (&[2, 3, 4], &[4, 0, 2], 0),
        (&[2, 3, 4], &[2, 3, 2, 2], 14),
        (&[1, 64, 20, 20], &[1, 2, 32, -1], 0),
    ];
    for (x, shape, allowzero) in cases {
        let (attrs, opset) = if *allowzero == 14 {
            (vec![("allowzero", Attr::Int(1))], 14)
        } else {
            (vec![], 13)
        };
        let m = with_const("Reshape", x, shape, attrs, opset);
        check(
            &format!("Reshape {x:?} {shape:?}"),
            &m,
            &[rand_f32(x, 1)],
            0.0,
        );
        assert_eq!(plan(&m, &[x]).unwrap(), 1, "the Reshape is a view");
    }
}

#[test]
fn flatten_axes() {
    for axis in [0i64, 1, 2, 3, -1, -3] {
        let m = one_node(
            "Flatten",
            &[&[2, 3, 4]],
            &[],
            &[],
            1,
            vec![("axis", Attr::Int(axis))],
            13,
        );
        check(
            &format!("Flatten axis {axis}"),
            &m,
            &[rand_f32(&[2, 3, 4], 2)],
            0.0,
        );
    }
    let m = one_node("Flatten", &[&[2, 3, 4]], &[], &[], 1, vec![], 13);
    check("Flatten default", &m, &[rand_f32(&[2, 3, 4], 3)], 0.0);
}

#[test]
fn squeeze_and_unsqueeze_both_opset_forms() {
    let x: &[usize] = &[1, 3, 1, 4];
    // opset 11: axes attribute.
    for axes in [vec![0], vec![0, 2], vec![2, 0], vec![-2]] {
        if axes == [2, 0] {
            // tract squeezes unsorted axes one by one and then misreads them.
            let m = one_node(
                "Squeeze",
                &[x],
                &[],
                &[],
                1,
                vec![("axes", Attr::Ints(axes.clone()))],
                11,
            );
            assert_eq!(
                run_nano(&m.build(), &[rand_f32(x, 4)])[0].shape.dims(),
                &[3, 4]
            );
        } else {
            let m = one_node(
                "Squeeze",
                &[x],
                &[],
                &[],
                1,
                vec![("axes", Attr::Ints(axes.clone()))],
                11,
            );
            check(&format!("Squeeze11 {axes:?}"), &m, &[rand_f32(x, 4)], 0.0);
        }
        let m = one_node(
            "Unsqueeze",
            &[x],
            &[],
            &[],
            1,
            vec![("axes", Attr::Ints(axes.clone()))],
            11,
        );
        check(&format!("Squeeze11 {axes:?}"), &m, &[rand_f32(x, 4)], 0.0);
        let m = one_node(
            "Unsqueeze",
            &[x],
            &[],
            &[],
            1,
            vec![("axes", Attr::Ints(axes.clone()))],
            11,
        );
        check(&format!("Unsqueeze11 {axes:?}"), &m, &[rand_f32(x, 5)], 0.0);
    }
    let m = one_node("Squeeze", &[x], &[], &[], 1, vec![], 13);
    check("Squeeze all", &m, &[rand_f32(x, 6)], 0.0);
    // opset 13: axes input.
    for axes in [vec![0], vec![2, 0], vec![-1, 1]] {
        let m = with_const("Unsqueeze", x, &axes, vec![], 13);
        check(&format!("Unsqueeze13 {axes:?}"), &m, &[rand_f32(x, 7)], 0.0);
    }
    let m = with_const("Squeeze", x, &[0, -2], vec![], 13);
    check("Squeeze13", &m, &[rand_f32(x, 8)], 0.0);
}

/// A graph computing `Shape(x)` (with attributes) and `Size(x)` (cast to float32
/// because tract keeps shapes as symbolic dims).
fn shape_and_size(x: &[usize], attrs: Vec<(&str, Attr)>) -> ModelBuilder {
    let mut m = ModelBuilder::new(15);
    m.input("x", dt::FLOAT, x);
    m.node("Shape", &["x"], &["s0"], attrs);
    m.node("Size", &["x"], &["n0"], vec![]);
    m.node(
        "Cast",
        &["s0"],
        &["s"],
        vec![("to", Attr::Int(dt::FLOAT as i64))],
    );
    m.node(
        "Cast",
        &["n0"],
        &["n"],
        vec![("to", Attr::Int(dt::FLOAT as i64))],
    );
    m.output("s", dt::FLOAT);
    m.output("n", dt::FLOAT);
    m
}

#[test]
fn shape_start_end_and_size() {
    let x: &[usize] = &[2, 3, 4, 5];
    let cases: Vec<Vec<(&str, Attr)>> = vec![
        vec![],
        vec![("start", Attr::Int(1))],
        vec![("end", Attr::Int(-1))],
        vec![("start", Attr::Int(-3)), ("end", Attr::Int(3))],
        vec![("start", Attr::Int(-10)), ("end", Attr::Int(10))],
    ];
    for attrs in cases {
        let what = format!("Shape {attrs:?}");
        let m = shape_and_size(x, attrs);
        check(&what, &m, &[rand_f32(x, 9)], 0.0);
        assert_eq!(plan(&m, &[x]).unwrap(), 0, "{what}: constant");
    }
}

#[test]
fn pytorch_view_chain_folds_away() {
    // torch.onnx.export of `x.view(B, C, -1)` with fixed shapes:
    // Shape -> Gather(0), Gather(1) -> Unsqueeze -> Concat(.., [-1]) -> Reshape.
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 8, 5, 6]);
    m.init(edgetrim_compress::build::tensor(
        "i0",
        dt::INT64,
        &[],
        0i64.to_le_bytes().to_vec(),
    ));
    m.init(edgetrim_compress::build::tensor(
        "i1",
        dt::INT64,
        &[],
        1i64.to_le_bytes().to_vec(),
    ));
    m.init_i64("axes0", &[1], &[0]);
    m.init_i64("minus1", &[1], &[-1]);
    m.node("Relu", &["x"], &["a"], vec![]);
    m.node("Shape", &["a"], &["shape"], vec![]);
    m.node(
        "Gather",
        &["shape", "i0"],
        &["b"],
        vec![("axis", Attr::Int(0))],
    );
    m.node(
        "Gather",
        &["shape", "i1"],
        &["c"],
        vec![("axis", Attr::Int(0))],
    );
    m.node("Unsqueeze", &["b", "axes0"], &["b1"], vec![]);
    m.node("Unsqueeze", &["c", "axes0"], &["c1"], vec![]);
    m.node(
        "Concat",
        &["b1", "c1", "minus1"],
        &["target"],
        vec![("axis", Attr::Int(0))],
    );
    m.node("Reshape", &["a", "target"], &["v"], vec![]);
    m.node("Add", &["v", "v"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    check("view(B, C, -1)", &m, &[rand_f32(&[1, 8, 5, 6], 10)], 0.0);
    assert_eq!(
        plan(&m, &[&[1, 8, 5, 6]]).unwrap(),
        2,
        "only Relu and Add run"
    );
    let out = run_nano(&m.build(), &[rand_f32(&[1, 8, 5, 6], 10)]);
    assert_eq!(out[0].shape.dims(), &[1, 8, 30]);
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let x: &[usize] = &[2, 3, 4];
    assert_bad_node(
        &with_const("Reshape", x, &[5, -1], vec![], 13),
        &[x],
        "Reshape 24 into 5s",
    );
    assert_bad_node(
        &with_const("Reshape", x, &[-1, -1], vec![], 13),
        &[x],
        "two -1",
    );
    assert_bad_node(
        &with_const("Reshape", x, &[2, 3, 5], vec![], 13),
        &[x],
        "count differs",
    );
    assert_bad_node(
        &with_const("Squeeze", x, &[1], vec![], 13),
        &[x],
        "squeeze dim 3",
    );
    assert_bad_node(
        &with_const("Squeeze", x, &[3], vec![], 13),
        &[x],
        "squeeze axis 3",
    );
    assert_bad_node(
        &with_const("Unsqueeze", x, &[0, 0], vec![], 13),
        &[x],
        "axis twice",
    );
    assert_bad_node(
        &with_const("Unsqueeze", x, &[4], vec![], 13),
        &[x],
        "unsqueeze axis 4",
    );
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, x);
    m.input("s", dt::INT64, &[2]);
    m.node("Reshape", &["x", "s"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    assert_bad_node(&m, &[x, &[2]], "run-time shape input");
    let m = one_node(
        "Flatten",
        &[x],
        &[],
        &[],
        1,
        vec![("axis", Attr::Int(4))],
        13,
    );
    assert!(matches!(plan(&m, &[x]), Err(Error::BadAttribute { .. })));
}

#[test]
fn shape_output_compares_with_tract_as_int64() {
    // tract returns shapes as symbolic dims; the reference backend converts them to int64.
    let mut m = ModelBuilder::new(15);
    m.input("x", dt::FLOAT, &[2, 3, 5])
        .node("Shape", &["x"], &["s"], vec![])
        .output("s", dt::INT64);
    check("Shape as graph output", &m, &[rand_f32(&[2, 3, 5], 1)], 0.0);
}
