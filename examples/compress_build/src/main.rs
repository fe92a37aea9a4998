//! Runs the model build.rs compressed on a fixed input and prints what it costs.

use edgetrim_example_compress_build::{infer, ARENA_BYTES, INPUT_LEN, MODEL, OUTPUT_LEN};
use edgetrim_runtime::Arena;

fn main() -> Result<(), edgetrim_runtime::Error> {
    // A static-sized arena, as on a device (boxed here only to keep it off a small stack).
    let mut arena = Box::new(Arena::<ARENA_BYTES>::new());
    let input: [f32; INPUT_LEN] = core::array::from_fn(|i| ((i % 17) as f32 - 8.0) / 8.0);
    let mut output = [0f32; OUTPUT_LEN];
    infer(&mut arena, &input, &mut output)?;
    println!(
        "int8 model: {} bytes, arena: {ARENA_BYTES} bytes",
        MODEL.len()
    );
    println!("output: {output:?}");
    Ok(())
}
