//! `compress --sweep` and `--budget` for one model: every configuration of a grid
//! compressed and measured, the Pareto front of accuracy against size and against MACs,
//! and — under a budget — the least lossy configuration that fits.
//!
//! A configuration is a channel-pruning ratio and a weight scheme (`prune=0,0.2,0.4
//! quantize=none,fp16,int8`); each goes through the same pipeline and report as a single
//! `compress` run (clean, prune, quantize, align), so a row of the sweep is what that
//! command would write. Accuracy is the task metric with `--eval`, else the output SQNR
//! against the original on the first calibration input (or seeded random input): a proxy
//! that ranks configurations of one model, not a figure to compare across models.

use super::compress::{int8_options, Args};
use super::compress_eval::{self, Evaluator};
use crate::cmd::write_atomic;
use crate::human;
use crate::plot::{Panel, Series};
use crate::progress::Progress;
use anyhow::{anyhow, bail, Result};
use edgetrim_compress::budget::{Budget, Cost};
use edgetrim_compress::passes::{prune, Context, Pass, Pipeline};
use edgetrim_compress::report::TaskMetric;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

/// The grid `--budget` searches without `--sweep`.
pub const DEFAULT_GRID: [&str; 2] = ["prune=0,0.3,0.5", "quantize=none,fp16,int8"];

/// One configuration of the grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Share of the output channels pruned (0: no pruning pass).
    pub prune: f32,
    /// `None`, or the weight scheme.
    pub quantize: Option<Pass>,
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = self.quantize.map_or("none", Pass::name);
        write!(f, "prune={} quantize={q}", self.prune)
    }
}

/// The configurations `--sweep KEY=V,V ...` names, pruning ratio outermost.
pub fn grid(specs: &[impl AsRef<str>]) -> Result<Vec<Config>> {
    let (mut prunes, mut schemes): (Option<Vec<f32>>, Option<Vec<Option<Pass>>>) = (None, None);
    for spec in specs.iter().map(AsRef::as_ref) {
        let bad = |why: String| anyhow!("--sweep {spec}: {why}");
        let (key, values) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=V,V,... (keys: prune, quantize)".into()))?;
        let values: Vec<&str> = values.split(',').map(str::trim).collect();
        match key {
            "prune" if prunes.is_none() => {
                let parsed = values.iter().map(|v| {
                    v.parse::<f32>()
                        .ok()
                        .filter(|r| (0.0..1.0).contains(r))
                        .ok_or_else(|| bad(format!("{v:?} is not a ratio in [0, 1)")))
                });
                prunes = Some(parsed.collect::<Result<_>>()?);
            }
            "quantize" if schemes.is_none() => {
                let parsed = values.iter().map(|v| match *v {
                    "none" => Ok(None),
                    "fp16" => Ok(Some(Pass::Fp16)),
                    "int8" => Ok(Some(Pass::Int8)),
                    other => Err(bad(format!("unknown scheme {other:?} (none, fp16, int8)"))),
                });
                schemes = Some(parsed.collect::<Result<_>>()?);
            }
            "prune" | "quantize" => return Err(bad(format!("{key} is given twice"))),
            other => return Err(bad(format!("unknown key {other:?} (prune, quantize)"))),
        }
    }
    let prunes = prunes.unwrap_or_else(|| vec![0.0]);
    let schemes = schemes.unwrap_or_else(|| vec![None]);
    let mut configs = Vec::new();
    for &prune in &prunes {
        for &quantize in &schemes {
            let c = Config { prune, quantize };
            if !configs.contains(&c) {
                configs.push(c);
            }
        }
    }
    Ok(configs)
}

/// One measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// `prune=R quantize=S`.
    pub config: String,
    /// Parameters.
    pub params: u64,
    /// File bytes: what is flashed.
    pub file_bytes: u64,
    /// Multiply-accumulates per run.
    pub macs: Option<u64>,
    /// Arena bytes on this machine.
    pub arena_bytes: Option<u64>,
    /// Output SQNR against the original, dB (`None`: identical outputs).
    pub sqnr_db: Option<f64>,
    /// With --eval.
    pub task: Option<TaskMetric>,
    /// On the front of accuracy against file size.
    pub pareto_size: bool,
    /// On the front of accuracy against MACs.
    pub pareto_macs: bool,
    /// Under --budget: whether it fits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fits: Option<bool>,
    /// Why the runtime could not measure it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Point {
    /// Higher is better: the task metric, else SQNR (infinite when identical).
    fn accuracy(&self) -> f64 {
        match &self.task {
            Some(t) => t.value(),
            None if self.error.is_some() => f64::NEG_INFINITY,
            None => self.sqnr_db.unwrap_or(f64::INFINITY),
        }
    }

    fn cost(&self) -> Cost {
        Cost {
            flash: self.file_bytes,
            macs: self.macs.unwrap_or(u64::MAX),
            ram: self.arena_bytes.unwrap_or(u64::MAX),
        }
    }
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
pub struct SweepReport {
    /// The model file.
    pub model: String,
    /// The original's task metric, with --eval.
    pub original: Option<TaskMetric>,
    /// What the accuracy columns hold: the primary task metric, or `SQNR dB`.
    pub accuracy: String,
    /// `--budget` as given.
    pub budget: Option<String>,
    /// The configuration written to -o under --budget.
    pub chosen: Option<String>,
    /// Every configuration, in grid order.
    pub points: Vec<Point>,
}

