//! The clean pass: the same function in fewer nodes and bytes.
//!
//! Exporters leave work for the runtime that could be done once, offline: `Constant` nodes
//! where initializers belong (PaddlePaddle emits hundreds), `Identity` chains (PyTorch's
//! weight sharing), BatchNormalization after every Conv, shape arithmetic
//! (`Shape → Gather → Concat → Reshape`) on shapes that are fixed once the input shape is,
//! and nodes whose results nobody reads. Clean removes all of it in this order:
//!
//! 1. `Constant` → initializer (except when its output is a graph output);
//! 2. `Identity` removal, keeping graph output names;
//! 3. constant folding: a node whose inputs are all constants (or, for `Shape`/`Size`, an
//!    edge whose shape is known for the given input shapes) is evaluated once by the
//!    runtime and replaced by its result — unless that would grow the file
//!    ([`FOLD_BYTES`]) or undo a deliberate compression (`Cast` from float16,
//!    `DequantizeLinear`);
//! 4. dead nodes and unused initializers removed (a dead reader of a Conv output would
//!    block the next step);
//! 5. per-channel affine maps folded into the Conv or Gemm before them when nothing else
//!    reads the Conv's output: BatchNormalization, and `Mul` / `Add` by a constant that is
//!    one value or one per output channel (PaddlePaddle's PP-LCNetV3 follows 28 convs of
//!    PP-OCRv4's detector with a learnable `x · s + t`, which kept their hard-swishes from
//!    fusing into the conv in the runtime); repeated until none is left, so `Conv → Mul →
//!    Add` becomes one Conv. Then dead nodes, unused initializers and stale value infos go.
//!
//! The result is numerically equivalent (folding changes rounding only).

use super::Context;
use crate::error::Result;
use crate::exec::{self, Operand};
use crate::graph::{self, Uses};
use std::collections::{HashMap, HashSet};
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, TensorProto};

/// Folded results may take this many bytes even when larger than the constant inputs they
/// free (e.g. a `Range`, a small `ConstantOfShape`, or a `Transpose` of a weight that other
/// nodes also read); beyond it, folding would grow the file.
pub const FOLD_BYTES: usize = 4096;

/// Ops never folded: random ones, and those that widen compact data on purpose.
const NEVER_FOLD: &[&str] = &[
    "Constant",
    "DequantizeLinear",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
];

/// Runs the clean pass; returns a one-line summary of what it did.
pub fn run(model: &mut ModelProto, ctx: &Context) -> Result<String> {
    let mut notes = Vec::new();
    let g = graph_mut(model);
    let n = constants_to_initializers(g)?;
    notes.push(format!("{n} Constant→initializer"));
    let n = remove_identities(g);
    notes.push(format!("{n} Identity removed"));

    let shapes = edge_shapes(model, ctx);
    let (folded, shape_folds) = fold_constants(model, &shapes);
    notes.push(format!("{folded} nodes folded"));
    if shape_folds > 0 {
        if let Some(shapes) = &ctx.input_shapes {
            pin_shapes(model, shapes);
        }
    }
    let g = graph_mut(model);
    // Dead readers would keep a Conv output "shared" and block its BatchNorm fold.
    let dead = remove_dead(g);
    let (mut batchnorms, mut others) = (0, 0);
    loop {
        let (b, o) = fold_affines(g)?;
        if b + o == 0 {
            break;
        }
        (batchnorms, others) = (batchnorms + b, others + o);
    }
    notes.push(format!("{batchnorms} BatchNorm folded"));
    if others > 0 {
        notes.push(format!("{others} Mul/Add folded"));
    }
    let dead = dead + remove_dead(g);
    notes.push(format!("{dead} dead nodes removed"));
    graph::prune_value_info(g);
    Ok(notes.join(", "))
}

/// Declares `shapes` on the real graph inputs and the shapes they imply on the graph
/// outputs: folded shape arithmetic holds for these input shapes only, and an output
/// declared `-1x2` would now contradict shape inference (onnx.checker rejects it).
fn pin_shapes(model: &mut ModelProto, shapes: &[Vec<usize>]) {
    let g = graph_mut(model);
    let names: Vec<String> = graph::real_inputs(g)
        .iter()
        .map(|v| v.name.clone())
        .collect();
    for (name, dims) in names.iter().zip(shapes) {
        graph::set_declared_dims(&mut g.input, name, dims);
    }
    let outputs: Vec<String> = g.output.iter().map(|v| v.name.clone()).collect();
    let refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
    let planned = exec::edge_shapes(model, &refs, &outputs).unwrap_or_default();
    let g = graph_mut(model);
    for (name, (_, dims)) in &planned {
        graph::set_declared_dims(&mut g.output, name, dims);
    }
}

