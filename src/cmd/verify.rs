//! `edgetrim verify`: is this model image safe to flash, and what is in it?
//!
//! Checks on the host what the runtime checks on the device ([`Image::parse`]: magic,
//! version, lengths, CRC-32 of every byte) and more: the payload parses as a model the
//! runtime runs, planning it with the header's input shapes and target gives exactly the
//! header's arena figures (so `ARENA_BYTES` is right for this edgetrim's runtime), and the
//! planned inputs and outputs are the header's. `pack` runs the same check on every image
//! before writing it.

use crate::cmd::inspect::refuse_unsupported;
use crate::human;
use crate::ihex;
use crate::inputs::dims_text;
use anyhow::{bail, Context, Result};
use edgetrim_runtime::image::{ImageTensor, HEADER_LEN, VERSION};
use edgetrim_runtime::{Image, Session, Target};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

/// `edgetrim verify` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  edgetrim verify tiny_cnn.bin
  edgetrim verify tiny_cnn.hex --json | jq .crc32

Reads a raw image (`pack --format bin`) or Intel HEX (`--format hex`, recognised by its
leading ':'). Exits 0 and prints a summary when the image is valid; exits 1 naming what is
wrong otherwise (bad magic, unsupported version, truncated, length or CRC mismatch, a bad
header field, a payload the runtime cannot run, a stale arena figure).")]
pub struct Args {
    /// The image file.
    pub image: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A graph input or output as the image describes it.
#[derive(Serialize)]
pub struct TensorSummary {
    name: String,
    dtype: &'static str,
    shape: Vec<usize>,
}

/// Arena figures: the target-independent ones from the header, and the total on this host.
#[derive(Serialize)]
pub struct ArenaSummary {
    /// Bytes this host needs to run the image (a 32-bit target needs a little less: its
    /// plan tables are smaller; `Header::arena` there gives its exact figure).
    host_total: usize,
    planned: usize,
    lower_bound: usize,
    constants: usize,
}

/// What a valid image holds.
#[derive(Serialize)]
pub struct Summary {
    name: String,
    format_version: u16,
    target: &'static str,
    image_bytes: usize,
    header_bytes: usize,
    payload_bytes: usize,
    /// CRC-32/ISO-HDLC of the image (CRC field read as zero), as stored in the header.
    crc32: String,
    arena: ArenaSummary,
    inputs: Vec<TensorSummary>,
    outputs: Vec<TensorSummary>,
}

/// The name `--target` uses for a runtime target.
pub fn target_name(target: Target) -> &'static str {
    match target {
        Target::Host => "host",
        Target::CortexM => "cortex-m",
    }
}

fn tensors<'a>(
    specs: impl Iterator<Item = edgetrim_runtime::TensorSpec<'a>>,
    header: &[ImageTensor],
) -> Vec<TensorSummary> {
    specs
        .zip(header)
        .map(|(spec, t)| TensorSummary {
            name: spec.name.to_string(),
            dtype: t.dtype.name(),
            shape: t.shape.dims().to_vec(),
        })
        .collect()
}

/// Checks image bytes as the device will, and that the header is right for this runtime.
pub fn check(bytes: &[u8]) -> Result<Summary> {
    let image = Image::parse(bytes)?;
    let header = image.header();
    let model = image
        .model()
        .context("the payload is not a valid ONNX model")?;
    refuse_unsupported(&model)?;
    let shapes: Vec<&[usize]> = header.inputs().iter().map(|t| t.shape.dims()).collect();
    let planned = Session::arena_report_for(&model, &shapes, header.target())
        .context("the payload cannot be planned with the header's input shapes")?;
    if planned != header.arena() {
        bail!(
            "the header's arena plan ({} bytes here) is not this edgetrim's ({} bytes): \
             the image was packed by another version; pack it again",
            header.arena().total,
            planned.total
        );
    }
    let mut arena = vec![0u8; planned.total + edgetrim_runtime::arena::ALIGN];
    let session = image.session(&mut arena)?;
    let a = header.arena();
    Ok(Summary {
        name: header.name().to_string(),
        format_version: VERSION,
        target: target_name(header.target()),
        image_bytes: image.len(),
        header_bytes: HEADER_LEN,
        payload_bytes: image.payload().len(),
        crc32: format!("{:#010x}", image.crc()),
        arena: ArenaSummary {
            host_total: a.total,
            planned: a.planned,
            lower_bound: a.lower_bound,
            constants: a.constants,
        },
        inputs: tensors(session.inputs(), header.inputs()),
        outputs: tensors(session.outputs(), header.outputs()),
    })
}

impl Summary {
    /// The summary as aligned text lines.
    pub fn print(&self, out: &mut dyn Write) -> Result<()> {
        writeln!(
            out,
            "image    format {}, {} B: {} B header + {} B ONNX, CRC-32 {}",
            self.format_version,
            self.image_bytes,
            self.header_bytes,
            self.payload_bytes,
            self.crc32
        )?;
        writeln!(out, "name     {}", self.name)?;
        writeln!(out, "target   {}", self.target)?;
        let a = &self.arena;
        writeln!(
            out,
            "arena    {} ({} B) on this host: planned {} (lower bound {}), constants {}",
            human::bytes(a.host_total as u64),
            a.host_total,
            human::bytes(a.planned as u64),
            human::bytes(a.lower_bound as u64),
            human::bytes(a.constants as u64),
        )?;
        for (title, list) in [("inputs", &self.inputs), ("outputs", &self.outputs)] {
            writeln!(out, "{title}")?;
            let width = list.iter().map(|t| t.name.len()).max().unwrap_or(0);
            for t in list {
                let (name, dtype) = (&t.name, t.dtype);
                writeln!(out, "  {name:width$}  {dtype:8}  {}", dims_text(&t.shape))?;
            }
        }
        Ok(())
    }
}

/// The image bytes of a raw or Intel HEX file.
pub fn read_image(path: &std::path::Path) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read image {}", path.display()))?;
    if bytes.first() != Some(&b':') {
        return Ok(bytes);
    }
    let text = std::str::from_utf8(&bytes).context("an Intel HEX file must be ASCII text")?;
    Ok(ihex::decode(text)?.1)
}

/// Runs `edgetrim verify`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let bytes = read_image(&args.image)?;
    let summary = check(&bytes).with_context(|| format!("{}", args.image.display()))?;
    if args.json {
        crate::cmd::print_json(out, &summary)
    } else {
        writeln!(out, "{}: valid", args.image.display())?;
        summary.print(out)
    }
}
