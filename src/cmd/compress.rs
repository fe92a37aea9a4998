//! `edgetrim compress`: a smaller model and the proof of what it cost.
//!
//! Runs the chosen passes of `edgetrim-compress` in their fixed order, writes the result
//! atomically (a failed pass leaves no file behind), and reports every intermediate model
//! as measured by the nano runtime: size, MACs, arena, and how far its outputs moved from
//! the original's on the same input (seeded random, or the first calibration input).
//!
//! `--quantize int8` calibrates on `--calib`: `.npy` files, or images letterboxed here to
//! the model's square input (the library only ever sees tensors).

use crate::cmd::{parse_model, read_model, write_atomic};
use crate::human;
use crate::inputs::{self, ShapeOverride};
use anyhow::{bail, Context as _, Result};
use edgetrim_compress::passes::calib::Method;
use edgetrim_compress::passes::int8::{self, RANDOM_SAMPLES};
use edgetrim_compress::passes::{self, Context, Pass, Pipeline};
use edgetrim_compress::report::{self, Report, Row};
use edgetrim_models::letterbox::{letterbox, Image};
use edgetrim_runtime::Model;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `edgetrim compress` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Without --clean or --align, both run (so `--quantize fp16` alone means clean, fp16, align).
Passes always run in the order clean, quantize, align, whatever the order of the flags.

Examples:
  edgetrim compress yolo.onnx -o yolo-small.onnx
  edgetrim compress yolo.onnx -o yolo-fp16.onnx --clean --quantize fp16 --align
  edgetrim compress cls.onnx -o cls-clean.onnx --input-shape x=1x3x48x192 --report cost.json
  edgetrim compress yolo.onnx -o yolo-int8.onnx --quantize int8 --calib images:data/val
  edgetrim compress cls.onnx -o cls-int8.onnx --quantize int8 --calib samples/ --keep-float '*fc*'

