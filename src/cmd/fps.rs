//! `edgetrim fps`: a detector on a video, frame by frame, timed stage by stage.
//!
//! Each frame goes through the pipeline a camera device runs — decode, letterbox
//! (pre-process), inference, decode + NMS (post-process) — and each stage has its own
//! [`FpsMeter`], the runtime's statistics code, so the report says where a frame's time
//! goes and, with `--realtime`, how many frames missed the camera's budget. Annotated video,
//! per-frame detections and PNG snapshots are optional outputs; the time spent drawing and
//! writing them is outside the stage timings.
//!
//! [`measure`] is the library-level entry point (the demo flow calls it); [`run`] is the
//! CLI around it. All outputs are written atomically once every frame has been processed:
//! a failed run leaves nothing behind.

use crate::annotate;
use crate::backend::BackendKind;
use crate::cmd::{parse_model, read_model};
use crate::detector::{Detector, Thresholds};
use crate::human;
use crate::latency::Latency;
use crate::progress::Progress;
use crate::video::{self, Frame, VideoReader, VideoSource, VideoWriter};
use anyhow::{bail, Context, Result};
use edgetrim_models::yolo::Detection;
use edgetrim_runtime::fps::{FpsMeter, FrameStats};
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Frames kept for statistics: the last this many.
const WINDOW: usize = 16384;

/// Weight of the newest frame in the running FPS drawn on annotated frames.
const RUNNING_FPS_WEIGHT: f64 = 0.1;

/// `edgetrim fps` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  edgetrim datagen pavement --video 300 --size 320 --out road.y4m
  edgetrim fps models/zoo/yolo9tr-s.onnx --video road.y4m --realtime 30
  edgetrim fps model.onnx --video road.y4m --out annotated.y4m --snapshot 10=frame10.png
  ffmpeg -i drive.mp4 -f yuv4mpegpipe - | edgetrim fps model.onnx --video -
  edgetrim fps model.onnx --video frames/ --out annotated/ --detections dets.jsonl --json

--video takes a Y4M file (4:2:0: C420, C420jpeg, C420paldv or C420mpeg2; BT.601, limited
range unless the header says XCOLORRANGE=FULL), `-` for Y4M on stdin, or a folder of PNG/JPEG
frames in file-name order. Stages: decode (read + unpack a frame), pre (letterbox), infer,
post (box decoding + NMS); total is their sum per frame, and fps is frames / summed totals.
--out FILE.y4m writes 4:2:0 Y4M at the input's frame rate (30 for a folder); any other --out
is a new folder of PNG frames (000000.png, ...). --detections writes one JSON line per frame:
{\"frame\": i, \"detections\": [{\"class\", \"name\", \"score\", \"box\": [x0, y0, x1, y1]}]}
in source pixels.")]
pub struct Args {
    /// The ONNX detector.
    pub model: PathBuf,
    /// The video: a Y4M file, `-` (Y4M on stdin) or a folder of PNG/JPEG frames.
    #[arg(long, value_name = "Y4M|DIR|-")]
    pub video: PathBuf,
    /// Which runtime executes the model.
    #[arg(long, value_enum, default_value_t = BackendKind::Nano)]
    pub backend: BackendKind,
    /// Count frames whose total latency exceeds the budget of F frames per second.
    #[arg(long, value_name = "F")]
    pub realtime: Option<f64>,
    /// Write annotated frames: FILE.y4m, or a new folder of PNG frames.
    #[arg(long, value_name = "FILE.y4m|DIR")]
    pub out: Option<PathBuf>,
    /// Write each frame's detections as JSON lines.
    #[arg(long, value_name = "FILE.jsonl")]
    pub detections: Option<PathBuf>,
    /// Save annotated frame N (from 0) as a PNG; repeatable.
    #[arg(long, value_name = "N=PATH.png")]
    pub snapshot: Vec<String>,
    /// Draw and report boxes whose class score is above this.
    #[arg(long, default_value_t = 0.25)]
    pub conf: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.7)]
    pub iou: f32,
    /// Process only the first N frames.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A frame to save as a PNG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Frame index, from 0.
    pub frame: usize,
    /// Where the PNG goes.
    pub path: PathBuf,
}

