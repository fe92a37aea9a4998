//! What each pass cost and saved: one row per model (the original, then after each pass)
//! with its size (nodes, params, file bytes), its price on a device (MACs, exact arena
//! bytes from the runtime's planner) and how far its outputs moved from the original's on
//! the same input (max abs diff, cosine similarity, SQNR); for an int8 model, the same per
//! quantized layer ([`crate::layers`]). A caller with an evaluator adds the task metric
//! ([`TaskMetric`]) to the rows it scored.
//!
//! Every model is run by edgetrim's runtime, the one that ships, so the numbers are those
//! the device will see. A model the runtime cannot plan still gets its size columns; the
//! others are left empty with the runtime's reason.

use crate::exec;
use crate::graph;
use crate::layers::{self, Layer};
use crate::passes::prune::weights::{self, Sparsity};
use crate::passes::{self, Context, Stage};
use serde::Serialize;
use std::collections::BTreeMap;

/// A task metric of one model on an evaluation set (e.g. mAP on a detection folder):
/// what the model is for, rather than how far its raw outputs moved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskMetric {
    /// The evaluation, e.g. `detect:data/test`.
    pub task: String,
    /// The key of `values` that decides (higher is better), e.g. `mAP50`.
    pub primary: String,
    /// Every value measured, by name.
    pub values: BTreeMap<String, f64>,
}

impl TaskMetric {
    /// The primary value (NaN when missing).
    pub fn value(&self) -> f64 {
        self.values.get(&self.primary).copied().unwrap_or(f64::NAN)
    }
}

/// One model of the pipeline. The comparison columns are empty for the original (it is
/// the reference).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `original`, or the pass that produced this model.
    pub pass: String,
    /// What the pass changed.
    pub summary: String,
    /// Node count.
    pub nodes: usize,
    /// Parameter count.
    pub params: u64,
    /// Encoded model size.
    pub file_bytes: usize,
    /// Multiply-accumulates per run.
    pub macs: Option<u64>,
    /// Exact arena bytes on this machine.
    pub arena_bytes: Option<usize>,
    /// Largest absolute output difference from the original.
    pub max_abs_diff: Option<f64>,
    /// Cosine similarity of all outputs with the original's.
    pub cosine: Option<f64>,
    /// Signal-to-quantization-noise ratio against the original, in dB (`None` when the
    /// outputs are identical: infinite).
    pub sqnr_db: Option<f64>,
    /// Why the runtime could not measure this model.
    pub error: Option<String>,
    /// Zero weights, overall and per layer, when at least 1 % of the weights are zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparsity: Option<Sparsity>,
    /// The task metric, when the caller evaluated this model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskMetric>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Input shapes the models were measured with (`None`: the declared ones).
    pub input_shapes: Option<Vec<Vec<usize>>>,
    /// Whether the input was random (seeded) rather than given.
    pub random_input: bool,
    /// The original model, then one row per pass.
    pub rows: Vec<Row>,
    /// With an int8 pass: every quantized layer against the model before it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Layer>,
    /// Layers the caller kept in float to hold a task metric (`compress --max-drop`), in
    /// the order they were given back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<String>,
}

impl Report {
    /// The final model's row.
    pub fn last(&self) -> Option<&Row> {
        self.rows.last()
    }
}

/// How close `got` is to `reference`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fidelity {
    /// Largest absolute difference.
    pub max_abs_diff: f64,
    /// Cosine similarity (1 for identical directions; 1 when both are all zeros).
    pub cosine: f64,
    /// `10 log10(signal power / noise power)`; infinite when identical.
    pub sqnr_db: f64,
}

/// Compares two output lists element by element; `None` when their sizes differ.
pub fn fidelity(reference: &[Vec<f64>], got: &[Vec<f64>]) -> Option<Fidelity> {
    if reference.len() != got.len() || reference.iter().zip(got).any(|(a, b)| a.len() != b.len()) {
        return None;
    }
    let (mut max, mut dot, mut rr, mut gg, mut noise) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for (r, g) in reference.iter().flatten().zip(got.iter().flatten()) {
        let d = r - g;
        max = max.max(d.abs());
        dot += r * g;
        rr += r * r;
        gg += g * g;
        noise += d * d;
    }
    let cosine = if rr == 0.0 && gg == 0.0 {
        1.0
    } else {
        dot / (rr.sqrt() * gg.sqrt()).max(f64::MIN_POSITIVE)
    };
    Some(Fidelity {
        max_abs_diff: max,
        cosine,
        sqnr_db: 10.0 * (rr / noise).log10(),
    })
}

