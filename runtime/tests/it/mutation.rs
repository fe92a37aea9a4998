//! Mutation fuzzing of the reader and planner over real model bytes.
//!
//! Every single-byte corruption (flip, zero, 0xff) at every position, every truncation, and
//! a stream of seeded random multi-byte mutations must give either a working session or a
//! typed `Error` — never a panic. Runs in a fixed 1 MiB arena so a corrupt shape cannot ask
//! for unbounded memory. The number of cases and the time they took are printed
//! (`cargo test --workspace --test it mutation -- --nocapture`).

use crate::common::*;
use edgetrim_runtime::{Model, Session};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

fn exercise(bytes: &[u8], arena: &mut [u8]) {
    let Ok(model) = Model::parse(bytes) else {
        return;
    };
    let _ = model.unsupported_ops().count();
    let shapes: Vec<Vec<usize>> = model
        .inputs()
        .map(|vi| {
            vi.dims()
                .map(|d| {
                    d.map(|d| match d {
                        edgetrim_runtime::onnx::Dim::Fixed(n) => n.min(64),
                        edgetrim_runtime::onnx::Dim::Symbolic(_) => 1,
                    })
                    .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
    if let Ok(mut session) = Session::new(&model, &refs, arena) {
        // Running is what costs time; planning is where corrupt models are caught. Run
        // the small models every time, the large one's plans only.
        if bytes.len() < 64 * 1024 {
            let _ = session.run();
        }
        for i in 0..session.outputs().count() {
            let _ = session.output(i).bytes.len();
        }
    }
}

/// Models to mutate: every op family that exists, with attributes and constants.
fn corpus() -> Vec<Vec<u8>> {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 3, 4, 4])
        .init_f32("w", &[1, 3, 1, 1], &[0.5, -1.0, 2.0])
        .init_i64("shape", &[2], &[1, -1])
        .node("Add", &["x", "w"], &["a"], vec![])
        .node(
            "Constant",
            &[],
            &["k"],
            vec![("value_float", Attr::Float(3.0))],
        )
        .node("Mul", &["a", "k"], &["b"], vec![])
        .node("Identity", &["b"], &["y"], vec![])
        .output("y", dt::FLOAT);
    let mut corpus = vec![m.build()];
    for path in [
        "../examples/firmware/tiny_cnn.onnx",
        "../tests/data/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        // LSTMs with state inputs, Gather on an int64 token, Squeeze with an axes input.
        "tests/data/rnnt-toy/encoder.onnx",
        "tests/data/rnnt-toy/predictor.onnx",
    ] {
        if let Ok(b) = std::fs::read(path) {
            corpus.push(b);
        }
    }
    corpus
}

#[test]
fn corrupt_models_never_panic() {
    let start = Instant::now();
    let mut arena = vec![0u8; 1 << 20];
    let mut cases = 0usize;
    let mut run = |bytes: &[u8], what: &str| {
        cases += 1;
        let r = catch_unwind(AssertUnwindSafe(|| exercise(bytes, &mut arena)));
        assert!(r.is_ok(), "panic on {what}");
    };
    for original in corpus() {
        // Small models: every position; large ones: a stride that still covers all fields.
        let stride = (original.len() / 2000).max(1);
        for pos in (0..original.len()).step_by(stride) {
            for v in [original[pos] ^ 0xff, 0, 0xff, original[pos] ^ 1] {
                let mut b = original.clone();
                b[pos] = v;
                run(&b, &format!("byte {pos} set to {v:#x}"));
            }
            run(&original[..pos], &format!("truncation at {pos}"));
        }
        let mut seed = 0x9e3779b97f4a7c15u64;
        for i in 0..2000 {
            let mut b = original.clone();
            for _ in 0..1 + i % 8 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let pos = (seed >> 33) as usize % b.len();
                b[pos] = (seed >> 13) as u8;
            }
            run(&b, &format!("random mutation {i}"));
        }
    }
    println!(
        "mutation fuzz: {cases} corrupt models, no panic, {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
