//! `edgetrim compress`: a smaller model and the proof of what it cost.
//!
//! Runs the chosen passes of `edgetrim-compress` in their fixed order, writes the result
//! atomically (a failed pass leaves no file behind), and reports every intermediate model
//! as measured by the nano runtime: size, MACs, arena, and how far its outputs moved from
//! the original's on the same input (seeded random, or the first calibration input).
//!
//! `--quantize int8` and `--prune channels=R` calibrate on `--calib`: `.npy` files, or
//! images letterboxed here to the model's square input (the library only ever sees
//! tensors).

use crate::cmd::compress_eval::{compress, compress_within, Evaluator};
use crate::cmd::pack::PackTarget;
use crate::cmd::{parse_model, read_model, write_atomic};
use crate::human;
use crate::inputs::{self, ShapeOverride};
use anyhow::{anyhow, bail, Context as _, Result};
use edgetrim_compress::layers;
use edgetrim_compress::passes::calib::Method;
use edgetrim_compress::passes::{self, int8, prune, Context, Pass, Pipeline, RANDOM_SAMPLES};
use edgetrim_compress::report::{Report, Row};
use edgetrim_models::letterbox::{letterbox_as, Image, Pixels};
use edgetrim_runtime::Model;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `edgetrim compress` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Without --clean or --align, both run (so `--quantize fp16` alone means clean, fp16, align).
Passes always run in the order clean, prune, quantize, align, whatever the order of the flags.

Examples:
  edgetrim compress yolo.onnx -o yolo-small.onnx
  edgetrim compress yolo.onnx -o yolo-fp16.onnx --clean --quantize fp16 --align
  edgetrim compress cls.onnx -o cls-clean.onnx --input-shape x=1x3x48x192 --report cost.json
  edgetrim compress yolo.onnx -o yolo-int8.onnx --quantize int8 --calib images:data/val
  edgetrim compress cls.onnx -o cls-int8.onnx --quantize int8 --calib samples/ --keep-float '*fc*'
  edgetrim compress yolo.onnx -o yolo-int8-fast.onnx --quantize int8 --calib images:data/val \
    --act-tables --pow2-scales --int8-joins      (SiLU tables, int8 from conv to conv)
  edgetrim compress yolo.onnx -o yolo-p30.onnx --prune channels=0.3 --quantize int8 --calib images:data/val
  edgetrim compress cls.onnx -o cls-sparse.onnx --prune weights=0.5,scope=global

--prune channels=R[,importance=output|l1|l2][,scope=sensitivity|layer|global][,macs=F]: removes about
the share R of the output channels of Conv/Gemm layers, least important first, together with
everything that must shrink with them (residual Adds, Concat and Split offsets, depthwise and
grouped convs, the readers' input channels). Channels that reach an op it does not
understand (Reshape, MatMul attention, graph outputs) stay. importance=output (default)
ranks channels by the energy they feed into their readers on --calib, l1/l2 by the norm of
their weights. scope=sensitivity (default) prunes each layer alone at a few ratios on --calib
and spends the MACs that R of every layer would save where the outputs move least (macs=F:
until the pruned model has the share F fewer MACs, each layer losing at most 2R);
scope=layer prunes R of every layer, scope=global ranks all channels together. The readers'
weights are then refit by least squares on --calib (ThiNet / He et al. 2017, ridge chosen on
held-out inputs) and their biases matched to the original mean outputs; --no-reconstruct
skips that.
--prune weights=R[,scope=layer|global]: sets the share R of the Conv/Gemm/MatMul weights with
the smallest magnitudes to zero. The zeros are still stored: the file only shrinks once
compressed (the summary gives the deflated sizes).

--calib DIR: .npy files, one calibration input each (single-input models), or one
subfolder per calibration input holding one .npy per graph input (in input order, by file
name). --calib images:DIR: PNG/JPEG files of DIR (or DIR/images, a YOLO folder),
letterboxed to the model's 1x3xSxS input as eval-detect feeds it (RGB in [0, 1]; BGR in
0..=255 for a YOLOX head). Without --calib, int8 calibrates on
16 random inputs: a placeholder whose ranges fit noise, not your data. With --calib the
report compares the models on the first calibration input.

