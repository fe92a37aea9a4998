//! Real third-party CNNs end to end: PaddleOCR's text-direction classifier (MobileNetV3,
//! committed under tests/data/real-cnn/), its PP-OCRv4 DBNet text detector and ddddocr's
//! YOLOX click-target detector (both fetched by scripts/fetch_real_models.sh; skipped with a
//! notice when absent).
//!
//! Each runs on our runtime and on tract for the same deterministic input; the PaddleOCR
//! models are also checked against onnxruntime outputs that scripts/make_real_cnn_refs.py
//! computed and committed.
//! The inputs are built here bit-identically to the script (integer math, the same f64
//! operations in the same order, one rounding to f32). Unit tests cover single ops; this
//! catches what only a whole real graph exercises (op mixes, layouts, folding, memory
//! reuse across 100+ nodes).

use edgetrim_runtime::tract::TractSession;
use edgetrim_runtime::{Model, Session};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Relative tolerance: `max |ours - reference| <= TOL * max |reference|`.
const TOL: f32 = 1e-3;
const CLS_SHAPE: [usize; 4] = [1, 3, 48, 192];
const DET_SHAPE: [usize; 4] = [1, 3, 640, 640];
/// The committed detector reference keeps every 13th row and column of the map.
const DET_REF_STRIDE: usize = 13;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/real-cnn")
        .join(name)
}

/// `((i * 7919) mod 2003) / 1001.5 - 1` for the flattened index `i`, in [-1, 1].
fn noise_at(i: usize) -> f64 {
    ((i * 7919) % 2003) as f64 / 1001.5 - 1.0
}

fn noise(shape: &[usize]) -> Vec<f32> {
    (0..shape.iter().product())
        .map(|i| noise_at(i) as f32)
        .collect()
}

/// Dark strokes (-1) in 24-pixel text lines on light paper (+1), plus 0.1 x noise.
fn text_page(shape: &[usize]) -> Vec<f32> {
    let (h, w) = (shape[2], shape[3]);
    (0..shape.iter().product())
        .map(|i| {
            let (y, x) = ((i / w) % h, i % w);
            let in_line = (12..36).contains(&(y % 48));
            let in_glyph = x % 20 < 14 && (x / 20 + y / 48) % 7 != 0;
            let on_stroke = ((x / 3) * 5 + (y / 3) * 3) % 4 == 0 || x % 20 % 7 == 0;
            let paper = if in_line && in_glyph && on_stroke {
                -1.0
            } else {
                1.0
            };
            (paper + 0.1 * noise_at(i)) as f32
        })
        .collect()
}

fn le_f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// "Op x count" for every op of `model` the runtime cannot run.
fn unsupported_summary(model: &Model<'_>) -> String {
    let mut counts = BTreeMap::<&str, usize>::new();
    for node in model.unsupported_ops() {
        *counts.entry(node.op_type()).or_default() += 1;
    }
    if counts.is_empty() {
        return "none".into();
    }
    let ops: Vec<String> = counts.iter().map(|(op, n)| format!("{op} x{n}")).collect();
    ops.join(", ")
}

/// Runs on our runtime: (output shape, output, MACs per run).
fn run_ours(model: &[u8], shape: &[usize], x: &[f32]) -> (Vec<usize>, Vec<f32>, u64) {
    let model = Model::parse(model).expect("parse");
    let report = Session::arena_report(&model, &[shape]).unwrap_or_else(|e| {
        panic!(
            "planning failed: {e:?}\nunsupported ops: {}",
            unsupported_summary(&model)
        )
    });
    let mut arena = vec![0u8; report.total + 16];
    let mut session = Session::new(&model, &[shape], &mut arena).expect("session");
    session.set_input_f32(0, x).expect("input");
    session.run().expect("run");
    let out = session.output(0);
    (
        out.shape.dims().to_vec(),
        le_f32s(out.bytes),
        session.total_macs(),
    )
}

fn run_tract(model: &[u8], shape: &[usize], x: &[f32]) -> (Vec<usize>, Vec<f32>) {
    let mut session = TractSession::new(model, &[shape]).expect("tract load");
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    session.set_input_bytes(0, &bytes).expect("tract input");
    session.run().expect("tract run");
    let out = session.output(0);
    (out.shape.dims().to_vec(), le_f32s(out.bytes))
}