fn row(pass: &str, summary: &str, nodes: usize, params: u64, bytes: &[u8]) -> Row {
    let sparsity = passes::decode(bytes)
        .ok()
        .and_then(|m| m.graph)
        .map(|g| weights::sparsity(&g))
        .filter(|s| s.zeros * 100 >= s.weights && s.zeros > 0);
    Row {
        pass: pass.to_string(),
        summary: summary.to_string(),
        nodes,
        params,
        file_bytes: bytes.len(),
        macs: None,
        arena_bytes: None,
        max_abs_diff: None,
        cosine: None,
        sqnr_db: None,
        error: None,
        sparsity,
        task: None,
    }
}

/// Measures `original` and every stage on the same input (`inputs`: raw bytes per graph
/// input, or `None` for seeded random data).
pub fn build(
    original: &[u8],
    stages: &[Stage],
    ctx: &Context,
    inputs: Option<&[Vec<u8>]>,
) -> Report {
    let (nodes, params) = passes::decode(original)
        .ok()
        .and_then(|m| m.graph)
        .map(|g| (g.node.len(), graph::params(&g).0))
        .unwrap_or_default();
    let mut rows = vec![row("original", "", nodes, params, original)];
    rows.extend(
        stages
            .iter()
            .map(|s| row(s.pass.name(), &s.summary, s.nodes, s.params, &s.bytes)),
    );
    let shapes = ctx.shape_refs();
    let models = std::iter::once(original).chain(stages.iter().map(|s| s.bytes.as_slice()));
    let mut reference: Option<Vec<Vec<f64>>> = None;
    for (k, (r, bytes)) in rows.iter_mut().zip(models).enumerate() {
        let m = match exec::measure(bytes, &shapes, inputs) {
            Ok(m) => m,
            Err(e) => {
                r.error = Some(e);
                continue;
            }
        };
        r.macs = Some(m.macs);
        r.arena_bytes = Some(m.arena);
        if k == 0 {
            reference = Some(m.outputs);
            continue;
        }
        let Some(base) = &reference else { continue };
        match fidelity(base, &m.outputs) {
            Some(f) => {
                r.max_abs_diff = Some(f.max_abs_diff);
                r.cosine = Some(f.cosine);
                r.sqnr_db = Some(f.sqnr_db).filter(|s| s.is_finite());
            }
            None => r.error = Some("output sizes differ from the original's".into()),
        }
    }
    // The int8 model against the one the pass started from (layers run on the runtime;
    // a model it cannot run just has no per-layer rows).
    let int8 = stages.iter().position(|s| s.pass == passes::Pass::Int8);
    let layers = int8
        .and_then(|k| {
            let before = k.checked_sub(1).map_or(original, |j| &stages[j].bytes);
            layers::int8_layers(before, &stages[k].bytes, &shapes, inputs).ok()
        })
        .unwrap_or_default();
    Report {
        input_shapes: ctx.input_shapes.clone(),
        random_input: inputs.is_none(),
        rows,
        layers,
        fallback: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fidelity_of_identical_scaled_and_noisy_outputs() {
        let a = vec![vec![1.0, -2.0, 3.0], vec![4.0]];
        let same = fidelity(&a, &a).unwrap();
        assert_eq!((same.max_abs_diff, same.cosine), (0.0, 1.0));
        assert!(same.sqnr_db.is_infinite());
        let doubled: Vec<Vec<f64>> = a
            .iter()
            .map(|v| v.iter().map(|x| x * 2.0).collect())
            .collect();
        let f = fidelity(&a, &doubled).unwrap();
        assert!((f.cosine - 1.0).abs() < 1e-12);
        assert_eq!(f.max_abs_diff, 4.0);
        assert!(
            f.sqnr_db.abs() < 1e-9,
            "noise power equals signal power: 0 dB"
        );
        let noisy = vec![vec![1.0, -2.0, 3.1], vec![4.0]];
        let f = fidelity(&a, &noisy).unwrap();
        // signal 30, noise 0.01: 10 log10(3000).
        assert!((f.sqnr_db - 10.0 * 3000f64.log10()).abs() < 1e-6, "{f:?}");
        assert!(fidelity(&a, &[vec![1.0]]).is_none());
    }
}
