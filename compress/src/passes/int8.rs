//! The int8 pass: post-training quantization to a QDQ model.
//!
//! Every Conv, Gemm and MatMul (but those `--keep-float` names) gets int8 operands, written
//! in the QDQ form tract and onnxruntime both load:
//!
//! - **weights**: int8 initializers, symmetric (zero point 0, range ±127) with one scale
//!   per output channel (Conv axis 0; Gemm/MatMul the output-column axis), behind a
//!   `DequantizeLinear(axis)` — or one scale for the whole tensor where that grid is
//!   fine enough ([`Options::per_tensor_sqnr_db`]), which saves the scale tables. Per-axis
//!   scales need opset 13: an opset 11-12 model is raised to it where every node reads the same
//!   there ([`opset`]), otherwise its weights get one scale per tensor.
//! - **activations**: every float input of those nodes that is not a weight gets a
//!   `QuantizeLinear → DequantizeLinear` pair with one scale and zero point per tensor,
//!   **int8 asymmetric** — the TFLite / CMSIS-NN convention the runtime's integer kernels
//!   follow (onnxruntime runs int8 activations as well as its default uint8). The range
//!   comes from running the float model on calibration inputs ([`super::calib`]). The
//!   pair sits right after the producer; only the quantized nodes read its output, other
//!   readers keep the float tensor.
//! - **biases**: int32 with scale `s_x · s_w[c]` and zero point 0 behind a
//!   `DequantizeLinear(axis=0)`, as onnxruntime's quantizer writes them, so that an integer
//!   kernel adds them straight to its i32 accumulator (and onnxruntime fuses the group into
//!   QLinearConv). A bias that would overflow int32 at that scale (a near-zero weight
//!   channel), or that is shared, broadcast or scaled (Gemm alpha/beta ≠ 1), stays float.
//!
//! Run as written, each pair rounds to the int8 grid and back, so a float runtime computes
//! what the integer kernel does. edgetrim's runtime recognises `Q → DQ → Conv(DQ(W_i8),
//! DQ(B_i32)) [→ SiLU/Relu/Clip]` at plan time (`runtime/src/plan/qdq.rs`) and runs it as one
//! int8 GEMM reading the weights in place (depthwise convs on a direct int8 kernel); Gemm
//! and MatMul run the activation pairs as float but read their int8 weights in place too
//! (`runtime/src/plan/qdq/matmul.rs`), so no f32 copy of a weight sits in the arena.
//!
//! With [`Options::act_tables`], a conv output that only feeds SiLU, HardSwish or
//! HardSigmoid gets a pair too, between the conv and the activation, which the runtime
//! then computes as a 256-entry table (`runtime/src/plan/qdq/table.rs`).
//!
//! With [`Options::pow2_scales`], activation scales are rounded up to powers of two, which
//! the runtime divides by exactly with a multiplication.
//!
//! With [`Options::int8_joins`], the Concat, Split, MaxPool, AveragePool and Add nodes
//! between int8 nodes are quantized too, the first three on one grid for all their inputs and outputs
//! ([`joins`]), which the runtime runs on int8 (`runtime/src/plan/qdq/joins.rs`).
//!
//! LSTMs get int8 W and R with one scale per gate row and float activations ([`lstm`]).
//!
//! Deterministic: nodes are visited in graph order, new tensors get numbered names
//! ([`Names`]), and the random calibration inputs are seeded.

use super::calib::{Method, Stats};
use super::Context;
use crate::build::{dt, tensor, value_info};
use crate::error::{Error, Result};
use crate::exec;
use crate::graph::{self, Uses};
use edgetrim_runtime::ops::quant::quantize;
use prost::Message;
use std::collections::{BTreeSet, HashMap, HashSet};
use tract_onnx::pb::{
    attribute_proto::AttributeType, AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto,
};

mod joins;
mod lstm;
mod opset;

use joins::{joins, own_grids, share_ranges};

