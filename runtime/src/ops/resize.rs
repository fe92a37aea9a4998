//! Resize (opset 11+): nearest and bilinear resampling of the last two dims.
//!
//! Every output coordinate maps back to an input coordinate through the
//! `coordinate_transformation_mode`; nearest rounds it by `nearest_mode`, linear blends the
//! two neighbours with edge clamping (the ONNX reference pads with edge values). The
//! column mapping is the same for every row and plane, so eval computes it once into
//! scratch; the row mapping is computed per output row, and a nearest-mode row whose source
//! row equals the previous one's is a plain copy — half of all rows in a ×2 upsample, the
//! shape YOLO necks use.

use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, F32Source};
use crate::with_f32;

/// How an output coordinate maps to an input coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordMode {
    /// (x + ½) / scale − ½
    HalfPixel,
    /// Like half_pixel, but 0 when the output length is 1.
    PytorchHalfPixel,
    /// x · (in − 1) / (in · scale − 1)
    AlignCorners,
    /// x / scale
    Asymmetric,
    /// (x + ½) / scale
    TfHalfPixelForNn,
}

/// How nearest mode rounds a fractional input coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearestMode {
    /// Round, halves down.
    RoundPreferFloor,
    /// Round, halves up.
    RoundPreferCeil,
    /// Down.
    Floor,
    /// Up.
    Ceil,
}

/// One resampled axis.
#[derive(Clone, Copy, Debug)]
pub struct ResizeAxis {
    input: usize,
    output: usize,
    scale: f32,
}

/// A prepared Resize of the last two dims (leading dims unchanged).
#[derive(Clone, Copy, Debug)]
pub struct Resize {
    linear: bool,
    coord: CoordMode,
    nearest: NearestMode,
    h: ResizeAxis,
    w: ResizeAxis,
}

impl Resize {
    /// The input coordinate of output coordinate `x` along `a`.
    fn source(&self, a: &ResizeAxis, x: usize) -> f32 {
        let x = x as f32;
        match self.coord {
            CoordMode::HalfPixel => (x + 0.5) / a.scale - 0.5,
            CoordMode::PytorchHalfPixel if a.output > 1 => (x + 0.5) / a.scale - 0.5,
            CoordMode::PytorchHalfPixel => 0.0,
            // The ONNX reference (and tract) take the unrounded output length.
            CoordMode::AlignCorners => {
                let width = a.scale * a.input as f32;
                if width == 1.0 {
                    0.0
                } else {
                    x * (a.input - 1) as f32 / (width - 1.0)
                }
            }
            CoordMode::Asymmetric => x / a.scale,
            CoordMode::TfHalfPixelForNn => (x + 0.5) / a.scale,
        }
    }

    /// Nearest input index of output index `x` along `a`.
    fn nearest_index(&self, a: &ResizeAxis, x: usize) -> usize {
        let s = self.source(a, x);
        let floor = libm::floorf(s);
        let r = match self.nearest {
            NearestMode::RoundPreferFloor if s - floor == 0.5 => floor,
            NearestMode::RoundPreferCeil if s - floor == 0.5 => floor + 1.0,
            NearestMode::RoundPreferFloor | NearestMode::RoundPreferCeil => libm::roundf(s),
            NearestMode::Floor => floor,
            NearestMode::Ceil => libm::ceilf(s),
        };
        clamp_index(r, a.input)
    }

    /// The two neighbours and the weight of the second, for output index `x` along `a`.
    fn linear_taps(&self, a: &ResizeAxis, x: usize) -> (usize, usize, f32) {
        let s = self.source(a, x);
        let floor = libm::floorf(s);
        (
            clamp_index(floor, a.input),
            clamp_index(floor + 1.0, a.input),
            s - floor,
        )
    }
}

fn clamp_index(v: f32, len: usize) -> usize {
    // `as` saturates negatives to 0.
    (v as usize).min(len - 1)
}

