//! Clean and fp16 on real exported models: PaddleOCR's text-direction classifier
//! (MobileNetV3, 308 Constant nodes and 35 BatchNorms) and the bundled YOLO9tr-s export
//! (attention block with Shape/Slice/Reshape arithmetic, `edgetrim.*` metadata).
//!
//! Clean must be numerically equivalent on our runtime and load in tract; fp16 must roughly
//! halve the file and stay within 1e-2 (relative) of the float32 model.

use crate::common::{abs_diff, compress, count, decode, nano, rel_diff, tract};
use edgetrim_compress::passes::{layout, Context, Pass};
use edgetrim_runtime::{Model, Session, Target};
use std::path::{Path, PathBuf};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ctx(shape: &[usize]) -> Context {
    Context {
        input_shapes: Some(vec![shape.to_vec()]),
        ..Context::default()
    }
}

const CLS: &str = "tests/data/real-cnn/ch_ppocr_mobile_v2.0_cls_infer.onnx";
const CLS_SHAPE: [usize; 4] = [1, 3, 48, 192];
const YOLO: &str = "models/zoo/yolo9tr-s.onnx";
const YOLO_SHAPE: [usize; 4] = [1, 3, 224, 224];

#[test]
fn ppocr_classifier_clean_is_equivalent_and_fp16_halves_it() {
    let original = read(CLS);
    let shapes: &[&[usize]] = &[&CLS_SHAPE];
    let ctx = ctx(&CLS_SHAPE);
    let cleaned = compress(&original, &[Pass::Clean, Pass::Layout], &ctx);
    for op in ["Constant", "BatchNormalization", "Identity", "Shape"] {
        assert_eq!(count(&cleaned, op), 0, "{op} left");
    }
    assert!(crate::common::ops(&cleaned).len() < crate::common::ops(&original).len() / 2);
    let reference = nano(&original, shapes);
    let d = abs_diff(&reference, &nano(&cleaned, shapes));
    assert!(d <= 1e-5, "clean moved the output by {d}");
    assert!(abs_diff(&reference, &tract(&cleaned, shapes)) <= 1e-4);
    assert!(layout::raw_data_offsets(&cleaned)
        .iter()
        .all(|(_, o)| o % 16 == 0));

    let half = compress(&original, &[Pass::Clean, Pass::Fp16, Pass::Layout], &ctx);
    let ratio = half.len() as f64 / cleaned.len() as f64;
    assert!(
        (0.45..0.62).contains(&ratio),
        "fp16 / f32 size ratio {ratio}"
    );
    assert!(rel_diff(&reference, &nano(&half, shapes)) <= 1e-2);
    assert!(rel_diff(&reference, &tract(&half, shapes)) <= 1e-2);
    assert_fp16_in_place(&cleaned, &half, shapes);
}

/// The runtime reads the fp16 model's weights in place: it agrees with tract on the same
/// float16 weights and plans the float32 model's activation arena, not one that also
/// holds widened weights. (Casts with other readers, e.g. PP-OCR's small Mul/Add
/// constants, still fold into the persistent tail: a few KiB.)
fn assert_fp16_in_place(cleaned: &[u8], half: &[u8], shapes: &[&[usize]]) {
    let d = rel_diff(&tract(half, shapes), &nano(half, shapes));
    assert!(d <= 1e-4, "fp16 model: runtime vs tract {d} (relative)");
    let report = |bytes: &[u8]| {
        let model = Model::parse(bytes).unwrap();
        Session::arena_report_for(&model, shapes, Target::native()).unwrap()
    };
    let (f32_plan, f16_plan) = (report(cleaned), report(half));
    assert_eq!(
        f16_plan.planned, f32_plan.planned,
        "activation arena: {f16_plan:?} vs {f32_plan:?}"
    );
}

#[test]
fn yolo9tr_clean_folds_shape_arithmetic_and_keeps_metadata() {
    let original = read(YOLO);
    let shapes: &[&[usize]] = &[&YOLO_SHAPE];
    let ctx = ctx(&YOLO_SHAPE);
    let cleaned = compress(&original, &[Pass::Clean, Pass::Layout], &ctx);
    for op in ["Identity", "Shape", "Constant"] {
        assert_eq!(count(&cleaned, op), 0, "{op} left");
    }
    assert!(crate::common::ops(&cleaned).len() < crate::common::ops(&original).len());
    assert_eq!(
        decode(&cleaned).metadata_props,
        decode(&original).metadata_props
    );
    assert!(decode(&cleaned)
        .metadata_props
        .iter()
        .any(|p| p.key.starts_with("edgetrim.")));
    let reference = nano(&original, shapes);
    let d = rel_diff(&reference, &nano(&cleaned, shapes));
    assert!(d <= 1e-5, "clean moved the output by {d} (relative)");
    assert!(rel_diff(&reference, &tract(&cleaned, shapes)) <= 1e-4);

    let half = compress(&original, &[Pass::Clean, Pass::Fp16, Pass::Layout], &ctx);
    let ratio = half.len() as f64 / cleaned.len() as f64;
    assert!(
        (0.45..0.6).contains(&ratio),
        "fp16 / f32 size ratio {ratio}"
    );
    assert!(rel_diff(&reference, &tract(&half, shapes)) <= 1e-2);
    assert_fp16_in_place(&cleaned, &half, shapes);
    assert_eq!(
        decode(&half).metadata_props,
        decode(&original).metadata_props
    );
}