impl Snapshot {
    /// Parses `N=PATH.png`.
    pub fn parse(arg: &str) -> Result<Snapshot> {
        let parsed = arg.split_once('=').and_then(|(n, path)| {
            let png = Path::new(path)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("png"));
            Some(Snapshot {
                frame: n.trim().parse().ok()?,
                path: png.then(|| PathBuf::from(path))?,
            })
        });
        parsed.with_context(|| {
            format!(
                "--snapshot {arg}: expected N=PATH.png (a frame index from 0, then a .png path)"
            )
        })
    }
}

/// What [`measure`] does besides timing.
#[derive(Clone, Debug)]
pub struct Options {
    /// Which runtime executes the model.
    pub backend: BackendKind,
    /// Score and NMS thresholds.
    pub thresholds: Thresholds,
    /// Process only the first this many frames.
    pub limit: Option<usize>,
    /// Count frames slower than `1 / realtime` seconds.
    pub realtime: Option<f64>,
    /// Annotated video output (Y4M file or PNG folder).
    pub out: Option<PathBuf>,
    /// Per-frame detections output (JSON lines).
    pub detections: Option<PathBuf>,
    /// Annotated frames to save as PNG.
    pub snapshots: Vec<Snapshot>,
    /// Show progress on stderr (when it is a terminal).
    pub progress: bool,
}

/// Per-stage statistics; `total` is the per-frame sum of the four stages.
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct Stages {
    /// Reading and unpacking a frame.
    pub decode: Latency,
    /// Letterboxing into the model input.
    pub pre: Latency,
    /// Running the model.
    pub infer: Latency,
    /// Box decoding and NMS.
    pub post: Latency,
    /// All four.
    pub total: Latency,
}

/// How the run kept up with a camera.
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct Realtime {
    /// The camera's frame rate.
    pub fps: f64,
    /// The per-frame budget, `1000 / fps` milliseconds.
    pub budget_ms: f64,
    /// Frames whose total latency exceeded the budget.
    pub misses: usize,
}

/// Everything `edgetrim fps` reports (its `--json` output).
#[derive(Serialize, Debug, Clone)]
pub struct FpsReport {
    /// The model file.
    pub model: String,
    /// The video (`stdin` for `-`).
    pub video: String,
    /// Which runtime ran the model.
    pub backend: String,
    /// The model's square input size.
    pub input_size: usize,
    /// The first frame's width.
    pub width: usize,
    /// The first frame's height.
    pub height: usize,
    /// Frames processed.
    pub frames: usize,
    /// Frames per second of the pipeline: frames / summed per-frame totals.
    pub fps: f64,
    /// Frames per second of wall time, including drawing and writing outputs.
    pub wall_fps: f64,
    /// Latency per stage.
    pub stages: Stages,
    /// Budget misses, with `--realtime`.
    pub realtime: Option<Realtime>,
    /// Detections over all frames.
    pub detections: usize,
}

/// One JSON line of `--detections`.
#[derive(Serialize)]
struct FrameDetections<'a> {
    frame: usize,
    detections: Vec<DetectionJson<'a>>,
}

#[derive(Serialize)]
struct DetectionJson<'a> {
    class: u16,
    name: &'a str,
    score: f32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
}

/// The per-stage meters.
struct Meters {
    decode: FpsMeter<WINDOW>,
    pre: FpsMeter<WINDOW>,
    infer: FpsMeter<WINDOW>,
    post: FpsMeter<WINDOW>,
    total: FpsMeter<WINDOW>,
}

