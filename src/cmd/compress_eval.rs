//! `compress --eval` and `--max-drop`: what the compression cost in the metric the model is
//! for, and int8 that gives layers back to float until that cost is affordable.
//!
//! The metric comes from the same code as the evaluation commands (`eval-detect`'s
//! [`eval_detect::evaluate_bytes`]), run on the bytes in memory, so the figure in a
//! compression report is the one `eval-detect` prints for the written file. Classifiers
//! are scored by top-1 accuracy on a labelled folder of input tensors ([`classify`]).
//! Both metrics are shares in [0, 1]; a drop is in percentage points of that share.
//!
//! `--max-drop POINTS` ranks the quantized layers by the noise each adds itself
//! ([`edgetrim_compress::layers`], measured on the first calibration input) and re-runs
//! the pipeline with the costliest ones kept in float, one more each time, until the metric
//! is within POINTS of the original's — at most [`MAX_FALLBACK`] layers, after which int8
//! is not the right tool for the model and the command says so. The layers are chosen on
//! the evaluation set itself: report the result on a held-out set.

use crate::backend::BackendKind;
use crate::classify;
use crate::cmd::eval_detect;
use crate::detector::Thresholds;
use anyhow::{bail, Context as _, Result};
use edgetrim_compress::layers;
use edgetrim_compress::passes::{Context, Pass, Pipeline, Stage};
use edgetrim_compress::report::{self, Report, TaskMetric};
use std::cell::OnceCell;
use std::path::{Path, PathBuf};

/// The most layers `--max-drop` gives back to float before it gives up.
pub const MAX_FALLBACK: usize = 16;

/// What `--eval SPEC` names.
#[derive(Debug)]
enum Task {
    /// `detect:DIR`: mAP on a YOLO folder.
    Detect(PathBuf),
    /// `classify:DIR`: top-1 accuracy on labelled input tensors.
    Classify(classify::Folder),
}

/// What `--eval` scores with.
#[derive(Debug)]
pub struct Evaluator {
    /// The task and its data.
    task: Task,
    /// `--eval-limit`.
    limit: Option<usize>,
    /// The original model's score, computed once.
    original: OnceCell<TaskMetric>,
}

impl Evaluator {
    /// The evaluator `--eval SPEC` names (`detect:DIR` or `classify:DIR`), with
    /// `--eval-limit`. A classify folder is read and checked here, before any compression.
    pub fn parse(spec: &str, limit: Option<usize>) -> Result<Evaluator> {
        if limit == Some(0) {
            bail!("--eval-limit 0 evaluates nothing; give at least 1");
        }
        let task = match spec.split_once(':') {
            Some(("detect", dir)) if !dir.is_empty() => Task::Detect(PathBuf::from(dir)),
            Some(("classify", dir)) if !dir.is_empty() => Task::Classify(
                classify::Folder::open(Path::new(dir)).with_context(|| format!("--eval {spec}"))?,
            ),
            _ => bail!(
                "--eval {spec:?}: expected detect:DIR (a YOLO folder with images/ and labels/) \
                 or classify:DIR (npy/*.npy inputs and labels.txt)"
            ),
        };
        Ok(Evaluator {
            task,
            limit,
            original: OnceCell::new(),
        })
    }

    /// The task, as reports name it.
    fn task(&self) -> String {
        match &self.task {
            Task::Detect(dir) => format!("detect:{}", dir.display()),
            Task::Classify(folder) => format!("classify:{}", folder.dir().display()),
        }
    }

    /// Scores the model `bytes` (`name` labels it in messages) on the nano runtime:
    /// mAP50 (primary) and mAP50-95 with `eval-detect`'s defaults, or top-1 accuracy.
    pub fn score(&self, name: &Path, bytes: &[u8]) -> Result<TaskMetric> {
        let context = || format!("--eval {}", self.task());
        // The first value is the primary one, the metric --max-drop and --budget go by.
        let values = match &self.task {
            Task::Detect(dir) => {
                let r = eval_detect::evaluate_bytes(
                    name,
                    bytes,
                    dir,
                    BackendKind::Nano,
                    Thresholds::EVAL,
                    self.limit,
                )
                .with_context(context)?;
                vec![("mAP50", r.map50), ("mAP50-95", r.map50_95)]
            }
            Task::Classify(folder) => {
                let s = classify::evaluate_bytes(name, bytes, folder, self.limit)
                    .with_context(context)?;
                vec![("top-1", s.top1())]
            }
        };
        Ok(TaskMetric {
            task: self.task(),
            primary: values[0].0.into(),
            values: values.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        })
    }

    /// The original model's score (evaluated on the first call only).
    pub fn original(&self, name: &Path, bytes: &[u8]) -> Result<TaskMetric> {
        if let Some(m) = self.original.get() {
            return Ok(m.clone());
        }
        let m = self.score(name, bytes)?;
        Ok(self.original.get_or_init(|| m).clone())
    }
}