/// What the int8 pass is told.
#[derive(Clone, Debug)]
pub struct Options {
    /// How activation ranges are chosen.
    pub method: Method,
    /// Nodes whose name matches one of these stay float: a substring, or a glob with `*`
    /// and `?` matched against the whole name.
    pub keep_float: Vec<String>,
    /// A weight gets one scale per tensor instead of one per output channel when each of
    /// its output channels keeps a signal-to-quantization-noise ratio of at least this
    /// many dB on that single grid; `None`: always per channel (where the opset allows).
    pub per_tensor_sqnr_db: Option<f64>,
    /// Conv/Gemm/MatMul weights within ±64 instead of ±127 (onnxruntime's
    /// `reduce_range`): one bit less precision, for CPUs whose fastest int8 multiply
    /// (x86 `vpmaddubsw` without VNNI) saturates on full-range weights. The runtime then
    /// runs those convs on its narrow-weight kernel. LSTM weights keep ±127: no kernel
    /// reads them faster narrow.
    pub reduce_range: bool,
    /// Also quantize each int8 conv's output where it only feeds SiLU, HardSwish or
    /// HardSigmoid (a `Q → DQ` pair between the two): the activation then has 256
    /// possible inputs, and the runtime computes it as a table lookup in the conv's
    /// epilogue (TFLite's int8 activations) — faster, for one more rounding per value.
    pub act_tables: bool,
    /// Activation scales rounded up to powers of two: the runtime then quantizes with a
    /// multiplication by the exact reciprocal instead of a division (a Cortex-M4's `VDIV`
    /// takes 14 cycles, `VMUL` one), for grids up to twice as coarse.
    pub pow2_scales: bool,
    /// Also quantize the Concat, Split, MaxPool, AveragePool and Add nodes whose outputs
    /// only int8 nodes read — the first three on one grid (the union of their tensors' ranges) for
    /// every input and output, as TFLite's int8 kernels require: the runtime then moves
    /// int8 through a CSP/ELAN block instead of dequantizing, computing in f32 and
    /// quantizing again, and the activations feeding them become int8 tables (with
    /// `act_tables`).
    pub int8_joins: bool,
}

impl Options {
    /// The largest int8 weight magnitude written.
    fn weight_max(&self) -> f32 {
        if self.reduce_range {
            64.0
        } else {
            127.0
        }
    }
}

/// The default [`Options::per_tensor_sqnr_db`]. A per-channel scale table costs 4 bytes per
/// output channel, and as many again in the int32 bias's scales — 3% of an int8
/// YOLO9tr-s file — and buys precision only where channel ranges differ a lot. 25 dB for
/// the worst channel stays below the noise the int8 activation grids add (the noisiest
/// YOLO9tr-s layers measure 28–30 dB at their outputs); 135 of its 136 convs pass, and its
/// mAP50 does not move.
pub const PER_TENSOR_SQNR_DB: f64 = 25.0;

impl Default for Options {
    fn default() -> Options {
        Options {
            method: Method::default(),
            keep_float: Vec::new(),
            per_tensor_sqnr_db: Some(PER_TENSOR_SQNR_DB),
            reduce_range: false,
            act_tables: false,
            pow2_scales: false,
            int8_joins: false,
        }
    }
}

/// Whether `name` matches `pattern` (glob when it has `*` or `?`, else substring).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
            (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    if pattern.contains(['*', '?']) {
        glob(pattern.as_bytes(), name.as_bytes())
    } else {
        name.contains(pattern)
    }
}

/// A weight operand: input slot and output-channel axis (`None`: one scale per tensor).
#[derive(Clone, Copy)]
struct Weight {
    slot: usize,
    axis: Option<usize>,
}

/// A node to quantize.
#[derive(Clone)]
struct Target {
    node: usize,
    /// Input slots holding activations.
    acts: Vec<usize>,
    weight: Option<Weight>,
    /// Input slot of a bias that may become int32.
    bias: Option<usize>,
}

/// A weight already quantized: its dequantized edge and per-channel scales.
struct QuantizedWeight {
    edge: String,
    scales: Vec<f32>,
}

