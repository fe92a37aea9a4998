//! Cast against tract between every pair of f32, f16, f64, i8, u8, i16, i32, i64 and
//! bool, compared bit for bit, plus constant casts folded at plan time.

use crate::common::*;
use edgetrim_runtime::tract::OwnedTensor;
use edgetrim_runtime::{DType, Error, Model, Session, Shape};

const ALL: [DType; 9] = [
    DType::F32,
    DType::F16,
    DType::F64,
    DType::I8,
    DType::U8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::Bool,
];

/// `values` encoded as `dtype` (each value must be exact in it).
fn typed(dtype: DType, values: &[f64]) -> OwnedTensor {
    let bytes = values
        .iter()
        .flat_map(|&v| match dtype {
            DType::F32 => (v as f32).to_le_bytes().to_vec(),
            DType::F16 => half::f16::from_f64(v).to_le_bytes().to_vec(),
            DType::F64 => v.to_le_bytes().to_vec(),
            DType::I8 => (v as i8).to_le_bytes().to_vec(),
            DType::U8 => (v as u8).to_le_bytes().to_vec(),
            DType::I16 => (v as i16).to_le_bytes().to_vec(),
            DType::I32 => (v as i32).to_le_bytes().to_vec(),
            DType::I64 => (v as i64).to_le_bytes().to_vec(),
            DType::Bool => vec![u8::from(v != 0.0)],
        })
        .collect();
    OwnedTensor {
        dtype,
        shape: Shape::new(&[values.len()]).unwrap(),
        bytes,
    }
}

/// Values every source type holds (floats get fractions to exercise truncation).
fn sample(from: DType) -> Vec<f64> {
    match from {
        DType::F32 | DType::F16 | DType::F64 => vec![0.0, 1.0, -2.75, 3.5, 100.25, -0.5, 0.1, 7.0],
        DType::U8 | DType::Bool => vec![0.0, 1.0, 2.0, 100.0, 0.0, 1.0, 1.0, 0.0],
        _ => vec![0.0, 1.0, -2.0, 3.0, 100.0, -100.0, 7.0, 0.0],
    }
}

fn cast_model(from: DType, to: DType, n: usize) -> ModelBuilder {
    let mut m = ModelBuilder::new(13);
    m.input("x", from.onnx_code() as i32, &[n]);
    m.node(
        "Cast",
        &["x"],
        &["y"],
        vec![("to", Attr::Int(to.onnx_code()))],
    );
    m.output("y", to.onnx_code() as i32);
    m
}

#[test]
fn every_pair_matches_tract_bit_for_bit() {
    for from in ALL {
        for to in ALL {
            let x = typed(from, &sample(from));
            let bytes = cast_model(from, to, 8).build();
            let ours = run_nano(&bytes, std::slice::from_ref(&x));
            assert_eq!(ours[0].dtype, to);
            assert_eq!(ours[0].shape.dims(), &[8]);
            if to == DType::I64 {
                // tract hands int64 casts back as symbolic dims: compare with its int32
                // cast, widened (every sample fits).
                let theirs = run_tract(&cast_model(from, DType::I32, 8).build(), &[x]);
                let (a, b) = (ours[0].view(), theirs[0].view());
                assert!(a.i64s().eq(b.i64s()), "{from:?} -> {to:?}");
            } else {
                let theirs = run_tract(&bytes, &[x]);
                assert_eq!(ours[0].bytes, theirs[0].bytes, "{from:?} -> {to:?}");
            }
        }
    }
}

#[test]
fn f16_rounds_to_nearest_even() {
    let x = f32_tensor(&[4], &[1.0 / 3.0, 65504.0, 1e-8, -2049.0]);
    let bytes = cast_model(DType::F32, DType::F16, 4).build();
    let ours = run_nano(&bytes, std::slice::from_ref(&x));
    assert_eq!(ours[0].bytes, run_tract(&bytes, &[x])[0].bytes);
}

#[test]
fn constant_casts_fold_and_bad_targets_fail() {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[3]);
    m.init_i64("c", &[3], &[1, -2, 3]);
    m.node(
        "Cast",
        &["c"],
        &["cf"],
        vec![("to", Attr::Int(dt::FLOAT as i64))],
    );
    m.node("Add", &["x", "cf"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    check("x + Cast(c)", &m, &[rand_f32(&[3], 1)], 0.0);
    let bytes = m.build();
    let model = Model::parse(&bytes).unwrap();
    let mut arena = vec![0u8; 1 << 16];
    assert_eq!(
        Session::new(&model, &[&[3]], &mut arena)
            .unwrap()
            .step_count(),
        1
    );

    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[3]);
    m.node("Cast", &["x"], &["y"], vec![("to", Attr::Int(8))]); // STRING
    m.output("y", dt::FLOAT);
    let bytes = m.build();
    let model = Model::parse(&bytes).unwrap();
    let err = Session::new(&model, &[&[3]], &mut arena).err();
    assert!(matches!(err, Some(Error::BadAttribute { .. })), "{err:?}");
}