/// Resize.
pub fn resize(p: &mut Prep) -> Result<Op> {
    if p.opset() < 11 {
        return Err(p.err("Resize before opset 11 is not supported"));
    }
    p.arity(1, 4)?;
    let x = p.input_of(0, DType::F32)?;
    let rank = x.shape.rank();
    if rank < 2 {
        return Err(p.err("Resize needs an input of rank >= 2"));
    }
    let linear = match p.attr_str("mode", "nearest")? {
        "nearest" => false,
        "linear" => true,
        _ => return Err(p.attr_err("mode", "only nearest and linear are supported")),
    };
    let coord = match p.attr_str("coordinate_transformation_mode", "half_pixel")? {
        "half_pixel" => CoordMode::HalfPixel,
        "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
        "align_corners" => CoordMode::AlignCorners,
        "asymmetric" => CoordMode::Asymmetric,
        "tf_half_pixel_for_nn" => CoordMode::TfHalfPixelForNn,
        _ => return Err(p.attr_err("coordinate_transformation_mode", "unsupported value")),
    };
    let nearest = match p.attr_str("nearest_mode", "round_prefer_floor")? {
        "round_prefer_floor" => NearestMode::RoundPreferFloor,
        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
        "floor" => NearestMode::Floor,
        "ceil" => NearestMode::Ceil,
        _ => return Err(p.attr_err("nearest_mode", "unknown value")),
    };
    if p.attr_int("antialias", 0)? != 0 {
        return Err(p.attr_err("antialias", "antialiasing is not supported"));
    }
    if p.attr("axes").is_some() {
        return Err(p.attr_err("axes", "not supported; give scales or sizes for every dim"));
    }
    if p.attr_str("keep_aspect_ratio_policy", "stretch")? != "stretch" {
        return Err(p.attr_err("keep_aspect_ratio_policy", "only stretch is supported"));
    }

    // Output dims and per-dim scales, from whichever of scales / sizes is given.
    let mut out = x.shape;
    let mut scales = [1.0f32; crate::tensor::MAX_RANK];
    let given = |i: usize| p.opt_input(i).filter(|f| f.shape.volume() > 0);
    if given(2).is_some() {
        let s = p.const_input(2)?;
        if s.dtype != DType::F32 || s.shape.volume() != rank {
            return Err(p.err("scales must be float32 with one value per dim"));
        }
        with_f32!(s.f32(), |v| {
            for (i, d) in out.dims_mut().iter_mut().enumerate() {
                scales[i] = v.at(i);
                *d = libm::floorf(*d as f32 * scales[i]) as usize;
            }
        });
        if scales[..rank].iter().any(|&s| s.is_nan() || s <= 0.0) {
            return Err(p.err("scales must be positive"));
        }
    } else if given(3).is_some() {
        let s = p.const_input(3)?;
        if !matches!(s.dtype, DType::I64 | DType::I32) || s.shape.volume() != rank {
            return Err(p.err("sizes must be int64 with one value per dim"));
        }
        for (i, v) in s.i64s().enumerate() {
            let input = x.shape.dim(i);
            let v = usize::try_from(v).map_err(|_| p.err("sizes must be non-negative"))?;
            out.dims_mut()[i] = v;
            scales[i] = v as f32 / input.max(1) as f32;
        }
    } else {
        return Err(p.err("Resize needs constant scales or sizes"));
    }
    if out.dims()[..rank - 2] != x.shape.dims()[..rank - 2] {
        return Err(p.err("only the last two dims may be resized"));
    }
    if x.shape.dims()[rank - 2..].contains(&0) && out.volume() > 0 {
        return Err(p.err("cannot resize an empty input to a non-empty output"));
    }
    let axis = |i: usize| ResizeAxis {
        input: x.shape.dim(i),
        output: out.dim(i),
        scale: scales[i],
    };
    let (h, w) = (axis(rank - 2), axis(rank - 1));
    p.output(0, DType::F32, out)?;
    p.macs(out.volume() as u64 * if linear { 4 } else { 1 });
    // Column taps: two indices and a weight per output column.
    p.scratch(w.output * 12);
    Ok(Op::Resize(Resize {
        linear,
        coord,
        nearest,
        h,
        w,
    }))
}

