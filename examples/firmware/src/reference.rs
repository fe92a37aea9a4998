//! What the firmware and its host reference (`examples/tiny_cnn.rs` of the root package)
//! must do identically: the pseudo-random generator behind the model's weights and the
//! input, how the input is written into a session, and how outputs are printed.
//!
//! Both sides include this one file (`#[path]`), so a change to the input or the output
//! format can never make them disagree silently. It is `no_std`-clean.

use core::fmt;
use edgetrim_runtime::{DType, Error, Name, Session};

/// Seed of the input the check runs on.
pub const INPUT_SEED: u32 = 0x5EED_0001;

/// A 32-bit linear congruential generator (Numerical Recipes constants): tiny, portable,
/// and bit-identical on every target.
pub struct Lcg(u32);

impl Lcg {
    /// A generator starting from `seed`.
    pub fn new(seed: u32) -> Self {
        Lcg(seed)
    }

    /// The next value, uniform in [-1, 1). Every value is exact in f32 (24 random bits
    /// scaled by a power of two), so no rounding can differ between targets.
    pub fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (self.0 >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
}

/// Fills graph input 0 of `session` (float32) with the check's input.
pub fn fill_input(session: &mut Session<'_>) -> Result<(), Error> {
    let mut input = session.input_mut(0)?;
    if input.dtype != DType::F32 {
        return Err(Error::BadInput {
            input: Name::new("0"),
            reason: "the firmware check feeds float32 inputs only",
        });
    }
    let mut lcg = Lcg::new(INPUT_SEED);
    for v in input.f32_mut() {
        *v = lcg.next_f32();
    }
    Ok(())
}

/// One printed output element: `y[index] = 0x<f32 bits> <value>`. The bit pattern is what
/// gets compared; the value is for people.
pub struct OutputLine {
    /// Position in the flattened output 0.
    pub index: usize,
    /// The element.
    pub value: f32,
}

impl fmt::Display for OutputLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "y[{}] = 0x{:08x} {:e}",
            self.index,
            self.value.to_bits(),
            self.value
        )
    }
}

/// The elements of float32 output 0 of `session` after a run.
pub fn output_lines<'s>(session: &'s Session<'_>) -> impl Iterator<Item = OutputLine> + 's {
    session
        .output(0)
        .bytes
        .chunks_exact(4)
        .enumerate()
        .map(|(index, b)| OutputLine {
            index,
            value: f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        })
}
