//! Concat and Split against tract: every axis, several inputs, non-f32 data, the three
//! ways Split gets its sizes (attribute, input, equal / num_outputs), and bad models.

use crate::common::*;
use edgetrim_runtime::tract::OwnedTensor;
use edgetrim_runtime::{Error, Model, Session};

#[test]
fn concat_on_every_axis() {
    let cases: &[(&[&[usize]], i64)] = &[
        (&[&[2, 3, 4], &[2, 3, 4]], 0),
        (&[&[2, 3, 4], &[2, 5, 4], &[2, 1, 4]], 1),
        (&[&[2, 3, 4], &[2, 3, 1]], -1),
        (
            &[
                &[1, 16, 8, 8],
                &[1, 32, 8, 8],
                &[1, 16, 8, 8],
                &[1, 8, 8, 8],
            ],
            1,
        ),
        (&[&[7]], 0),
    ];
    for (k, (shapes, axis)) in cases.iter().enumerate() {
        let inputs: Vec<_> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| rand_f32(s, (k * 10 + i) as u64))
            .collect();
        let m = one_node(
            "Concat",
            shapes,
            &[],
            &[],
            1,
            vec![("axis", Attr::Int(*axis))],
            13,
        );
        check(&format!("Concat {shapes:?} axis {axis}"), &m, &inputs, 0.0);
    }
}

#[test]
fn concat_moves_int64_and_folds_constants() {
    let mut m = ModelBuilder::new(13);
    m.input("a", dt::INT64, &[2, 2]);
    m.init_i64("b", &[2, 1], &[-7, i64::MAX]);
    m.init_i64("c", &[1], &[5]);
    m.init_i64("d", &[2], &[6, 7]);
    m.node("Concat", &["a", "b"], &["y"], vec![("axis", Attr::Int(1))]);
    m.node(
        "Concat",
        &["c", "d", "c"],
        &["z"],
        vec![("axis", Attr::Int(0))],
    );
    m.output("y", dt::INT64);
    m.output("z", dt::INT64);
    check(
        "Concat int64",
        &m,
        &[i64_tensor(&[2, 2], &[1, 2, 3, 4])],
        0.0,
    );
    let bytes = m.build();
    let model = Model::parse(&bytes).unwrap();
    let mut arena = vec![0u8; 1 << 16];
    let s = Session::new(&model, &[&[2, 2]], &mut arena).unwrap();
    assert_eq!(s.step_count(), 1, "the all-constant Concat is folded");
}

/// Split of a `[4, 6, 3]` f32 input into `n` outputs.
fn split(
    n: usize,
    inits: &[(&str, OwnedTensor)],
    extra: &[&str],
    attrs: Vec<(&str, Attr)>,
    opset: i64,
) -> ModelBuilder {
    one_node("Split", &[&[4, 6, 3]], inits, extra, n, attrs, opset)
}

#[test]
fn split_sizes_from_attribute_input_and_equal() {
    let x = [rand_f32(&[4, 6, 3], 1)];
    let ax = |a: i64| ("axis", Attr::Int(a));
    check(
        "Split11 attr",
        &split(
            3,
            &[],
            &[],
            vec![ax(1), ("split", Attr::Ints(vec![1, 2, 3]))],
            11,
        ),
        &x,
        0.0,
    );
    check(
        "Split11 equal",
        &split(2, &[], &[], vec![ax(0)], 11),
        &x,
        0.0,
    );
    check(
        "Split11 default axis",
        &split(4, &[], &[], vec![], 11),
        &x,
        0.0,
    );
    let sizes = [("sizes", i64_tensor(&[2], &[2, 1]))];
    check(
        "Split13 input",
        &split(2, &sizes, &["sizes"], vec![ax(-1)], 13),
        &x,
        0.0,
    );
    check(
        "Split13 equal",
        &split(3, &[], &[], vec![ax(1)], 13),
        &x,
        0.0,
    );
}

#[test]
fn split_num_outputs_uneven_opset18() {
    // 5 rows into 3 outputs: chunks of ceil(5/3) = 2, the last one smaller.
    let mut m = ModelBuilder::new(18);
    m.input("x", dt::FLOAT, &[5, 2]);
    m.node(
        "Split",
        &["x"],
        &["a", "b", "c"],
        vec![("axis", Attr::Int(0)), ("num_outputs", Attr::Int(3))],
    );
    for o in ["a", "b", "c"] {
        m.output(o, dt::FLOAT);
    }
    check("Split18", &m, &[rand_f32(&[5, 2], 2)], 0.0);
    let out = run_nano(&m.build(), &[rand_f32(&[5, 2], 2)]);
    let dims: Vec<_> = out.iter().map(|t| t.shape.dims().to_vec()).collect();
    assert_eq!(dims, vec![vec![2, 2], vec![2, 2], vec![1, 2]]);
    let x = rand_f32(&[5, 2], 2).to_f32_vec();
    let got: Vec<f32> = out.iter().flat_map(|t| t.to_f32_vec()).collect();
    assert_eq!(got, x, "the pieces put back together are the input");
}

#[test]
fn bad_models_are_errors_not_panics() {
    let m = one_node(
        "Concat",
        &[&[2, 3], &[3, 3]],
        &[],
        &[],
        1,
        vec![("axis", Attr::Int(1))],
        13,
    );
    assert!(
        matches!(
            plan_err(&m, &[&[2, 3], &[3, 3]]),
            Some(Error::BadNode { .. })
        ),
        "dim mismatch"
    );
    let m = one_node(
        "Concat",
        &[&[2, 3], &[2, 3, 1]],
        &[],
        &[],
        1,
        vec![("axis", Attr::Int(0))],
        13,
    );
    assert!(
        matches!(
            plan_err(&m, &[&[2, 3], &[2, 3, 1]]),
            Some(Error::BadNode { .. })
        ),
        "rank mismatch"
    );
    let m = one_node(
        "Concat",
        &[&[2, 3], &[2, 3]],
        &[],
        &[],
        1,
        vec![("axis", Attr::Int(2))],
        13,
    );
    assert!(
        matches!(
            plan_err(&m, &[&[2, 3], &[2, 3]]),
            Some(Error::BadAttribute { .. })
        ),
        "axis"
    );
    let m = one_node("Concat", &[&[2, 3], &[2, 3]], &[], &[], 1, vec![], 13);
    assert!(
        matches!(
            plan_err(&m, &[&[2, 3], &[2, 3]]),
            Some(Error::BadAttribute { .. })
        ),
        "no axis"
    );
    let mut m = ModelBuilder::new(13);
    m.input("a", dt::FLOAT, &[2]);
    m.init_i64("b", &[2], &[1, 2]);
    m.node("Concat", &["a", "b"], &["y"], vec![("axis", Attr::Int(0))]);
    m.output("y", dt::FLOAT);
    assert!(
        matches!(plan_err(&m, &[&[2]]), Some(Error::BadNode { .. })),
        "dtype mismatch"
    );
    let sizes = [("sizes", i64_tensor(&[2], &[2, 2]))];
    let m = split(2, &sizes, &["sizes"], vec![("axis", Attr::Int(1))], 13);
    assert!(
        matches!(plan_err(&m, &[&[4, 6, 3]]), Some(Error::BadNode { .. })),
        "sizes sum"
    );
    let m = split(2, &[], &[], vec![("axis", Attr::Int(3))], 13);
    assert!(
        matches!(
            plan_err(&m, &[&[4, 6, 3]]),
            Some(Error::BadAttribute { .. })
        ),
        "split axis"
    );
}
