//! Per-layer pruning ratios from a sensitivity scan (`scope=sensitivity`).
//!
//! Layers differ in how much they tolerate: a layer whose channels are redundant loses
//! little at 60 %, another breaks the model at 10 %. As in Li et al. 2017 ("Pruning Filters
//! for Efficient ConvNets"), each layer is pruned alone at a few ratios around the target
//! and the model's outputs on a few calibration inputs are compared with the original's
//! (noise-to-signal ratio). A greedy allocation then raises, step by step, the ratio of the
//! layer whose next step costs the least error per MAC saved, until the model saves as many
//! MACs as pruning every layer at the target ratio would. Errors of different layers are
//! assumed to add up, which holds for small ones.
//!
//! The trial cuts are plain, although the real pass then restores the readers' mean
//! outputs: scanning cuts whose readers' biases absorbed the removed channels' means
//! (`b' = b + W_removed · E[x_removed]`) left YOLO9tr-s at 30 % with mAP50 0.705 after
//! reconstruction instead of 0.837. The plain error also counts the mean shift, which
//! tracks how much a layer's removed channels carried at all.

use super::depgraph::DepGraph;
use super::{importance, slice, Channels};
use crate::error::{Error, Result};
use crate::exec;
use prost::Message;
use tract_onnx::pb::ModelProto;

use super::super::Context;

/// Ratios tried per layer, as multiples of the target ratio.
const LEVELS: [f32; 4] = [0.5, 1.0, 1.5, 2.0];
/// No layer loses more than this share.
const MAX_RATIO: f32 = 0.9;
/// Calibration inputs compared per measurement.
const SAMPLES: usize = 8;

/// Every float output of `bytes` on the first calibration inputs, concatenated.
fn outputs(bytes: &[u8], ctx: &Context, samples: usize) -> Result<Vec<f64>> {
    let mut all = Vec::new();
    let input = |s: usize, k: usize, dtype, volume| ctx.calib_input(s, k, dtype, volume);
    exec::run_samples(bytes, &ctx.shape_refs(), samples, input, |_, v| {
        all.extend(v.iter().map(|&x| f64::from(x)))
    })
    .map_err(|e| Error::Unsupported(format!("prune sensitivity scan: {e}")))?;
    Ok(all)
}

fn macs(bytes: &[u8], ctx: &Context) -> Result<u64> {
    exec::macs(bytes, &ctx.shape_refs())
        .map_err(|e| Error::Unsupported(format!("prune sensitivity scan: {e}")))
}

/// The ratio of each group of `dg` (same order).
pub fn ratios(
    model: &ModelProto,
    ctx: &Context,
    dg: &DepGraph,
    opts: &Channels,
) -> Result<Vec<f32>> {
    let target = opts.ratio;
    let scores = importance::scores(model, ctx, dg, opts)?;
    let samples = SAMPLES.min(ctx.calib_count());
    let original = model.encode_to_vec();
    let reference = outputs(&original, ctx, samples)?;
    let signal: f64 = reference
        .iter()
        .map(|v| v * v)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let base = macs(&original, ctx)?;
    let levels: Vec<f32> = LEVELS.iter().map(|m| (m * target).min(MAX_RATIO)).collect();
    // error[g][l] and saved[g][l], with level 0 = not pruned.
    let n = dg.groups.len();
    let mut error = vec![vec![0f64; levels.len() + 1]; n];
    let mut saved = vec![vec![0u64; levels.len() + 1]; n];
    for g in 0..n {
        for (l, &r) in levels.iter().enumerate() {
            let mut ratios = vec![0f32; n];
            ratios[g] = r;
            let removed = importance::select_per_group(dg, &scores, &ratios);
            if !removed.contains(&true) {
                error[g][l + 1] = error[g][l];
                saved[g][l + 1] = saved[g][l];
                continue;
            }
            let mut m = model.clone();
            slice::apply(&mut m, dg, &removed)?;
            let bytes = m.encode_to_vec();
            let out = outputs(&bytes, ctx, samples)?;
            let noise: f64 = reference
                .iter()
                .zip(&out)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            error[g][l + 1] = noise / signal;
            saved[g][l + 1] = base.saturating_sub(macs(&bytes, ctx)?);
        }
    }
    let at_target = LEVELS.iter().position(|&m| m == 1.0).map_or(1, |p| p + 1);
    let goal: u64 = saved.iter().map(|s| s[at_target]).sum();
    let mut level = vec![0usize; n];
    let mut total = 0u64;
    while total < goal {
        let step = (0..n)
            .filter(|&g| level[g] < levels.len())
            .map(|g| {
                let (l, next) = (level[g], level[g] + 1);
                let gain = saved[g][next].saturating_sub(saved[g][l]).max(1) as f64;
                ((error[g][next] - error[g][l]) / gain, g)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let Some((_, g)) = step else { break };
        total = total - saved[g][level[g]] + saved[g][level[g] + 1];
        level[g] += 1;
    }
    Ok(level
        .iter()
        .map(|&l| if l == 0 { 0.0 } else { levels[l - 1] })
        .collect())
}
