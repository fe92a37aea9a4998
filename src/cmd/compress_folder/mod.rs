//! `edgetrim compress MODEL_DIR -o OUT_DIR`: a speech model folder in, a folder out.
//!
//! A streaming RNN-T ships as three graphs that only work together (`encoder.onnx`,
//! `predictor.onnx`, `joiner.onnx` and `tokens.txt`, format in `models/train/rnnt/EXPORT.md`).
//! `--slice depth=D,width=W` cuts one subnet out of all three with the same slice
//! (`edgetrim_compress::slice`, driven by the rules in each graph's metadata); the usual
//! passes (clean, fp16/int8, layout) then run on each graph, each graph gets the usual
//! report, and the folder gets totals: what is flashed, what is computed per second of
//! audio, and the one arena the device's recogniser needs. `--slice auto --budget ...`
//! ([`auto`]) picks the largest slice that fits. The output folder is written whole or not
//! at all ([`output`]), with a generated model card saying what it was cut from and how.
//!
//! **MACs per second of audio** (the `macs` of a budget) is greedy streaming decoding's
//! cost, the definition of `macs_per_second` in `models/train/rnnt/model.py`: the encoder
//! runs `F / C` times per second (`F` = 25 stacked frames per second from the front-end
//! metadata, `C` the chunk), the predictor once per emitted symbol and the joiner once per
//! frame plus once per symbol, with [`SYMBOLS_PER_SECOND`] symbols.

pub mod auto;
mod calib;
mod output;

use crate::cmd::compress::{self as single, Args};
use crate::cmd::{read_model, write_atomic};
use crate::human;
use anyhow::{anyhow, bail, Context as _, Result};
use calib::Calib;
use edgetrim_compress::budget::Budget;
use edgetrim_compress::passes::{self, int8, Context, Pass, Pipeline};
use edgetrim_compress::pb::ModelProto;
use edgetrim_compress::report::{self, Report};
use edgetrim_compress::slice::{self, Slice};
use edgetrim_models::asr::nano::ArenaSizes;
use edgetrim_models::asr::Models;
use edgetrim_runtime::Model;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The graphs of a model folder, in the order every list here follows.
pub const GRAPHS: [&str; 3] = ["encoder", "predictor", "joiner"];

/// Symbols (characters, spaces included) emitted per second of speech, for the predictor
/// and joiner rates: the generated test split speaks 11.9 per second, pauses included.
pub const SYMBOLS_PER_SECOND: f64 = 12.0;

/// A model folder read into memory.
pub struct Folder {
    /// Where it was read from.
    pub dir: PathBuf,
    /// The graphs ([`GRAPHS`] order), decoded.
    pub graphs: Vec<ModelProto>,
    /// Their bytes as read.
    pub bytes: Vec<Vec<u8>>,
    /// `tokens.txt`, copied to the output unchanged.
    pub tokens: String,
}

impl Folder {
    /// Reads `DIR/{encoder,predictor,joiner}.onnx` and `DIR/tokens.txt`.
    pub fn read(dir: &Path) -> Result<Folder> {
        let mut graphs = Vec::new();
        let mut bytes = Vec::new();
        for g in GRAPHS {
            let path = dir.join(format!("{g}.onnx"));
            let b = read_model(&path).with_context(|| {
                format!("{} is a folder, so it must be a model folder (encoder.onnx, predictor.onnx, joiner.onnx, tokens.txt)", dir.display())
            })?;
            graphs.push(passes::decode(&b).with_context(|| path.display().to_string())?);
            bytes.push(b);
        }
        let tokens_path = dir.join("tokens.txt");
        let tokens = std::fs::read_to_string(&tokens_path)
            .with_context(|| format!("cannot read {}", tokens_path.display()))?;
        Ok(Folder {
            dir: dir.to_path_buf(),
            graphs,
            bytes,
            tokens,
        })
    }

    /// `DIR/NAME.onnx`, for messages.
    fn file(&self, i: usize) -> String {
        self.dir
            .join(format!("{}.onnx", GRAPHS[i]))
            .display()
            .to_string()
    }

