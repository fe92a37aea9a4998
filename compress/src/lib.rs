//! # edgetrim-compress
//!
//! The offline half of edgetrim: reads an ONNX `ModelProto` (through `tract_onnx::pb` and
//! prost), rewrites it, and writes a smaller ONNX model the runtime runs in place.
//!
//! [`build`] writes ONNX graphs from Rust; the passes (clean, prune, quantize, fp16, slice)
//! build on it.

pub mod build;

pub use tract_onnx::pb;