fn run<S: F32Source>(g: &Resize, x: S, out: &mut [f32], scratch: &mut [u8]) {
    if out.is_empty() {
        // No scratch was asked for, so there is nothing aligned to cast.
        return;
    }
    let (h, w) = (&g.h, &g.w);
    let (idx_bytes, weight_bytes) = scratch.split_at_mut(w.output * 8);
    let cols: &mut [u32] = bytemuck::cast_slice_mut(idx_bytes);
    let weights: &mut [f32] = bytemuck::cast_slice_mut(&mut weight_bytes[..w.output * 4]);
    let (c0, c1) = cols.split_at_mut(w.output);
    for ox in 0..w.output {
        if g.linear {
            let (a, b, t) = g.linear_taps(w, ox);
            (c0[ox], c1[ox], weights[ox]) = (a as u32, b as u32, t);
        } else {
            c0[ox] = g.nearest_index(w, ox) as u32;
        }
    }
    let (in_plane, out_plane) = (h.input * w.input, h.output * w.output);
    for (plane, dst) in out.chunks_exact_mut(out_plane).enumerate() {
        let base = plane * in_plane;
        let mut prev_row = usize::MAX;
        for oy in 0..h.output {
            let (done, todo) = dst.split_at_mut(oy * w.output);
            let row = &mut todo[..w.output];
            if g.linear {
                let (y0, y1, ty) = g.linear_taps(h, oy);
                let (r0, r1) = (base + y0 * w.input, base + y1 * w.input);
                for (ox, v) in row.iter_mut().enumerate() {
                    let (a, b, tx) = (c0[ox] as usize, c1[ox] as usize, weights[ox]);
                    let top = x.at(r0 + a) + (x.at(r0 + b) - x.at(r0 + a)) * tx;
                    let bottom = x.at(r1 + a) + (x.at(r1 + b) - x.at(r1 + a)) * tx;
                    *v = top + (bottom - top) * ty;
                }
            } else {
                let iy = g.nearest_index(h, oy);
                if iy == prev_row {
                    // Same source row as the row above: copy it.
                    row.copy_from_slice(&done[(oy - 1) * w.output..]);
                    continue;
                }
                prev_row = iy;
                let r = base + iy * w.input;
                row.iter_mut()
                    .zip(c0.iter())
                    .for_each(|(v, &c)| *v = x.at(r + c as usize));
            }
        }
    }
}

/// Computes the output.
pub fn eval(g: &Resize, io: &mut Io) {
    let x = io.input(0);
    let out = io.outputs[0].f32_mut();
    with_f32!(x.f32(), |x| run(g, x, out, io.scratch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn nearest_indices(g: &Resize, a: &ResizeAxis) -> Vec<usize> {
        (0..a.output).map(|x| g.nearest_index(a, x)).collect()
    }

    fn g(coord: CoordMode, nearest: NearestMode) -> Resize {
        let a = ResizeAxis {
            input: 1,
            output: 1,
            scale: 1.0,
        };
        Resize {
            linear: false,
            coord,
            nearest,
            h: a,
            w: a,
        }
    }

    #[test]
    fn yolo_upsample_repeats_each_pixel() {
        let r = g(CoordMode::Asymmetric, NearestMode::Floor);
        let a = ResizeAxis {
            input: 3,
            output: 6,
            scale: 2.0,
        };
        assert_eq!(nearest_indices(&r, &a), [0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn halves_round_by_nearest_mode() {
        // Downscale by 2 with asymmetric: sources 0, 2, 4 exactly; by 4/3: 0, .75, 1.5, 2.25.
        let a = ResizeAxis {
            input: 4,
            output: 4,
            scale: 4.0 / 3.0,
        };
        let floor = g(CoordMode::Asymmetric, NearestMode::RoundPreferFloor);
        let ceil = g(CoordMode::Asymmetric, NearestMode::RoundPreferCeil);
        assert_eq!(nearest_indices(&floor, &a), [0, 1, 1, 2]);
        assert_eq!(nearest_indices(&ceil, &a), [0, 1, 2, 2]);
    }
}