impl Meters {
    fn new() -> Box<Meters> {
        Box::new(Meters {
            decode: FpsMeter::new(0),
            pre: FpsMeter::new(0),
            infer: FpsMeter::new(0),
            post: FpsMeter::new(0),
            total: FpsMeter::new(0),
        })
    }

    fn stages(&self) -> Option<(Stages, FrameStats)> {
        let total = self.total.stats()?;
        Some((
            Stages {
                decode: self.decode.stats()?.into(),
                pre: self.pre.stats()?.into(),
                infer: self.infer.stats()?.into(),
                post: self.post.stats()?.into(),
                total: total.into(),
            },
            total,
        ))
    }
}

/// Nanoseconds since `t`, and now.
fn lap(t: &mut Instant) -> u64 {
    let now = Instant::now();
    let ns = u64::try_from((now - *t).as_nanos()).unwrap_or(u64::MAX);
    *t = now;
    ns
}

/// The outputs being written, committed together at the end.
struct Outputs {
    video: Option<VideoWriter>,
    detections: Option<(BufWriter<tempfile::NamedTempFile>, PathBuf)>,
    snapshots: Vec<PendingSnapshot>,
}

/// A snapshot's temp file and, once its frame has passed, the annotated RGB8 frame.
struct PendingSnapshot {
    spec: Snapshot,
    tmp: tempfile::NamedTempFile,
    rgb: Option<(Vec<u8>, usize, usize)>,
}

