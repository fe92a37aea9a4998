//! `edgetrim bench`: latency and FPS on this machine, against tract, and per node.
//!
//! Statistics come from the runtime's own [`FpsMeter`], the same code a device runs, so
//! host and device numbers are computed alike. With `--backend both` the two runtimes
//! alternate run by run (and which goes first alternates too) inside one process, so
//! frequency scaling, thermal drift and noisy neighbours hit both equally: the ratio is
//! what matters, and it is what `speedup_vs_tract` reports. `--vs OTHER.onnx` does the same
//! for two models on the nano runtime (an int8 model against its float original, say):
//! `speedup_vs_other`.

use crate::backend::{Backend, BackendKind};
use crate::cmd::{parse_model, read_model};
use crate::human;
use crate::inputs::{self, ShapeOverride};
use crate::latency::Latency;
use anyhow::{bail, Context, Result};
use edgetrim_runtime::fps::{self, FpsMeter, StdClock};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

/// Latencies kept for statistics: the last this many measured runs.
const WINDOW: usize = 16384;
/// Nodes listed by `--profile` in the text report.
const TOP_NODES: usize = 10;

/// Which runtimes to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// edgetrim's runtime only.
    Nano,
    /// tract only.
    Tract,
    /// Both, interleaved run by run, with the speed ratio.
    Both,
}

/// `edgetrim bench` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  edgetrim bench model.onnx
  edgetrim bench model.onnx --backend both --runs 500
  edgetrim bench model.onnx --input-shape images=1x3x320x320 --profile
  edgetrim bench model.onnx --backend both --json | jq .speedup_vs_tract
  edgetrim bench int8.onnx --vs float.onnx

Without --input, inputs are random (uniform in [-1, 1) from --seed; integer inputs are zeros).
speedup_vs_tract is tract's median latency divided by nano's: above 1.0, nano is faster.
speedup_vs_other is the --vs model's median latency divided by MODEL's (both on nano).")]
pub struct Args {
    /// The ONNX model.
    pub model: PathBuf,
    /// Input data: PATH.npy (in graph-input order) or NAME=PATH.npy; random when omitted.
    #[arg(long, short, value_name = "[NAME=]PATH")]
    pub input: Vec<String>,
    /// Fix the shape of a graph input: NAME=1x3x224x224 (needed for free dims like batch N).
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shapes: Vec<ShapeOverride>,
    /// Measured runs (statistics cover the last 16384).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Runs before measuring (caches, page faults, lazy initialisation).
    #[arg(long, default_value_t = 10)]
    pub warmup: u32,
    /// Which runtime(s) to measure.
    #[arg(long, value_enum, default_value_t = Which::Nano)]
    pub backend: Which,
    /// Seed for the random inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also time every node of the nano runtime and list the slowest.
    #[arg(long)]
    pub profile: bool,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also run this model on the nano runtime with the same inputs, interleaved run by run,
    /// and report the speed ratio.
    #[arg(long, value_name = "OTHER.onnx")]
    pub vs: Option<PathBuf>,
}

#[derive(Serialize)]
struct InputDesc {
    name: String,
    dtype: &'static str,
    shape: Vec<usize>,
    source: String,
}

/// Time spent in one nano step, averaged over the measured runs.
#[derive(Serialize)]
struct NodeTime {
    node: String,
    op: String,
    mean_us: f64,
    /// Fraction of the summed step time.
    share: f64,
    macs: u64,
}

#[derive(Serialize)]
struct BenchReport {
    model: String,
    runs: u32,
    warmup: u32,
    inputs: Vec<InputDesc>,
    nano: Option<Latency>,
    tract: Option<Latency>,
    /// tract median latency / nano median latency (with `--backend both`).
    speedup_vs_tract: Option<f64>,
    /// The `--vs` model.
    other_model: Option<String>,
    /// The `--vs` model on nano.
    other: Option<Latency>,
    /// `--vs` model median latency / nano median latency.
    speedup_vs_other: Option<f64>,
    /// Nano steps, slowest first (with `--profile`).
    profile: Option<Vec<NodeTime>>,
}

/// A backend and its meter.
struct Contender<'a> {
    backend: Backend<'a>,
    /// Runs the `--vs` model rather than MODEL.
    other: bool,
    meter: Box<FpsMeter<WINDOW>>,
}

