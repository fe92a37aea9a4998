//! Running ONNX through edgetrim's own runtime, for the compressor's three questions: what
//! does this constant node compute (folding), what shape does this edge have for the given
//! input shapes (shape folding), and what does the whole model output and cost (report).
//!
//! Using the runtime that will run the compressed model — instead of a second interpreter
//! in this crate — keeps one definition of every op's semantics. Anything the runtime
//! cannot plan comes back as `None` or an error string, and the caller passes the node or
//! the measurement through untouched.

use crate::build::value_info;
use edgetrim_runtime::arena::ALIGN;
use edgetrim_runtime::{DType, Model, Session, TensorRef};
use prost::Message;
use std::collections::{HashMap, HashSet};
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, TensorProto};

/// One input of a node evaluated alone.
pub enum Operand<'a> {
    /// An omitted optional input.
    Absent,
    /// A constant tensor.
    Const(&'a TensorProto),
    /// A run-time tensor of which only the type and shape matter (e.g. `Shape`'s input).
    Shaped(i32, &'a [usize]),
}

/// A tensor proto holding a runtime output.
pub fn to_proto(name: &str, t: TensorRef<'_>) -> TensorProto {
    crate::build::tensor(
        name,
        t.dtype.onnx_code() as i32,
        t.shape.dims(),
        t.bytes.to_vec(),
    )
}

/// A planned session over `bytes` with its arena, or the runtime's error as text.
pub fn with_session<T>(
    bytes: &[u8],
    shapes: &[&[usize]],
    f: impl FnOnce(&mut Session<'_>) -> Result<T, String>,
) -> Result<T, String> {
    let model = Model::parse(bytes).map_err(|e| e.to_string())?;
    let report = Session::arena_report(&model, shapes).map_err(|e| e.to_string())?;
    let mut arena = vec![0u8; report.total + ALIGN];
    let mut session = Session::new(&model, shapes, &mut arena).map_err(|e| e.to_string())?;
    f(&mut session)
}

/// Evaluates `node` alone on `inputs` with the opsets of `template`; `None` when the
/// runtime cannot (unsupported op, attribute or type: the node is then kept as is).
pub fn eval_node(
    template: &ModelProto,
    node: &NodeProto,
    inputs: &[Operand<'_>],
) -> Option<Vec<TensorProto>> {
    let mut g = GraphProto {
        name: "fold".into(),
        node: vec![node.clone()],
        ..Default::default()
    };
    let mut shapes: Vec<&[usize]> = Vec::new();
    for (name, operand) in node.input.iter().zip(inputs) {
        match operand {
            Operand::Absent => {}
            Operand::Const(t) => {
                let mut t = (*t).clone();
                t.name = name.clone();
                g.initializer.push(t);
            }
            Operand::Shaped(elem_type, dims) => {
                g.input.push(value_info(name, *elem_type, Some(dims)));
                shapes.push(dims);
            }
        }
    }
    g.output = node.output.iter().map(|o| value_info(o, 0, None)).collect();
    let model = ModelProto {
        ir_version: template.ir_version,
        opset_import: template.opset_import.clone(),
        graph: Some(g),
        ..Default::default()
    };
    let bytes = model.encode_to_vec();
    with_session(&bytes, &shapes, |s| {
        s.run().map_err(|e| e.to_string())?;
        Ok(node
            .output
            .iter()
            .enumerate()
            .map(|(i, name)| to_proto(name, s.output(i)))
            .collect())
    })
    .ok()
}

/// Element type and shape of each edge in `names` when the graph inputs have `shapes`
/// (`&[]`: the declared ones), found by planning a copy of the model whose outputs are
/// those edges. `None` when the runtime cannot plan the model.
pub fn edge_shapes(
    model: &ModelProto,
    shapes: &[&[usize]],
    names: &[String],
) -> Option<HashMap<String, (i32, Vec<usize>)>> {
    let mut probe = model.clone();
    let g = probe.graph.as_mut()?;
    g.output = names.iter().map(|n| value_info(n, 0, None)).collect();
    let bytes = probe.encode_to_vec();
    with_session(&bytes, shapes, |s| {
        Ok(s.outputs()
            .map(|spec| {
                let code = spec.dtype.onnx_code() as i32;
                (spec.name.to_string(), (code, spec.shape.dims().to_vec()))
            })
            .collect())
    })
    .ok()
}

/// A copy of `model` whose graph outputs are `outputs`, without the nodes and initializers
/// they do not depend on: the model a calibration loop runs to record those edges. (All
/// nodes stay when one holds a subgraph, whose reads from the outer scope are implicit.)
pub fn probe(model: &ModelProto, outputs: &[String]) -> Vec<u8> {
    let mut probe = model.clone();
    if let Some(g) = probe.graph.as_mut() {
        g.output = outputs.iter().map(|n| value_info(n, 0, None)).collect();
        if g.node
            .iter()
            .all(|n| crate::graph::subgraphs(n).next().is_none())
        {
            let mut needed: HashSet<&str> = outputs.iter().map(String::as_str).collect();
            let mut keep = vec![false; g.node.len()];
            for (i, n) in g.node.iter().enumerate().rev() {
                if n.output.iter().any(|o| needed.contains(o.as_str())) {
                    keep[i] = true;
                    needed.extend(n.input.iter().map(String::as_str));
                }
            }
            crate::graph::retain_nodes(g, &keep);
            crate::graph::drop_unused_initializers(g);
        }
    }
    probe.encode_to_vec()
}

/// What one run of a whole model produced and cost.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Multiply-accumulates per run.
    pub macs: u64,
    /// Exact arena bytes on this machine.
    pub arena: usize,
    /// Every output's elements, widened to f64, in graph-output order.
    pub outputs: Vec<Vec<f64>>,
}

/// Elements of a runtime tensor as f64.
fn values(t: TensorRef<'_>) -> Vec<f64> {
    match t.dtype {
        DType::F32 => t
            .bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).into())
            .collect(),
        DType::F16 => t
            .bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).into())
            .collect(),
        DType::F64 => t
            .bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        _ => t.i64s().map(|v| v as f64).collect(),
    }
}

