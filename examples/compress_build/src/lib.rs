//! A model compressed at build time, embedded with its arena size.
//!
//! `build.rs` runs `edgetrim-compress` on the float model and writes [`MODEL`] (the int8
//! ONNX bytes, read in place from flash), [`ARENA_BYTES`] (what the planner needs for it)
//! and its input and output sizes. [`infer`] runs it in a statically sized arena: no heap,
//! no size guessed by hand, and a model that grows changes the types, not a run-time check.
#![no_std]

use edgetrim_runtime::{Arena, DType, Error, Model, Name, Session};

include!(concat!(env!("OUT_DIR"), "/model.rs"));

/// Runs [`MODEL`] on `input` (its float32 input 0, flattened) in `arena`; writes output 0
/// to `output`.
pub fn infer(
    arena: &mut Arena<ARENA_BYTES>,
    input: &[f32; INPUT_LEN],
    output: &mut [f32; OUTPUT_LEN],
) -> Result<(), Error> {
    let model = Model::parse(MODEL)?;
    let mut session = Session::new(&model, &[], &mut arena.0)?;
    let mut x = session.input_mut(0)?;
    if x.dtype != DType::F32 {
        return Err(Error::BadInput {
            input: Name::new("0"),
            reason: "this example feeds float32 inputs only",
        });
    }
    x.f32_mut().copy_from_slice(input);
    session.run()?;
    let y = session.output(0).bytes.chunks_exact(4);
    for (slot, c) in output.iter_mut().zip(y) {
        *slot = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    Ok(())
}