    /// Cuts `slice` out of every graph (all checked before any is cut).
    fn sliced(&self, slice: &Slice) -> Result<(Vec<ModelProto>, Vec<slice::Cut>)> {
        let rules = (0..GRAPHS.len())
            .map(|i| slice::rules_of(&self.graphs[i]).with_context(|| self.file(i)))
            .collect::<Result<Vec<_>>>()?;
        slice
            .check(&rules.iter().collect::<Vec<_>>())
            .with_context(|| self.dir.display().to_string())?;
        let mut graphs = self.graphs.clone();
        let cuts = graphs
            .iter_mut()
            .enumerate()
            .map(|(i, g)| slice::slice_model(g, slice).with_context(|| self.file(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok((graphs, cuts))
    }
}

/// How each graph is compressed after slicing.
pub struct Plan {
    pipeline: Pipeline,
    int8: int8::Options,
    calib: Calib,
}

impl Plan {
    /// No passes: the graphs exactly as cut (what `edgetrim slices` measures and evaluates).
    pub fn uncompressed() -> Plan {
        Plan {
            pipeline: Pipeline::new(Vec::new()),
            int8: int8::Options::default(),
            calib: Calib::Random,
        }
    }

    /// Whether the passes change how weights are stored (fp16 or int8).
    pub fn quantizes(&self) -> bool {
        let p = self.pipeline.passes();
        p.contains(&Pass::Fp16) || p.contains(&Pass::Int8)
    }
}

/// One graph of the result.
#[derive(Clone, Debug, Serialize)]
pub struct GraphResult {
    /// File name in the folder.
    pub file: String,
    /// Runs per second of audio (see the module docs).
    pub runs_per_second: f64,
    /// The single-model report: original (when sliced), slice, then each pass.
    pub report: Report,
    #[serde(skip)]
    bytes: Vec<u8>,
}

impl GraphResult {
    /// The graph's ONNX bytes after slicing and the passes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The folder's totals: what a budget is checked against.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Totals {
    /// Parameters of the three graphs.
    pub params: u64,
    /// Bytes of the three ONNX files (what is flashed; the runtime reads them in place).
    pub flash_bytes: u64,
    /// Multiply-accumulates per second of audio.
    pub macs_per_second: Option<u64>,
    /// The recogniser's one arena: three sessions and its chunk/state scratch
    /// (`edgetrim_models::asr::nano::ArenaSizes`, planned on this machine).
    pub arena_bytes: Option<u64>,
}

impl Totals {
    /// The cost a budget is checked against (`None` when the runtime could not measure it).
    pub fn cost(&self) -> Option<edgetrim_compress::budget::Cost> {
        Some(edgetrim_compress::budget::Cost {
            flash: self.flash_bytes,
            macs: self.macs_per_second?,
            ram: self.arena_bytes?,
        })
    }
}

/// A compressed folder and its reports.
#[derive(Clone, Debug, Serialize)]
pub struct Built {
    /// The folder it was made from.
    pub source: String,
    /// The slice cut (`None`: the graphs were only compressed).
    pub slice: Option<String>,
    /// `edgetrim.asr.layers`, `hidden`, `pred_hidden` of the result.
    pub dims: Vec<(String, String)>,
    /// Per graph.
    pub graphs: Vec<GraphResult>,
    /// Folder totals.
    pub totals: Totals,
    /// With `--slice auto`: every slice tried, largest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<auto::Candidate>,
}

/// Metadata value `key` of `model`.
fn meta<'m>(model: &'m ModelProto, key: &str) -> Option<&'m str> {
    model
        .metadata_props
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

/// Runs per second of audio of each graph, from the encoder's front-end metadata.
fn rates(encoder: &ModelProto, file: &str) -> Result<[f64; 3]> {
    let num = |key: &str| -> Result<f64> {
        let text = meta(encoder, key)
            .ok_or_else(|| anyhow!("{file}: metadata {key} missing (not an ASR model folder?)"))?;
        text.parse::<f64>()
            .ok()
            .filter(|v| *v > 0.0)
            .ok_or_else(|| anyhow!("{file}: metadata {key} = {text:?} is not a positive number"))
    };
    let frames =
        num("edgetrim.asr.sample_rate")? / (num("edgetrim.asr.hop")? * num("edgetrim.asr.stack")?);
    let chunk = num("edgetrim.asr.chunk")?;
    Ok([
        frames / chunk,
        SYMBOLS_PER_SECOND,
        frames + SYMBOLS_PER_SECOND,
    ])
}

/// Slices (when asked), compresses and measures every graph of `folder`.
pub fn build(folder: &Folder, slice: Option<&Slice>, plan: &Plan) -> Result<Built> {
    let (mut graphs, cuts) = match slice {
        Some(s) => {
            let (g, c) = folder.sliced(s)?;
            (g, c.into_iter().map(Some).collect())
        }
        None => (folder.graphs.clone(), vec![None; GRAPHS.len()]),
    };
    if plan.quantizes() {
        // The rules name float weights that fp16 and int8 replace: a quantized graph
        // cannot be sliced again, so it does not claim it can.
        for g in &mut graphs {
            g.metadata_props.retain(|p| p.key != slice::RULES_KEY);
        }
    }
    let sliced = graphs
        .iter()
        .map(|g| passes::encode(g, false))
        .collect::<edgetrim_compress::Result<Vec<_>>>()?;
    let samples = if plan.pipeline.passes().contains(&Pass::Int8) {
        plan.calib.samples(&sliced)?
    } else {
        vec![None; GRAPHS.len()]
    };
    let rates = rates(&graphs[0], &folder.file(0))?;
    let mut results = Vec::with_capacity(GRAPHS.len());
    for (i, bytes) in sliced.iter().enumerate() {
        let shapes = Model::parse(bytes)
            .ok()
            .and_then(|m| crate::inputs::resolve_shapes(&m, &[]).ok());
        let ctx = Context {
            input_shapes: shapes,
            calib: samples[i].clone(),
            int8: plan.int8.clone(),
            ..Context::default()
        };
        let stages = plan
            .pipeline
            .run(bytes, &ctx)
            .with_context(|| folder.file(i))?;
        let probe = ctx.calib.as_ref().and_then(|s| s.first());
        let mut report = report::build(bytes, &stages, &ctx, probe.map(Vec::as_slice));
        if let Some(cut) = &cuts[i] {
            report.rows[0].pass = "slice".into();
            report.rows[0].summary = cut.to_string();
        }
        results.push(GraphResult {
            file: format!("{}.onnx", GRAPHS[i]),
            runs_per_second: rates[i],
            report,
            bytes: stages
                .last()
                .map_or_else(|| bytes.to_vec(), |s| s.bytes.clone()),
        });
    }
    let totals = totals(&results);
    let dims = ["layers", "hidden", "pred_hidden"]
        .iter()
        .filter_map(|k| {
            let v = meta(&graphs[0], &format!("edgetrim.asr.{k}"))?;
            Some((k.to_string(), v.to_string()))
        })
        .collect();
    Ok(Built {
        source: folder.dir.display().to_string(),
        slice: slice.map(Slice::to_string),
        dims,
        graphs: results,
        totals,
        candidates: Vec::new(),
    })
}

fn totals(results: &[GraphResult]) -> Totals {
    let last = |r: &GraphResult| r.report.last().cloned();
    let macs = results.iter().map(|r| {
        let m = last(r)?.macs?;
        Some(m as f64 * r.runs_per_second)
    });
    let arena = (|| {
        let parse = |i: usize| Model::parse(&results[i].bytes).ok();
        let models = Models {
            encoder: parse(0)?,
            predictor: parse(1)?,
            joiner: parse(2)?,
        };
        ArenaSizes::of(&models).ok().map(|s| s.total() as u64)
    })();
    Totals {
        params: results.iter().filter_map(last).map(|r| r.params).sum(),
        flash_bytes: results.iter().map(|r| r.bytes.len() as u64).sum(),
        macs_per_second: macs.sum::<Option<f64>>().map(|m| m.round() as u64),
        arena_bytes: arena,
    }
}

/// Puts each original graph's row first in its report (sliced folders only: otherwise
/// the first row already is the original).
fn add_original_rows(built: &mut Built, folder: &Folder) {
    if built.slice.is_none() {
        return;
    }
    for (r, bytes) in built.graphs.iter_mut().zip(&folder.bytes) {
        let original = report::build(bytes, &[], &Context::default(), None);
        r.report.rows.insert(0, original.rows[0].clone());
    }
}

/// What `--slice` asks for.
enum SliceFlag {
    None,
    Fixed(Slice),
    Auto(Budget, String),
}

fn slice_flag(args: &Args) -> Result<SliceFlag> {
    let flag = match (args.slice.as_deref(), args.budget.as_deref()) {
        (None, None) => SliceFlag::None,
        (Some("auto"), Some(b)) => {
            SliceFlag::Auto(b.parse().map_err(|e| anyhow!("--{e}"))?, b.to_string())
        }
        (Some("auto"), None) => {
            bail!("--slice auto needs --budget flash=SIZE[,macs=N][,ram=SIZE]")
        }
        (_, Some(_)) => bail!("--budget only applies to --slice auto"),
        (Some(s), None) => SliceFlag::Fixed(s.parse().map_err(|e| anyhow!("--{e}"))?),
    };
    Ok(flag)
}

/// Runs `edgetrim compress` on a model folder.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    if !args.input_shapes.is_empty() {
        bail!("--input-shape does not apply to a model folder: its graphs declare their shapes");
    }
    if !args.prune.is_empty() || args.no_reconstruct {
        bail!(
            "--prune does not apply to a model folder (cut a smaller model out of it with --slice)"
        );
    }
    let flag = slice_flag(args)?;
    let pipeline = single::pipeline(args)?;
    let int8 = if pipeline.passes().contains(&Pass::Int8) {
        single::int8_options(args)?
    } else {
        int8::Options::default()
    };
    let calib = Calib::from_flag(args.calib.as_deref())?;
    let folder = Folder::read(&args.model)?;
    let plan = Plan {
        pipeline,
        int8,
        calib,
    };
    let mut built = match &flag {
        SliceFlag::None => build(&folder, None, &plan)?,
        SliceFlag::Fixed(s) => build(&folder, Some(s), &plan)?,
        SliceFlag::Auto(budget, text) => {
            let table = (!args.json).then_some(&mut *out);
            auto::search(&folder, &plan, budget, text, table)?
        }
    };
    add_original_rows(&mut built, &folder);
    // The command as typed, but for the binary's path.
    let command: Vec<String> = std::iter::once("edgetrim".to_string())
        .chain(std::env::args().skip(1))
        .collect();
    let card = output::card(&built, &plan, &command);
    let mut files: Vec<(String, Vec<u8>)> = built
        .graphs
        .iter()
        .map(|g| (g.file.clone(), g.bytes.clone()))
        .collect();
    files.push(("tokens.txt".into(), folder.tokens.clone().into_bytes()));
    files.push(("README.md".into(), card.into_bytes()));
    output::write_folder(args.output()?, &files)?;
    if let Some(path) = &args.report {
        write_atomic(path, &serde_json::to_vec_pretty(&built)?)?;
    }
    if args.json {
        return crate::cmd::print_json(out, &built);
    }
    print(out, &built, &plan)?;
    writeln!(
        out,
        "\nwrote {} ({} files, {} of ONNX, {:.1}% of the original)",
        args.output()?.display(),
        files.len(),
        human::bytes(built.totals.flash_bytes),
        100.0 * built.totals.flash_bytes as f64
            / folder.bytes.iter().map(Vec::len).sum::<usize>().max(1) as f64
    )?;
    Ok(())
}