/// Runs the int8 pass; returns a one-line summary.
pub fn run(model: &mut ModelProto, ctx: &Context) -> Result<String> {
    let opts = &ctx.int8;
    let opset = opset::version(model);
    if opset < 10 {
        return Err(Error::Unsupported(format!(
            "int8 needs opset 10 or later (QuantizeLinear); this model imports opset {opset}"
        )));
    }
    // Per-channel weight scales need opset 13; `kept_below` names what prevents it.
    let kept_below = opset::raise_to_13(model, &ctx.shape_refs()).err();
    let per_axis = kept_below.is_none();
    let q_max = opts.weight_max();
    let g = model.graph.get_or_insert_with(Default::default);
    let (mut targets, kept) = select(g, &opts.keep_float, per_axis);
    let joined = match opts.int8_joins {
        true => joins(g, &opts.keep_float, &targets),
        false => Vec::new(),
    };
    targets.extend(joined.iter().cloned());
    let mut acts: Vec<String> = Vec::new();
    for t in &targets {
        for &slot in &t.acts {
            let name = &g.node[t.node].input[slot];
            if !acts.contains(name) {
                acts.push(name.clone());
            }
        }
    }
    // Conv outputs that feed an activation worth a table (`act_tables`), and its nodes.
    let tabulated: Vec<(usize, String, Vec<usize>)> = match opts.act_tables {
        true => tabulated_activations(g, &targets),
        false => Vec::new(),
    };
    for (_, c, _) in &tabulated {
        if !acts.contains(c) {
            acts.push(c.clone());
        }
    }
    let stats = calibrate(model, ctx, &acts)?;
    let g = model.graph.get_or_insert_with(Default::default);
    let mut taken = graph::names(g);
    let mut names = Names::default();
    let mut ranges: HashMap<&str, (f32, f32)> = acts
        .iter()
        .zip(&stats)
        .filter_map(|(name, s)| Some((name.as_str(), s.as_ref()?.range(opts.method))))
        .collect();
    let joins_int8 = share_ranges(g, &joined, &mut ranges);
    let adds = joined
        .iter()
        .filter(|t| own_grids(&g.node[t.node].op_type))
        .filter(|t| (t.acts.iter()).all(|&s| ranges.contains_key(g.node[t.node].input[s].as_str())))
        .count();
    let act_params: HashMap<&str, (f32, i8)> = ranges
        .iter()
        .map(|(&name, &(lo, hi))| (name, params(lo, hi, opts.pow2_scales)))
        .collect();

    let mut new_inits: Vec<TensorProto> = Vec::new();
    // Weight and bias DequantizeLinear nodes, placed just before their first reader so a
    // float runtime holds one dequantized weight at a time.
    let mut before: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut weights: HashMap<String, QuantizedWeight> = HashMap::new();
    // float → (item number, dequantized edge)
    let mut act_edges: HashMap<String, (usize, String)> = HashMap::new();
    let (mut quantized, mut float_bias, mut skipped) = (0usize, 0usize, 0usize);
    let mut per_tensor = 0usize;
    let mut int8_nodes = HashSet::new();
    for t in &targets {
        if t.acts
            .iter()
            .any(|&s| !act_params.contains_key(g.node[t.node].input[s].as_str()))
        {
            skipped += 1; // an activation was not float32 (or never computed)
            continue;
        }
        int8_nodes.insert(t.node);
        let s_x = act_params[g.node[t.node].input[t.acts[0]].as_str()].0;
        for &slot in &t.acts {
            let x = g.node[t.node].input[slot].clone();
            let (_, edge) = act_edges.entry(x.clone()).or_insert_with(|| {
                let k = names.item(&taken);
                (k, names.name(&mut taken, 'd', k))
            });
            g.node[t.node].input[slot] = edge.clone();
        }
        let Some(w) = t.weight else {
            quantized += 1;
            continue;
        };
        let w_name = g.node[t.node].input[w.slot].clone();
        if !weights.contains_key(&w_name) {
            let init = &g.initializer[graph::initializer_index(g)[w_name.as_str()]];
            let axis = w
                .axis
                .filter(|&a| !per_tensor_fits(init, a, opts.per_tensor_sqnr_db, q_max));
            per_tensor += usize::from(axis.is_none());
            let k = names.item(&taken);
            let named = (&mut names, &mut taken, k);
            let (q, node) = quantize_weight(init, axis, q_max, named, &mut new_inits)?;
            before.entry(t.node).or_default().push(node);
            weights.insert(w_name.clone(), q);
        }
        let qw = &weights[&w_name];
        g.node[t.node].input[w.slot] = qw.edge.clone();
        if let Some(slot) = t.bias {
            let b_name = g.node[t.node].input[slot].clone();
            let init = &g.initializer[graph::initializer_index(g)[b_name.as_str()]];
            let k = names.item(&taken);
            let named = (&mut names, &mut taken, k);
            match quantize_bias(init, s_x, &qw.scales, named, &mut new_inits)? {
                Some(node) => {
                    g.node[t.node].input[slot] = node.output[0].clone();
                    before.entry(t.node).or_default().push(node);
                }
                None => float_bias += 1,
            }
        }
        quantized += 1;
    }

    // Pre-activation pairs: the activation's nodes read the dequantized conv output.
    let mut tables = 0usize;
    for (conv, c, readers) in &tabulated {
        if !int8_nodes.contains(conv) || !act_params.contains_key(c.as_str()) {
            continue;
        }
        let (_, edge) = act_edges.entry(c.clone()).or_insert_with(|| {
            let k = names.item(&taken);
            (k, names.name(&mut taken, 'd', k))
        });
        for &r in readers {
            for input in g.node[r].input.iter_mut().filter(|i| *i == c) {
                input.clone_from(edge);
            }
        }
        tables += 1;
    }

    // Activation pairs, right after their producers (graph inputs: first).
    let mut pairs: HashMap<String, Vec<NodeProto>> = HashMap::new();
    // One scale and zero point initializer per grid, whichever pairs use it: a runtime
    // plans a table entry for every initializer, and pairs share few grids (the joins'
    // grids, powers of two).
    let mut grids: HashMap<(u32, i8), (String, String)> = HashMap::new();
    for name in &acts {
        let Some((k, edge)) = act_edges.get(name) else {
            continue;
        };
        let (scale, zero) = act_params[name.as_str()];
        let (s, z) = grids
            .entry((scale.to_bits(), zero))
            .or_insert_with(|| {
                let s = names.name(&mut taken, 's', *k);
                let z = names.name(&mut taken, 'z', *k);
                new_inits.push(crate::build::tensor_f32(&s, &[], &[scale]));
                new_inits.push(tensor(&z, dt::INT8, &[], vec![zero as u8]));
                (s, z)
            })
            .clone();
        let q = names.name(&mut taken, 'q', *k);
        pairs.insert(
            name.clone(),
            vec![
                node("QuantizeLinear", &[name, &s, &z], &q, None),
                node("DequantizeLinear", &[&q, &s, &z], edge, None),
            ],
        );
    }
    let mut nodes = Vec::new();
    for v in &g.input {
        nodes.extend(pairs.remove(&v.name).unwrap_or_default());
    }
    for (i, n) in std::mem::take(&mut g.node).into_iter().enumerate() {
        let outs = n.output.clone();
        nodes.extend(before.remove(&i).unwrap_or_default());
        nodes.push(n);
        for o in &outs {
            nodes.extend(pairs.remove(o).unwrap_or_default());
        }
    }
    g.node = nodes;
    g.initializer.extend(new_inits);
    let lstms = match per_axis {
        true => lstm::quantize(g, &opts.keep_float, &mut names, &mut taken)?,
        false => 0,
    };
    let removed = graph::drop_unused_initializers(g);
    graph::check_order(g)?;

    let n = ctx.calib_count();
    let source = if ctx.calib.is_some() {
        format!("{n} given inputs")
    } else {
        format!("{n} RANDOM inputs (placeholder: pass --calib for real ranges)")
    };
    let scales = if per_axis {
        format!(
            "{} per-channel, {per_tensor} per-tensor",
            weights.len() - per_tensor
        )
    } else {
        format!(
            "per-tensor: opset {opset}, and a {} keeps it below 13",
            kept_below.unwrap_or_default()
        )
    };
    let mut notes = vec![format!(
        "{quantized} nodes int8 ({} weights {scales}, {} activations by {} on {source})",
        weights.len(),
        act_edges.len(),
        opts.method,
    )];
    if tables > 0 {
        notes.push(format!("{tables} activations quantized for tables"));
    }
    if joins_int8 > 0 {
        notes.push(format!(
            "{joins_int8} Concat/Split/MaxPool on one int8 grid"
        ));
    }
    if adds > 0 {
        notes.push(format!("{adds} Add/AveragePool nodes on int8"));
    }
    if kept > 0 {
        notes.push(format!("{kept} kept float by --keep-float"));
    }
    if skipped > 0 {
        notes.push(format!(
            "{skipped} left float (non-float32 or uncomputed input)"
        ));
    }
    if float_bias > 0 {
        notes.push(format!("{float_bias} biases kept float"));
    }
    if lstms > 0 {
        notes.push(format!("{lstms} LSTMs with int8 weights (per gate row)"));
    }
    notes.push(format!("{removed} float weights dropped"));
    Ok(notes.join(", "))
}

