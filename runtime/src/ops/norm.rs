//! Normalisation at inference: BatchNormalization, InstanceNormalization,
//! LayerNormalization.
//!
//! BatchNormalization folds its four per-channel vectors into one scale and shift per
//! channel (computed as each channel starts: C divisions instead of a second weight copy,
//! since weights stay in the model bytes), then the channel is a single multiply-add loop.
//! Instance and layer normalisation compute mean and variance in two passes over each
//! normalised run (more accurate than the one-pass E[x²] − E[x]² for activations with a
//! large mean).

use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, F32Source, TensorRef};
use crate::with_f32;

/// Which normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// Running statistics: inputs X, scale, B, mean, var.
    Batch,
    /// Per (n, c) statistics over the spatial dims: inputs X, scale, B.
    Instance,
    /// Per row statistics over the dims from `axis` on: inputs X, Scale, optional B.
    Layer,
}

/// A prepared normalisation of `outer` runs of `len` elements; `channels` > 1 when the
/// affine parameters are per channel (runs `c, c + channels, ...` share channel `c`).
#[derive(Clone, Copy, Debug)]
pub struct Norm {
    kind: NormKind,
    eps: f32,
    outer: usize,
    len: usize,
    channels: usize,
    bias: bool,
}

/// Checks input `i` is an f32 vector of `n` elements.
fn param(p: &Prep, i: usize, n: usize) -> Result<()> {
    let f = p.input_of(i, DType::F32)?;
    if f.shape.volume() != n {
        return Err(p.err("a scale, bias, mean or variance input has the wrong size"));
    }
    Ok(())
}

/// X of rank >= 2 with its channel count and per-channel plane size.
fn channels_and_plane(p: &Prep) -> Result<(usize, usize, usize)> {
    let x = p.input_of(0, DType::F32)?;
    let dims = x.shape.dims();
    if dims.len() < 2 {
        return Err(p.err("input must have a channel dim (rank >= 2)"));
    }
    Ok((dims[0], dims[1], dims[2..].iter().product()))
}

fn finish(p: &mut Prep, norm: Norm) -> Result<Op> {
    let x = p.input(0)?;
    p.output(0, DType::F32, x.shape)?;
    p.macs(2 * x.shape.volume() as u64);
    Ok(Op::Norm(norm))
}

/// BatchNormalization (inference form; the training outputs are refused).
pub fn batch_norm(p: &mut Prep) -> Result<Op> {
    p.arity(5, 5)?;
    if p.attr_int("training_mode", 0)? != 0 {
        return Err(p.attr_err("training_mode", "only inference is supported"));
    }
    if p.attr_int("spatial", 1)? != 1 {
        return Err(p.attr_err("spatial", "only spatial = 1 is supported"));
    }
    let (n, c, plane) = channels_and_plane(p)?;
    for i in 1..5 {
        param(p, i, c)?;
    }
    let eps = p.attr_float("epsilon", 1e-5)?;
    finish(
        p,
        Norm {
            kind: NormKind::Batch,
            eps,
            outer: n * c,
            len: plane,
            channels: c,
            bias: true,
        },
    )
}

/// InstanceNormalization.
pub fn instance_norm(p: &mut Prep) -> Result<Op> {
    p.arity(3, 3)?;
    let (n, c, plane) = channels_and_plane(p)?;
    param(p, 1, c)?;
    param(p, 2, c)?;
    let eps = p.attr_float("epsilon", 1e-5)?;
    finish(
        p,
        Norm {
            kind: NormKind::Instance,
            eps,
            outer: n * c,
            len: plane,
            channels: c,
            bias: true,
        },
    )
}

/// LayerNormalization (opset 17; the optional Mean and InvStdDev outputs are refused).
pub fn layer_norm(p: &mut Prep) -> Result<Op> {
    p.arity(2, 3)?;
    let x = p.input_of(0, DType::F32)?;
    let axis = p.attr_int("axis", -1)?;
    let axis = x
        .shape
        .axis(axis)
        .ok_or_else(|| p.attr_err("axis", "out of range"))?;
    let dims = x.shape.dims();
    let len: usize = dims[axis..].iter().product();
    param(p, 1, len)?;
    let bias = p.opt_input(2).is_some();
    if bias {
        param(p, 2, len)?;
    }
    let eps = p.attr_float("epsilon", 1e-5)?;
    finish(
        p,
        Norm {
            kind: NormKind::Layer,
            eps,
            outer: dims[..axis].iter().product(),
            len,
            channels: 1,
            bias,
        },
    )
}

/// Element `i` of a small parameter vector.
fn at(t: &TensorRef, i: usize) -> f32 {
    with_f32!(t.f32(), |v| v.at(i))
}

/// Mean and 1/√(variance + eps) of `x[base..base + len]`.
fn moments<S: F32Source>(x: S, base: usize, len: usize, eps: f32) -> (f32, f32) {
    let n = len.max(1) as f32;
    let mean = (0..len).map(|i| x.at(base + i)).sum::<f32>() / n;
    let var = (0..len)
        .map(|i| {
            let d = x.at(base + i) - mean;
            d * d
        })
        .sum::<f32>()
        / n;
    (mean, 1.0 / libm::sqrtf(var + eps))
}

fn run<S: F32Source>(g: &Norm, x: S, params: [TensorRef; 4], out: &mut [f32]) {
    let [scale, bias, mean, var] = params;
    if g.len == 0 {
        return;
    }
    for (r, y) in out.chunks_exact_mut(g.len).enumerate().take(g.outer) {
        let base = r * g.len;
        match g.kind {
            NormKind::Batch | NormKind::Instance => {
                let c = r % g.channels;
                let (m, inv_std) = if g.kind == NormKind::Batch {
                    (at(&mean, c), 1.0 / libm::sqrtf(at(&var, c) + g.eps))
                } else {
                    moments(x, base, g.len, g.eps)
                };
                let a = at(&scale, c) * inv_std;
                let b = at(&bias, c) - m * a;
                y.iter_mut()
                    .enumerate()
                    .for_each(|(i, v)| *v = x.at(base + i) * a + b);
            }
            NormKind::Layer => {
                let (m, inv_std) = moments(x, base, g.len, g.eps);
                with_f32!(scale.f32(), |s| {
                    y.iter_mut()
                        .enumerate()
                        .for_each(|(i, v)| *v = (x.at(base + i) - m) * inv_std * s.at(i))
                });
                if g.bias {
                    with_f32!(bias.f32(), |b| {
                        y.iter_mut().enumerate().for_each(|(i, v)| *v += b.at(i))
                    });
                }
            }
        }
    }
}

/// Computes the output.
pub fn eval(g: &Norm, io: &mut Io) {
    let x = io.input(0);
    // Absent parameters (Instance/Layer have fewer) are never read; `x` stands in.
    let params = core::array::from_fn(|k| io.inputs.get(k + 1).copied().flatten().unwrap_or(x));
    let out = io.outputs[0].f32_mut();
    with_f32!(x.f32(), |x| run(g, x, params, out))
}
