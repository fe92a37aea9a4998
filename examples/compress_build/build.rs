//! Compresses the model at build time and hands the result to the crate as constants.
//!
//! The float model is what the training pipeline produces; what ships is decided here, by
//! the same library the `edgetrim compress` CLI runs: clean (BatchNorm folded, dead nodes
//! removed), int8 (per-channel weights, calibrated activations), layout (16-byte aligned
//! weights). The planner then sizes the arena for the compressed model, so the firmware's
//! static buffer is exactly as large as the plan needs and a model change that grows it
//! is a compile-time change, not a run-time failure.
//!
//! Calibration here uses seeded random inputs (the tiny demo model has no data set); a real
//! build would pass its calibration tensors in `Context::calib`. The arena is planned for
//! the host; a cross build plans for its target with `Session::arena_report_for` (see
//! examples/firmware/build.rs).

use edgetrim_compress::exec;
use edgetrim_compress::passes::{Context, Pass, Pipeline};
use edgetrim_runtime::{Model, Session};
use std::{env, fs, path::PathBuf};

/// The float model, relative to this crate.
const SOURCE: &str = "../firmware/tiny_cnn.onnx";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    let float = fs::read(SOURCE).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    let pipeline = Pipeline::new(vec![Pass::Clean, Pass::Int8, Pass::Layout]);
    let stages = pipeline
        .run(&float, &Context::default())
        .unwrap_or_else(|e| panic!("compressing {SOURCE}: {e}"));
    let compressed = &stages.last().expect("three passes ran").bytes;
    let model = Model::parse(compressed).unwrap_or_else(|e| panic!("the int8 model: {e}"));
    let arena = Session::arena_report(&model, &[])
        .unwrap_or_else(|e| panic!("planning the int8 model: {e}"))
        .total;
    let (input_len, output_len) = exec::with_session(compressed, &[], |s| {
        let volume =
            |spec: Option<edgetrim_runtime::TensorSpec<'_>>| spec.map_or(0, |t| t.shape.volume());
        Ok((volume(s.inputs().next()), volume(s.outputs().next())))
    })
    .unwrap_or_else(|e| panic!("the int8 model: {e}"));

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("model.onnx"), compressed).expect("write model.onnx");
    let summaries: Vec<String> = stages
        .iter()
        .map(|s| format!("/// - {}: {}", s.pass.name(), s.summary))
        .collect();
    let constants = format!(
        "/// The int8 model (compressed from `{SOURCE}` by build.rs: {} bytes, from {} bytes):\n\
         {}\n\
         pub static MODEL: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/model.onnx\"));\n\
         /// Arena bytes [`MODEL`] needs, from the runtime's planner.\n\
         pub const ARENA_BYTES: usize = {arena};\n\
         /// Elements of its (float32) input 0 and output 0.\n\
         pub const INPUT_LEN: usize = {input_len};\n\
         /// Elements of its output 0.\n\
         pub const OUTPUT_LEN: usize = {output_len};\n",
        compressed.len(),
        float.len(),
        summaries.join("\n"),
    );
    fs::write(out.join("model.rs"), constants).expect("write model.rs");
}