fn graph_mut(model: &mut ModelProto) -> &mut GraphProto {
    model.graph.get_or_insert_with(Default::default)
}

/// The value of a `Constant` node as a tensor, for the attribute forms we know.
fn constant_value(node: &NodeProto) -> Option<TensorProto> {
    use crate::build::{tensor_f32, tensor_i64};
    let a = node
        .attribute
        .first()
        .filter(|_| node.attribute.len() == 1)?;
    let name = node.output.first()?;
    Some(match a.name.as_str() {
        "value" => a.t.clone()?,
        "value_float" => tensor_f32(name, &[], &[a.f]),
        "value_floats" => tensor_f32(name, &[a.floats.len()], &a.floats),
        "value_int" => tensor_i64(name, &[], &[a.i]),
        "value_ints" => tensor_i64(name, &[a.ints.len()], &a.ints),
        _ => return None,
    })
    .filter(|t: &TensorProto| t.data_type != 0)
}

/// Step 1: `Constant` nodes become initializers named after their output.
fn constants_to_initializers(g: &mut GraphProto) -> Result<usize> {
    let uses = Uses::of(g);
    let mut taken: HashSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    let mut keep = vec![true; g.node.len()];
    let mut added = Vec::new();
    for (i, node) in g.node.iter().enumerate() {
        if node.op_type != "Constant" || !is_default_domain(node) || node.output.len() != 1 {
            continue;
        }
        let out = &node.output[0];
        if uses.outputs.contains(out) || taken.contains(out) {
            continue;
        }
        let Some(mut t) = constant_value(node) else {
            continue; // sparse or string constants stay nodes
        };
        t.name = out.clone();
        graph::to_raw(&mut t)?;
        taken.insert(out.clone());
        added.push(t);
        keep[i] = false;
    }
    let n = added.len();
    g.initializer.extend(added);
    graph::retain_nodes(g, &keep);
    Ok(n)
}

fn is_default_domain(node: &NodeProto) -> bool {
    node.domain.is_empty() || node.domain == "ai.onnx"
}

/// Step 2: `y = Identity(x)` nodes disappear; readers of `y` read `x`, or, when `y` is a
/// graph output, `x`'s producer writes `y` directly.
fn remove_identities(g: &mut GraphProto) -> usize {
    let mut removed = 0;
    let mut i = 0;
    while i < g.node.len() {
        let node = &g.node[i];
        if node.op_type != "Identity" || !is_default_domain(node) || node.input.len() != 1 {
            i += 1;
            continue;
        }
        let (x, y) = (node.input[0].clone(), node.output[0].clone());
        let uses = Uses::of(g);
        let graph_input = g.input.iter().any(|v| v.name == x);
        let initializer = g.initializer.iter().any(|t| t.name == x);
        let ok = if uses.pinned.contains(&y) {
            false
        } else if !uses.outputs.contains(&y) {
            graph::rename_edge(g, &y, &x);
            true
        } else if uses.is_fixed(&x) || graph_input || initializer || x.is_empty() {
            false
        } else {
            graph::rename_edge(g, &x, &y);
            true
        };
        if ok {
            g.node.remove(i);
            removed += 1;
        } else {
            i += 1;
        }
    }
    removed
}

/// Shapes of the edges read by `Shape`/`Size` nodes, from the runtime's plan for the
/// context's input shapes (empty when it cannot plan the model).
fn edge_shapes(model: &ModelProto, ctx: &Context) -> HashMap<String, (i32, Vec<usize>)> {
    let Some(g) = model.graph.as_ref() else {
        return HashMap::new();
    };
    let inits = graph::initializer_index(g);
    let mut names: Vec<String> = g
        .node
        .iter()
        .filter(|n| matches!(n.op_type.as_str(), "Shape" | "Size") && is_default_domain(n))
        .filter_map(|n| n.input.first())
        .filter(|x| !inits.contains_key(x.as_str()))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return HashMap::new();
    }
    exec::edge_shapes(model, &ctx.shape_refs(), &names).unwrap_or_default()
}