impl Outputs {
    /// Creates every temporary output up front, so a bad path fails before any work.
    fn create(opts: &Options, rate: (usize, usize)) -> Result<Outputs> {
        let video = opts
            .out
            .as_deref()
            .map(|p| VideoWriter::create(p, rate))
            .transpose()?;
        let detections = match &opts.detections {
            Some(p) => Some((
                BufWriter::new(video::temp_beside("--detections", p)?),
                p.clone(),
            )),
            None => None,
        };
        let snapshots = opts
            .snapshots
            .iter()
            .map(|s| {
                Ok(PendingSnapshot {
                    spec: s.clone(),
                    tmp: video::temp_beside("--snapshot", &s.path)?,
                    rgb: None,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Outputs {
            video,
            detections,
            snapshots,
        })
    }

    fn wants_pixels(&self, frame: usize) -> bool {
        self.video.is_some() || self.snapshots.iter().any(|s| s.spec.frame == frame)
    }

    /// Checks that every snapshot's frame was seen, then moves all outputs into place.
    fn commit(self, frames: usize) -> Result<()> {
        for PendingSnapshot { spec: s, .. } in &self.snapshots {
            if s.frame >= frames {
                bail!(
                    "--snapshot {}={}: the video has only {frames} frames (0 to {})",
                    s.frame,
                    s.path.display(),
                    frames - 1
                );
            }
        }
        if let Some(v) = self.video {
            v.finish()?;
        }
        if let Some((w, path)) = self.detections {
            let tmp = w
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("cannot write {}", path.display()))?;
            video::persist(tmp, &path)?;
        }
        for PendingSnapshot { spec, mut tmp, rgb } in self.snapshots {
            let Some((rgb, w, h)) = rgb else { continue };
            video::write_png(BufWriter::new(tmp.as_file_mut()), &rgb, w, h)
                .with_context(|| format!("--snapshot {}", spec.path.display()))?;
            video::persist(tmp, &spec.path)?;
        }
        Ok(())
    }
}

/// Runs the detector in `model` on every frame of `source` and reports per-stage timing.
pub fn measure(model_path: &Path, source: VideoSource, opts: &Options) -> Result<FpsReport> {
    let bytes = read_model(model_path)?;
    let model = parse_model(model_path, &bytes)?;
    let mut arena = Vec::new();
    let mut detector = Detector::new(&model, &bytes, opts.backend, &mut arena, opts.thresholds)?;
    let mut reader = VideoReader::open(&source)?;
    let mut outputs = Outputs::create(opts, reader.frame_rate().unwrap_or(video::DEFAULT_FPS))?;
    let limit = opts.limit.unwrap_or(usize::MAX);
    let backend = format!("{:?}", opts.backend).to_lowercase();
    let budget_ns = opts.realtime.map(|f| 1e9 / f);

    let mut meters = Meters::new();
    let mut frame = Frame::default();
    let mut rgb = Vec::new();
    let (mut frames, mut misses, mut found_total) = (0, 0, 0);
    let (mut width, mut height) = (0, 0);
    let mut running_ns: Option<f64> = None;
    let total_hint = reader.frames_hint().map_or(0, |n| n.min(limit));
    let mut progress = opts.progress.then(|| Progress::new("frames", total_hint));
    let started = Instant::now();
    while frames < limit {
        let mut t = Instant::now();
        if !reader.read(&mut frame)? {
            break;
        }
        let decode = lap(&mut t);
        let image = frame.image();
        let lb = detector
            .preprocess(&image)
            .with_context(|| format!("{source}: frame {frames}"))?;
        let pre = lap(&mut t);
        detector
            .infer()
            .with_context(|| format!("{source}: frame {frames}"))?;
        let infer = lap(&mut t);
        let found = detector
            .postprocess(&lb, frame.width, frame.height)
            .with_context(|| format!("{source}: frame {frames}"))?;
        let post = lap(&mut t);
        let total = decode + pre + infer + post;
        for (meter, ns) in [
            (&mut meters.decode, decode),
            (&mut meters.pre, pre),
            (&mut meters.infer, infer),
            (&mut meters.post, post),
            (&mut meters.total, total),
        ] {
            meter.record(ns);
        }
        if budget_ns.is_some_and(|b| total as f64 > b) {
            misses += 1;
        }
        let avg = running_ns.map_or(total as f64, |r| {
            r + RUNNING_FPS_WEIGHT * (total as f64 - r)
        });
        running_ns = Some(avg);
        if frames == 0 {
            (width, height) = (frame.width, frame.height);
        }
        found_total += found.len();

        if let Some((w, _)) = &mut outputs.detections {
            write_detections(w, frames, &found, &detector)?;
        }
        if outputs.wants_pixels(frames) {
            frame.to_rgb8(&mut rgb)?;
            let banner = format!("{backend} {:.1} FPS", 1e9 / avg.max(1.0));
            annotate::draw(
                &mut rgb,
                frame.width,
                frame.height,
                &found,
                |c| detector.spec.class_name(c),
                &banner,
            );
            if let Some(v) = &mut outputs.video {
                v.write(&rgb, frame.width, frame.height)?;
            }
            for s in &mut outputs.snapshots {
                if s.spec.frame == frames {
                    s.rgb = Some((rgb.clone(), frame.width, frame.height));
                }
            }
        }
        frames += 1;
        if let Some(p) = &mut progress {
            p.update(frames);
        }
    }
    if let Some(p) = &progress {
        p.finish();
    }
    let wall = started.elapsed().as_secs_f64();
    let Some((stages, total)) = meters.stages() else {
        bail!("--video {source}: the video has no frames");
    };
    outputs.commit(frames)?;
    Ok(FpsReport {
        model: model_path.display().to_string(),
        video: source.to_string(),
        backend,
        input_size: detector.spec.size,
        width,
        height,
        frames,
        fps: total.fps,
        wall_fps: frames as f64 / wall.max(1e-9),
        stages,
        realtime: opts.realtime.map(|fps| Realtime {
            fps,
            budget_ms: 1e3 / fps,
            misses,
        }),
        detections: found_total,
    })
}

/// Appends frame `index`'s detections as one JSON line.
fn write_detections(
    w: &mut impl Write,
    index: usize,
    found: &[Detection],
    detector: &Detector<'_>,
) -> Result<()> {
    let names: Vec<String> = found
        .iter()
        .map(|d| detector.spec.class_name(d.class))
        .collect();
    let line = FrameDetections {
        frame: index,
        detections: found
            .iter()
            .zip(&names)
            .map(|(d, name)| DetectionJson {
                class: d.class,
                name,
                score: d.score,
                bbox: d.corners(),
            })
            .collect(),
    };
    serde_json::to_writer(&mut *w, &line)?;
    writeln!(w)?;
    Ok(())
}

/// Checks the flags and builds [`Options`].
fn options(args: &Args) -> Result<Options> {
    if !(0.0..1.0).contains(&args.conf) {
        bail!("--conf {} must be in [0, 1)", args.conf);
    }
    if !(0.0..=1.0).contains(&args.iou) {
        bail!("--iou {} must be in [0, 1]", args.iou);
    }
    if args.limit == Some(0) {
        bail!("--limit 0 processes nothing; give at least 1");
    }
    if let Some(f) = args.realtime {
        if !(f.is_finite() && f > 0.0) {
            bail!("--realtime {f} must be a positive frame rate (e.g. 30)");
        }
    }
    let snapshots = args
        .snapshot
        .iter()
        .map(|s| Snapshot::parse(s))
        .collect::<Result<Vec<_>>>()?;
    if args.video.as_os_str() != "-" && !args.video.exists() {
        bail!("--video {}: no such file or folder", args.video.display());
    }
    Ok(Options {
        backend: args.backend,
        thresholds: Thresholds {
            score: args.conf,
            iou: args.iou,
        },
        limit: args.limit,
        realtime: args.realtime,
        out: args.out.clone(),
        detections: args.detections.clone(),
        snapshots,
        progress: true,
    })
}

/// Writes the text summary.
fn print_text(out: &mut dyn Write, r: &FpsReport) -> Result<()> {
    writeln!(
        out,
        "model   {} ({} backend, {}x{} input)",
        r.model, r.backend, r.input_size, r.input_size
    )?;
    writeln!(
        out,
        "video   {} ({}x{}, {} frames, {} detections)",
        r.video, r.width, r.height, r.frames, r.detections
    )?;
    writeln!(
        out,
        "fps     {:.1} (pipeline), {:.1} (wall clock, with outputs)\n",
        r.fps, r.wall_fps
    )?;
    writeln!(
        out,
        "{:8} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "stage", "mean", "p50", "p95", "p99", "max"
    )?;
    let d = |us: f64| human::duration_ns((us * 1e3) as u64);
    let s = &r.stages;
    for (name, l) in [
        ("decode", &s.decode),
        ("pre", &s.pre),
        ("infer", &s.infer),
        ("post", &s.post),
        ("total", &s.total),
    ] {
        writeln!(
            out,
            "{name:8} {:>10} {:>10} {:>10} {:>10} {:>10}",
            d(l.mean_us),
            d(l.p50_us),
            d(l.p95_us),
            d(l.p99_us),
            d(l.max_us)
        )?;
    }
    if let Some(rt) = &r.realtime {
        writeln!(
            out,
            "\nrealtime {} FPS: {} of {} frames over the {:.1} ms budget",
            rt.fps, rt.misses, r.frames, rt.budget_ms
        )?;
    }
    Ok(())
}

/// Runs `edgetrim fps`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let opts = options(&args)?;
    let report = measure(&args.model, VideoSource::from_arg(&args.video), &opts)?;
    if args.json {
        return crate::cmd::print_json(out, &report);
    }
    print_text(out, &report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_snapshots() {
        assert_eq!(
            Snapshot::parse("12=out/f.PNG").unwrap(),
            Snapshot {
                frame: 12,
                path: PathBuf::from("out/f.PNG")
            }
        );
        for bad in ["12", "x=f.png", "3=f.jpg", "-1=f.png", "=f.png"] {
            let err = Snapshot::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("--snapshot {bad}:")), "{err}");
        }
    }
}