/// Multiply-accumulates of one run of `bytes`, from the plan alone (nothing runs).
pub fn macs(bytes: &[u8], shapes: &[&[usize]]) -> Result<u64, String> {
    with_session(bytes, shapes, |s| Ok(s.total_macs()))
}

/// Deterministic pseudo-random input bytes for graph input `k`: uniform in [-1, 1) for
/// float inputs, zeros otherwise.
pub fn random_input(dtype: DType, volume: usize, k: usize) -> Vec<u8> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64 ^ (k as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut next = move || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    match dtype {
        DType::F32 => (0..volume).flat_map(|_| next().to_le_bytes()).collect(),
        DType::F16 => (0..volume)
            .flat_map(|_| half::f16::from_f32(next()).to_le_bytes())
            .collect(),
        DType::F64 => (0..volume)
            .flat_map(|_| f64::from(next()).to_le_bytes())
            .collect(),
        _ => vec![0; volume * dtype.size()],
    }
}

/// Plans and runs `bytes` once on `inputs` (raw little-endian bytes per graph input, or
/// `None` for [`random_input`]); the runtime's error as text when it cannot.
pub fn measure(
    bytes: &[u8],
    shapes: &[&[usize]],
    inputs: Option<&[Vec<u8>]>,
) -> Result<Measured, String> {
    with_session(bytes, shapes, |s| {
        let specs: Vec<_> = s.inputs().collect();
        for (k, spec) in specs.iter().enumerate() {
            let data = match inputs {
                Some(given) => given
                    .get(k)
                    .cloned()
                    .ok_or_else(|| format!("no data for input {}", spec.name))?,
                None => random_input(spec.dtype, spec.shape.volume(), k),
            };
            s.set_input_bytes(k, &data).map_err(|e| e.to_string())?;
        }
        s.run().map_err(|e| e.to_string())?;
        Ok(Measured {
            macs: s.total_macs(),
            arena: s.report().total,
            outputs: (0..s.outputs().count())
                .map(|i| values(s.output(i)))
                .collect(),
        })
    })
}

/// Runs `bytes` once per sample, planned once: `input(sample, k, dtype, volume)` gives the
/// raw bytes of graph input `k`, and `visit(i, values)` receives float output `i` of each
/// run (outputs of other types are skipped). The calibration loop of the int8 pass, whose
/// probe model lists the activations it records as graph outputs.
pub fn run_samples(
    bytes: &[u8],
    shapes: &[&[usize]],
    samples: usize,
    mut input: impl FnMut(usize, usize, DType, usize) -> Result<Vec<u8>, String>,
    mut visit: impl FnMut(usize, &[f32]),
) -> Result<(), String> {
    with_session(bytes, shapes, |s| {
        let specs: Vec<_> = s.inputs().map(|i| (i.dtype, i.shape.volume())).collect();
        let mut values = Vec::new();
        for sample in 0..samples {
            for (k, &(dtype, volume)) in specs.iter().enumerate() {
                let data = input(sample, k, dtype, volume)?;
                s.set_input_bytes(k, &data).map_err(|e| e.to_string())?;
            }
            s.run().map_err(|e| e.to_string())?;
            for i in 0..s.outputs().count() {
                let t = s.output(i);
                if t.dtype != DType::F32 {
                    continue;
                }
                values.clear();
                values.extend(
                    t.bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
                visit(i, &values);
            }
        }
        Ok(())
    })
}