/// The Conv/Gemm/MatMul nodes to quantize, and how many `keep` names kept float.
fn select(g: &GraphProto, keep: &[String], per_axis: bool) -> (Vec<Target>, usize) {
    let uses = Uses::of(g);
    let inits = graph::initializer_index(g);
    let graph_inputs: HashSet<&str> = g.input.iter().map(|v| v.name.as_str()).collect();
    // A float32 initializer of the given rank that the runtime cannot override.
    let weight = |name: &str, rank: std::ops::RangeInclusive<usize>| {
        let t = &g.initializer[*inits.get(name)?];
        let ok = t.data_type == dt::FLOAT
            && !graph::is_external(t)
            && !graph_inputs.contains(name)
            && rank.contains(&t.dims.len());
        ok.then_some(t)
    };
    let is_act = |name: &str| !name.is_empty() && !inits.contains_key(name);
    let sole_reader = |name: &str| uses.readers(name).len() == 1 && !uses.is_fixed(name);
    let (mut targets, mut kept) = (Vec::new(), 0);
    for (i, n) in g.node.iter().enumerate() {
        let default_domain = n.domain.is_empty() || n.domain == "ai.onnx";
        if !default_domain || !matches!(n.op_type.as_str(), "Conv" | "Gemm" | "MatMul") {
            continue;
        }
        if keep.iter().any(|p| name_matches(p, graph::label(n))) {
            kept += 1;
            continue;
        }
        let input = |k: usize| n.input.get(k).map_or("", String::as_str);
        if !is_act(input(0)) {
            continue;
        }
        let mut t = Target {
            node: i,
            acts: vec![0],
            weight: None,
            bias: None,
        };
        let channels = match n.op_type.as_str() {
            "Conv" => {
                let Some(w) = weight(input(1), 3..=5) else {
                    continue;
                };
                t.weight = Some(Weight {
                    slot: 1,
                    axis: per_axis.then_some(0),
                });
                w.dims[0]
            }
            "Gemm" => {
                let Some(w) = weight(input(1), 2..=2) else {
                    continue;
                };
                let axis = usize::from(graph::attr_int(n, "transB", 0) == 0);
                t.weight = Some(Weight {
                    slot: 1,
                    axis: per_axis.then_some(axis),
                });
                let unit = |a: &str| graph::attr_float(n, a, 1.0) == 1.0;
                if !(unit("alpha") && unit("beta")) {
                    t.bias = None;
                    targets.push(t);
                    continue;
                }
                w.dims[axis]
            }
            _ => {
                // MatMul: a constant right operand is a weight (per column when 2-D),
                // otherwise both operands are activations.
                if let Some(w) = weight(input(1), 1..=8) {
                    let cols = w.dims.len() == 2;
                    t.weight = Some(Weight {
                        slot: 1,
                        axis: (per_axis && cols).then_some(1),
                    });
                } else if is_act(input(1)) {
                    t.acts.push(1);
                } else {
                    continue;
                }
                targets.push(t);
                continue;
            }
        };
        let bias = input(2);
        if let Some(b) = weight(bias, 1..=1) {
            if b.dims[0] == channels && sole_reader(bias) {
                t.bias = Some(2);
            }
        }
        targets.push(t);
    }
    (targets, kept)
}

