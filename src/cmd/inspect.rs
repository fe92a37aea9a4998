//! `edgetrim inspect`: what a model is and what it costs on a device — before flashing it.
//!
//! The report answers the questions asked before deploying: will it run (every unsupported
//! node, not just the first), how big is it (params, bytes), how much work is one inference
//! (MACs), and how much RAM does it need (the exact arena, and how close the memory plan
//! is to the liveness lower bound). With `--target cortex-m4` it also answers what the
//! firmware will cost: flash (model image + the code of the model's kernels) and RAM (the
//! arena planned for Cortex-M + runtime statics + stack), from measured tables
//! ([`crate::footprint`]). When a model cannot be planned, everything that does not need a
//! plan is still reported, and the command fails afterwards.

use crate::cmd::pack::PackTarget;
use crate::cmd::{parse_model, read_model};
use crate::footprint::{CodeTable, Footprint};
use crate::human;
use crate::inputs::{self, ShapeOverride};
use anyhow::{bail, Result};
use edgetrim_runtime::arena::ALIGN;
use edgetrim_runtime::{Model, PlanTables, Session, Target};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// `edgetrim inspect` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  edgetrim inspect yolo.onnx
  edgetrim inspect yolo.onnx --input-shape images=1x3x320x320
  edgetrim inspect yolo.onnx --json | jq .arena.total
  edgetrim inspect yolo-int8.onnx --target cortex-m4 --json | jq .footprint.flash.total

Exits non-zero when the model cannot run on the nano runtime (unsupported ops or a planning
error), after printing everything that could be determined.")]
pub struct Args {
    /// The ONNX model.
    pub model: PathBuf,
    /// Fix the shape of a graph input: NAME=1x3x224x224 (needed for free dims like batch N).
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shapes: Vec<ShapeOverride>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// The device to plan for; cortex-m4 adds the flash and RAM footprint (an estimate
    /// from measured code sizes, see scripts/measure-kernel-code.sh).
    #[arg(long, value_enum, default_value_t = PackTarget::Host)]
    pub target: PackTarget,
}

/// A graph input or output.
#[derive(Serialize)]
struct TensorDesc {
    name: String,
    dtype: Option<&'static str>,
    /// As declared in the file, e.g. `Nx3x224x224`.
    declared: Option<String>,
    /// As planned (after `--input-shape`), when planning succeeded.
    shape: Option<Vec<usize>>,
}

#[derive(Serialize)]
struct OpCount {
    op: String,
    count: usize,
}

#[derive(Serialize)]
struct ArenaDesc {
    total: usize,
    planned: usize,
    lower_bound: usize,
    persistent: usize,
    /// The tensors the session reads, kept at the start of the arena's head before the
    /// planned region.
    tensor_table: usize,
    /// The working step and tensor tables planning fills in the arena's head before the kept
    /// tensors and the planned region reuse it: `total` is `persistent` plus the larger of
    /// this and `tensor_table + planned`.
    working_tables: usize,
    /// planned / lower_bound: 1.0 is a perfect memory plan.
    ratio: f64,
}

#[derive(Serialize)]
struct UnsupportedNode {
    node: String,
    op: String,
    domain: String,
}

/// Everything `inspect` reports.
#[derive(Serialize)]
struct Report {
    model: String,
    opset: i64,
    nodes: usize,
    inputs: Vec<TensorDesc>,
    outputs: Vec<TensorDesc>,
    ops: Vec<OpCount>,
    /// Elements of initializers and `Constant` node values.
    params: u64,
    param_bytes: u64,
    macs: Option<u64>,
    arena: Option<ArenaDesc>,
    unsupported: Vec<UnsupportedNode>,
    /// The model's `metadata_props` (class names, head layout, training provenance).
    metadata: BTreeMap<String, String>,
    /// Why MACs and arena are missing, when they are.
    plan_error: Option<String>,
    /// Flash and RAM on the device (`--target cortex-m4`, when planning succeeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    footprint: Option<Footprint>,
}

fn describe(vi: edgetrim_runtime::onnx::ValueInfo<'_>) -> TensorDesc {
    TensorDesc {
        name: vi.name().to_string(),
        dtype: vi.dtype().map(|d| d.name()),
        declared: inputs::declared_text(&vi),
        shape: None,
    }
}

