//! The speech front-end: 16 kHz int16 audio in, stacked log-mel feature vectors out, one
//! every 40 ms, computed as the audio streams in.
//!
//! `models/train/rnnt/features.py` is the definition; the recogniser was trained on its
//! output, so this module must reproduce it frame for frame (the parity test compares both on
//! a committed fixture, `models/tests/data/logmel/`). The constants below mirror that file and
//! the `edgetrim.asr.*` metadata the export writes into the encoder.
//!
//! - [`logmel`]: the per-frame math (window, FFT, mel filters, log) and its tables.
//! - [`stream`]: [`FrontEnd`], which takes audio in chunks of any size, frames it with a
//!   10 ms hop, and stacks four frames into each feature vector, in fixed-size state.

pub mod logmel;
pub mod stream;

pub use stream::FrontEnd;

/// Samples per second.
pub const SAMPLE_RATE: u32 = 16000;
/// Samples per analysis frame (25 ms).
pub const FRAME_LEN: usize = 400;
/// Samples between frame starts (10 ms).
pub const HOP: usize = 160;
/// FFT length; the frame is zero-padded to it.
pub const N_FFT: usize = 512;
/// Power-spectrum bins, DC to Nyquist.
pub const N_BINS: usize = N_FFT / 2 + 1;
/// Mel filters.
pub const N_MELS: usize = 40;
/// Lower edge of the first mel filter, Hz.
pub const F_MIN: f64 = 20.0;
/// Upper edge of the last mel filter, Hz.
pub const F_MAX: f64 = 7600.0;
/// Added to each filter energy before the log, so silence is finite.
pub const LOG_FLOOR: f32 = 1e-6;
/// Frames stacked into one feature vector.
pub const STACK: usize = 4;
/// Length of one feature vector.
pub const FEATURE_DIM: usize = N_MELS * STACK;
