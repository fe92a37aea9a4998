//! Streaming speech recognition with an RNN-T exported as three graphs
//! (`models/train/rnnt/EXPORT.md`): audio chunks in, greedy-decoded token ids out, no heap.
//!
//! An RNN-T ships as an encoder (one chunk of stacked log-mel vectors plus LSTM states in,
//! encoder frames plus new states out), a predictor (one token plus its state) and a joiner
//! (one encoder frame plus one prediction vector to logits). What turns them into a
//! recogniser — the front-end, the states carried from one call to the next, the greedy
//! search with at most `max_symbols` tokens per frame, the zero-padded last chunk — is the
//! same on a host and on a microcontroller, and a transcript is only comparable across them
//! if it is the same code. So it lives here, generic over a [`Graph`] (anything that can set
//! inputs, run and show outputs): [`nano`] drives the three graphs on `edgetrim-runtime`
//! sessions carved out of one arena, and the CLI plugs in tract the same way to compare.
//!
//! - [`spec`]: what the recogniser reads from the three models (metadata, which input is
//!   which state), checked once so that running needs no lookups.
//! - [`recogniser`]: [`Recogniser`], the streaming loop and the greedy search.
//! - [`nano`]: the three runtime sessions and the recogniser's scratch in one arena.
//! - [`vocab`]: `tokens.txt`, to render token ids as text (host or device).
//! - `score` (feature `std`): word and character error rates for evaluation.

pub mod nano;
pub mod recogniser;
#[cfg(feature = "std")]
pub mod score;
pub mod spec;
pub mod vocab;

pub use recogniser::Recogniser;
pub use spec::{Models, Spec};
pub use vocab::Vocab;

use core::fmt;
use edgetrim_runtime::TensorRef;

/// Which of the three graphs (named in errors; one byte keeps [`crate::Error`] small).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `encoder.onnx`.
    Encoder,
    /// `predictor.onnx`.
    Predictor,
    /// `joiner.onnx`.
    Joiner,
}

impl Role {
    /// The graph's name, as in its file name and its `edgetrim.asr.component` metadata.
    pub fn name(self) -> &'static str {
        match self {
            Role::Encoder => "encoder",
            Role::Predictor => "predictor",
            Role::Joiner => "joiner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One of the recogniser's graphs, planned on some backend for its declared input shapes.
///
/// Inputs and outputs are numbered in graph order (`Model::inputs`, `Model::outputs`), which
/// is how [`Spec`] refers to them. Errors are the backend's own; they must accept this
/// crate's [`crate::Error`] so that the recogniser can report its own failures through them.
pub trait Graph {
    /// The backend's error.
    type Error: From<crate::Error>;
    /// Copies little-endian `bytes` into input `i` (its planned size exactly).
    fn set_input(&mut self, i: usize, bytes: &[u8]) -> Result<(), Self::Error>;
    /// Runs the graph once.
    fn run(&mut self) -> Result<(), Self::Error>;
    /// Output `i` of the last run.
    fn output(&self, i: usize) -> TensorRef<'_>;
}