/// Plans `model` for `target` with the `--input-shape` overrides into `arena`, resized to
/// the exact size first: how `inspect` and `pack` both plan.
pub fn plan_session<'a>(
    model: &Model<'a>,
    overrides: &[ShapeOverride],
    target: Target,
    arena: &'a mut Vec<u8>,
) -> Result<Session<'a>> {
    let shapes = inputs::resolve_shapes(model, overrides)?;
    let shape_refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
    let report = Session::arena_report_for(model, &shape_refs, target)?;
    // A Vec<u8> is not 16-byte aligned: ALIGN spare bytes let the plan align itself.
    arena.resize(report.total + edgetrim_runtime::arena::ALIGN, 0);
    Ok(Session::with_target(model, &shape_refs, arena, target)?)
}

/// Fails, naming every op the runtime lacks, when any node uses one.
pub fn refuse_unsupported(model: &Model<'_>) -> Result<()> {
    let mut ops: Vec<&str> = model.unsupported_ops().map(|n| n.op_type()).collect();
    if ops.is_empty() {
        return Ok(());
    }
    let nodes = ops.len();
    ops.sort_unstable();
    ops.dedup();
    bail!(
        "{nodes} node(s) use ops the nano runtime does not support: {}",
        ops.join(", ")
    )
}

/// Plans the model for `args.target` to fill in shapes, MACs, the arena and the footprint
/// (of a `model_bytes`-byte file).
fn plan(args: &Args, model: &Model<'_>, model_bytes: usize, report: &mut Report) -> Result<()> {
    let target = match args.target {
        PackTarget::Host => Target::native(),
        t => t.runtime(),
    };
    let mut bytes = Vec::new();
    let session = plan_session(model, &args.input_shapes, target, &mut bytes)?;
    let arena = session.report();
    if args.target == PackTarget::CortexM4 {
        report.footprint =
            Some(CodeTable::cortex_m4()?.footprint(model_bytes, session.kernel_set(), &arena)?);
    }
    report.macs = Some(session.total_macs());
    for (desc, spec) in report.inputs.iter_mut().zip(session.inputs()) {
        desc.shape = Some(spec.shape.dims().to_vec());
    }
    for (desc, spec) in report.outputs.iter_mut().zip(session.outputs()) {
        desc.shape = Some(spec.shape.dims().to_vec());
        desc.dtype = Some(spec.dtype.name());
    }
    report.arena = Some(ArenaDesc {
        total: arena.total,
        planned: arena.planned,
        lower_bound: arena.lower_bound,
        persistent: arena.persistent,
        tensor_table: (arena.tables.tensors * PlanTables::ENTRY_BYTES[0]).next_multiple_of(ALIGN),
        working_tables: arena.tables.work_bytes(),
        ratio: if arena.lower_bound == 0 {
            1.0
        } else {
            arena.planned as f64 / arena.lower_bound as f64
        },
    });
    Ok(())
}

fn build_report(args: &Args, model: &Model<'_>, model_bytes: usize) -> Report {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for node in model.nodes() {
        *counts.entry(node.op_type()).or_default() += 1;
    }
    let mut ops: Vec<OpCount> = counts
        .into_iter()
        .map(|(op, count)| OpCount {
            op: op.to_string(),
            count,
        })
        .collect();
    ops.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.op.cmp(&b.op)));
    // Weights are initializers, or `Constant` nodes in some exporters (e.g. Paddle).
    let constants = model
        .nodes()
        .filter(|n| n.op_type() == "Constant")
        .filter_map(|n| n.attr("value").and_then(|a| a.tensor()));
    let (mut params, mut param_bytes) = (0u64, 0u64);
    for t in model.initializers().chain(constants) {
        let n: u64 = t.dims().map(|d| d.max(0) as u64).product();
        params += n;
        param_bytes += n * t.dtype().map_or(0, |d| d.size() as u64);
    }
    let mut report = Report {
        model: args.model.display().to_string(),
        opset: model.opset(),
        nodes: model.node_count(),
        inputs: model.inputs().map(describe).collect(),
        outputs: model.outputs().map(describe).collect(),
        ops,
        params,
        param_bytes,
        macs: None,
        arena: None,
        unsupported: model
            .unsupported_ops()
            .map(|n| UnsupportedNode {
                node: n.display_name().to_string(),
                op: n.op_type().to_string(),
                domain: n.domain().to_string(),
            })
            .collect(),
        metadata: model
            .metadata()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        plan_error: None,
        footprint: None,
    };
    if report.unsupported.is_empty() {
        if let Err(e) = plan(args, model, model_bytes, &mut report) {
            report.plan_error = Some(format!("{e:#}"));
        }
    }
    report
}