/// Whether `node` may be replaced by its value.
fn foldable(
    node: &NodeProto,
    uses: &Uses,
    initializers: &[TensorProto],
    index: &HashMap<String, usize>,
) -> bool {
    if !is_default_domain(node)
        || node.input.is_empty()
        || NEVER_FOLD.contains(&node.op_type.as_str())
        || graph::subgraphs(node).next().is_some()
        || node.output.iter().any(|o| o.is_empty() || uses.is_fixed(o))
    {
        return false;
    }
    // Cast(float16 → wider) is how fp16 models store compact weights: keep it.
    let widens_f16 = node.op_type == "Cast"
        && index
            .get(&node.input[0])
            .is_some_and(|&k| initializers[k].data_type == crate::build::dt::FLOAT16);
    !widens_f16
}

/// Step 3: evaluates constant nodes once. Returns (nodes folded, of which `Shape`/`Size`
/// of a run-time edge).
fn fold_constants(
    model: &mut ModelProto,
    shapes: &HashMap<String, (i32, Vec<usize>)>,
) -> (usize, usize) {
    let template = ModelProto {
        ir_version: model.ir_version,
        opset_import: model.opset_import.clone(),
        ..Default::default()
    };
    let g = graph_mut(model);
    let uses = Uses::of(g);
    let mut index: HashMap<String, usize> = g
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut keep = vec![true; g.node.len()];
    let (mut folded, mut shape_folds) = (0, 0);
    let GraphProto {
        node: nodes,
        initializer: inits,
        ..
    } = &mut *g;
    for (i, node) in nodes.iter().enumerate() {
        if !foldable(node, &uses, inits, &index) {
            continue;
        }
        let shape_op = matches!(node.op_type.as_str(), "Shape" | "Size");
        let mut operands = Vec::with_capacity(node.input.len());
        // Bytes of the constant inputs that die with this node (read by nothing else).
        let mut freed = 0;
        for (k, input) in node.input.iter().enumerate() {
            if input.is_empty() {
                operands.push(Operand::Absent);
            } else if let Some(&t) = index.get(input) {
                let t = &inits[t];
                if uses.readers(input) == [i] && !uses.is_fixed(input) {
                    freed += graph::elem_count(t).unwrap_or(0)
                        * graph::elem_size(t.data_type).unwrap_or(0);
                }
                operands.push(Operand::Const(t));
            } else if let Some((ty, dims)) = shapes.get(input).filter(|_| shape_op && k == 0) {
                operands.push(Operand::Shaped(*ty, dims));
            } else {
                break;
            }
        }
        if operands.len() != node.input.len() {
            continue;
        }
        let Some(values) = exec::eval_node(&template, node, &operands) else {
            continue;
        };
        let out_bytes: usize = values.iter().map(|t| t.raw_data.len()).sum();
        if out_bytes > freed.max(FOLD_BYTES) {
            continue;
        }
        let on_edge = matches!(operands.first(), Some(Operand::Shaped(..)));
        for t in values {
            index.insert(t.name.clone(), inits.len());
            inits.push(t);
        }
        keep[i] = false;
        folded += 1;
        shape_folds += usize::from(on_edge);
    }
    graph::retain_nodes(g, &keep);
    (folded, shape_folds)
}

/// A float32 initializer's values when it has exactly `len` of them.
fn f32_init(
    g: &GraphProto,
    index: &HashMap<&str, usize>,
    name: &str,
    len: usize,
) -> Option<Vec<f32>> {
    let t = &g.initializer[*index.get(name)?];
    graph::f32s(t).ok().filter(|v| v.len() == len)
}

/// A node's map `y = x * scale + shift`, per output channel.
struct Affine {
    scale: Vec<f64>,
    shift: Vec<f64>,
}

/// The per-channel affine map of an inference-mode BatchNormalization with constant
/// parameters, or `None`.
fn batchnorm_affine(
    g: &GraphProto,
    index: &HashMap<&str, usize>,
    bn: &NodeProto,
    channels: usize,
) -> Option<Affine> {
    if bn.input.len() != 5 || graph::attr_int(bn, "training_mode", 0) != 0 {
        return None;
    }
    if bn.output.iter().skip(1).any(|o| !o.is_empty()) {
        return None;
    }
    let eps = f64::from(graph::attr_float(bn, "epsilon", 1e-5));
    let [gamma, beta, mean, var] = [1, 2, 3, 4].map(|k| f32_init(g, index, &bn.input[k], channels));
    let (gamma, beta, mean, var) = (gamma?, beta?, mean?, var?);
    let scale: Vec<f64> = (0..channels)
        .map(|c| f64::from(gamma[c]) / (f64::from(var[c]) + eps).sqrt())
        .collect();
    let shift = (0..channels)
        .map(|c| f64::from(beta[c]) - f64::from(mean[c]) * scale[c])
        .collect();
    Some(Affine { scale, shift })
}