/// A committed `.npy` reference: (shape, data).
fn load_npy(name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(data(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let npy = npyz::NpyFile::new(&bytes[..]).expect("npy header");
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    (shape, npy.into_vec::<f32>().expect("f32 npy"))
}

fn assert_close(what: &str, ours: &[f32], reference: &[f32]) {
    assert_eq!(ours.len(), reference.len(), "{what}: element count");
    let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let (worst, diff) = ours
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold(
            (0, 0.0f32),
            |best, (i, d)| if d > best.1 { (i, d) } else { best },
        );
    println!("{what}: max |diff| {diff:.3e} (max |reference| {scale:.3})");
    assert!(
        diff <= TOL * scale,
        "{what}: element {worst} is {} but the reference says {} (tolerance {TOL} x {scale})",
        ours[worst],
        reference[worst]
    );
}

#[test]
fn text_direction_classifier_matches_tract_and_onnxruntime() {
    let model = std::fs::read(data("ch_ppocr_mobile_v2.0_cls_infer.onnx")).expect("model");
    let x = noise(&CLS_SHAPE);
    let (shape, ours, macs) = run_ours(&model, &CLS_SHAPE, &x);
    println!("classifier at {CLS_SHAPE:?}: {macs} MACs");
    assert_eq!(shape, [1, 2]);
    let (tract_shape, tract) = run_tract(&model, &CLS_SHAPE, &x);
    assert_eq!(shape, tract_shape);
    assert_close("classifier vs tract", &ours, &tract);
    let (ref_shape, reference) = load_npy("cls_ref.npy");
    assert_eq!(shape, ref_shape);
    assert_close("classifier vs onnxruntime", &ours, &reference);
}

/// The bytes of a model scripts/fetch_real_models.sh fetches, or a notice that `what` is
/// skipped.
fn fetched(name: &str, what: &str) -> Option<Vec<u8>> {
    let path = data(&format!("fetched/{name}"));
    let model = std::fs::read(&path).ok();
    if model.is_none() {
        // Straight to stderr, not eprintln!, so the notice shows even when output is captured.
        let _ = writeln!(
            std::io::stderr(),
            "NOTICE: skipping {what}: {} is absent (run scripts/fetch_real_models.sh)",
            path.display()
        );
    }
    model
}

#[test]
fn text_detector_matches_tract_and_onnxruntime_when_fetched() {
    let Some(model) = fetched("ch_PP-OCRv4_det_infer.onnx", "the PP-OCRv4 detector") else {
        return;
    };
    let x = text_page(&DET_SHAPE);
    let (shape, ours, macs) = run_ours(&model, &DET_SHAPE, &x);
    println!(
        "detector at {DET_SHAPE:?}: {macs} MACs ({:.2} GMAC)",
        macs as f64 / 1e9
    );
    assert_eq!(shape, [1, 1, 640, 640]);
    let (tract_shape, tract) = run_tract(&model, &DET_SHAPE, &x);
    assert_eq!(shape, tract_shape);
    assert_close("detector vs tract", &ours, &tract);

    let (ref_shape, reference) = load_npy(&format!("det_ref_stride{DET_REF_STRIDE}.npy"));
    let (h, w) = (shape[2], shape[3]);
    let sampled: Vec<f32> = (0..h)
        .step_by(DET_REF_STRIDE)
        .flat_map(|y| (0..w).step_by(DET_REF_STRIDE).map(move |x| (y, x)))
        .map(|(y, x)| ours[y * w + x])
        .collect();
    assert_eq!(
        ref_shape,
        [1, 1, h.div_ceil(DET_REF_STRIDE), w.div_ceil(DET_REF_STRIDE)]
    );
    assert_close("detector vs onnxruntime", &sampled, &reference);
}

#[test]
fn click_target_detector_matches_tract_when_fetched() {
    let Some(model) = fetched("ddddocr_common_det.onnx", "ddddocr's YOLOX detector") else {
        return;
    };
    // The text page as BGR bytes in 0..=255, what YOLOX reads.
    let shape = [1, 3, 416, 416];
    let x: Vec<f32> = text_page(&shape)
        .iter()
        .map(|v| (v + 1.0) * 127.5)
        .collect();
    let (out_shape, ours, macs) = run_ours(&model, &shape, &x);
    println!("YOLOX at {shape:?}: {:.2} GMAC", macs as f64 / 1e9);
    assert_eq!(out_shape, [1, 3549, 6]);
    let (tract_shape, tract) = run_tract(&model, &shape, &x);
    assert_eq!(out_shape, tract_shape);
    assert_close("YOLOX vs tract", &ours, &tract);
}

#[test]
fn edgetrim_run_cli_matches_onnxruntime_on_the_classifier() {
    // The same check through the user's path: .npy in, `edgetrim run`, .npy out.
    let dir = std::env::temp_dir().join(format!("edgetrim-real-cnn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let input = dir.join("x.npy");
    let x = noise(&CLS_SHAPE);
    let shape: Vec<u64> = CLS_SHAPE.iter().map(|&d| d as u64).collect();
    use npyz::WriterBuilder;
    let mut out = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(std::fs::File::create(&input).expect("create x.npy"))
        .begin_nd()
        .expect("npy header");
    out.extend(x.iter().copied()).expect("npy data");
    out.finish().expect("npy finish");

    let status = std::process::Command::new(env!("CARGO_BIN_EXE_edgetrim"))
        .arg("run")
        .arg(data("ch_ppocr_mobile_v2.0_cls_infer.onnx"))
        .arg("--input")
        .arg(&input)
        .arg("--output-dir")
        .arg(&dir)
        .status()
        .expect("edgetrim runs");
    assert!(status.success(), "edgetrim run failed");
    let bytes = std::fs::read(dir.join("output0.npy")).expect("output0.npy written");
    let npy = npyz::NpyFile::new(&bytes[..]).expect("npy header");
    assert_eq!(npy.shape(), &[1, 2]);
    let ours = npy.into_vec::<f32>().expect("f32 npy");
    let (_, reference) = load_npy("cls_ref.npy");
    assert_close("edgetrim run vs onnxruntime", &ours, &reference);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn classifier_arena_stays_near_the_liveness_bound() {
    // TFLM's memory_arena_threshold_test idea: pin the plan so a change that grows the
    // arena shows up. Figures from `edgetrim inspect ... --input-shape x=1x3x48x192`.
    let bytes = std::fs::read(data("ch_ppocr_mobile_v2.0_cls_infer.onnx")).expect("model");
    let model = Model::parse(&bytes).expect("parse");
    let report = Session::arena_report(&model, &[&CLS_SHAPE]).expect("plan");
    let ratio = report.planned as f64 / report.lower_bound as f64;
    println!("classifier arena: {report:?}, planned/lower bound {ratio:.4}");
    assert!(
        ratio <= 1.06,
        "planned region {ratio:.4}x the liveness lower bound"
    );
    const PINNED_TOTAL: usize = 677_792;
    assert!(
        report.total <= PINNED_TOTAL + PINNED_TOTAL * 3 / 100,
        "arena grew more than 3% over {PINNED_TOTAL}: {}",
        report.total
    );
}
