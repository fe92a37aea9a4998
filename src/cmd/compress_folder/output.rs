//! Writing the output folder whole or not at all, with its generated model card.
//!
//! The files are written into a temporary folder next to the target and renamed into
//! place, so a reader never sees a folder with a new encoder and an old predictor. An
//! existing target is replaced only when it holds nothing but the files this command
//! writes (a model folder written before); anything else in it is refused by name, not
//! deleted.

use super::{calib::UTTERANCES, Built, Plan, SYMBOLS_PER_SECOND};
use crate::human;
use anyhow::{bail, Context as _, Result};
use std::fmt::Write as _;
use std::path::Path;

/// Writes `files` (name, bytes) as the folder `out`.
pub fn write_folder(out: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if out.exists() {
        if !out.is_dir() {
            bail!("-o {}: exists and is not a folder", out.display());
        }
        let mut foreign: Vec<String> = std::fs::read_dir(out)
            .with_context(|| format!("cannot read {}", out.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !files.iter().any(|(f, _)| f == name))
            .collect();
        foreign.sort();
        if !foreign.is_empty() {
            bail!(
                "-o {}: the folder holds other files ({}); refusing to replace it",
                out.display(),
                foreign.join(", ")
            );
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix(".edgetrim-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a folder in {}", parent.display()))?;
    for (name, bytes) in files {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
    }
    // The old folder goes into a temporary folder of its own, deleted when it drops.
    let old = if out.exists() {
        let holder = tempfile::Builder::new()
            .prefix(".edgetrim-old-")
            .tempdir_in(parent)?;
        std::fs::rename(out, holder.path().join("old"))
            .with_context(|| format!("cannot replace {}", out.display()))?;
        Some(holder)
    } else {
        None
    };
    let new = tmp.keep();
    if let Err(e) = std::fs::rename(&new, out) {
        let _ = std::fs::remove_dir_all(&new);
        if let Some(holder) = &old {
            let _ = std::fs::rename(holder.path().join("old"), out);
        }
        return Err(e).with_context(|| format!("cannot write {}", out.display()));
    }
    Ok(())
}

/// The model card of a compressed folder: what it was made from, how, and what it costs.
pub fn card(built: &Built, plan: &Plan, command: &[String]) -> String {
    let mut s = String::new();
    let what = built.slice.as_ref().map_or_else(
        || "A compressed copy".to_string(),
        |sl| format!("The slice {sl}"),
    );
    let dims: Vec<String> = built
        .dims
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    let passes: Vec<&str> = plan.pipeline.passes().iter().map(|p| p.name()).collect();
    // Writing into a String cannot fail.
    let _ = write!(
        s,
        "# {what} of `{}`\n\n\
         Written by `edgetrim compress`; regenerate it with\n\n    {}\n\n\
         - dims: {}\n- passes after slicing: {}\n",
        built.source,
        command.join(" "),
        dims.join(", "),
        passes.join(", "),
    );
    if passes.contains(&"int8") {
        let _ = writeln!(s, "- int8 calibration: {}", plan.calib.describe());
        let _ = writeln!(s, "  (at most {UTTERANCES} recordings when it is speech)");
    }
    let _ = write!(
        s,
        "\n| graph | params | bytes | MACs per run | runs per second of audio |\n|---|---:|---:|---:|---:|\n"
    );
    for g in &built.graphs {
        let last = g.report.last();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2} |",
            g.file,
            last.map_or(0, |r| r.params),
            g.bytes.len(),
            last.and_then(|r| r.macs)
                .map_or_else(|| "-".into(), |m| m.to_string()),
            g.runs_per_second
        );
    }
    let t = &built.totals;
    let opt = |v: Option<u64>, f: fn(u64) -> String| v.map_or_else(|| "-".into(), f);
    let _ = write!(
        s,
        "\nTotals: {} parameters, {} of ONNX ({} bytes), {} MACs per second of audio \
         (encoder per chunk, predictor per symbol at {SYMBOLS_PER_SECOND} symbols/s, joiner \
         per frame and per symbol), recogniser arena {}.\n\n\
         Accuracy is not measured here: `edgetrim eval-asr OUT --data DIR`. {}\n",
        t.params,
        human::bytes(t.flash_bytes),
        t.flash_bytes,
        opt(t.macs_per_second, human::count),
        opt(t.arena_bytes, human::bytes),
        if plan.quantizes() {
            "The weights are quantized, so the slicing rules were dropped: cut other slices \
             out of the float supernet."
        } else {
            "Each graph keeps its slicing rules (`edgetrim.slice` metadata), so this folder \
             can be sliced again."
        }
    );
    s
}
