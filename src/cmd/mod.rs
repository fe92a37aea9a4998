//! One module per subcommand; each exposes clap `Args` and `run(args, out)`.

pub mod bench;
pub mod compress;
pub mod datagen;
pub mod demo;
pub mod eval_detect;
pub mod fps;
pub mod inspect;
pub mod run;

use anyhow::{Context, Result};
use std::path::Path;

/// Reads a model file (parsing is left to the caller, which borrows the bytes).
pub fn read_model(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file in the same directory, renamed into
/// place only once complete: an error never leaves half a file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Parses model bytes, naming the file in the error.
pub fn parse_model<'a>(path: &Path, bytes: &'a [u8]) -> Result<edgetrim_runtime::Model<'a>> {
    edgetrim_runtime::Model::parse(bytes).with_context(|| format!("{}", path.display()))
}