/// Percentage points lost from `original` to `got` (primary metric, ×100).
pub fn drop_points(original: &TaskMetric, got: &TaskMetric) -> f64 {
    100.0 * (original.value() - got.value())
}

/// One compression: the models after each pass and their report, task metric included.
pub struct Outcome {
    /// The model after each pass.
    pub stages: Vec<Stage>,
    /// Their report (task metric on the original and the final row when evaluated).
    pub report: Report,
}

impl Outcome {
    /// The compressed model.
    pub fn bytes(&self) -> &[u8] {
        self.stages.last().map_or(&[], |s| s.bytes.as_slice())
    }
}

/// Runs `pipeline` on `bytes` and reports it, scoring the original and the final model when
/// `eval` is given.
pub fn compress(
    name: &Path,
    bytes: &[u8],
    pipeline: &Pipeline,
    ctx: &Context,
    eval: Option<&Evaluator>,
) -> Result<Outcome> {
    let label = || name.display().to_string();
    let stages = pipeline.run(bytes, ctx).with_context(label)?;
    let probe = ctx.calib.as_ref().and_then(|s| s.first());
    let mut report = report::build(bytes, &stages, ctx, probe.map(Vec::as_slice));
    if let (Some(eval), Some(last)) = (eval, stages.last()) {
        report.rows[0].task = Some(eval.original(name, bytes)?);
        let scored = eval.score(name, &last.bytes)?;
        if let Some(row) = report.rows.last_mut() {
            row.task = Some(scored);
        }
    }
    Ok(Outcome { stages, report })
}

/// [`compress`], then — while the metric dropped more than `max_drop` points — again with
/// the costliest int8 layer left in float, one more each time (recorded in
/// `Report::fallback`).
pub fn compress_within(
    name: &Path,
    bytes: &[u8],
    pipeline: &Pipeline,
    ctx: &mut Context,
    eval: &Evaluator,
    max_drop: f64,
) -> Result<Outcome> {
    let mut outcome = compress(name, bytes, pipeline, ctx, Some(eval))?;
    let lost = |o: &Outcome| {
        let rows = &o.report.rows;
        match (&rows[0].task, rows.last().and_then(|r| r.task.as_ref())) {
            (Some(a), Some(b)) => drop_points(a, b),
            _ => f64::INFINITY,
        }
    };
    let first_drop = lost(&outcome);
    if first_drop <= max_drop || !pipeline.passes().contains(&Pass::Int8) {
        return Ok(outcome);
    }
    // The ranking of the first int8 model: re-ranking after each step would chase noise.
    let order: Vec<String> = layers::most_costly_first(&outcome.report.layers)
        .iter()
        .map(|l| l.node.clone())
        .collect();
    let mut kept = Vec::new();
    for node in order.into_iter().take(MAX_FALLBACK) {
        ctx.int8.keep_float.push(node.clone());
        kept.push(node);
        outcome = compress(name, bytes, pipeline, ctx, Some(eval))?;
        outcome.report.fallback = kept.clone();
        if lost(&outcome) <= max_drop {
            return Ok(outcome);
        }
    }
    let metric = outcome.report.rows[0]
        .task
        .as_ref()
        .map_or("the metric", |t| t.primary.as_str());
    bail!(
        "--max-drop {max_drop}: {metric} dropped {first_drop:.2} points with int8 and still \
         {:.2} with the {} costliest int8 layers kept in float ({}); try --keep-float on the \
         sensitive part of the model, another --calib-method, or fp16",
        lost(&outcome),
        kept.len(),
        kept.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn eval_specs_parse_or_name_the_flag() {
        let e = Evaluator::parse("detect:data/test", Some(8)).unwrap();
        assert_eq!(e.task(), "detect:data/test");
        for (spec, limit, want) in [
            ("asr:data", None, "--eval \"asr:data\": expected detect:DIR"),
            ("detect:", None, "expected detect:DIR"),
            ("classify:", None, "or classify:DIR"),
            (
                "classify:/nonexistent",
                None,
                "--eval classify:/nonexistent: cannot read",
            ),
            ("detect:x", Some(0), "--eval-limit 0"),
        ] {
            let err = format!("{:#}", Evaluator::parse(spec, limit).unwrap_err());
            assert!(err.contains(want), "{spec}: {err}");
        }
        let metric = |v: f64| TaskMetric {
            task: "t".into(),
            primary: "mAP50".into(),
            values: BTreeMap::from([("mAP50".into(), v)]),
        };
        assert!((drop_points(&metric(0.9), &metric(0.885)) - 1.5).abs() < 1e-9);
    }
}
