//! # edgetrim-compress
//!
//! The offline half of edgetrim: reads an ONNX `ModelProto` (through `tract_onnx::pb` and
//! prost), rewrites it, and writes a smaller ONNX model the runtime runs in place.
//!
//! [`build`] writes ONNX graphs from Rust. [`passes`] holds the compression passes (clean,
//! fp16, int8, layout) and the [`passes::Pipeline`] that runs them in order; [`report`] measures
//! each intermediate model on edgetrim's runtime ([`exec`]), and [`layers`] each quantized
//! layer of an int8 model. [`graph`] has the graph
//! queries and edits the passes share. [`slice`] cuts a subnet out of a supernet by the
//! rules its exporter wrote into the metadata; [`budget`] says what a device affords.
//!
//! ```no_run
//! use edgetrim_compress::passes::{Context, Pass, Pipeline};
//! let bytes = std::fs::read("model.onnx")?;
//! let stages = Pipeline::new(vec![Pass::Clean, Pass::Layout]).run(&bytes, &Context::default())?;
//! std::fs::write("small.onnx", &stages.last().unwrap().bytes)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod budget;
pub mod build;
pub mod error;
pub mod exec;
pub mod graph;
pub mod layers;
pub mod passes;
pub mod report;
pub mod slice;

pub use error::{Error, Result};

pub use tract_onnx::pb;