/// Each graph's report, then the folder totals.
fn print(out: &mut dyn Write, built: &Built, plan: &Plan) -> Result<()> {
    for g in &built.graphs {
        writeln!(out, "== {} ==", g.file)?;
        single::print_table(out, &g.report)?;
        writeln!(out)?;
    }
    writeln!(
        out,
        "{:<14} {:>10} {:>10} {:>10} {:>8} {:>10}",
        "graph", "params", "size", "MACs/run", "runs/s", "MACs/s"
    )?;
    for g in &built.graphs {
        let last = g.report.last();
        let macs = last.and_then(|r| r.macs);
        writeln!(
            out,
            "{:<14} {:>10} {:>10} {:>10} {:>8.2} {:>10}",
            g.file,
            human::count(last.map_or(0, |r| r.params)),
            human::bytes(g.bytes.len() as u64),
            macs.map_or_else(|| "-".into(), human::count),
            g.runs_per_second,
            macs.map_or_else(
                || "-".into(),
                |m| human::count((m as f64 * g.runs_per_second) as u64)
            ),
        )?;
    }
    let t = &built.totals;
    writeln!(
        out,
        "{:<14} {:>10} {:>10} {:>10} {:>8} {:>10}",
        "total",
        human::count(t.params),
        human::bytes(t.flash_bytes),
        "",
        "",
        t.macs_per_second.map_or_else(|| "-".into(), human::count),
    )?;
    let arena = t
        .arena_bytes
        .map_or_else(|| "- (the runtime cannot plan it)".into(), human::bytes);
    writeln!(
        out,
        "recogniser arena (three sessions + chunk and state scratch): {arena}"
    )?;
    if let Some(s) = &built.slice {
        let dims: Vec<String> = built.dims.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(out, "slice {s} of {}: {}", built.source, dims.join(", "))?;
    }
    if plan.pipeline.passes().contains(&Pass::Int8) && matches!(plan.calib, Calib::Random) {
        writeln!(
            out,
            "\nwarning: int8 calibrated on {} random inputs per graph, a placeholder: \
             pass --calib speech:DIR with real audio",
            passes::RANDOM_SAMPLES
        )?;
    }
    Ok(())
}
