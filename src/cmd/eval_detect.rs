//! `edgetrim eval-detect`: COCO-style mAP of a YOLO detector on a YOLO-format folder.
//!
//! Each image goes through the same pipeline a device runs — letterbox, the chosen runtime,
//! DFL decoding and NMS from `edgetrim-models` — and the detections are scored against the
//! labels with COCO's rules (101-point AP, IoU 0.50:0.05:0.95, `maxDets` 300). It works on any
//! YOLO folder (`images/` + `labels/`), so the same command measures a model on generated
//! pavement scenes or on real RDD2022 data.

use crate::backend::BackendKind;
use crate::cmd::{parse_model, read_model};
use crate::detector::{Detector, Thresholds};
use crate::progress::Progress;
use crate::video;
use anyhow::{bail, Context, Result};
use edgetrim_models::eval::{parse_yolo_labels, Evaluator, Metrics};
use edgetrim_models::letterbox::Image;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `edgetrim eval-detect` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  edgetrim datagen pavement --split test --images 500 --size 224 --out data/test
  edgetrim eval-detect models/zoo/yolo9tr-s.onnx --data data/test
  edgetrim eval-detect model.onnx --data RDD2022/val --backend tract --json | jq .map50

DIR holds images/ (PNG or JPEG) and labels/ (one `class cx cy w h` line per object,
normalised; a missing label file means no objects). The head layout and class names come from
the model's metadata (edgetrim.yolo.*, or an Ultralytics export's); a model without them whose
output is [1, anchors, 5 + classes] is read as YOLOX (objectness x class scores, BGR input in
0..=255, as Megvii's export expects). mAP50-95 averages AP over
IoU 0.50:0.05:0.95; classes without ground truth are left out, as in COCO.")]
pub struct Args {
    /// The ONNX detector.
    pub model: PathBuf,
    /// A YOLO-format folder (with images/ and labels/).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Which runtime executes the model.
    #[arg(long, value_enum, default_value_t = BackendKind::Nano)]
    pub backend: BackendKind,
    /// Keep boxes whose class score is above this (low, as mAP needs the whole ranking).
    #[arg(long, default_value_t = Thresholds::EVAL.score)]
    pub conf: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = Thresholds::EVAL.iou)]
    pub iou: f32,
    /// Evaluate only the first N images (in file-name order).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `--json` prints.
#[derive(Serialize, Debug)]
pub struct Report {
    /// The model file.
    pub model: String,
    /// The data folder.
    pub data: String,
    /// Which runtime ran it.
    pub backend: String,
    /// Images evaluated.
    pub images: usize,
    /// Ground-truth boxes.
    pub ground_truths: usize,
    /// Mean AP at IoU 0.50.
    pub map50: f64,
    /// Mean AP over IoU 0.50:0.95.
    pub map50_95: f64,
    /// Per class with ground truth.
    pub per_class: Vec<ClassReport>,
    /// Wall time per image (decode, letterbox, inference, NMS), milliseconds.
    pub ms_per_image: f64,
}

/// One class's row.
#[derive(Serialize, Debug)]
pub struct ClassReport {
    /// Class index.
    pub class: usize,
    /// Class name from the model's metadata.
    pub name: String,
    /// Ground-truth boxes.
    pub ground_truths: usize,
    /// Predictions above --conf.
    pub predictions: usize,
    /// AP at IoU 0.50.
    pub ap50: f64,
    /// AP over IoU 0.50:0.95.
    pub ap50_95: f64,
}

/// The images of a YOLO folder in file-name order, each with its label file's path.
fn list_images(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let images = dir.join("images");
    if !images.is_dir() {
        bail!(
            "--data {}: no images/ folder (expected a YOLO folder: images/ and labels/)",
            dir.display()
        );
    }
    let files = video::image_files(&images)?;
    if files.is_empty() {
        bail!(
            "--data {}: images/ holds no PNG or JPEG files",
            dir.display()
        );
    }
    Ok(files
        .into_iter()
        .map(|img| {
            let stem = img.file_stem().unwrap_or_default().to_owned();
            let label = dir.join("labels").join(stem).with_extension("txt");
            (img, label)
        })
        .collect())
}

