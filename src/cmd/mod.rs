//! One module per subcommand; each exposes clap `Args` and `run(args, out)`.

pub mod asr;
pub mod bench;
pub mod compress;
pub mod compress_eval;
pub mod compress_folder;
pub mod compress_sweep;
pub mod datagen;
pub mod demo;
pub mod eval_asr;
pub mod eval_detect;
pub mod fps;
pub mod inspect;
pub mod pack;
pub mod run;
pub mod slices;
pub mod verify;

use anyhow::{Context, Result};
use std::path::Path;

/// Reads a model file (parsing is left to the caller, which borrows the bytes).
pub fn read_model(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file in the same directory, renamed into
/// place only once complete: an error never leaves half a file behind. The file gets the
/// permissions `File::create` would give (0666 less the umask), not the temp file's 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder
        .tempfile_in(dir)
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

/// Prints `value` as one pretty JSON document and a newline (every command's `--json`).
pub fn print_json(out: &mut dyn std::io::Write, value: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
