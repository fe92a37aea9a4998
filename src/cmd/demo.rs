//! `edgetrim demo` (also what `edgetrim` runs with no arguments): the main job on bundled
//! defaults — generate held-out pavement data and a road video, compress the bundled YOLO9tr
//! to int8 (calibrated on generated validation images), and measure both models' accuracy
//! (mAP on the held-out images) and speed (FPS on the video, per stage) on the same runtime.
//!
//! Everything it generates goes under `--work` and is reused on the next run (the generators
//! are deterministic and write atomically, so a folder that exists is complete).

use crate::backend::BackendKind;
use crate::cmd::eval_detect;
use crate::cmd::fps::{self, FpsReport, Options};
use crate::detector::Thresholds;
use crate::human;
use crate::video::VideoSource;
use anyhow::{Context as _, Result};
use edgetrim_compress::passes::{int8, Context, Pass, Pipeline};
use edgetrim_models::datagen::{write, RoadVideo, Split};
use edgetrim_models::letterbox::Pixels;
use edgetrim_runtime::ops::qgemm::QKernel;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The bundled detector.
pub const BUNDLED_MODEL: &str = "models/zoo/yolo9tr-s.onnx";

/// `edgetrim demo` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  edgetrim demo                                   (same as `edgetrim` with no arguments)
  edgetrim demo --model models/zoo/yolo9tr-n.onnx --frames 100
  edgetrim demo --json | jq '.models[] | {name, map50, fps}'

Steps: (1) generate --images held-out test images at the model's input size, --calib
validation images for calibration and a --frames road video (320x240, 30 fps) under
--work, unless already there; (2) compress the model: clean + int8 (per-tensor or per-channel weights, activations
calibrated by minmax on the validation images, SiLU as int8 tables, power-of-two activation
scales, Concat/Split/pools/Add on int8, and on AVX2 CPUs without VNNI weights within ±64) +
aligned layout, as
`edgetrim compress MODEL --quantize int8 --act-tables --pow2-scales --int8-joins [--reduce-range]
--calib images:WORK/calib-...` does; (3) for the
original and the int8 model: COCO mAP on the test images (eval-detect) and FPS with
per-stage latency on the video (fps, --realtime 30). The int8 model's annotated video is
written to WORK/annotated.y4m.")]
pub struct Args {
    /// The detector to compress and measure.
    #[arg(long, default_value = BUNDLED_MODEL)]
    pub model: PathBuf,
    /// Road video length in frames.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub frames: u32,
    /// Held-out test images for mAP.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub images: u32,
    /// Validation images that calibrate the int8 activation ranges.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub calib: u32,
    /// Where generated data and models go (reused between runs).
    #[arg(long, default_value = "target/edgetrim-demo")]
    pub work: PathBuf,
    /// Which runtime executes the models.
    #[arg(long, value_enum, default_value_t = BackendKind::Nano)]
    pub backend: BackendKind,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl Default for Args {
    fn default() -> Args {
        use clap::Parser;
        /// Parses an empty command line into `Args`, so the defaults live in one place.
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            args: Args,
        }
        Defaults::parse_from(["edgetrim"]).args
    }
}

/// One model's row.
#[derive(Serialize, Debug)]
struct ModelRow {
    name: String,
    path: String,
    file_bytes: u64,
    map50: f64,
    map50_95: f64,
    fps: f64,
    infer_p50_ms: f64,
    total_p99_ms: f64,
    realtime_misses: usize,
    #[serde(skip)]
    report: FpsReport,
}

/// What `--json` prints.
#[derive(Serialize, Debug)]
struct DemoReport {
    backend: String,
    test_images: String,
    video: String,
    frames: usize,
    compress: Vec<String>,
    models: Vec<ModelRow>,
    annotated: String,
}

/// Says what is happening, on stderr (stdout is the report).
fn step(text: &str) {
    eprintln!("edgetrim demo: {text}");
}

/// Generated data under `--work`.
struct Data {
    test: PathBuf,
    calib: PathBuf,
    video: PathBuf,
}

/// Generates `count` images of `split` at `dir` unless it exists.
fn images(dir: &Path, split: Split, count: usize, size: usize) -> Result<()> {
    if !dir.is_dir() {
        step(&format!("generating {count} {} images", split.name()));
        write::write_yolo(dir, split, 0, count, size, |_| {})
            .with_context(|| format!("cannot write {}", dir.display()))?;
    }
    Ok(())
}

/// Generates the held-out and calibration images and the road video unless they exist.
fn prepare_data(args: &Args, size: usize) -> Result<Data> {
    std::fs::create_dir_all(&args.work)
        .with_context(|| format!("cannot create --work {}", args.work.display()))?;
    let test = args.work.join(format!("test-{size}px-{}", args.images));
    images(&test, Split::Test, args.images as usize, size)?;
    let calib = args.work.join(format!("calib-{size}px-{}", args.calib));
    images(&calib, Split::Val, args.calib as usize, size)?;
    let video = args.work.join(format!("road-{}.y4m", args.frames));
    if !video.is_file() {
        step(&format!("generating a {}-frame road video", args.frames));
        let (w, h) = (320, 240);
        let road = RoadVideo::new(Split::Test, 0, args.frames as usize, w, h);
        write::write_video(&video, &video.with_extension("jsonl"), road, w, h, |_| {})
            .with_context(|| format!("cannot write {}", video.display()))?;
    }
    Ok(Data { test, calib, video })
}

