//! The firmware check's committed model (`examples/firmware/tiny_cnn.onnx`) must be exactly
//! what its generator (`examples/tiny_cnn/model.rs`) writes, so the two cannot drift; and
//! our runtime must agree with tract on it, so the firmware is compared against a host
//! result that is itself checked.

#[path = "../../examples/tiny_cnn/model.rs"]
mod model;
#[path = "../../examples/firmware/src/reference.rs"]
mod reference;

use edgetrim_runtime::tract::TractSession;
use edgetrim_runtime::{Model, Session};

const COMMITTED: &[u8] = include_bytes!("../../examples/firmware/tiny_cnn.onnx");

#[test]
fn committed_model_is_what_the_generator_writes() {
    assert!(
        model::build() == COMMITTED,
        "{} is stale: run `cargo run --example tiny_cnn -- write`",
        model::PATH
    );
}

#[test]
fn runtime_matches_tract_on_the_check_input() {
    let model = Model::parse(COMMITTED).unwrap();
    let report = Session::arena_report(&model, &[]).unwrap();
    let mut arena = vec![0u8; report.total + edgetrim_runtime::arena::ALIGN];
    let mut session = Session::new(&model, &[], &mut arena).unwrap();
    reference::fill_input(&mut session).unwrap();
    let input = session.input_mut(0).unwrap().bytes.to_vec();
    session.run().unwrap();
    let ours: Vec<f32> = reference::output_lines(&session).map(|l| l.value).collect();

    let mut tract = TractSession::new(COMMITTED, &[&model::INPUT]).unwrap();
    tract.set_input_bytes(0, &input).unwrap();
    tract.run().unwrap();
    let theirs = f32s(tract.output(0).bytes);

    assert_eq!(ours.len(), theirs.len());
    assert!(ours.len() > 1);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!((a - b).abs() <= 1e-5, "y[{i}]: runtime {a}, tract {b}");
    }
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