/// Evaluates `model_path` on the YOLO folder `data`, showing progress on a terminal.
pub fn evaluate(
    model_path: &Path,
    data: &Path,
    backend: BackendKind,
    thresholds: Thresholds,
    limit: Option<usize>,
) -> Result<Report> {
    let bytes = read_model(model_path)?;
    evaluate_bytes(model_path, &bytes, data, backend, thresholds, limit)
}

/// [`evaluate`] on model bytes already in memory (`model_path` names them in messages):
/// `compress --eval` scores models it has not written.
pub fn evaluate_bytes(
    model_path: &Path,
    bytes: &[u8],
    data: &Path,
    backend: BackendKind,
    thresholds: Thresholds,
    limit: Option<usize>,
) -> Result<Report> {
    let model = parse_model(model_path, bytes)?;
    let mut arena = Vec::new();
    let mut detector = Detector::new(&model, bytes, backend, &mut arena, thresholds)?;
    let mut files = list_images(data)?;
    files.truncate(limit.unwrap_or(usize::MAX));

    let mut evaluator = Evaluator::new();
    let mut ground_truths = 0;
    let mut progress = Progress::new("images", files.len());
    let started = Instant::now();
    for (i, (image_path, label_path)) in files.iter().enumerate() {
        let rgb = image::open(image_path)
            .with_context(|| format!("cannot decode {}", image_path.display()))?
            .into_rgb8();
        let (width, height) = (rgb.width() as usize, rgb.height() as usize);
        let labels = match std::fs::read_to_string(label_path) {
            Ok(text) => parse_yolo_labels(&text, width as f32, height as f32)
                .with_context(|| format!("{}", label_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", label_path.display()))
            }
        };
        let image = Image::Rgb8 {
            pixels: rgb.as_raw(),
            width,
            height,
        };
        let found = detector
            .detect(&image)
            .with_context(|| format!("{}", image_path.display()))?;
        ground_truths += labels.len();
        evaluator.add_image(&found, &labels);
        progress.update(i + 1);
    }
    progress.finish();
    let ms_per_image = started.elapsed().as_secs_f64() * 1e3 / files.len() as f64;
    let Metrics {
        per_class,
        map50,
        map50_95,
    } = evaluator.summarize();
    Ok(Report {
        model: model_path.display().to_string(),
        data: data.display().to_string(),
        backend: format!("{backend:?}").to_lowercase(),
        images: files.len(),
        ground_truths,
        map50,
        map50_95,
        per_class: per_class
            .iter()
            .map(|c| ClassReport {
                class: c.class,
                name: detector.spec.class_name(c.class as u16),
                ground_truths: c.ground_truths,
                predictions: c.predictions,
                ap50: c.ap50(),
                ap50_95: c.ap50_95(),
            })
            .collect(),
        ms_per_image,
    })
}

/// Runs `edgetrim eval-detect`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    if !(0.0..1.0).contains(&args.conf) {
        bail!("--conf {} must be in [0, 1)", args.conf);
    }
    if !(0.0..=1.0).contains(&args.iou) {
        bail!("--iou {} must be in [0, 1]", args.iou);
    }
    if args.limit == Some(0) {
        bail!("--limit 0 evaluates nothing; give at least 1");
    }
    let thresholds = Thresholds {
        score: args.conf,
        iou: args.iou,
    };
    let report = evaluate(
        &args.model,
        &args.data,
        args.backend,
        thresholds,
        args.limit,
    )?;
    if args.json {
        return crate::cmd::print_json(out, &report);
    }
    writeln!(
        out,
        "{} on {} ({} images, {} boxes, {} backend, {:.1} ms/image)\n",
        report.model,
        report.data,
        report.images,
        report.ground_truths,
        report.backend,
        report.ms_per_image
    )?;
    writeln!(
        out,
        "{:<5} {:<10} {:>7} {:>7} {:>7} {:>9}",
        "class", "name", "boxes", "preds", "AP50", "AP50-95"
    )?;
    for c in &report.per_class {
        writeln!(
            out,
            "{:<5} {:<10} {:>7} {:>7} {:>7.3} {:>9.3}",
            c.class, c.name, c.ground_truths, c.predictions, c.ap50, c.ap50_95
        )?;
    }
    writeln!(
        out,
        "{:<5} {:<10} {:>7} {:>7} {:>7.3} {:>9.3}",
        "all", "", report.ground_truths, "", report.map50, report.map50_95
    )?;
    Ok(())
}