/// For [`Options::act_tables`]: each Conv target's output that only feeds one activation
/// the runtime tabulates (SiLU as `Mul(c, Sigmoid(c))`, HardSwish, HardSigmoid, and
/// hard-swish as `Div(Mul(c, Clip(Add(c, 3), 0, 6)), 6)`, MobileNetV3 from Paddle) whose
/// output only int8 targets read, with the conv's node and the activation's nodes. That
/// output then gets a pair too, so the runtime's table has int8 entries: 256 bytes of
/// arena per conv. (It also tabulates activations read as float, with f32 entries, but
/// those 1 KiB tables cost a microcontroller more RAM than their speed is worth: 77 KiB
/// on YOLO9tr-n for 3 % of its instructions.)
fn tabulated_activations(g: &GraphProto, targets: &[Target]) -> Vec<(usize, String, Vec<usize>)> {
    let uses = Uses::of(g);
    let op = |i: usize| g.node[i].op_type.as_str();
    let reads_as_int8 = |r: usize, y: &str| {
        targets
            .iter()
            .any(|t| t.node == r && t.acts.iter().any(|&s| g.node[r].input[s] == y))
    };
    let int8_only = |y: &str| {
        let readers = uses.readers(y);
        !uses.is_fixed(y) && !readers.is_empty() && readers.iter().all(|&r| reads_as_int8(r, y))
    };
    let inits = graph::initializer_index(g);
    let is_scalar = |name: &str, value: f32| {
        inits
            .get(name)
            .and_then(|&i| graph::f32s(&g.initializer[i]).ok())
            .is_some_and(|v| v == [value])
    };
    // The one node reading `t`, when `t` is no graph output.
    let sole = |t: &str| match *uses.readers(t) {
        [r] if !uses.is_fixed(t) => Some(r),
        _ => None,
    };
    let out = |i: usize| g.node[i].output.first().map(String::as_str);
    let hard_swish = |c: &str, add: usize, mul: usize| -> Option<(Vec<usize>, &str)> {
        let three = g.node[add].input.iter().find(|i| *i != c)?;
        let clip = sole(out(add)?)?;
        let clip_in = &g.node[clip].input;
        let bounds =
            clip_in.len() == 3 && is_scalar(&clip_in[1], 0.0) && is_scalar(&clip_in[2], 6.0);
        let div = sole(out(mul)?)?;
        let div_in = &g.node[div].input;
        let shape = op(add) == "Add"
            && is_scalar(three, 3.0)
            && op(clip) == "Clip"
            && bounds
            && sole(out(clip)?) == Some(mul)
            && op(mul) == "Mul"
            && g.node[mul].input.iter().any(|i| i == c)
            && op(div) == "Div"
            && div_in.len() == 2
            && Some(div_in[0].as_str()) == out(mul)
            && is_scalar(&div_in[1], 6.0);
        if !shape {
            return None;
        }
        Some((vec![add, clip, mul, div], out(div)?))
    };
    let activation = |c: &str| -> Option<Vec<usize>> {
        if uses.is_fixed(c) {
            return None;
        }
        let (nodes, y) = match *uses.readers(c) {
            [r] if matches!(op(r), "HardSwish" | "HardSigmoid") => (vec![r], out(r)?),
            [a, b] if op(a) == "Add" || op(b) == "Add" => {
                let (add, mul) = if op(a) == "Add" { (a, b) } else { (b, a) };
                hard_swish(c, add, mul)?
            }
            [a, b] => {
                let (sig, mul) = if op(a) == "Sigmoid" { (a, b) } else { (b, a) };
                let s = g.node[sig].output.first()?;
                let m = &g.node[mul].input;
                let silu = op(sig) == "Sigmoid"
                    && op(mul) == "Mul"
                    && uses.readers(s) == [mul]
                    && !uses.is_fixed(s)
                    && (m[..] == [c, s] || m[..] == [s, c]);
                if !silu {
                    return None;
                }
                (vec![sig, mul], out(mul)?)
            }
            _ => return None,
        };
        int8_only(y).then_some(nodes)
    };
    targets
        .iter()
        .filter(|t| op(t.node) == "Conv" && t.weight.is_some())
        .filter_map(|t| {
            let c = g.node[t.node].output.first()?;
            Some((t.node, c.clone(), activation(c)?))
        })
        .collect()
}

