//! # edgetrim-runtime
//!
//! Runs ONNX models on microcontrollers and Linux boards **straight from the model bytes**
//! (e.g. a `&'static [u8]` in flash) with **no heap**: weights are read in place, and all
//! working memory — plan tables, activations, kernel scratch — comes from one
//! caller-provided arena whose exact size is known before anything runs.
//!
//! The pipeline follows TFLM's prepare/eval split:
//! 1. [`Model::parse`] validates the protobuf framing once (no decoding, no copies);
//! 2. [`Session::new`] plans the graph for fixed input shapes: every node is prepared
//!    (attributes, shapes, errors naming the node), constant subgraphs are folded, and a
//!    liveness-based memory plan places every buffer in the arena;
//! 3. [`Session::run`] only dispatches kernels.
//!
//! ```no_run
//! use edgetrim_runtime::{Arena, Model, Session};
//! static ARENA_BYTES: usize = 1 << 16; // from `edgetrim inspect` or `Session::arena_report`
//! let bytes: &[u8] = &[]; // include_bytes!("model.onnx")
//! let mut arena = Arena::<65536>::new();
//! let model = Model::parse(bytes)?;
//! let mut session = Session::new(&model, &[], &mut arena.0)?;
//! session.run()?;
//! # let _ = ARENA_BYTES;
//! # Ok::<(), edgetrim_runtime::Error>(())
//! ```
//!
//! In flash, a model is best kept as an [`Image`] (written by `edgetrim pack`): the ONNX
//! bytes behind a header with a CRC-32 of every byte, the arena size and the input/output
//! shapes, so that a corrupt or truncated model is refused before any of it runs.
//!
//! Features (all off by default): `alloc` (arena sizing helpers), `std` (std::error::Error,
//! runtime CPU detection for the fast kernels), `tract` (the same API backed by tract-onnx,
//! the reference implementation), `defmt` (embedded logging of errors and reports).
#![no_std]
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

// std only where asked for: host conveniences (`std` feature) and the unit tests.
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod arena;
pub mod cpu;
pub mod error;
pub mod fps;
pub mod image;
pub mod onnx;
pub mod ops;
pub mod plan;
pub mod session;
pub mod target;
pub mod tensor;
#[cfg(feature = "tract")]
pub mod tract;
pub mod widen;

pub use arena::Arena;
pub use error::{Error, Name, Result};
pub use image::Image;
pub use onnx::Model;
pub use plan::PlanTables;
pub use session::{ArenaReport, Session, StepInfo, TensorSpec};
pub use target::Target;
pub use tensor::{DType, Shape, TensorMut, TensorRef};