/// The values of constant `name` per output channel, when broadcast against an output of
/// rank `rank` whose axis 1 has `channels` it varies along that axis at most (one value,
/// `[C, 1, 1]`, `[1, C, 1, 1]`, ...) and leaves the output's shape as it is.
fn per_channel(
    g: &GraphProto,
    index: &HashMap<&str, usize>,
    name: &str,
    rank: usize,
    channels: usize,
) -> Option<Vec<f64>> {
    let t = &g.initializer[*index.get(name)?];
    let at = rank.checked_sub(t.dims.len())?;
    let along_channels = |k: usize, d: i64| at + k == 1 && usize::try_from(d) == Ok(channels);
    if t.dims
        .iter()
        .enumerate()
        .any(|(k, &d)| d != 1 && !along_channels(k, d))
    {
        return None;
    }
    let v = graph::f32s(t).ok()?;
    match v.len() {
        1 => Some(vec![f64::from(v[0]); channels]),
        n if n == channels => Some(v.iter().map(|&x| f64::from(x)).collect()),
        _ => None,
    }
}

/// The per-channel affine map `node` applies to `x`, the output (of rank `rank`, with
/// `channels` on axis 1) of the Conv or Gemm before it: an inference-mode
/// BatchNormalization with constant parameters, or a `Mul` / `Add` of `x` and a constant
/// [`per_channel`] accepts. `None` for anything else.
fn affine_of(
    g: &GraphProto,
    index: &HashMap<&str, usize>,
    node: &NodeProto,
    x: &str,
    rank: usize,
    channels: usize,
) -> Option<Affine> {
    let constant = || match node.input.as_slice() {
        [a, c] | [c, a] if a == x && c != x => per_channel(g, index, c, rank, channels),
        _ => None,
    };
    match node.op_type.as_str() {
        "BatchNormalization" => batchnorm_affine(g, index, node, channels),
        "Mul" => Some(Affine {
            scale: constant()?,
            shift: vec![0.0; channels],
        }),
        "Add" => Some(Affine {
            scale: vec![1.0; channels],
            shift: constant()?,
        }),
        _ => None,
    }
}

/// New weights and bias for `producer` (Conv or Gemm) followed by `node` (see
/// [`affine_of`]), or `None` when the pattern does not apply.
fn fold_into(
    g: &GraphProto,
    index: &HashMap<&str, usize>,
    producer: &NodeProto,
    node: &NodeProto,
) -> Option<(TensorProto, TensorProto)> {
    let w_name = producer.input.get(1)?;
    let w = &g.initializer[*index.get(w_name.as_str())?];
    let wv = graph::f32s(w).ok()?;
    let dims: Vec<usize> = w
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    // Output channel `c` of weight element `i`, and the channel count.
    let (channels, channel_of): (usize, Box<dyn Fn(usize) -> usize>) =
        match producer.op_type.as_str() {
            "Conv" if dims.len() >= 3 => {
                let per = dims[1..].iter().product::<usize>().max(1);
                (dims[0], Box::new(move |i| i / per))
            }
            "Gemm" if dims.len() == 2 && graph::attr_int(producer, "transA", 0) == 0 => {
                if graph::attr_int(producer, "transB", 0) != 0 {
                    let per = dims[1].max(1);
                    (dims[0], Box::new(move |i| i / per))
                } else {
                    let n = dims[1].max(1);
                    (dims[1], Box::new(move |i| i % n))
                }
            }
            _ => return None,
        };
    // Conv's output has the weight's rank; Gemm's is a matrix.
    let rank = if producer.op_type == "Conv" {
        dims.len()
    } else {
        2
    };
    let affine = affine_of(g, index, node, &producer.output[0], rank, channels)?;
    // The existing bias as per-channel values (Gemm's C scaled by beta, broadcast).
    let bias: Vec<f64> = match producer.input.get(2).filter(|b| !b.is_empty()) {
        None => vec![0.0; channels],
        Some(b) => {
            let t = &g.initializer[*index.get(b.as_str())?];
            let v = graph::f32s(t).ok()?;
            let beta = if producer.op_type == "Gemm" {
                f64::from(graph::attr_float(producer, "beta", 1.0))
            } else {
                1.0
            };
            match v.len() {
                1 => vec![f64::from(v[0]) * beta; channels],
                n if n == channels => v.iter().map(|&x| f64::from(x) * beta).collect(),
                _ => return None,
            }
        }
    };
    let new_w: Vec<f32> = wv
        .iter()
        .enumerate()
        .map(|(i, &x)| (f64::from(x) * affine.scale[channel_of(i)]) as f32)
        .collect();
    let new_b: Vec<f32> = (0..channels)
        .map(|c| (bias[c] * affine.scale[c] + affine.shift[c]) as f32)
        .collect();
    Some((
        crate::build::tensor_f32("", &dims, &new_w),
        crate::build::tensor_f32("", &[channels], &new_b),
    ))
}