/// Runs the float model on the calibration inputs and returns the statistics of each
/// edge in `acts` (`None` for an edge that is not float32).
fn calibrate(model: &ModelProto, ctx: &Context, acts: &[String]) -> Result<Vec<Option<Stats>>> {
    if acts.is_empty() {
        return Ok(Vec::new());
    }
    let opts = &ctx.int8;
    let mut probe = model.clone();
    if let Some(g) = probe.graph.as_mut() {
        g.output = acts.iter().map(|n| value_info(n, 0, None)).collect();
    }
    let bytes = probe.encode_to_vec();
    let shapes = ctx.shape_refs();
    let samples = ctx.calib_count();
    if samples == 0 {
        return Err(Error::Unsupported("int8: no calibration inputs".into()));
    }
    let input = |s: usize, k: usize, dtype, volume| ctx.calib_input(s, k, dtype, volume);
    let fail = |e: String| Error::Unsupported(format!("int8 calibration: {e}"));
    let mut stats: Vec<Option<Stats>> = vec![None; acts.len()];
    exec::run_samples(&bytes, &shapes, samples, input, |i, v| {
        stats[i].get_or_insert_with(Stats::default).observe(v)
    })
    .map_err(fail)?;
    if opts.method.needs_histogram() {
        exec::run_samples(&bytes, &shapes, samples, input, |i, v| {
            if let Some(s) = stats[i].as_mut() {
                s.observe_histogram(v);
            }
        })
        .map_err(fail)?;
    }
    Ok(stats)
}

/// Scale and int8 zero point mapping the calibrated range `[lo, hi]` onto `[-128, 127]`.
fn params(lo: f32, hi: f32, pow2: bool) -> (f32, i8) {
    let scale = (hi - lo) / 255.0;
    if !(scale.is_finite() && scale > 0.0) {
        return (1.0, 0); // constant zero: any grid holds it
    }
    // (A coarser grid still spans [lo, hi]: 255 of its steps are no shorter.)
    let scale = if pow2 {
        2f32.powi(scale.log2().ceil() as i32)
    } else {
        scale
    };
    let zero = quantize(-128.0 * scale - lo, scale, 0, -128.0, 127.0);
    (scale, zero as i8)
}

