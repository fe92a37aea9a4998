//! A streaming RNN-T as torch exports it (scripts/gen_rnnt_toy.py, tiny random weights):
//! encoder (Linear, two LSTMs with state in and out, Linear), predictor (Embedding as a
//! Gather on an int64 token, LSTM, Linear) and joiner (Add, Tanh, Gemm transB). Each graph
//! runs on our runtime and on tract, chunk after chunk with the states fed back, and the
//! encoder's arena is planned and pinned like the other models'.

use crate::common::*;
use edgetrim_runtime::tract::OwnedTensor;
use edgetrim_runtime::{Model, Session, Target};

/// The sizes gen_rnnt_toy.py writes by default.
const CHUNK: usize = 4;
const FEAT: usize = 12;
const HIDDEN: usize = 16;
const PRED_HIDDEN: usize = 12;
const JOINT: usize = 10;
const VOCAB: usize = 29;

fn model(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/rnnt-toy/{name}.onnx",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs `bytes` on both backends and checks they agree; returns our outputs.
fn both(what: &str, bytes: &[u8], inputs: &[OwnedTensor]) -> Vec<OwnedTensor> {
    let nano = run_nano(bytes, inputs);
    assert_close(what, &nano, &run_tract(bytes, inputs), TOL);
    nano
}

/// Five chunks with the encoder's four states fed back, as a streaming recogniser does;
/// each chunk is compared to tract given the same states.
#[test]
fn encoder_streams_like_tract() {
    let bytes = model("encoder");
    let zeros = f32_tensor(&[1, 1, HIDDEN], &[0.0; HIDDEN]);
    let mut states = vec![zeros; 4];
    for chunk in 0..5 {
        let mut inputs = vec![rand_f32(&[1, CHUNK, FEAT], chunk)];
        inputs.extend(states.iter().cloned());
        let out = both(&format!("encoder chunk {chunk}"), &bytes, &inputs);
        assert_eq!(out[0].shape.dims(), [1, CHUNK, JOINT]);
        assert_ne!(out[1..], states[..], "the state must move");
        states = out[1..].to_vec();
    }
}

#[test]
fn predictor_embeds_int64_tokens_like_tract() {
    let bytes = model("predictor");
    let mut states = vec![f32_tensor(&[1, 1, PRED_HIDDEN], &[0.0; PRED_HIDDEN]); 2];
    let mut preds = Vec::new();
    for token in [0i64, 3, 28, 3] {
        let mut inputs = vec![i64_tensor(&[1, 1], &[token])];
        inputs.extend(states.iter().cloned());
        let out = both(&format!("predictor token {token}"), &bytes, &inputs);
        assert_eq!(out[0].shape.dims(), [1, 1, JOINT]);
        preds.push(out[0].clone());
        states = out[1..].to_vec();
    }
    // The same token in another state predicts something else: the state is used.
    assert_ne!(preds[1], preds[3]);
}

#[test]
fn joiner_matches_tract() {
    let bytes = model("joiner");
    let inputs = [rand_f32(&[1, JOINT], 1), rand_f32(&[1, JOINT], 2)];
    let out = both("joiner", &bytes, &inputs);
    assert_eq!(out[0].shape.dims(), [1, VOCAB]);
}

/// Every graph plans in an arena of the size the report gives, on both targets; the
/// encoder's stays pinned (TFLM's arena threshold test) and near the liveness bound.
#[test]
fn arenas_are_planned_and_pinned() {
    for name in ["encoder", "predictor", "joiner"] {
        let bytes = model(name);
        let parsed = Model::parse(&bytes).unwrap();
        for target in [Target::Host, Target::CortexM] {
            let report = Session::arena_report_for(&parsed, &[], target).unwrap();
            println!("{name} on {target:?}: {report:?}");
            let mut arena = vec![0u8; report.total + edgetrim_runtime::arena::ALIGN];
            let session = Session::with_target(&parsed, &[], &mut arena, target).unwrap();
            assert_eq!(session.report(), report);
            assert!(report.lower_bound <= report.planned);
        }
    }
    // The Cortex-M plan of the encoder: its planned region (activations and LSTM
    // scratch) and constants do not depend on the host's pointer width.
    let bytes = model("encoder");
    let parsed = Model::parse(&bytes).unwrap();
    let report = Session::arena_report_for(&parsed, &[], Target::CortexM).unwrap();
    const PINNED: usize = 2_304;
    let region = report.planned + report.constants;
    assert!(
        region <= PINNED + PINNED * 3 / 100,
        "the toy encoder's planned region + constants grew more than 3% over {PINNED}: {region}"
    );
}
