//! Gather against tract: every axis, negative, scalar and 2-D indices, constant and
//! run-time (arena) indices, int64 data, and out-of-range constant indices refused.

use crate::common::*;
use edgetrim_runtime::{Error, Model, Session};

/// Gather of an f32 `data` input by constant int64 indices.
fn gather_const(data: &[usize], idx_shape: &[usize], idx: &[i64], axis: i64) -> ModelBuilder {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, data);
    m.init(edgetrim_compress::build::tensor(
        "i",
        dt::INT64,
        idx_shape,
        idx.iter().flat_map(|v| v.to_le_bytes()).collect(),
    ));
    m.node(
        "Gather",
        &["x", "i"],
        &["y"],
        vec![("axis", Attr::Int(axis))],
    );
    m.output("y", dt::FLOAT);
    m
}

#[test]
fn constant_indices_on_every_axis() {
    let data: &[usize] = &[4, 5, 6];
    let cases: &[(&[usize], &[i64], i64)] = &[
        (&[], &[2], 0),
        (&[], &[-1], 1),
        (&[3], &[0, 3, -2], 0),
        (&[2, 2], &[5, 0, -6, 1], 2),
        (&[2], &[4, 4], -2),
        (&[1], &[0], -1),
    ];
    for (k, (shape, idx, axis)) in cases.iter().enumerate() {
        let m = gather_const(data, shape, idx, *axis);
        check(
            &format!("Gather {idx:?} axis {axis}"),
            &m,
            &[rand_f32(data, k as u64)],
            0.0,
        );
    }
}

#[test]
fn run_time_indices_from_the_arena() {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[10, 4]);
    m.input("i", dt::INT64, &[2, 3]);
    m.node("Gather", &["x", "i"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    let idx = i64_tensor(&[2, 3], &[9, 0, -1, 3, -10, 5]);
    check(
        "Gather run-time indices",
        &m,
        &[rand_f32(&[10, 4], 1), idx],
        0.0,
    );

    // Out-of-range run-time indices cannot fail eval: they clamp into the axis.
    let wild = i64_tensor(&[2, 3], &[42, -42, 0, 0, 0, 0]);
    let out = run_nano(&m.build(), &[rand_f32(&[10, 4], 1), wild])[0].to_f32_vec();
    let x = rand_f32(&[10, 4], 1).to_f32_vec();
    assert_eq!(out[..4], x[36..40]);
    assert_eq!(out[4..8], x[..4]);
}

#[test]
fn gathers_int64_data_and_folds_on_shapes() {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::INT64, &[3, 2]);
    m.init_i64("i", &[2], &[2, 0]);
    m.node("Gather", &["x", "i"], &["y"], vec![("axis", Attr::Int(0))]);
    m.output("y", dt::INT64);
    check(
        "Gather int64",
        &m,
        &[i64_tensor(&[3, 2], &[1, -2, 3, i64::MIN, 5, 6])],
        0.0,
    );

    // Shape -> Gather is constant: the Gather folds and no step is left.
    let mut chain = ModelBuilder::new(13);
    chain.input("x", dt::FLOAT, &[2, 3, 7]);
    chain.init_i64("i", &[1], &[-1]);
    chain.node("Shape", &["x"], &["s"], vec![]);
    chain.node("Gather", &["s", "i"], &["g"], vec![]);
    chain.node(
        "Cast",
        &["g"],
        &["y"],
        vec![("to", Attr::Int(dt::FLOAT as i64))],
    );
    chain.output("y", dt::FLOAT);
    check("Shape/Gather", &chain, &[rand_f32(&[2, 3, 7], 1)], 0.0);
    let bytes = chain.build();
    let model = Model::parse(&bytes).unwrap();
    let mut arena = vec![0u8; 1 << 16];
    let s = Session::new(&model, &[&[2, 3, 7]], &mut arena).unwrap();
    assert_eq!(s.step_count(), 0);
    assert_eq!(s.output(0).bytes, 7.0f32.to_le_bytes());
}

#[test]
fn bad_gathers_are_errors_not_panics() {
    let plan = |m: &ModelBuilder| {
        let bytes = m.build();
        let model = Model::parse(&bytes).unwrap();
        let mut arena = vec![0u8; 1 << 16];
        Session::new(&model, &[&[4, 5]], &mut arena).err()
    };
    let err = plan(&gather_const(&[4, 5], &[1], &[4], 0));
    assert!(
        matches!(err, Some(Error::BadNode { .. })),
        "index 4 of 4: {err:?}"
    );
    let err = plan(&gather_const(&[4, 5], &[1], &[-6], 1));
    assert!(
        matches!(err, Some(Error::BadNode { .. })),
        "index -6 of 5: {err:?}"
    );
    let err = plan(&gather_const(&[4, 5], &[1], &[0], 2));
    assert!(
        matches!(err, Some(Error::BadAttribute { .. })),
        "axis 2: {err:?}"
    );
}