/// For each `(cost, accuracy)`, whether no other point is at least as accurate for at most
/// the cost, and strictly better in one (the Pareto front; NaN costs are never on it).
pub fn pareto(points: &[(f64, f64)]) -> Vec<bool> {
    points
        .iter()
        .map(|&(c, a)| {
            !c.is_nan()
                && !points
                    .iter()
                    .any(|&(c2, a2)| c2 <= c && a2 >= a && (c2 < c || a2 > a))
        })
        .collect()
}

/// Compresses and measures `config`; returns the point and the compressed bytes.
fn measure(
    args: &Args,
    bytes: &[u8],
    base: &Context,
    config: Config,
    eval: Option<&Evaluator>,
) -> Result<(Point, Vec<u8>)> {
    let mut ctx = base.clone();
    let mut passes = vec![Pass::Clean, Pass::Layout];
    if config.prune > 0.0 {
        passes.push(Pass::PruneChannels);
        let spec = format!("channels={}", config.prune);
        if let prune::Spec::Channels(c) = spec
            .parse::<prune::Spec>()
            .map_err(|e| anyhow!("{spec}: {e}"))?
        {
            ctx.prune.channels = c;
        }
    }
    passes.extend(config.quantize);
    let pipeline = Pipeline::new(passes);
    let outcome = compress_eval::compress(&args.model, bytes, &pipeline, &ctx, eval)
        .map_err(|e| anyhow!("{config}: {e:#}"))?;
    let last = outcome
        .report
        .last()
        .cloned()
        .ok_or_else(|| anyhow!("no pass ran"))?;
    let point = Point {
        config: config.to_string(),
        params: last.params,
        file_bytes: last.file_bytes as u64,
        macs: last.macs,
        arena_bytes: last.arena_bytes.map(|a| a as u64),
        sqnr_db: last.sqnr_db,
        task: last.task,
        pareto_size: false,
        pareto_macs: false,
        fits: None,
        error: last.error,
    };
    Ok((point, outcome.bytes().to_vec()))
}

/// Checks the flags that make no sense with a grid.
fn check_flags(args: &Args, configs: &[Config]) -> Result<()> {
    let conflicts = [
        (!args.prune.is_empty(), "--prune"),
        (args.quantize.is_some(), "--quantize"),
        (args.max_drop.is_some(), "--max-drop"),
        (args.clean || args.align, "--clean/--align"),
    ];
    if let Some((_, flag)) = conflicts.iter().find(|(given, _)| *given) {
        bail!("{flag} applies to one configuration; --sweep and --budget try a grid (give its values to --sweep)");
    }
    let int8 = configs.iter().any(|c| c.quantize == Some(Pass::Int8));
    let int8_flags = !args.keep_float.is_empty()
        || args.calib_method != "minmax"
        || args.reduce_range
        || args.act_tables
        || args.pow2_scales
        || args.int8_joins;
    if !int8 && int8_flags {
        bail!("--keep-float, --calib-method, --reduce-range, --act-tables, --pow2-scales and --int8-joins need quantize=int8 in the --sweep grid");
    }
    if args.output.is_some() && args.budget.is_none() {
        bail!("-o needs --budget with --sweep (the budget picks the configuration to write)");
    }
    Ok(())
}

