//! `edgetrim slices`: every slice of a supernet folder with what it costs — parameters,
//! flash, MACs per second of audio, the recogniser's arena — and, with `--eval asr:DIR`, what
//! it recognises (WER, CER, RTF on a speech folder), as a table, JSON or an SVG chart.
//!
//! The slices are the grid `--slice auto` searches (`compress_folder::auto::grid`), cut and
//! measured by the same code (`compress_folder::build`, with no passes), and evaluated by the
//! same streaming recogniser as `eval-asr`: the table is what choosing a slice for a device
//! trades, measured rather than predicted.

use crate::asr::ModelFolder;
use crate::backend::BackendKind;
use crate::cmd::compress_folder::{auto, build, Folder, Plan};
use crate::cmd::eval_asr;
use crate::human;
use crate::plot::{Panel, Series};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `edgetrim slices` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  edgetrim slices models/zoo/rnnt-todm
  edgetrim slices models/zoo/rnnt-todm --eval asr:data/speech/test --plot slices.svg
  edgetrim slices models/zoo/rnnt-todm --eval asr:data/speech/test --limit 100 --json

The slices are depths 1..L with widths 0.25..1 in steps of 1/8, largest first, each cut from
all three graphs by the slicing rules in their metadata (as `edgetrim compress --slice`
does). MACs/s counts greedy streaming decoding per second of audio; the arena is the one
buffer the device's recogniser needs (three sessions plus chunk and state scratch).")]
pub struct Args {
    /// The supernet's model folder (encoder.onnx, predictor.onnx, joiner.onnx, tokens.txt).
    #[arg(value_name = "MODEL_DIR")]
    pub model: PathBuf,
    /// Also transcribe a speech folder with every slice: `asr:DIR`.
    #[arg(long, value_name = "asr:DIR")]
    pub eval: Option<String>,
    /// With --eval: only the first N utterances.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// With --eval: which runtime executes the graphs.
    #[arg(long, value_enum, default_value_t = BackendKind::Nano)]
    pub backend: BackendKind,
    /// With --eval: write a WER-versus-parameters chart here (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `--json` prints.
#[derive(Serialize, Debug)]
pub struct Report {
    /// The supernet folder.
    pub model: String,
    /// The speech folder of `--eval`.
    pub data: Option<String>,
    /// Every slice, largest first.
    pub slices: Vec<Row>,
}

/// One slice.
#[derive(Serialize, Debug)]
pub struct Row {
    /// `depth=D,width=W`.
    pub slice: String,
    /// Encoder layers, hidden and predictor hidden sizes of the slice.
    pub dims: Vec<(String, String)>,
    /// Parameters of the three graphs.
    pub params: u64,
    /// Bytes of the three ONNX files.
    pub flash_bytes: u64,
    /// Multiply-accumulates per second of audio.
    pub macs_per_second: Option<u64>,
    /// The recogniser's arena on this machine.
    pub arena_bytes: Option<u64>,
    /// With --eval.
    pub wer: Option<f64>,
    /// With --eval.
    pub cer: Option<f64>,
    /// With --eval: fraction of utterances transcribed exactly.
    pub exact: Option<f64>,
    /// With --eval: compute / audio time.
    pub rtf: Option<f64>,
}

/// The speech folder of `--eval asr:DIR`.
fn eval_dir(flag: Option<&str>) -> Result<Option<PathBuf>> {
    match flag {
        None => Ok(None),
        Some(f) => match f.strip_prefix("asr:") {
            Some(dir) if !dir.is_empty() => Ok(Some(PathBuf::from(dir))),
            _ => bail!("--eval {f:?}: expected asr:DIR (a speech folder)"),
        },
    }
}

/// Measures (and evaluates on `data`) every slice of the grid.
fn measure(args: &Args, folder: &Folder, data: Option<&Path>) -> Result<Vec<Row>> {
    let grid = auto::grid(folder)?;
    let plan = Plan::uncompressed();
    let mut rows = Vec::with_capacity(grid.len());
    for (i, (params, slice)) in grid.iter().enumerate() {
        let built = build(folder, Some(slice), &plan)?;
        let mut row = Row {
            slice: slice.to_string(),
            dims: built.dims.clone(),
            params: *params,
            flash_bytes: built.totals.flash_bytes,
            macs_per_second: built.totals.macs_per_second,
            arena_bytes: built.totals.arena_bytes,
            wer: None,
            cer: None,
            exact: None,
            rtf: None,
        };
        if let Some(data) = data {
            if !args.json {
                eprintln!("[{}/{}] {slice}", i + 1, grid.len());
            }
            let graphs = [0, 1, 2].map(|g| built.graphs[g].bytes().to_vec());
            let sliced = ModelFolder::from_parts(&folder.dir, graphs, folder.tokens.clone());
            let r = eval_asr::evaluate_folder(&sliced, data, args.backend, args.limit)
                .with_context(|| format!("slice {slice}"))?;
            (row.wer, row.cer, row.exact, row.rtf) =
                (Some(r.wer), Some(r.cer), Some(r.exact), Some(r.rtf));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Runs `edgetrim slices`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let data = eval_dir(args.eval.as_deref())?;
    if data.is_none() && (args.plot.is_some() || args.limit.is_some()) {
        bail!("--plot and --limit need --eval asr:DIR (the chart plots WER)");
    }
    if args.limit == Some(0) {
        bail!("--limit 0 evaluates nothing; give at least 1");
    }
    let folder = Folder::read(&args.model)?;
    let rows = measure(&args, &folder, data.as_deref())?;
    if let Some(path) = &args.plot {
        let svg = plot(&rows, &args.model.display().to_string())?;
        crate::cmd::write_atomic(path, svg.as_bytes())?;
    }
    let report = Report {
        model: args.model.display().to_string(),
        data: data.map(|d| d.display().to_string()),
        slices: rows,
    };
    if args.json {
        return crate::cmd::print_json(out, &report);
    }
    write_table(out, &report)?;
    if let Some(path) = &args.plot {
        writeln!(out, "\nwrote {}", path.display())?;
    }
    Ok(())
}

fn write_table(out: &mut dyn Write, report: &Report) -> Result<()> {
    let opt = |v: Option<u64>, f: fn(u64) -> String| v.map_or_else(|| "-".into(), f);
    let pct = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{:.2}%", v * 100.0));
    writeln!(
        out,
        "{:<20} {:>14} {:>9} {:>10} {:>9} {:>10} {:>8} {:>8} {:>7}",
        "slice", "layers/H/P", "params", "flash", "MACs/s", "arena", "WER", "CER", "RTF"
    )?;
    for r in &report.slices {
        let dims: Vec<&str> = r.dims.iter().map(|(_, v)| v.as_str()).collect();
        writeln!(
            out,
            "{:<20} {:>14} {:>9} {:>10} {:>9} {:>10} {:>8} {:>8} {:>7}",
            r.slice,
            dims.join("/"),
            human::count(r.params),
            human::bytes(r.flash_bytes),
            opt(r.macs_per_second, human::count),
            opt(r.arena_bytes, human::bytes),
            pct(r.wer),
            pct(r.cer),
            r.rtf.map_or_else(|| "-".into(), |v| format!("{v:.4}")),
        )?;
    }
    Ok(())
}

/// WER (%) against parameters, one point per slice, a line per depth.
fn plot(rows: &[Row], title: &str) -> Result<String> {
    let points: Vec<(usize, f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            let depth = r.dims.iter().find(|(k, _)| k == "layers")?.1.parse().ok()?;
            Some((depth, r.params as f64 / 1e6, r.wer? * 100.0))
        })
        .collect();
    if points.is_empty() {
        bail!("--plot: no slice was evaluated");
    }
    let depths = points.iter().map(|p| p.0).max().unwrap_or(0);
    let series = (1..=depths)
        .map(|depth| Series {
            label: format!("depth {depth}"),
            points: points
                .iter()
                .filter(|p| p.0 == depth)
                .map(|p| (p.1, p.2))
                .collect(),
            line: true,
            highlight: false,
        })
        .collect();
    let panel = Panel {
        title: format!("slices of {title}"),
        x: "parameters (millions)".into(),
        y: "WER (%)".into(),
        series,
    };
    crate::plot::svg(&[panel], (900, 600))
}
