//! The model build.rs embedded is the int8 version of the float model: it runs in exactly
//! `ARENA_BYTES`, and its outputs stay within quantization noise of the float model's.

use edgetrim_example_compress_build::{infer, ARENA_BYTES, INPUT_LEN, MODEL, OUTPUT_LEN};
use edgetrim_runtime::{arena::ALIGN, Arena, Model, Session};

const FLOAT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/tiny_cnn.onnx");

/// A deterministic input in [-1, 1).
fn input() -> [f32; INPUT_LEN] {
    core::array::from_fn(|i| ((i * 7919) % 200) as f32 / 100.0 - 1.0)
}

/// The float model's output 0 on `x`.
fn float_outputs(x: &[f32]) -> Vec<f32> {
    let bytes = std::fs::read(FLOAT).unwrap();
    let model = Model::parse(&bytes).unwrap();
    let total = Session::arena_report(&model, &[]).unwrap().total;
    let mut arena = vec![0u8; total + ALIGN];
    let mut s = Session::new(&model, &[], &mut arena).unwrap();
    s.input_mut(0).unwrap().f32_mut().copy_from_slice(x);
    s.run().unwrap();
    let y = s.output(0).bytes.chunks_exact(4);
    y.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn embedded_model_is_int8_runs_in_its_arena_and_tracks_the_float_model() {
    let has = |op: &[u8]| MODEL.windows(op.len()).any(|w| w == op);
    assert!(
        has(b"QuantizeLinear") && has(b"DequantizeLinear"),
        "int8 QDQ"
    );
    let model = Model::parse(MODEL).unwrap();
    assert_eq!(
        Session::arena_report(&model, &[]).unwrap().total,
        ARENA_BYTES
    );

    let x = input();
    let mut arena = Box::new(Arena::<ARENA_BYTES>::new());
    let mut got = [0f32; OUTPUT_LEN];
    infer(&mut arena, &x, &mut got).unwrap();
    let want = float_outputs(&x);
    assert_eq!(want.len(), OUTPUT_LEN);
    let signal: f64 = want.iter().map(|&w| f64::from(w).powi(2)).sum();
    let noise: f64 = want
        .iter()
        .zip(&got)
        .map(|(&w, &g)| f64::from(w - g).powi(2))
        .sum();
    let sqnr = 10.0 * (signal / noise.max(f64::MIN_POSITIVE)).log10();
    // int8 noise on a small CNN: ~25-40 dB; a broken quantization is near 0.
    assert!(sqnr > 20.0, "SQNR {sqnr:.1} dB: {got:?} vs {want:?}");
    assert!(
        noise > 0.0,
        "the outputs moved: the model really is quantized"
    );
}
