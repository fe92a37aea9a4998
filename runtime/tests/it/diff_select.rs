//! Equal and Where against tract, with broadcasting, run-time and constant operands, and
//! the exported `Where(Equal(shape, -1), 1, shape) -> Expand` idiom folded at plan time.

use crate::common::*;
use edgetrim_runtime::tract::OwnedTensor;
use edgetrim_runtime::{DType, Error, Model, Session, Shape};

fn bools(shape: &[usize], seed: u64) -> OwnedTensor {
    let r = rand_f32(shape, seed).to_f32_vec();
    OwnedTensor {
        dtype: DType::Bool,
        shape: Shape::new(shape).unwrap(),
        bytes: r.iter().map(|v| u8::from(*v > 0.0)).collect(),
    }
}

#[test]
fn where_broadcasts_three_ways() {
    let cases: &[[&[usize]; 3]] = &[
        [&[2, 3], &[2, 3], &[2, 3]],
        [&[2, 1], &[1, 3], &[]],
        [&[4], &[3, 1], &[1, 4]],
        [&[1, 2, 1, 3], &[2, 1, 1], &[1, 1, 4, 1]],
    ];
    for (k, [c, x, y]) in cases.iter().enumerate() {
        let mut m = ModelBuilder::new(13);
        m.input("c", dt::BOOL, c);
        m.input("x", dt::FLOAT, x);
        m.input("y", dt::FLOAT, y);
        m.node("Where", &["c", "x", "y"], &["z"], vec![]);
        m.output("z", dt::FLOAT);
        let inputs = [bools(c, k as u64), rand_f32(x, 1), rand_f32(y, 2)];
        check(&format!("Where {c:?} {x:?} {y:?}"), &m, &inputs, 0.0);
    }
}

#[test]
fn equal_on_floats_and_ints() {
    let mut m = ModelBuilder::new(13);
    m.input("a", dt::FLOAT, &[2, 4]);
    m.init_f32("b", &[4], &[0.0, -0.0, 1.5, f32::NAN]);
    m.input("i", dt::INT64, &[3]);
    m.init_i64("j", &[1], &[-1]);
    m.node("Equal", &["a", "b"], &["e"], vec![]);
    m.node("Equal", &["i", "j"], &["f"], vec![]);
    m.output("e", dt::BOOL);
    m.output("f", dt::BOOL);
    let a = f32_tensor(&[2, 4], &[-0.0, 0.0, 1.5, f32::NAN, 1.0, 2.0, 1.5, 0.0]);
    let i = i64_tensor(&[3], &[-1, 5, -1]);
    let bytes = m.build();
    let ours = run_nano(&bytes, &[a.clone(), i.clone()]);
    let theirs = run_tract(&bytes, &[a, i]);
    for k in 0..2 {
        assert_eq!(ours[k].dtype, DType::Bool);
        assert_eq!(ours[k].shape, theirs[k].shape);
        assert_eq!(ours[k].bytes, theirs[k].bytes, "output {k}");
    }
    assert_eq!(
        ours[0].bytes,
        [1, 1, 1, 0, 0, 0, 1, 0],
        "-0 == 0, NaN == nothing"
    );
}

#[test]
fn exported_expand_idiom_folds() {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[3, 1]);
    m.init_i64("shape", &[3], &[2, -1, 4]);
    m.init_i64("minus1", &[], &[-1]);
    m.init_i64("ones", &[3], &[1, 1, 1]);
    m.node("Equal", &["shape", "minus1"], &["is_neg"], vec![]);
    m.node("Where", &["is_neg", "ones", "shape"], &["target"], vec![]);
    m.node("Expand", &["x", "target"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    check("Where(Equal) -> Expand", &m, &[rand_f32(&[3, 1], 5)], 0.0);
    let bytes = m.build();
    let model = Model::parse(&bytes).unwrap();
    let mut arena = vec![0u8; 1 << 16];
    let s = Session::new(&model, &[&[3, 1]], &mut arena).unwrap();
    assert_eq!(s.step_count(), 1, "only the Expand runs");
}

#[test]
fn bad_operands_are_errors_not_panics() {
    let mut m = ModelBuilder::new(13);
    m.input("c", dt::FLOAT, &[2]);
    m.input("x", dt::FLOAT, &[2]);
    m.node("Where", &["c", "x", "x"], &["z"], vec![]);
    m.output("z", dt::FLOAT);
    let bytes = m.build();
    let model = Model::parse(&bytes).unwrap();
    let mut arena = vec![0u8; 1 << 16];
    let err = Session::new(&model, &[&[2], &[2]], &mut arena).err();
    assert!(
        matches!(err, Some(Error::BadNode { .. })),
        "float condition: {err:?}"
    );
    let m = one_node("Equal", &[&[2], &[3]], &[], &[], 1, vec![], 13);
    let bytes = m.build();
    let model = Model::parse(&bytes).unwrap();
    let err = Session::new(&model, &[&[2], &[3]], &mut arena).err();
    assert!(
        matches!(err, Some(Error::BadNode { .. })),
        "2 vs 3: {err:?}"
    );
}