--calib DIR: .npy files, one calibration input each (single-input models), or one
subfolder per calibration input holding one .npy per graph input (in input order, by file
name). --calib images:DIR: PNG/JPEG files of DIR (or DIR/images, a YOLO folder),
letterboxed to the model's 1x3xSxS input in [0, 1]. Without --calib, int8 calibrates on
16 random inputs: a placeholder whose ranges fit noise, not your data. With --calib the
report compares the models on the first calibration input.

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
    /// Store weights compactly: fp16, or int8 (QDQ, calibrated activations).
    #[arg(long, value_name = "SCHEME")]
    pub quantize: Option<String>,
    /// int8 calibration inputs: DIR of .npy files, or images:DIR.
    #[arg(long, value_name = "DIR")]
    pub calib: Option<String>,
    /// int8 activation ranges: minmax, percentile (99.99 % of |x|) or entropy (KL).
    #[arg(long = "calib-method", value_name = "METHOD", default_value = "minmax")]
    pub calib_method: String,
    /// Leave nodes whose name contains PATTERN (or matches it as a glob with * and ?) in
    /// float under int8; repeatable.
    #[arg(long = "keep-float", value_name = "PATTERN")]
    pub keep_float: Vec<String>,
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
            "int8" => passes.push(Pass::Int8),
            other => bail!("--quantize {other}: unknown scheme (supported: fp16, int8)"),
        }
    }
    if !passes.contains(&Pass::Int8) {
        let int8_flag = [
            (args.calib.is_some(), "--calib"),
            (args.calib_method != "minmax", "--calib-method"),
            (!args.keep_float.is_empty(), "--keep-float"),
        ];
        if let Some((_, flag)) = int8_flag.iter().find(|(given, _)| *given) {
            bail!("{flag} only applies to --quantize int8");
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

/// The calibration inputs `--calib` names, as raw bytes per graph input.
fn calibration(spec: &str, model: &Model<'_>, shapes: &[Vec<usize>]) -> Result<Vec<Vec<Vec<u8>>>> {
    if let Some(dir) = spec.strip_prefix("images:") {
        return calibration_images(Path::new(dir), shapes);
    }
    let dir = Path::new(spec);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("--calib {spec}: cannot read the folder"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "npy"))
        .collect();
    entries.sort();
    let n_inputs = shapes.len();
    let mut samples = Vec::with_capacity(entries.len());
    for entry in &entries {
        let files: Vec<String> = if entry.is_dir() {
            let mut f: Vec<PathBuf> = std::fs::read_dir(entry)
                .with_context(|| format!("--calib: cannot read {}", entry.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "npy"))
                .collect();
            f.sort();
            f.iter().map(|p| p.display().to_string()).collect()
        } else if n_inputs == 1 {
            vec![entry.display().to_string()]
        } else {
            bail!("--calib {spec}: the model has {n_inputs} inputs: give one subfolder per calibration input, each with one .npy per graph input");
        };
        let overrides: Vec<ShapeOverride> = model
            .inputs()
            .zip(shapes)
            .map(|(vi, dims)| ShapeOverride {
                name: vi.name().to_string(),
                dims: dims.clone(),
            })
            .collect();
        let arrays = inputs::load(model, &files, &overrides)
            .with_context(|| format!("--calib {}", entry.display()))?;
        samples.push(arrays.into_iter().map(|a| a.bytes).collect());
    }
    if samples.is_empty() {
        bail!("--calib {spec}: no .npy files or sample folders in it");
    }
    Ok(samples)
}

/// Images of `dir` (or `dir/images`) letterboxed to the model's `1x3xSxS` input.
pub fn calibration_images(dir: &Path, shapes: &[Vec<usize>]) -> Result<Vec<Vec<Vec<u8>>>> {
    let what = format!("--calib images:{}", dir.display());
    let size = match shapes {
        [dims] if dims.len() == 4 && dims[..2] == [1, 3] && dims[2] == dims[3] => dims[2],
        _ => bail!("{what}: images need a model with one 1x3xSxS input"),
    };
    let folder = if dir.join("images").is_dir() {
        dir.join("images")
    } else {
        dir.to_path_buf()
    };
    let files = crate::video::image_files(&folder).with_context(|| what.clone())?;
    if files.is_empty() {
        bail!("{what}: no PNG or JPEG files");
    }
    let mut input = vec![0f32; 3 * size * size];
    files
        .iter()
        .map(|path| {
            let rgb = image::open(path)
                .with_context(|| format!("{what}: cannot decode {}", path.display()))?
                .into_rgb8();
            let image = Image::Rgb8 {
                pixels: rgb.as_raw(),
                width: rgb.width() as usize,
                height: rgb.height() as usize,
            };
            letterbox(&image, size, &mut input)
                .map_err(|e| anyhow::anyhow!("{what}: {}: {e}", path.display()))?;
            Ok(vec![bytemuck::cast_slice(&input).to_vec()])
        })
        .collect()
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

/// The int8 pass's options from the flags (calibration inputs loaded and checked).
fn int8_options(args: &Args, bytes: &[u8], shapes: Option<&[Vec<usize>]>) -> Result<int8::Options> {
    let method: Method = args
        .calib_method
        .parse()
        .map_err(|e| anyhow::anyhow!("--calib-method: {e}"))?;
    let samples = match &args.calib {
        None => None,
        Some(spec) => {
            let model = parse_model(&args.model, bytes)?;
            let Some(shapes) = shapes else {
                bail!("--calib: the model's input shapes are not fixed: give --input-shape");
            };
            Some(calibration(spec, &model, shapes)?)
        }
    };
    Ok(int8::Options {
        method,
        keep_float: args.keep_float.clone(),
        samples,
    })
}

/// Runs `edgetrim compress`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let pipeline = pipeline(&args)?;
    let bytes = read_model(&args.model)?;
    let model_name = args.model.display().to_string();
    // Decode up front so that a corrupt file is reported as such, not as a shape problem.
    passes::decode(&bytes).with_context(|| model_name.clone())?;
    let mut ctx = Context {
        input_shapes: input_shapes(&args, &bytes)?,
        ..Context::default()
    };
    if pipeline.passes().contains(&Pass::Int8) {
        ctx.int8 = int8_options(&args, &bytes, ctx.input_shapes.as_deref())?;
    }
    let stages = pipeline
        .run(&bytes, &ctx)
        .with_context(|| model_name.clone())?;
    let compressed = &stages.last().context("no pass ran")?.bytes;
    let probe = ctx.int8.samples.as_ref().and_then(|s| s.first());
    let report = report::build(&bytes, &stages, &ctx, probe.map(Vec::as_slice));
    write_atomic(&args.output, compressed)?;
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&report)?;
        write_atomic(path, &json)?;
    }
    if args.json {
        crate::cmd::print_json(out, &report)?;
    } else {
        print_table(out, &report)?;
        if pipeline.passes().contains(&Pass::Int8) && ctx.int8.samples.is_none() {
            writeln!(
                out,
                "\nwarning: int8 calibrated on {RANDOM_SAMPLES} random inputs, a placeholder: \
                 pass --calib with real data for usable activation ranges"
            )?;
        }
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