/// Runs `compress --sweep` / `--budget` on one model file.
pub fn run(args: &Args, bytes: &[u8], base: &Context, out: &mut dyn Write) -> Result<()> {
    let configs = if args.sweep.is_empty() {
        grid(&DEFAULT_GRID)?
    } else {
        grid(args.sweep.as_slice())?
    };
    check_flags(args, &configs)?;
    let budget: Option<Budget> = match &args.budget {
        Some(b) => Some(b.parse().map_err(|e| anyhow!("--budget: {e}"))?),
        None => None,
    };
    let mut ctx = base.clone();
    ctx.int8 = int8_options(args)?;
    let eval = match &args.eval {
        Some(spec) => Some(Evaluator::parse(spec, args.eval_limit)?),
        None => None,
    };
    let mut points = Vec::with_capacity(configs.len());
    let mut models = Vec::with_capacity(configs.len());
    let mut progress = Progress::new("configurations", configs.len());
    for (i, &config) in configs.iter().enumerate() {
        let (point, model) = measure(args, bytes, &ctx, config, eval.as_ref())?;
        points.push(point);
        models.push(model);
        progress.update(i + 1);
    }
    progress.finish();
    let fronts = |cost: &dyn Fn(&Point) -> Option<u64>| {
        let xy: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (cost(p).map_or(f64::NAN, |c| c as f64), p.accuracy()))
            .collect();
        pareto(&xy)
    };
    let by_size = fronts(&|p| Some(p.file_bytes));
    let by_macs = fronts(&|p| p.macs);
    for (k, p) in points.iter_mut().enumerate() {
        (p.pareto_size, p.pareto_macs) = (by_size[k], by_macs[k]);
        p.fits = budget.map(|b| b.fits(&p.cost()));
    }
    let chosen = budget.and_then(|b| choose(&points, &b));
    let report = SweepReport {
        model: args.model.display().to_string(),
        original: eval
            .as_ref()
            .and_then(|e| e.original(&args.model, bytes).ok()),
        accuracy: points
            .iter()
            .find_map(|p| p.task.as_ref().map(|t| t.primary.clone()))
            .unwrap_or_else(|| "SQNR dB".into()),
        budget: args.budget.clone(),
        chosen: chosen.map(|k| points[k].config.clone()),
        points,
    };
    if let Some(path) = &args.plot {
        let svg = plot(&report)?;
        write_atomic(path, svg.as_bytes())?;
    }
    if let Some(path) = &args.report {
        write_atomic(path, &serde_json::to_vec_pretty(&report)?)?;
    }
    if let (Some(k), Some(path)) = (chosen, &args.output) {
        write_atomic(path, &models[k])?;
    }
    if args.json {
        crate::cmd::print_json(out, &report)?;
    } else {
        write_table(out, &report)?;
    }
    match (budget, chosen) {
        (Some(b), None) => bail!("{}", nearest_miss(&report, &b, args)),
        (Some(_), Some(k)) if !args.json => {
            let path = args.output.as_deref().unwrap_or(Path::new("-"));
            writeln!(
                out,
                "\n{} fits: wrote {}",
                report.points[k].config,
                path.display()
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// The most accurate point that fits (the smaller file on a tie).
fn choose(points: &[Point], budget: &Budget) -> Option<usize> {
    (0..points.len())
        .filter(|&k| points[k].error.is_none() && budget.fits(&points[k].cost()))
        .max_by(|&a, &b| {
            let (pa, pb) = (&points[a], &points[b]);
            pa.accuracy()
                .total_cmp(&pb.accuracy())
                .then(pb.file_bytes.cmp(&pa.file_bytes))
        })
}

/// The refusal when nothing fits: the configuration that comes closest, and by how much.
fn nearest_miss(report: &SweepReport, budget: &Budget, args: &Args) -> String {
    let spec = args.budget.as_deref().unwrap_or_default();
    let Some(near) = report.points.iter().min_by(|a, b| {
        budget
            .overshoot(&a.cost())
            .total_cmp(&budget.overshoot(&b.cost()))
    }) else {
        return format!("--budget {spec}: the grid is empty");
    };
    let mut why = String::new();
    let cost = near.cost();
    let limits = [
        ("flash", budget.flash, cost.flash, true),
        ("ram", budget.ram, cost.ram, true),
        ("macs", budget.macs, cost.macs, false),
    ];
    for (name, limit, got, is_bytes) in limits {
        let Some(limit) = limit else { continue };
        let show = |v: u64| match (v, is_bytes) {
            (u64::MAX, _) => "unmeasured".to_string(),
            (v, true) => human::bytes(v),
            (v, false) => human::count(v),
        };
        let _ = write!(why, ", {name} {} of {}", show(got), show(limit));
    }
    format!(
        "--budget {spec}: none of the {} configurations fits; nearest: {}{why}",
        report.points.len(),
        near.config
    )
}

fn write_table(out: &mut dyn Write, report: &SweepReport) -> Result<()> {
    let acc = &report.accuracy;
    if let Some(o) = &report.original {
        writeln!(
            out,
            "original: {} {:.3} on {}\n",
            o.primary,
            o.value(),
            o.task
        )?;
    }
    writeln!(
        out,
        "{:<26} {:>9} {:>10} {:>9} {:>10} {:>8} {:>9} {:>5} {:>5}{}",
        "configuration",
        "params",
        "size",
        "MACs",
        "arena",
        "SQNR dB",
        acc.chars().take(9).collect::<String>(),
        "size*",
        "MACs*",
        if report.budget.is_some() {
            "  fits"
        } else {
            ""
        }
    )?;
    for p in &report.points {
        let star = |on: bool| if on { "*" } else { "" };
        writeln!(
            out,
            "{:<26} {:>9} {:>10} {:>9} {:>10} {:>8} {:>9} {:>5} {:>5}{}",
            p.config,
            human::count(p.params),
            human::bytes(p.file_bytes),
            p.macs.map_or_else(|| "-".into(), human::count),
            p.arena_bytes.map_or_else(|| "-".into(), human::bytes),
            p.sqnr_db.map_or_else(
                || (if p.error.is_some() { "-" } else { "exact" }).into(),
                |s| format!("{s:.1}")
            ),
            p.task
                .as_ref()
                .map_or_else(|| "-".into(), |t| format!("{:.3}", t.value())),
            star(p.pareto_size),
            star(p.pareto_macs),
            match p.fits {
                Some(true) => "   yes",
                Some(false) => "    no",
                None => "",
            }
        )?;
    }
    writeln!(
        out,
        "\n* on the Pareto front of {acc} against file size (size*) or MACs (MACs*)"
    )?;
    for p in report.points.iter().filter(|p| p.error.is_some()) {
        writeln!(
            out,
            "{}: not measured: {}",
            p.config,
            p.error.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

/// Accuracy against file size and against MACs, the fronts highlighted.
fn plot(report: &SweepReport) -> Result<String> {
    let acc = report.accuracy.as_str();
    let panel = |x: &str, cost: &dyn Fn(&Point) -> Option<f64>, front: fn(&Point) -> bool| {
        let pts = |on_front: bool| {
            report
                .points
                .iter()
                .filter(|p| !on_front || front(p))
                .filter_map(|p| Some((cost(p)?, p.accuracy())).filter(|q| q.1.is_finite()))
                .collect::<Vec<(f64, f64)>>()
        };
        Panel {
            title: format!("{acc} against {x}"),
            x: x.to_string(),
            y: acc.to_string(),
            series: vec![
                Series {
                    label: "configurations".into(),
                    points: pts(false),
                    line: false,
                    highlight: false,
                },
                Series {
                    label: "Pareto front".into(),
                    points: pts(true),
                    line: true,
                    highlight: true,
                },
            ],
        }
    };
    let size = panel(
        "file size (KiB)",
        &|p| Some(p.file_bytes as f64 / 1024.0),
        |p| p.pareto_size,
    );
    let macs = panel(
        "MACs (millions)",
        &|p| p.macs.map(|m| m as f64 / 1e6),
        |p| p.pareto_macs,
    );
    crate::plot::svg(&[size, macs], (600, 450))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_expand_and_refuse_bad_specs_by_name() {
        let g = grid(&["prune=0,0.2", "quantize=none,int8"]).unwrap();
        let names: Vec<String> = g.iter().map(Config::to_string).collect();
        assert_eq!(
            names,
            [
                "prune=0 quantize=none",
                "prune=0 quantize=int8",
                "prune=0.2 quantize=none",
                "prune=0.2 quantize=int8"
            ]
        );
        assert_eq!(grid(&["quantize=fp16"]).unwrap().len(), 1);
        for (spec, want) in [
            (
                vec!["prune=1.5"],
                "--sweep prune=1.5: \"1.5\" is not a ratio",
            ),
            (vec!["quantize=int4"], "unknown scheme \"int4\""),
            (vec!["depth=1"], "unknown key \"depth\""),
            (vec!["prune"], "expected KEY=V,V"),
            (vec!["prune=0", "prune=0.1"], "prune is given twice"),
        ] {
            let err = grid(&spec[..]).unwrap_err().to_string();
            assert!(err.contains(want), "{spec:?}: {err}");
        }
    }

    #[test]
    fn pareto_front_keeps_the_undominated_points() {
        // (cost, accuracy): b dominates a; c is cheaper but worse; d is dominated by b;
        // e has no cost.
        let pts = [
            (10.0, 0.5),
            (8.0, 0.6),
            (4.0, 0.4),
            (9.0, 0.6),
            (f64::NAN, 0.9),
        ];
        assert_eq!(pareto(&pts), [false, true, true, false, false]);
        assert_eq!(pareto(&[(1.0, 0.5), (1.0, 0.5)]), [true, true], "ties stay");
    }
}