fn tensor_rows(out: &mut dyn Write, title: &str, tensors: &[TensorDesc]) -> Result<()> {
    writeln!(out, "\n{title}")?;
    let width = tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for t in tensors {
        let planned = t.shape.as_deref().map(inputs::dims_text);
        let shape = match (&planned, &t.declared) {
            (Some(p), Some(d)) if p != d => format!("{p} (declared {d})"),
            (Some(p), _) => p.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => "?".into(),
        };
        let dtype = t.dtype.unwrap_or("?");
        writeln!(out, "  {:width$}  {dtype:8}  {shape}", t.name)?;
    }
    Ok(())
}

fn print_text(out: &mut dyn Write, r: &Report) -> Result<()> {
    writeln!(out, "model    {}", r.model)?;
    writeln!(out, "opset    {}", r.opset)?;
    writeln!(out, "nodes    {}", r.nodes)?;
    writeln!(
        out,
        "params   {} ({})",
        human::count(r.params),
        human::bytes(r.param_bytes)
    )?;
    match r.macs {
        Some(m) => writeln!(out, "MACs     {}", human::count(m))?,
        None => writeln!(out, "MACs     n/a")?,
    }
    match &r.arena {
        Some(a) => writeln!(
            out,
            "arena    {} ({} B): planned {} vs liveness lower bound {} (ratio {:.2}), persistent {}, \
             tensor table {}, working tables {} (while planning, in their place)",
            human::bytes(a.total as u64),
            a.total,
            human::bytes(a.planned as u64),
            human::bytes(a.lower_bound as u64),
            a.ratio,
            human::bytes(a.persistent as u64),
            human::bytes(a.tensor_table as u64),
            human::bytes(a.working_tables as u64),
        )?,
        None => writeln!(out, "arena    n/a")?,
    }
    if let Some(f) = &r.footprint {
        print_footprint(out, f)?;
    }
    tensor_rows(out, "inputs", &r.inputs)?;
    tensor_rows(out, "outputs", &r.outputs)?;
    writeln!(out, "\nops")?;
    let width = r.ops.iter().map(|o| o.op.len()).max().unwrap_or(0);
    for o in &r.ops {
        writeln!(out, "  {:width$}  {:>5}", o.op, o.count)?;
    }
    if !r.metadata.is_empty() {
        writeln!(out, "\nmetadata")?;
        let width = r.metadata.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in &r.metadata {
            writeln!(out, "  {key:width$}  {value}")?;
        }
    }
    if !r.unsupported.is_empty() {
        writeln!(out, "\nunsupported: {} node(s)", r.unsupported.len())?;
        let width = r
            .unsupported
            .iter()
            .map(|u| u.node.len())
            .max()
            .unwrap_or(0);
        for u in &r.unsupported {
            let domain = if u.domain.is_empty() {
                String::new()
            } else {
                format!(" (domain {})", u.domain)
            };
            writeln!(out, "  {:width$}  {}{domain}", u.node, u.op)?;
        }
    }
    Ok(())
}

/// The `flash`/`RAM` lines of `--target cortex-m4`.
pub(crate) fn print_footprint(out: &mut dyn Write, f: &Footprint) -> Result<()> {
    let kib = |n: usize| human::bytes(n as u64);
    let (flash, ram) = (&f.flash, &f.ram);
    writeln!(
        out,
        "flash    {} on {} (estimate): model image {} ({} header + ONNX), code {} = startup {} \
         + runtime {} + kernels {} ({}; every kernel: code {})",
        kib(flash.total),
        f.target,
        kib(flash.model),
        kib(flash.header),
        kib(flash.code),
        kib(flash.startup),
        kib(flash.runtime),
        kib(flash.kernels),
        f.kernel_families.join(", "),
        kib(flash.code_all_kernels),
    )?;
    writeln!(
        out,
        "RAM      {} on {} (estimate): arena {} ({} B), stack {}, runtime statics {}",
        kib(ram.total),
        f.target,
        kib(ram.arena),
        ram.arena,
        kib(ram.stack),
        kib(ram.runtime_state),
    )?;
    let a = &ram.arena_parts;
    writeln!(
        out,
        "         arena = max(planning's working tables {}, then tensor table {} + activations \
         {}) + plan tables {} + constants {}",
        kib(a.working_tables),
        kib(a.tensors),
        kib(a.activations),
        kib(a.plan_tables),
        kib(a.constants),
    )?;
    Ok(())
}

/// Runs `edgetrim inspect`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let bytes = read_model(&args.model)?;
    let model = parse_model(&args.model, &bytes)?;
    let report = build_report(&args, &model, bytes.len());
    if args.json {
        crate::cmd::print_json(out, &report)?;
    } else {
        print_text(out, &report)?;
    }
    out.flush()?;
    refuse_unsupported(&model)?;
    if let Some(e) = report.plan_error {
        bail!("cannot plan {}: {e}", report.model);
    }
    Ok(())
}