/// Step 5, once: `BatchNormalization(Conv(x))` → `Conv'(x)`, and likewise `Mul`/`Add` by a
/// per-channel constant ([`affine_of`]) and Gemm, when the Conv output feeds only that
/// node. New weights get new names: the old ones may be shared with other nodes
/// (dead-node removal drops them when they are not). Returns the BatchNorms and the other
/// nodes folded.
fn fold_affines(g: &mut GraphProto) -> Result<(usize, usize)> {
    let uses = Uses::of(g);
    let mut taken = graph::names(g);
    let mut keep = vec![true; g.node.len()];
    let mut edits = Vec::new();
    {
        let index = graph::initializer_index(g);
        for (b, node) in g.node.iter().enumerate() {
            let xs = match node.op_type.as_str() {
                "BatchNormalization" => &node.input[..1],
                "Mul" | "Add" => &node.input[..],
                _ => continue,
            };
            if !is_default_domain(node) {
                continue;
            }
            for x in xs {
                let Some(&p) = uses.producer.get(x) else {
                    continue;
                };
                let producer = &g.node[p];
                if uses.is_fixed(x) || uses.readers(x) != [b] || producer.output.len() != 1 {
                    continue;
                }
                if let Some((w, bias)) = fold_into(g, &index, producer, node) {
                    edits.push((p, b, w, bias));
                    break;
                }
            }
        }
    }
    let batchnorms = edits
        .iter()
        .filter(|e| g.node[e.1].op_type == "BatchNormalization")
        .count();
    let others = edits.len() - batchnorms;
    for (p, b, mut w, mut bias) in edits {
        let producer_name = graph::label(&g.node[p]).to_string();
        // BatchNorm folds keep the names they always had, so their files stay the same.
        let tag = if g.node[b].op_type == "BatchNormalization" {
            "bn"
        } else {
            "affine"
        };
        w.name = graph::fresh_name(&mut taken, &format!("{producer_name}.weight_{tag}"));
        bias.name = graph::fresh_name(&mut taken, &format!("{producer_name}.bias_{tag}"));
        let y = g.node[b].output[0].clone();
        let producer = &mut g.node[p];
        producer.input[1] = w.name.clone();
        producer.input.truncate(2);
        producer.input.push(bias.name.clone());
        producer.output[0] = y;
        if producer.op_type == "Gemm" {
            graph::set_attr_float(producer, "beta", 1.0);
        }
        keep[b] = false;
        g.initializer.push(w);
        g.initializer.push(bias);
    }
    graph::retain_nodes(g, &keep);
    Ok((batchnorms, others))
}

/// Steps 4 and 5: removes nodes no graph output depends on, then initializers nothing reads
/// (and their graph-input entries). Returns the node count removed.
fn remove_dead(g: &mut GraphProto) -> usize {
    let uses = Uses::of(g);
    let mut live: HashSet<String> = uses.outputs.iter().chain(&uses.pinned).cloned().collect();
    let mut keep = vec![false; g.node.len()];
    for (i, node) in g.node.iter().enumerate().rev() {
        if node.output.iter().any(|o| live.contains(o)) {
            keep[i] = true;
            live.extend(node.input.iter().filter(|x| !x.is_empty()).cloned());
        }
    }
    let removed = keep.iter().filter(|k| !**k).count();
    graph::retain_nodes(g, &keep);
    let dropped: HashSet<String> = g
        .initializer
        .iter()
        .filter(|t| !live.contains(&t.name))
        .map(|t| t.name.clone())
        .collect();
    g.initializer.retain(|t| !dropped.contains(&t.name));
    g.input.retain(|v| !dropped.contains(&v.name));
    removed
}
