//! ConstantOfShape, Range, Expand and Tile against tract, and bad inputs refused.

use crate::common::*;
use edgetrim_compress::build::{tensor, tensor_f32};
use edgetrim_runtime::Error;

#[test]
fn constant_of_shape_default_and_typed_values() {
    // tract defaults to a float64 zero, the spec to float32: the default is checked against
    // an explicit float32 zero below.
    let zero = tensor_f32("v", &[1], &[0.0]);
    let values = [
        zero.clone(),
        tensor_f32("v", &[1], &[2.5]),
        tensor("v", dt::INT64, &[1], 7i64.to_le_bytes().to_vec()),
    ];
    let model = |value: Option<edgetrim_compress::pb::TensorProto>| {
        let mut m = ModelBuilder::new(13);
        m.input("x", dt::FLOAT, &[2, 3]);
        m.init_i64("s", &[2], &[2, 3]);
        let int = value.as_ref().is_some_and(|v| v.data_type == dt::INT64);
        let attrs = value
            .map(|v| vec![("value", Attr::Tensor(v))])
            .unwrap_or_default();
        m.node("ConstantOfShape", &["s"], &["c"], attrs);
        if int {
            m.node(
                "Cast",
                &["c"],
                &["cf"],
                vec![("to", Attr::Int(dt::FLOAT as i64))],
            );
            m.node("Add", &["x", "cf"], &["y"], vec![]);
        } else {
            m.node("Add", &["x", "c"], &["y"], vec![]);
        }
        m.output("y", dt::FLOAT);
        m
    };
    let x = [rand_f32(&[2, 3], 1)];
    for v in values {
        check("ConstantOfShape", &model(Some(v)), &x, 0.0);
    }
    let default = run_nano(&model(None).build(), &x);
    assert_eq!(
        default[0].bytes,
        run_nano(&model(Some(zero)).build(), &x)[0].bytes
    );
}

#[test]
fn range_float_and_int() {
    // tract divides by zero on fractional deltas and miscounts negative ones, so those are
    // checked by value below.
    let cases: &[(f32, f32, f32)] = &[(0.0, 5.0, 1.0), (1.0, 9.0, 2.0), (-2.0, 6.0, 4.0)];
    for &(s, l, d) in cases {
        let n = ((l - s) / d).ceil().max(0.0) as usize;
        let mut m = ModelBuilder::new(13);
        m.input("x", dt::FLOAT, &[n]);
        for (name, v) in [("s", s), ("l", l), ("d", d)] {
            m.init(tensor_f32(name, &[], &[v]));
        }
        m.node("Range", &["s", "l", "d"], &["r"], vec![]);
        m.node("Add", &["x", "r"], &["y"], vec![]);
        m.output("y", dt::FLOAT);
        check(&format!("Range {s} {l} {d}"), &m, &[rand_f32(&[n], 2)], TOL);
    }
    for (s, l, d) in [(0i64, 7, 2), (-3, 0, 1)] {
        let mut m = ModelBuilder::new(13);
        m.input("x", dt::FLOAT, &[1]);
        for (name, v) in [("s", s), ("l", l), ("d", d)] {
            m.init(tensor(name, dt::INT64, &[], v.to_le_bytes().to_vec()));
        }
        m.node("Range", &["s", "l", "d"], &["r"], vec![]);
        m.node(
            "Cast",
            &["r"],
            &["y"],
            vec![("to", Attr::Int(dt::FLOAT as i64))],
        );
        m.output("y", dt::FLOAT);
        check(&format!("Range {s} {l} {d}"), &m, &[rand_f32(&[1], 2)], 0.0);
    }
    let by_value = |s: f32, l: f32, d: f32, want: &[f32]| {
        let mut m = ModelBuilder::new(13);
        m.input("x", dt::FLOAT, &[1]);
        for (name, v) in [("s", s), ("l", l), ("d", d)] {
            m.init(tensor_f32(name, &[], &[v]));
        }
        m.node("Range", &["s", "l", "d"], &["y"], vec![]);
        m.output("y", dt::FLOAT);
        let got = run_nano(&m.build(), &[rand_f32(&[1], 2)])[0].to_f32_vec();
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
    };
    by_value(1.0, 2.0, 0.3, &[1.0, 1.3, 1.6, 1.9]);
    by_value(10.0, 4.0, -3.0, &[10.0, 7.0]);
    by_value(5.0, -4.0, -3.0, &[5.0, 2.0, -1.0]);
    by_value(3.0, 1.0, 1.0, &[]);
}

#[test]
fn expand_broadcasts_both_ways() {
    let cases: &[(&[usize], &[i64])] = &[
        (&[3, 1], &[2, 3, 4]),
        (&[1], &[5]),
        (&[2, 1, 4], &[1, 3, 1]),
        (&[4], &[2, 1, 4]),
        (&[2, 3], &[2, 3]),
    ];
    for (x, shape) in cases {
        let m = one_node(
            "Expand",
            &[x],
            &[("s", i64_tensor(&[shape.len()], shape))],
            &["s"],
            1,
            vec![],
            13,
        );
        check(
            &format!("Expand {x:?} to {shape:?}"),
            &m,
            &[rand_f32(x, 3)],
            0.0,
        );
    }
}

#[test]
fn tile_repeats() {
    let cases: &[(&[usize], &[i64])] = &[
        (&[2, 3], &[2, 2]),
        (&[4], &[3]),
        (&[1, 2, 3], &[2, 1, 3]),
        (&[2, 1, 2, 2], &[1, 3, 1, 2]),
    ];
    for (x, reps) in cases {
        let m = one_node(
            "Tile",
            &[x],
            &[("r", i64_tensor(&[reps.len()], reps))],
            &["r"],
            1,
            vec![],
            13,
        );
        check(&format!("Tile {x:?} {reps:?}"), &m, &[rand_f32(x, 4)], 0.0);
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let m = one_node(
        "Expand",
        &[&[3]],
        &[("s", i64_tensor(&[1], &[4]))],
        &["s"],
        1,
        vec![],
        13,
    );
    assert!(
        matches!(plan_err(&m, &[&[3]]), Some(Error::BadNode { .. })),
        "3 to 4"
    );
    let m = one_node(
        "Tile",
        &[&[3]],
        &[("r", i64_tensor(&[2], &[1, 2]))],
        &["r"],
        1,
        vec![],
        13,
    );
    assert!(
        matches!(plan_err(&m, &[&[3]]), Some(Error::BadNode { .. })),
        "repeats length"
    );
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1]);
    for name in ["s", "l", "d"] {
        m.init(tensor(name, dt::INT64, &[], 0i64.to_le_bytes().to_vec()));
    }
    m.node("Range", &["s", "l", "d"], &["y"], vec![]);
    m.output("y", dt::INT64);
    assert!(
        matches!(plan_err(&m, &[&[1]]), Some(Error::BadNode { .. })),
        "zero delta"
    );
}
