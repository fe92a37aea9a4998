//! `edgetrim compress`: a smaller model and the proof of what it cost.
//!
//! Runs the chosen passes of `edgetrim-compress` in their fixed order, writes the result
//! atomically (a failed pass leaves no file behind), and reports every intermediate model
//! as measured by the nano runtime: size, MACs, arena, and how far its outputs moved from
//! the original's on the same seeded random input.

use crate::cmd::{parse_model, read_model, write_atomic};
use crate::human;
use crate::inputs::{self, ShapeOverride};
use anyhow::{bail, Context as _, Result};
use edgetrim_compress::passes::{self, Context, Pass, Pipeline};
use edgetrim_compress::report::{self, Report, Row};
use std::io::Write;
use std::path::PathBuf;

/// `edgetrim compress` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Without --clean or --align, both run (so `--quantize fp16` alone means clean, fp16, align).
Passes always run in the order clean, quantize, align, whatever the order of the flags.

Examples:
  edgetrim compress yolo.onnx -o yolo-small.onnx
  edgetrim compress yolo.onnx -o yolo-fp16.onnx --clean --quantize fp16 --align
  edgetrim compress cls.onnx -o cls-clean.onnx --input-shape x=1x3x48x192 --report cost.json

--input-shape also lets clean fold shape arithmetic (Shape, Gather, Concat, ...) for that
shape, and pins it in the written model.")]
pub struct Args {
    /// The ONNX model to compress.
    pub model: PathBuf,
    /// Where to write the compressed model.
    #[arg(short, long, value_name = "OUT.onnx")]
    pub output: PathBuf,
    /// Fold constants and BatchNorm, remove Identity and dead nodes (numerically equivalent).
    #[arg(long)]
    pub clean: bool,
    /// Store weights compactly: fp16.
    #[arg(long, value_name = "SCHEME")]
    pub quantize: Option<String>,
    /// Order initializers by first use and align their data to 16 bytes in the file.
    #[arg(long)]
    pub align: bool,
    /// Fix the shape of a graph input: NAME=1x3x224x224 (needed for free dims like batch N).
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shapes: Vec<ShapeOverride>,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The passes the flags ask for (clean and layout when neither is named).
fn pipeline(args: &Args) -> Result<Pipeline> {
    let mut passes = Vec::new();
    let default = !args.clean && !args.align;
    if args.clean || default {
        passes.push(Pass::Clean);
    }
    if let Some(scheme) = &args.quantize {
        match scheme.as_str() {
            "fp16" => passes.push(Pass::Fp16),
            other => bail!("--quantize {other}: unknown scheme (supported: fp16)"),
        }
    }
    if args.align || default {
        passes.push(Pass::Layout);
    }
    Ok(Pipeline::new(passes))
}

/// Input shapes for shape folding and measurement: the overrides, else the declared shapes
/// when fixed, else unknown (the report then has no MACs or output comparison).
fn input_shapes(args: &Args, bytes: &[u8]) -> Result<Option<Vec<Vec<usize>>>> {
    let Ok(model) = parse_model(&args.model, bytes) else {
        return Ok(None); // the runtime cannot read it: the passes may still
    };
    match inputs::resolve_shapes(&model, &args.input_shapes) {
        Ok(shapes) => Ok(Some(shapes)),
        Err(e) if !args.input_shapes.is_empty() => Err(e),
        Err(_) => Ok(None),
    }
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "-".into(), f)
}

fn print_table(out: &mut dyn Write, report: &Report) -> Result<()> {
    writeln!(
        out,
        "{:<9} {:>6} {:>10} {:>10} {:>9} {:>10} {:>10} {:>9} {:>8}",
        "pass", "nodes", "params", "size", "MACs", "arena", "max|diff|", "cosine", "SQNR dB"
    )?;
    for r in &report.rows {
        let sqnr = match (r.sqnr_db, r.max_abs_diff) {
            (Some(s), _) => format!("{s:.1}"),
            (None, Some(_)) => "exact".into(),
            (None, None) => "-".into(),
        };
        writeln!(
            out,
            "{:<9} {:>6} {:>10} {:>10} {:>9} {:>10} {:>10} {:>9} {:>8}",
            r.pass,
            r.nodes,
            human::count(r.params),
            human::bytes(r.file_bytes as u64),
            opt(r.macs, human::count),
            opt(r.arena_bytes, |a| human::bytes(a as u64)),
            opt(r.max_abs_diff, |d| format!("{d:.2e}")),
            opt(r.cosine, |c| format!("{c:.6}")),
            sqnr,
        )?;
    }
    writeln!(out)?;
    for r in report.rows.iter().filter(|r| !r.summary.is_empty()) {
        writeln!(out, "{:<9} {}", r.pass, r.summary)?;
    }
    for r in &report.rows {
        if let Some(e) = &r.error {
            writeln!(out, "{:<9} not measured: {e}", r.pass)?;
        }
    }
    Ok(())
}

fn final_row(report: &Report) -> Result<&Row> {
    report.last().context("no pass ran")
}

/// Runs `edgetrim compress`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let pipeline = pipeline(&args)?;
    let bytes = read_model(&args.model)?;
    let model_name = args.model.display().to_string();
    // Decode up front so that a corrupt file is reported as such, not as a shape problem.
    passes::decode(&bytes).with_context(|| model_name.clone())?;
    let ctx = Context {
        input_shapes: input_shapes(&args, &bytes)?,
    };
    let stages = pipeline
        .run(&bytes, &ctx)
        .with_context(|| model_name.clone())?;
    let compressed = &stages.last().context("no pass ran")?.bytes;
    let report = report::build(&bytes, &stages, &ctx, None);
    write_atomic(&args.output, compressed)?;
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&report)?;
        write_atomic(path, &json)?;
    }
    if args.json {
        crate::cmd::print_json(out, &report)?;
    } else {
        print_table(out, &report)?;
        let last = final_row(&report)?;
        writeln!(
            out,
            "\nwrote {} ({}, {:.1}% of the original)",
            args.output.display(),
            human::bytes(last.file_bytes as u64),
            100.0 * last.file_bytes as f64 / bytes.len().max(1) as f64
        )?;
    }
    Ok(())
}