/// Compresses `model` to int8 into WORK/NAME.int8.onnx; returns its path and the pass
/// summaries.
fn compress(args: &Args, size: usize, calib: &Path) -> Result<(PathBuf, Vec<String>)> {
    let bytes = crate::cmd::read_model(&args.model)?;
    let shapes = vec![vec![1, 3, size, size]];
    let mut ctx = Context {
        input_shapes: Some(shapes.clone()),
        int8: fast_int8(),
        ..Context::default()
    };
    ctx.calib = Some(crate::cmd::compress::calibration_images(
        calib,
        &shapes,
        Pixels::Rgb01,
    )?);
    let stages = Pipeline::new(vec![Pass::Clean, Pass::Int8, Pass::Layout])
        .run(&bytes, &ctx)
        .with_context(|| format!("compressing {}", args.model.display()))?;
    let last = stages.last().context("the pipeline produced no model")?;
    let stem = args.model.file_stem().unwrap_or_default().to_string_lossy();
    let out = args.work.join(format!("{stem}.int8.onnx"));
    crate::cmd::write_atomic(&out, &last.bytes)?;
    let summaries = stages
        .iter()
        .map(|s| format!("{}: {}", s.pass.name(), s.summary))
        .collect();
    Ok((out, summaries))
}

/// The int8 options that pay on the CPU this runs on: activation tables, power-of-two
/// scales and int8 joins everywhere, and weights within ±64 (`--reduce-range`) where the int8 kernel is
/// plain AVX2, whose fastest multiply needs them (not on VNNI, Arm, or the portable kernel).
fn fast_int8() -> int8::Options {
    int8::Options {
        reduce_range: QKernel::best() == QKernel::Avx2,
        act_tables: true,
        pow2_scales: true,
        int8_joins: true,
        ..int8::Options::default()
    }
}

/// mAP and FPS of one model.
fn measure(
    args: &Args,
    name: &str,
    path: &Path,
    images: &Path,
    video: &Path,
    annotated: Option<PathBuf>,
) -> Result<ModelRow> {
    step(&format!("{name}: mAP on {}", images.display()));
    let eval = eval_detect::evaluate(
        path,
        images,
        args.backend,
        Thresholds {
            score: 0.001,
            iou: 0.7,
        },
        None,
    )?;
    step(&format!("{name}: FPS on {}", video.display()));
    let opts = Options {
        backend: args.backend,
        thresholds: Thresholds {
            score: 0.25,
            iou: 0.7,
        },
        limit: None,
        realtime: Some(30.0),
        out: annotated,
        detections: None,
        snapshots: Vec::new(),
        progress: true,
    };
    let report = fps::measure(path, VideoSource::Y4m(video.to_path_buf()), &opts)?;
    Ok(ModelRow {
        name: name.to_string(),
        path: path.display().to_string(),
        file_bytes: std::fs::metadata(path)?.len(),
        map50: eval.map50,
        map50_95: eval.map50_95,
        fps: report.fps,
        infer_p50_ms: report.stages.infer.p50_us / 1e3,
        total_p99_ms: report.stages.total.p99_us / 1e3,
        realtime_misses: report.realtime.as_ref().map_or(0, |r| r.misses),
        report,
    })
}

/// Runs `edgetrim demo`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let bytes = crate::cmd::read_model(&args.model)?;
    let model = crate::cmd::parse_model(&args.model, &bytes)?;
    let size = crate::detector::HeadSpec::from_model(&model)?.size;
    let data = prepare_data(&args, size)?;
    step(&format!("compressing {} to int8", args.model.display()));
    let (int8, summaries) = compress(&args, size, &data.calib)?;
    let annotated = args.work.join("annotated.y4m");
    let models = vec![
        measure(&args, "f32", &args.model, &data.test, &data.video, None)?,
        measure(
            &args,
            "int8",
            &int8,
            &data.test,
            &data.video,
            Some(annotated.clone()),
        )?,
    ];
    let report = DemoReport {
        backend: format!("{:?}", args.backend).to_lowercase(),
        test_images: data.test.display().to_string(),
        video: data.video.display().to_string(),
        frames: models[0].report.frames,
        compress: summaries,
        models,
        annotated: annotated.display().to_string(),
    };
    if args.json {
        return crate::cmd::print_json(out, &report);
    }
    writeln!(
        out,
        "\nYOLO9tr pavement-damage detection, {} backend, single thread",
        report.backend
    )?;
    writeln!(
        out,
        "mAP: {}   FPS: {} ({} frames)",
        report.test_images, report.video, report.frames
    )?;
    for s in &report.compress {
        writeln!(out, "  {s}")?;
    }
    writeln!(
        out,
        "\n{:<11} {:>10} {:>7} {:>9} {:>7} {:>13} {:>12} {:>14}",
        "model", "size", "mAP50", "mAP50-95", "FPS", "infer p50", "frame p99", "over 33.3 ms"
    )?;
    for m in &report.models {
        writeln!(
            out,
            "{:<11} {:>10} {:>7.3} {:>9.3} {:>7.1} {:>10.2} ms {:>9.2} ms {:>14}",
            m.name,
            human::bytes(m.file_bytes),
            m.map50,
            m.map50_95,
            m.fps,
            m.infer_p50_ms,
            m.total_p99_ms,
            m.realtime_misses
        )?;
    }
    writeln!(out, "\nannotated video: {}", report.annotated)?;
    Ok(())
}