impl<'a> Contender<'a> {
    fn new(backend: Backend<'a>, other: bool, warmup: u32) -> Self {
        Contender {
            backend,
            other,
            meter: Box::new(FpsMeter::new(warmup)),
        }
    }

    /// Index of its row: nano, tract, `--vs`.
    fn row(&self) -> usize {
        match (self.other, self.backend.kind()) {
            (true, _) => 2,
            (false, BackendKind::Nano) => 0,
            (false, BackendKind::Tract) => 1,
        }
    }
}

fn profile_table(backend: &Backend<'_>, per_step: &[u64], runs: u32) -> Vec<NodeTime> {
    let Backend::Nano(session) = backend else {
        return Vec::new();
    };
    let total: u64 = per_step.iter().sum::<u64>().max(1);
    let mut rows: Vec<NodeTime> = per_step
        .iter()
        .enumerate()
        .map(|(k, &ns)| {
            let info = session.step_info(k);
            NodeTime {
                node: info.node.to_string(),
                op: info.op.to_string(),
                mean_us: ns as f64 / 1e3 / f64::from(runs),
                share: ns as f64 / total as f64,
                macs: info.macs,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.mean_us.total_cmp(&a.mean_us));
    rows
}

fn print_text(out: &mut dyn Write, r: &BenchReport) -> Result<()> {
    writeln!(out, "model   {}", r.model)?;
    if let Some(other) = &r.other_model {
        writeln!(out, "vs      {other}")?;
    }
    for i in &r.inputs {
        writeln!(
            out,
            "input   {} {} {} ({})",
            i.name,
            i.dtype,
            inputs::dims_text(&i.shape),
            i.source
        )?;
    }
    writeln!(
        out,
        "runs    {} measured after {} warm-up\n",
        r.runs, r.warmup
    )?;
    writeln!(
        out,
        "{:8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "backend", "fps", "mean", "p50", "p95", "p99", "min", "max"
    )?;
    let d = |us: f64| human::duration_ns((us * 1e3) as u64);
    for (name, l) in [("nano", &r.nano), ("tract", &r.tract), ("vs", &r.other)] {
        if let Some(l) = l {
            writeln!(
                out,
                "{name:8} {:>10.1} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                l.fps,
                d(l.mean_us),
                d(l.p50_us),
                d(l.p95_us),
                d(l.p99_us),
                d(l.min_us),
                d(l.max_us)
            )?;
        }
    }
    if let Some(s) = r.speedup_vs_tract {
        writeln!(
            out,
            "\nspeedup vs tract: {s:.2}x (tract median latency / nano median latency)"
        )?;
    }
    if let Some(s) = r.speedup_vs_other {
        writeln!(
            out,
            "\nspeedup vs {}: {s:.2}x (its median latency / nano median latency)",
            r.other_model.as_deref().unwrap_or("other")
        )?;
    }
    if let Some(rows) = &r.profile {
        writeln!(out, "\nslowest nodes (nano, mean per run)")?;
        let width = rows
            .iter()
            .take(TOP_NODES)
            .map(|n| n.node.len())
            .max()
            .unwrap_or(0);
        for n in rows.iter().take(TOP_NODES) {
            let gmacs = if n.mean_us > 0.0 {
                n.macs as f64 / n.mean_us / 1e3
            } else {
                0.0
            };
            writeln!(
                out,
                "  {:width$}  {:12} {:>10} {:>6.1}%  {:>9} MACs  {gmacs:>6.2} GMAC/s",
                n.node,
                n.op,
                d(n.mean_us),
                n.share * 100.0,
                human::count(n.macs),
            )?;
        }
    }
    Ok(())
}

/// Runs `edgetrim bench`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    if args.profile && args.backend == Which::Tract {
        bail!("--profile times the nano runtime's nodes; use --backend nano or both");
    }
    if args.vs.is_some() && args.backend == Which::Tract {
        bail!("--vs compares two models on the nano runtime; use --backend nano or both");
    }
    let bytes = read_model(&args.model)?;
    let model = parse_model(&args.model, &bytes)?;
    let (arrays, sources): (Vec<_>, Vec<String>) = if args.input.is_empty() {
        let shapes = inputs::resolve_shapes(&model, &args.input_shapes)?;
        let arrays = inputs::generate(&model, &shapes, args.seed)?;
        let n = arrays.len();
        (arrays, vec![format!("random, seed {}", args.seed); n])
    } else {
        let arrays = inputs::load(&model, &args.input, &args.input_shapes)?;
        (arrays, args.input.clone())
    };
    let shapes: Vec<&[usize]> = arrays.iter().map(|a| a.shape.as_slice()).collect();

    let other_bytes = args
        .vs
        .as_deref()
        .map(read_model)
        .transpose()
        .context("--vs")?;
    let other_model = match (&args.vs, &other_bytes) {
        (Some(path), Some(b)) => Some(parse_model(path, b)?),
        _ => None,
    };
    let (mut arena, mut other_arena) = (Vec::new(), Vec::new());
    let mut contenders: Vec<Contender<'_>> = Vec::new();
    if args.backend != Which::Tract {
        let nano = Backend::nano(&model, &shapes, &mut arena)?;
        contenders.push(Contender::new(nano, false, args.warmup));
    }
    if args.backend != Which::Nano {
        let tract = Backend::tract(&bytes, &shapes)?;
        contenders.push(Contender::new(tract, false, args.warmup));
    }
    if let (Some(path), Some(other)) = (&args.vs, &other_model) {
        let nano = Backend::nano(other, &shapes, &mut other_arena)
            .with_context(|| format!("--vs {}: cannot run it on MODEL's inputs", path.display()))?;
        contenders.push(Contender::new(nano, true, args.warmup));
    }
    for c in &mut contenders {
        for (i, a) in arrays.iter().enumerate() {
            c.backend
                .set_input(i, &a.bytes)
                .with_context(|| match &args.vs {
                    Some(path) if c.other => format!("--vs {}: input {i}", path.display()),
                    _ => format!("input {i}"),
                })?;
        }
    }

    let mut per_step = match &contenders[0].backend {
        Backend::Nano(s) if args.profile => vec![0u64; s.step_count()],
        _ => Vec::new(),
    };
    let mut clock = StdClock::new();
    let warmup = u64::from(args.warmup);
    for r in 0..warmup + u64::from(args.runs) {
        let n = contenders.len();
        for j in 0..n {
            // Alternate which backend goes first, so neither always runs on a warmer cache.
            let c = &mut contenders[(j + r as usize) % n];
            match &mut c.backend {
                Backend::Nano(s) if !c.other && args.profile && r >= warmup => {
                    let ns = fps::profile_run(s, &mut clock, &mut per_step)?;
                    c.meter.record(ns);
                }
                backend => {
                    c.meter.begin_frame(&mut clock);
                    backend.run()?;
                    c.meter.end_frame(&mut clock);
                }
            }
        }
    }

    let mut report = BenchReport {
        model: args.model.display().to_string(),
        runs: args.runs,
        warmup: args.warmup,
        inputs: model
            .inputs()
            .zip(&arrays)
            .zip(sources)
            .map(|((vi, a), source)| InputDesc {
                name: vi.name().to_string(),
                dtype: a.dtype.name(),
                shape: a.shape.clone(),
                source,
            })
            .collect(),
        nano: None,
        tract: None,
        speedup_vs_tract: None,
        other_model: args.vs.as_ref().map(|p| p.display().to_string()),
        other: None,
        speedup_vs_other: None,
        profile: args
            .profile
            .then(|| profile_table(&contenders[0].backend, &per_step, args.runs)),
    };
    let mut medians = [None, None, None];
    for c in &contenders {
        let Some(stats) = c.meter.stats() else {
            continue;
        };
        medians[c.row()] = Some(stats.p50_ns);
        let row = [&mut report.nano, &mut report.tract, &mut report.other];
        *row.into_iter().nth(c.row()).expect("three rows") = Some(stats.into());
    }
    let ratio = |theirs: u64, ours: u64| theirs as f64 / ours.max(1) as f64;
    if let [Some(nano), tract, other] = medians {
        report.speedup_vs_tract = tract.map(|t| ratio(t, nano));
        report.speedup_vs_other = other.map(|o| ratio(o, nano));
    }
    if args.json {
        crate::cmd::print_json(out, &report)?;
    } else {
        print_text(out, &report)?;
    }
    Ok(())
}
