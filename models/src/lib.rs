//! Pre- and post-processing for edgetrim's model zoo.
//!
//! A detector is more than its ONNX graph: the frame has to be letterboxed into the network
//! input exactly as in training, and the raw head output has to be thresholded, decoded and
//! de-duplicated (NMS) before it means anything. This crate holds that code.
//!
//! It is `no_std` and allocation-free because the same functions run on the host (the CLI's
//! `fps` and `eval-detect`) and on a Cortex-M board next to `edgetrim-runtime`: a model
//! compressed on the host is judged by the detections it produces, so the host and the
//! microcontroller must turn the same tensor into the same detections, bit for bit. One
//! implementation with caller-provided buffers (a `&mut [f32]` input tensor, a scratch slice of
//! candidates, a fixed-capacity [`heapless::Vec`] of detections) is what guarantees that.
//! Floating-point math goes through `libm`, never a platform intrinsic.
//!
//! Modules:
//! - [`asr`]: the streaming RNN-T recogniser: audio chunks in, greedy-decoded tokens out,
//!   driving the encoder, predictor and joiner graphs on `edgetrim-runtime` (or any backend).
//! - [`audio`]: the streaming log-mel front-end of the speech recogniser (16 kHz int16 →
//!   stacked 40-bin log-mel vectors), matching the training features frame for frame.
//! - [`letterbox`]: RGB8 / YUV420 frame → normalised NCHW input, and the [`letterbox::Letterbox`]
//!   transform that maps network boxes back to frame pixels.
//! - [`yolo`]: anchor-free YOLOv8/v9/v10 head decoding (pre-decoded boxes or raw DFL),
//!   confidence threshold and class-aware NMS into a fixed-capacity list of detections.
//! - `eval` (feature `std`): COCO-style mAP50 / mAP50-95 and YOLO label parsing, for host
//!   evaluation only.
//! - `datagen` (feature `datagen`, implies `std`): the procedural pavement-damage scene
//!   generator and its YOLO-dataset / Y4M-video writers, host only.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(missing_docs)]

pub mod asr;
pub mod audio;
#[cfg(feature = "datagen")]
pub mod datagen;
#[cfg(feature = "std")]
pub mod eval;
pub mod letterbox;
pub mod yolo;

use core::fmt;

/// Everything that can go wrong in this crate: bad buffer sizes, parameters out of range and
/// malformed label files. Each variant carries enough to find the offending input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A slice does not have the length its stated dimensions require.
    Length {
        /// Which buffer.
        what: &'static str,
        /// The length the dimensions require.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A parameter is out of its valid range; the text says which and why.
    Invalid(&'static str),
    /// Line `line` (1-based) of a YOLO label file is not `class cx cy w h` with a class index
    /// and four finite numbers.
    Label {
        /// 1-based line number.
        line: usize,
    },
    /// A model metadata entry this crate reads has a value it cannot use.
    Metadata {
        /// The metadata key.
        key: &'static str,
    },
    /// A model lacks a metadata entry this crate needs.
    MetadataMissing {
        /// The metadata key.
        key: &'static str,
    },
    /// A graph's inputs or outputs are not what the recogniser drives (a missing tensor, a
    /// state without its `_out` twin, an unexpected type or shape).
    Graph {
        /// Which graph.
        graph: asr::Role,
        /// The tensor at fault.
        tensor: edgetrim_runtime::Name,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The runtime refused or failed one of the recogniser's graphs (the error names the
    /// node or tensor; carrying the graph too would make every `Result` of this crate larger).
    Runtime(edgetrim_runtime::Error),
    /// The arena is too small for one of the recogniser's graphs.
    Arena {
        /// Which graph did not fit.
        graph: asr::Role,
        /// Bytes that graph needs (at least; exact once its plan tables fitted).
        needed: usize,
        /// Bytes that were left for it.
        got: usize,
    },
    /// A fixed capacity was exceeded (the transcript buffer, the number of LSTM states).
    Capacity {
        /// What ran out.
        what: &'static str,
        /// Its capacity.
        limit: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Length {
                what,
                expected,
                actual,
            } => write!(f, "{what}: expected {expected} elements, got {actual}"),
            Error::Invalid(why) => f.write_str(why),
            Error::Label { line } => write!(
                f,
                "label line {line}: expected `class cx cy w h` with normalised coordinates"
            ),
            Error::Metadata { key } => write!(f, "model metadata {key}: value out of range"),
            Error::MetadataMissing { key } => write!(f, "model metadata {key} is missing"),
            Error::Graph {
                graph,
                tensor,
                reason,
            } => write!(f, "{graph} tensor {tensor}: {reason}"),
            Error::Runtime(error) => write!(f, "{error}"),
            Error::Arena { graph, needed, got } => write!(
                f,
                "arena too small for the {graph}: it needs {needed} bytes, {got} were left"
            ),
            Error::Capacity { what, limit } => write!(f, "{what}: capacity of {limit} exceeded"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Checks that `actual` equals `expected`, naming the buffer otherwise.
fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<(), Error> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::Length {
            what,
            expected,
            actual,
        })
    }
}