/// Names of what the pass adds: a role letter and an item number — `w7` int8 weights,
/// `b7` int32 bias, `s7` scale, `z7` zero point, `q7` quantized activation, `d7` a
/// DequantizeLinear output — so every tensor of item 7 shares its number. Each name is
/// written once per reader, and `{weight}_dequantized`-style names cost YOLO9tr-s's int8
/// file 113 KB (6%).
#[derive(Default)]
struct Names {
    next: usize,
}

/// The role letters [`Names`] uses.
const ROLES: [char; 6] = ['w', 'b', 's', 'z', 'q', 'd'];

/// What a quantizing function names its tensors with: the namer, the names in use, and
/// its item number.
type Named<'a> = (&'a mut Names, &'a mut BTreeSet<String>, usize);

impl Names {
    /// A new item number whose names are free in every role.
    fn item(&mut self, taken: &BTreeSet<String>) -> usize {
        loop {
            let k = self.next;
            self.next += 1;
            if ROLES.iter().all(|r| !taken.contains(&format!("{r}{k}"))) {
                return k;
            }
        }
    }

    /// The name of item `k` in `role`, now taken.
    fn name(&self, taken: &mut BTreeSet<String>, role: char, k: usize) -> String {
        let name = format!("{role}{k}");
        taken.insert(name.clone());
        name
    }
}

/// Whether every output channel (index of `axis`) of weight `w` keeps a
/// signal-to-quantization-noise ratio of at least `min_db` on one symmetric grid of
/// ±`q_max` steps for the whole tensor (always false without `min_db`). The worst channel decides, not the
/// whole tensor's ratio: a channel of small weights can round to nothing on the big
/// channels' grid while the tensor's total error stays small, and the layers after it
/// still read that channel.
fn per_tensor_fits(w: &TensorProto, axis: usize, min_db: Option<f64>, q_max: f32) -> bool {
    let (Some(min_db), Ok(values)) = (min_db, graph::f32s(w)) else {
        return false;
    };
    let dims: Vec<usize> = w.dims.iter().map(|&d| d as usize).collect();
    let channel = channel_of(&dims, Some(axis));
    let abs_max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    if !(abs_max > 0.0 && abs_max.is_finite()) {
        return true; // all zero: any scale holds it
    }
    let scale = abs_max / q_max;
    let mut signal_noise = vec![(0f64, 0f64); dims[axis]];
    for (i, &v) in values.iter().enumerate() {
        let q = quantize(v, scale, 0, -q_max, q_max) as f32 * scale;
        let (s, n) = &mut signal_noise[channel(i)];
        *s += f64::from(v) * f64::from(v);
        *n += f64::from(v - q) * f64::from(v - q);
    }
    let min_ratio = 10f64.powf(min_db / 10.0);
    signal_noise
        .iter()
        .all(|&(s, n)| s == 0.0 || s >= min_ratio * n)
}