--eval detect:DIR scores the original and the compressed model (mAP50, mAP50-95, as
eval-detect does) and adds them to the report; --eval classify:DIR scores a classifier's
top-1 accuracy (argmax of output 0 over its last axis) on DIR/npy/*.npy, one preprocessed
input each, against DIR/labels.txt, one integer class per line in file-name order (what
scripts/gen_text_direction.py writes). Both run on the nano runtime. --max-drop POINTS (with
--quantize int8) then gives the int8 layers that add the most noise back to float, one at a
time, until the metric is within POINTS percentage points of the original's, or fails
naming what it tried.
--sweep prune=0,0.2,0.4 quantize=none,int8 compresses every combination (clean, prune
channels=R, quantize, align) and prints size, MACs, arena, SQNR and the metric, marking the
Pareto front of accuracy (the metric with --eval, else SQNR) against size and against MACs;
--plot FILE.svg charts it. --budget flash=SIZE[,ram=SIZE][,macs=N] writes the most accurate
configuration that fits to -o (grid: --sweep, else prune=0,0.3,0.5 quantize=none,fp16,int8)
or fails naming the nearest miss.
  edgetrim compress yolo.onnx -o yolo8.onnx --quantize int8 --calib images:data/val \\
      --eval detect:data/test --max-drop 1
  edgetrim compress yolo.onnx --sweep prune=0,0.2,0.4 quantize=none,int8 \\
      --calib images:data/val --eval detect:data/test --plot sweep.svg
  edgetrim compress yolo.onnx -o fit.onnx --budget flash=1MiB,ram=1MiB --calib images:data/val
  edgetrim compress cls.onnx --input-shape x=1x3x48x192 --sweep prune=0,0.3 quantize=none,int8 \\
      --calib data/cls/calib/npy --eval classify:data/cls/test

--input-shape also lets clean fold shape arithmetic (Shape, Gather, Concat, ...) for that
shape, and pins it in the written model.

A model folder (encoder.onnx, predictor.onnx, joiner.onnx, tokens.txt: a streaming RNN-T)
is compressed into a folder: every graph goes through the passes, and
--slice depth=D,width=W first cuts that subnet out of all three graphs by the slicing rules in
their metadata (D layers, the share W of every hidden width). --slice auto --budget
flash=SIZE[,macs=N][,ram=SIZE] picks the largest slice (by parameters, then depth) of depths
1..L and widths 0.25..1 in steps of 1/8 whose ONNX files, MACs per second of audio and
recogniser arena fit; when the export lists the subnets the supernet was trained as
(edgetrim.train.widths, edgetrim.train.min_depth), only those are candidates. Sizes: 512KiB, 1.5MiB, 300kB; counts: 20M. For int8,
--calib speech:DIR runs the recogniser over the first recordings of a speech folder and
calibrates every graph on its own inputs; --calib DIR takes DIR/encoder/, DIR/predictor/,
DIR/joiner/ in the layout above.
  edgetrim compress models/zoo/rnnt-todm --slice depth=3,width=0.5 -o rnnt-d3w05
  edgetrim compress models/zoo/rnnt-todm --slice auto --budget flash=1MiB,macs=20M -o rnnt-fit \\
      --quantize int8 --calib speech:data/speech/val")]
pub struct Args {
    /// The ONNX model to compress, or a model folder (see below).
    pub model: PathBuf,
    /// Where to write the compressed model (a folder for a model folder).
    #[arg(
        short,
        long,
        value_name = "OUT.onnx|OUT_DIR",
        required_unless_present = "sweep"
    )]
    pub output: Option<PathBuf>,
    /// Model folders: cut a subnet out of the supernet, depth=D,width=W or auto.
    #[arg(long, value_name = "SPEC")]
    pub slice: Option<String>,
    /// What the device affords, flash=SIZE[,ram=SIZE][,macs=N]: the least lossy
    /// configuration of the --sweep grid (or a default one) that fits is written to -o.
    #[arg(long, value_name = "LIMITS")]
    pub budget: Option<String>,
    /// Compress and measure a grid: prune=R,R,... quantize=none,fp16,int8.
    #[arg(long, value_name = "KEY=V,V", num_args = 1..)]
    pub sweep: Vec<String>,
    /// Score the original and compressed models on a task: detect:DIR (mAP on a YOLO
    /// folder) or classify:DIR (top-1 accuracy on npy/*.npy inputs and labels.txt).
    #[arg(long, value_name = "TASK:DIR")]
    pub eval: Option<String>,
    /// With --eval: only the first N images or inputs (in file-name order).
    #[arg(long = "eval-limit", value_name = "N")]
    pub eval_limit: Option<usize>,
    /// With --quantize int8 and --eval: keep the costliest int8 layers in float, one by one,
    /// until the metric drops at most POINTS percentage points (mAP50 0.891 → 0.881 is 1,
    /// top-1 0.955 → 0.945 too).
    #[arg(long = "max-drop", value_name = "POINTS")]
    pub max_drop: Option<f64>,
    /// With --sweep or --budget: chart accuracy against size and MACs, fronts marked (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
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
    /// With --quantize int8: weights within ±64 instead of ±127 (onnxruntime's
    /// reduce_range). One bit less precise, but x86 CPUs without AVX-512 VNNI multiply
    /// them about twice as fast (vpmaddubsw, which saturates on full-range weights).
    #[arg(long = "reduce-range")]
    pub reduce_range: bool,
    /// With --quantize int8: also quantize each conv's output before its SiLU, HardSwish or
    /// HardSigmoid, so the runtime computes the activation as a 256-entry table in the
    /// conv (TFLite's int8 activations). Faster, above all on microcontrollers, for one
    /// more rounding per value: check the accuracy with --eval.
    #[arg(long = "act-tables")]
    pub act_tables: bool,
    /// With --quantize int8: activation scales rounded up to powers of two, so the runtime
    /// quantizes with an exact multiplication instead of a division (14 cycles on a
    /// Cortex-M4), for activation grids up to twice as coarse: check the accuracy with --eval.
    #[arg(long = "pow2-scales")]
    pub pow2_scales: bool,
    /// With --quantize int8: also quantize the Concat, Split, MaxPool, AveragePool and Add
    /// nodes between int8 convs (the first three on one grid for all their tensors, as TFLite requires),
    /// so the runtime moves int8 through CSP/ELAN blocks instead of f32, and the SiLUs
    /// feeding them become tables (with --act-tables). Fewer instructions, for coarser grids
    /// on the joined tensors (check the accuracy with --eval) and more QDQ nodes for a
    /// microcontroller's planner to hold.
    #[arg(long = "int8-joins")]
    pub int8_joins: bool,
    /// Leave nodes whose name contains PATTERN (or matches it as a glob with * and ?) in
    /// float under int8; repeatable.
    #[arg(long = "keep-float", value_name = "PATTERN")]
    pub keep_float: Vec<String>,
    /// Prune: channels=R (structured) or weights=R (zeros), options after commas; repeatable.
    #[arg(long = "prune", value_name = "SPEC")]
    pub prune: Vec<String>,
    /// With --prune channels=R: skip the least-squares reconstruction of the readers' weights.
    #[arg(long = "no-reconstruct")]
    pub no_reconstruct: bool,
    /// Order initializers by first use and align their data to 16 bytes in the file.
    #[arg(long)]
    pub align: bool,
    /// Fix the shape of a graph input: NAME=1x3x224x224 (needed for free dims like batch N).
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shapes: Vec<ShapeOverride>,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Add the compressed model's flash and RAM footprint on this device to the report (an
    /// estimate from measured code sizes, as `edgetrim inspect --target cortex-m4`).
    #[arg(long, value_enum, value_name = "DEVICE")]
    pub target: Option<crate::cmd::pack::PackTarget>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The passes the flags ask for (clean and layout when neither is named).
pub(crate) fn pipeline(args: &Args) -> Result<Pipeline> {
    let mut passes = Vec::new();
    let default = !args.clean && !args.align;
    if args.clean || default {
        passes.push(Pass::Clean);
    }
    passes.extend(prune_options(args)?.0);
    if let Some(scheme) = &args.quantize {
        match scheme.as_str() {
            "fp16" => passes.push(Pass::Fp16),
            "int8" => passes.push(Pass::Int8),
            other => bail!("--quantize {other}: unknown scheme (supported: fp16, int8)"),
        }
    }
    if args.calib.is_some()
        && !passes.contains(&Pass::Int8)
        && !passes.contains(&Pass::PruneChannels)
    {
        bail!("--calib only applies to --quantize int8 and --prune channels=R");
    }
    if !passes.contains(&Pass::Int8) {
        let int8_flag = [
            (args.calib_method != "minmax", "--calib-method"),
            (!args.keep_float.is_empty(), "--keep-float"),
            (args.reduce_range, "--reduce-range"),
            (args.act_tables, "--act-tables"),
            (args.pow2_scales, "--pow2-scales"),
            (args.int8_joins, "--int8-joins"),
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

/// The pruning passes `--prune` asks for, and their options.
fn prune_options(args: &Args) -> Result<(Vec<Pass>, prune::Options)> {
    let mut passes = Vec::new();
    let mut opts = prune::Options::default();
    for spec in &args.prune {
        let (pass, twice) = match spec.parse().map_err(|e| anyhow!("--prune {spec}: {e}"))? {
            prune::Spec::Channels(c) => {
                opts.channels = c;
                (Pass::PruneChannels, "channels")
            }
            prune::Spec::Weights(w) => {
                opts.weights = w;
                (Pass::PruneWeights, "weights")
            }
        };
        if passes.contains(&pass) {
            bail!("--prune {spec}: {twice}=R is given twice");
        }
        passes.push(pass);
    }
    if args.no_reconstruct {
        if !passes.contains(&Pass::PruneChannels) {
            bail!("--no-reconstruct only applies to --prune channels=R");
        }
        opts.channels.reconstruct = false;
    }
    Ok((passes, opts))
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
pub(crate) fn calibration(
    spec: &str,
    model: &Model<'_>,
    shapes: &[Vec<usize>],
) -> Result<Vec<Vec<Vec<u8>>>> {
    if let Some(dir) = spec.strip_prefix("images:") {
        let pixels = crate::detector::input_pixels(model);
        return calibration_images(Path::new(dir), shapes, pixels);
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

/// Images of `dir` (or `dir/images`) letterboxed to the model's `1x3xSxS` input as `pixels`.
pub fn calibration_images(
    dir: &Path,
    shapes: &[Vec<usize>],
    pixels: Pixels,
) -> Result<Vec<Vec<Vec<u8>>>> {
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
            letterbox_as(&image, size, pixels, &mut input)
                .map_err(|e| anyhow::anyhow!("{what}: {}: {e}", path.display()))?;
            Ok(vec![bytemuck::cast_slice(&input).to_vec()])
        })
        .collect()
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "-".into(), f)
}

pub(crate) fn print_table(out: &mut dyn Write, report: &Report) -> Result<()> {
    writeln!(
        out,
        "{:<14} {:>6} {:>10} {:>10} {:>9} {:>10} {:>10} {:>9} {:>8}",
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
            "{:<14} {:>6} {:>10} {:>10} {:>9} {:>10} {:>10} {:>9} {:>8}",
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
        writeln!(out, "{:<14} {}", r.pass, r.summary)?;
    }
    for r in &report.rows {
        let Some(s) = &r.sparsity else { continue };
        writeln!(
            out,
            "{:<14} {:.1}% of {} weights are zero",
            r.pass,
            100.0 * s.share(),
            human::count(s.weights)
        )?;
        if r.pass == Pass::PruneWeights.name() {
            for l in &s.layers {
                let share = 100.0 * l.zeros as f64 / l.weights.max(1) as f64;
                writeln!(
                    out,
                    "  {share:>5.1}% of {:>9}  {}",
                    human::count(l.weights),
                    l.node
                )?;
            }
        }
    }
    for r in &report.rows {
        if let Some(e) = &r.error {
            writeln!(out, "{:<14} not measured: {e}", r.pass)?;
        }
    }
    print_task_and_layers(out, report)
}

/// The task metric of the scored rows, the int8 layers that add the most noise, and those
/// `--max-drop` kept in float.
fn print_task_and_layers(out: &mut dyn Write, report: &Report) -> Result<()> {
    const SHOWN: usize = 5;
    for r in &report.rows {
        let Some(t) = &r.task else { continue };
        let values: Vec<String> = t
            .values
            .iter()
            .map(|(k, v)| format!("{k} {v:.3}"))
            .collect();
        writeln!(out, "{:<14} {} on {}", r.pass, values.join("  "), t.task)?;
    }
    let costly = layers::most_costly_first(&report.layers);
    if !costly.is_empty() {
        let named: Vec<String> = costly
            .iter()
            .take(SHOWN)
            .map(|l| {
                let db = l
                    .added_sqnr_db
                    .map_or_else(|| "-".into(), |d| format!("{d:.1}"));
                format!("{} ({db} dB)", l.node)
            })
            .collect();
        writeln!(
            out,
            "int8 layers adding the most noise ({} quantized): {}",
            report.layers.len(),
            named.join(", ")
        )?;
    }
    if !report.fallback.is_empty() {
        writeln!(
            out,
            "kept in float for --max-drop: {}",
            report.fallback.join(", ")
        )?;
    }
    Ok(())
}

fn final_row(report: &Report) -> Result<&Row> {
    report.last().context("no pass ran")
}

/// The int8 pass's options from the flags.
pub(crate) fn int8_options(args: &Args) -> Result<int8::Options> {
    let method: Method = args
        .calib_method
        .parse()
        .map_err(|e| anyhow!("--calib-method: {e}"))?;
    Ok(int8::Options {
        method,
        keep_float: args.keep_float.clone(),
        reduce_range: args.reduce_range,
        act_tables: args.act_tables,
        pow2_scales: args.pow2_scales,
        int8_joins: args.int8_joins,
        ..int8::Options::default()
    })
}

/// The calibration inputs `--calib` names, loaded and checked against the model.
fn calib_samples(
    args: &Args,
    bytes: &[u8],
    shapes: Option<&[Vec<usize>]>,
) -> Result<Option<Vec<Vec<Vec<u8>>>>> {
    let Some(spec) = &args.calib else {
        return Ok(None);
    };
    let model = parse_model(&args.model, bytes)?;
    let Some(shapes) = shapes else {
        bail!("--calib: the model's input shapes are not fixed: give --input-shape");
    };
    Ok(Some(calibration(spec, &model, shapes)?))
}

impl Args {
    /// `-o`, which every mode but a plain `--sweep` needs.
    pub(crate) fn output(&self) -> Result<&Path> {
        self.output
            .as_deref()
            .context("-o OUT is required (only --sweep without --budget writes no model)")
    }
}

/// `--eval` and `--max-drop` checked against the passes they need.
fn evaluator(args: &Args, pipeline: &Pipeline) -> Result<Option<Evaluator>> {
    if args.plot.is_some() {
        bail!("--plot charts a grid: it needs --sweep or --budget");
    }
    let Some(spec) = &args.eval else {
        if args.max_drop.is_some() || args.eval_limit.is_some() {
            bail!("--max-drop and --eval-limit need --eval detect:DIR or classify:DIR (the metric they limit)");
        }
        return Ok(None);
    };
    if let Some(points) = args.max_drop {
        if points.is_nan() || points < 0.0 {
            bail!("--max-drop {points}: give a drop in percentage points, 0 or more");
        }
        if !pipeline.passes().contains(&Pass::Int8) {
            bail!(
                "--max-drop only applies to --quantize int8 (it gives int8 layers back to float)"
            );
        }
    }
    Ok(Some(Evaluator::parse(spec, args.eval_limit)?))
}

/// Runs `edgetrim compress`.
/// The report with the output's device footprint (`--target`), as one JSON object.
#[derive(serde::Serialize)]
struct WithFootprint<'r> {
    #[serde(flatten)]
    report: &'r Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    footprint: Option<crate::footprint::Footprint>,
}

pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    if args.model.is_dir() {
        if !args.sweep.is_empty()
            || args.eval.is_some()
            || args.plot.is_some()
            || args.max_drop.is_some()
            || args.target.is_some()
        {
            bail!("--sweep, --eval, --max-drop, --plot and --target apply to one .onnx model, not to the folder {} (see `edgetrim slices`)", args.model.display());
        }
        return crate::cmd::compress_folder::run(&args, out);
    }
    if args.slice.is_some() {
        bail!(
            "--slice applies to a model folder (encoder.onnx, predictor.onnx, joiner.onnx), not to the file {}",
            args.model.display()
        );
    }
    let grid = !args.sweep.is_empty() || args.budget.is_some();
    if grid && args.target.is_some() {
        bail!("--target reports one compressed model's footprint; --sweep and --budget compare many (use `edgetrim inspect --target` on the result)");
    }
    let pipeline = if grid {
        Pipeline::new(Vec::new())
    } else {
        pipeline(&args)?
    };
    let eval = if grid {
        None
    } else {
        evaluator(&args, &pipeline)?
    };
    let bytes = read_model(&args.model)?;
    let model_name = args.model.display().to_string();
    // Decode up front so that a corrupt file is reported as such, not as a shape problem.
    passes::decode(&bytes).with_context(|| model_name.clone())?;
    let mut ctx = Context {
        input_shapes: input_shapes(&args, &bytes)?,
        prune: prune_options(&args)?.1,
        ..Context::default()
    };
    if pipeline.passes().contains(&Pass::Int8) {
        ctx.int8 = int8_options(&args)?;
    }
    ctx.calib = calib_samples(&args, &bytes, ctx.input_shapes.as_deref())?;
    if grid {
        return crate::cmd::compress_sweep::run(&args, &bytes, &ctx, out);
    }
    let output = args.output()?;
    let outcome = match (&eval, args.max_drop) {
        (Some(e), Some(points)) => {
            compress_within(&args.model, &bytes, &pipeline, &mut ctx, e, points)?
        }
        _ => compress(&args.model, &bytes, &pipeline, &ctx, eval.as_ref())?,
    };
    let footprint = match args.target {
        Some(PackTarget::CortexM4) => Some(
            crate::footprint::cortex_m4_of(output, outcome.bytes(), &args.input_shapes)
                .context("the compressed model's cortex-m4 footprint")?,
        ),
        Some(PackTarget::Host) | None => None,
    };
    let report = &WithFootprint {
        report: &outcome.report,
        footprint,
    };
    write_atomic(output, outcome.bytes())?;
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(report)?;
        write_atomic(path, &json)?;
    }
    if args.json {
        crate::cmd::print_json(out, report)?;
    } else {
        print_table(out, report.report)?;
        if let Some(f) = &report.footprint {
            writeln!(out)?;
            crate::cmd::inspect::print_footprint(out, f)?;
        }
        let calibrated = if pipeline.passes().contains(&Pass::Int8) {
            Some("int8 calibrated")
        } else if pipeline.passes().contains(&Pass::PruneChannels) {
            Some("channel pruning measured the activations")
        } else {
            None
        };
        if let (Some(what), None) = (calibrated, &ctx.calib) {
            writeln!(
                out,
                "\nwarning: {what} on {RANDOM_SAMPLES} random inputs, a placeholder: \
                 pass --calib with real data"
            )?;
        }
        let last = final_row(report.report)?;
        writeln!(
            out,
            "\nwrote {} ({}, {:.1}% of the original)",
            output.display(),
            human::bytes(last.file_bytes as u64),
            100.0 * last.file_bytes as f64 / bytes.len().max(1) as f64
        )?;
    }
    Ok(())
}
