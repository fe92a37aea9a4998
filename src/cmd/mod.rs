//! One module per subcommand; each exposes clap `Args` and `run(args, out)`.

pub mod bench;
pub mod datagen;
pub mod eval_detect;
pub mod inspect;
pub mod run;

use anyhow::{Context, Result};
use std::path::Path;

/// Reads a model file (parsing is left to the caller, which borrows the bytes).
pub fn read_model(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))
}

/// Parses model bytes, naming the file in the error.
pub fn parse_model<'a>(path: &Path, bytes: &'a [u8]) -> Result<edgetrim_runtime::Model<'a>> {
    edgetrim_runtime::Model::parse(bytes).with_context(|| format!("{}", path.display()))
}