/// A node with one output and no name: it is known by its output ([`graph::label`]), and a
/// name would repeat that output's in every Q/DQ node of the file.
fn node(op: &str, inputs: &[&str], output: &str, axis: Option<usize>) -> NodeProto {
    NodeProto {
        op_type: op.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        attribute: axis
            .map(|a| AttributeProto {
                name: "axis".into(),
                i: a as i64,
                r#type: AttributeType::Int as i32,
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

/// Element `i`'s index along `axis` of `dims` (0 when `axis` is `None`).
fn channel_of(dims: &[usize], axis: Option<usize>) -> impl Fn(usize) -> usize {
    let (channels, inner) = axis.map_or((1, 1), |a| (dims[a], dims[a + 1..].iter().product()));
    move |i| (i / inner.max(1)) % channels.max(1)
}

/// Symmetric int8 weights within ±`q_max` with one scale per index of `axis`; pushes the
/// int8 data, scale initializers (the zero point is left at its default 0) and returns the
/// DequantizeLinear node.
fn quantize_weight(
    w: &TensorProto,
    axis: Option<usize>,
    q_max: f32,
    (names, taken, k): Named,
    inits: &mut Vec<TensorProto>,
) -> Result<(QuantizedWeight, NodeProto)> {
    let values = graph::f32s(w)?;
    let dims: Vec<usize> = w.dims.iter().map(|&d| d as usize).collect();
    let channels = axis.map_or(1, |a| dims[a]);
    let channel = channel_of(&dims, axis);
    let mut abs_max = vec![0f32; channels];
    for (i, v) in values.iter().enumerate() {
        let m = &mut abs_max[channel(i)];
        *m = m.max(v.abs());
    }
    let scales: Vec<f32> = abs_max
        .iter()
        .map(|&m| {
            if m > 0.0 && m.is_finite() {
                m / q_max
            } else {
                1.0
            }
        })
        .collect();
    let data: Vec<u8> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| quantize(v, scales[channel(i)], 0, -q_max, q_max) as i8 as u8)
        .collect();
    let q = names.name(taken, 'w', k);
    let s = names.name(taken, 's', k);
    let out = names.name(taken, 'd', k);
    let pdims: &[usize] = if axis.is_some() { &[channels] } else { &[] };
    inits.push(tensor(&q, dt::INT8, &dims, data));
    inits.push(crate::build::tensor_f32(&s, pdims, &scales));
    // No zero point: it is optional and 0 by default, and a per-channel table of zeros
    // costs a byte per output channel plus an initializer (1% of a YOLO9tr-s file).
    let dq = node("DequantizeLinear", &[&q, &s], &out, axis);
    Ok((QuantizedWeight { edge: out, scales }, dq))
}

/// An int32 bias at scale `s_x · s_w[c]`, or `None` when a value would not fit int32
/// (or the scales do not line up with the bias).
fn quantize_bias(
    b: &TensorProto,
    s_x: f32,
    s_w: &[f32],
    (names, taken, k): Named,
    inits: &mut Vec<TensorProto>,
) -> Result<Option<NodeProto>> {
    let values = graph::f32s(b)?;
    let scales: Vec<f32> = if s_w.len() == 1 {
        vec![s_x * s_w[0]; 1]
    } else if s_w.len() == values.len() {
        s_w.iter().map(|s| s_x * s).collect()
    } else {
        return Ok(None);
    };
    let mut data = Vec::with_capacity(values.len() * 4);
    for (i, &v) in values.iter().enumerate() {
        let s = scales[if scales.len() == 1 { 0 } else { i }];
        let q = (f64::from(v) / f64::from(s)).round_ties_even();
        if !(s > 0.0 && q.abs() < f64::from(i32::MAX)) {
            return Ok(None);
        }
        data.extend((q as i32).to_le_bytes());
    }
    let q = names.name(taken, 'b', k);
    let s = names.name(taken, 's', k);
    let out = names.name(taken, 'd', k);
    let per_axis = scales.len() > 1;
    let sdims: &[usize] = if per_axis { &[scales.len()] } else { &[] };
    inits.push(tensor(&q, dt::INT32, &[values.len()], data));
    inits.push(crate::build::tensor_f32(&s, sdims, &scales));
    let axis = per_axis.then_some(0);
    Ok(Some(node("DequantizeLinear", &[&q, &s], &out, axis)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_float_patterns() {
        assert!(name_matches("head", "model.22/head/conv"));
        assert!(!name_matches("head", "model.22/neck"));
        assert!(name_matches("*/cv3.?/*", "/model.22/cv3.0/conv"));
        assert!(!name_matches("cv3*", "/model.22/cv3.0/conv"));
        assert!(name_matches("/model.22/*", "/model.22/cv3.0/conv"));
    }

    #[test]
    fn activation_grid_holds_zero_and_both_ends() {
        let mut s = Stats::default();
        s.observe(&[-1.0, 3.0]);
        let params = |s: &Stats, pow2| {
            let (lo, hi) = s.range(Method::MinMax);
            params(lo, hi, pow2)
        };
        let (scale, zero) = params(&s, false);
        assert!((scale - 4.0 / 255.0).abs() < 1e-7);
        let q = |x: f32| quantize(x, scale, zero.into(), -128.0, 127.0);
        assert_eq!(q(-1.0), -128);
        assert_eq!(q(3.0), 127);
        assert_eq!((q(0.0) - i32::from(zero)), 0, "zero is exact");
        let mut relu = Stats::default();
        relu.observe(&[0.0, 6.0]);
        assert_eq!(params(&relu, false).1, -128);
        assert_eq!(params(&Stats::default(), false), (1.0, 0));
        // Powers of two: 4/255 rounds up to 1/32, and both ends stay on the grid.
        let (scale, zero) = params(&s, true);
        assert_eq!(scale, 1.0 / 32.0);
        let q = |x: f32| quantize(x, scale, zero.into(), -128.0, 127.0);
        assert!(q(-1.0) >= -128 && q(3.0) < 127, "{zero}");
        assert_eq!(q(0.0), i32::from(zero));
    }
}
