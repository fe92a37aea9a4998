//! One interface over the two ways to run a model: edgetrim's own no_std runtime ("nano")
//! and tract, the reference it is checked and benchmarked against.

use anyhow::{Context, Result};
use edgetrim_runtime::arena::ALIGN;
use edgetrim_runtime::tract::TractSession;
use edgetrim_runtime::{Model, Session, TensorRef};

/// Which runtime executes the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// edgetrim's zero-heap runtime, the one that ships to devices.
    Nano,
    /// tract-onnx, the host reference.
    Tract,
}

/// A model planned for fixed input shapes on one backend.
pub enum Backend<'a> {
    /// The nano runtime, planned into a caller-owned arena (boxed: a session is a few
    /// hundred bytes of slices and figures, tract's handle a few dozen).
    Nano(Box<Session<'a>>),
    /// tract.
    Tract(TractSession),
}

impl<'a> Backend<'a> {
    /// Plans `model` on the nano runtime in `arena`, sized exactly with
    /// [`Session::arena_report`].
    pub fn nano(model: &Model<'a>, shapes: &[&[usize]], arena: &'a mut Vec<u8>) -> Result<Self> {
        let report = Session::arena_report(model, shapes)?;
        // A Vec<u8> is not 16-byte aligned: ALIGN spare bytes let the plan align itself.
        arena.resize(report.total + ALIGN, 0);
        Ok(Backend::Nano(Box::new(Session::new(model, shapes, arena)?)))
    }

    /// Loads `bytes` on tract.
    pub fn tract(bytes: &[u8], shapes: &[&[usize]]) -> Result<Self> {
        let session = TractSession::new(bytes, shapes).context("tract could not load the model")?;
        Ok(Backend::Tract(session))
    }

    /// Which backend this is.
    pub fn kind(&self) -> BackendKind {
        match self {
            Backend::Nano(_) => BackendKind::Nano,
            Backend::Tract(_) => BackendKind::Tract,
        }
    }

    /// Sets input `i` from little-endian bytes.
    pub fn set_input(&mut self, i: usize, bytes: &[u8]) -> Result<()> {
        match self {
            Backend::Nano(s) => s.set_input_bytes(i, bytes)?,
            Backend::Tract(s) => s.set_input_bytes(i, bytes)?,
        }
        Ok(())
    }

    /// Runs once.
    pub fn run(&mut self) -> Result<()> {
        match self {
            Backend::Nano(s) => s.run()?,
            Backend::Tract(s) => s.run()?,
        }
        Ok(())
    }

    /// Number of graph outputs (for tract, of the last run).
    pub fn output_count(&self) -> usize {
        match self {
            Backend::Nano(s) => s.outputs().count(),
            Backend::Tract(s) => s.output_count(),
        }
    }

    /// Output `i` of the last run (`i < output_count()`).
    pub fn output(&self, i: usize) -> TensorRef<'_> {
        match self {
            Backend::Nano(s) => s.output(i),
            Backend::Tract(s) => s.output(i),
        }
    }
}
