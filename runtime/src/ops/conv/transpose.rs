//! ConvTranspose (1-D and 2-D, groups, strides, pads, dilations, output_padding,
//! output_shape): per image and group, `col = Wᵀ · X` on the packed GEMM (rows: output
//! channel × kernel tap, columns: input pixels), then col2im scatter-adds every column into
//! the output. The column buffer covers a chunk of input pixels at a time so its scratch
//! stays bounded whatever the image size. Correctness over speed: the scatter is scalar.

use super::{
    check_operands, fill_bias, output_shape, read_attrs, read_group, split_pad, AutoPad, Geometry,
};
use crate::error::Result;
use crate::ops::gemm::{GemmPlan, Matrix};
use crate::ops::{Io, Op, Prep};
use crate::tensor::DType;

/// Most floats of one column-buffer chunk (then at least one GEMM tile of pixels).
const COL_FLOATS: usize = 1 << 16;

/// A prepared ConvTranspose. `geo` describes the *forward* conv: `ih, iw` are the
/// ConvTranspose's input, `oh, ow` its output, `c_in` its input channels per group.
#[derive(Clone, Copy, Debug)]
pub struct ConvTranspose {
    geo: Geometry,
    batch: usize,
    group: usize,
    /// Output channels per group.
    c_out: usize,
    /// Input pixels per column chunk.
    chunk: usize,
    gemm: GemmPlan,
}

/// ConvTranspose: X [N, C, (H,) W], W [C, M/group, (kh,) kw], optional B [M].
pub fn conv_transpose(p: &mut Prep) -> Result<Op> {
    p.arity(2, 3)?;
    let (spatial, kernel) = check_operands(p)?;
    let (x, w) = (p.input(0)?.shape, p.input(1)?.shape);
    let a = read_attrs(p, spatial, kernel)?;
    let group = read_group(p)?;
    let (batch, c_in) = (x.dim(0), x.dim(1));
    if c_in != w.dim(0) || c_in % group != 0 {
        return Err(p.err("channel counts do not match the weight and group"));
    }
    let c_out = w.dim(1) * group;
    if p.opt_input(2).is_some_and(|b| b.shape.dim(0) != c_out) {
        return Err(p.err("bias length must equal the output channels"));
    }
    let first = 2 - spatial;
    let read_list = |name: &str| -> Result<Option<[usize; 2]>> {
        let Some(v) = p.attr_ints::<4>(name)? else {
            return Ok(None);
        };
        // output_shape may also be given with the N and C dims.
        let v = if v.len() == spatial + 2 {
            &v[2..]
        } else {
            &v[..]
        };
        if v.len() != spatial {
            return Err(p.attr_err(name, "expected one value per spatial axis"));
        }
        let mut out = [0; 2];
        for (i, &x) in v.iter().enumerate() {
            out[first + i] =
                usize::try_from(x).map_err(|_| p.attr_err(name, "must not be negative"))?;
        }
        Ok(Some(out))
    };
    let out_pad = read_list("output_padding")?.unwrap_or([0; 2]);
    let out_shape = read_list("output_shape")?;
    let mut input = [1, 1];
    input[first..].copy_from_slice(&x.dims()[2..]);
    let (mut out, mut pad_begin) = ([1; 2], [0; 2]);
    for i in first..2 {
        let (s, extent) = (a.strides[i], (a.kernel[i] - 1) * a.dilations[i] + 1);
        if out_pad[i] >= s.max(a.dilations[i]) {
            return Err(p.attr_err(
                "output_padding",
                "must be smaller than the stride or dilation",
            ));
        }
        let full = s * (input[i] - 1) + out_pad[i] + extent;
        let target = match (out_shape, a.auto_pad) {
            (Some(o), _) => Some(o[i]),
            (None, AutoPad::SameUpper | AutoPad::SameLower) => Some(input[i] * s),
            _ => None,
        };
        (out[i], pad_begin[i]) = match (target, a.auto_pad) {
            (Some(o), _) => {
                let total = full
                    .checked_sub(o)
                    .ok_or_else(|| p.attr_err("output_shape", "larger than the full output"))?;
                let lower = if a.auto_pad == AutoPad::SameUpper {
                    AutoPad::SameUpper
                } else {
                    AutoPad::SameLower
                };
                (o, split_pad(lower, total).0)
            }
            (None, AutoPad::Valid) => (full, 0),
            (None, _) => (
                full.checked_sub(a.pads[i] + a.pads[2 + i])
                    .filter(|&o| o > 0)
                    .ok_or_else(|| p.attr_err("pads", "larger than the output"))?,
                a.pads[i],
            ),
        };
    }
    let geo = Geometry::new(c_in / group, input, &a, pad_begin, out);
    let shape = output_shape(batch, c_out, &out[first..])?;
    p.output(0, DType::F32, shape)?;
    let rows = (c_out / group) * geo.kh * geo.kw;
    let pixels = geo.ih * geo.iw;
    p.macs((batch * c_in * pixels * rows / group) as u64);
    let chunk = pixels.min((COL_FLOATS / rows).max(16));
    let gemm = GemmPlan::for_target(p.target(), rows, chunk, geo.c_in);
    p.scratch(4 * (gemm.scratch_floats() + rows * chunk));
    Ok(Op::ConvTranspose(ConvTranspose {
        geo,
        batch,
        group,
        c_out: c_out / group,
        chunk,
        gemm,
    }))
}

/// Runs a prepared ConvTranspose.
pub fn eval(c: &ConvTranspose, io: &mut Io) {
    let (x, w) = (io.input(0), io.input(1));
    let bias = io.inputs.get(2).copied().flatten().map(|b| b.weights());
    let out = io.outputs[0].f32_mut();
    let g = c.geo;
    let plane = g.oh * g.ow;
    fill_bias(out, bias, c.c_out * c.group, plane);
    let scratch: &mut [f32] = bytemuck::cast_slice_mut(io.scratch);
    let (gemm_scratch, col) = scratch.split_at_mut(c.gemm.scratch_floats());
    let rows = c.c_out * g.kh * g.kw;
    let pixels = g.ih * g.iw;
    let (x, w) = (x.f32(), w.weights());
    for n in 0..c.batch {
        for grp in 0..c.group {
            let x_off = (n * c.group + grp) * g.c_in * pixels;
            let wt = Matrix::transposed(w, grp * g.c_in * rows, rows);
            let dst = &mut out[(n * c.group + grp) * c.c_out * plane..][..c.c_out * plane];
            for p0 in (0..pixels).step_by(c.chunk) {
                let np = c.chunk.min(pixels - p0);
                let col = &mut col[..rows * np];
                col.fill(0.0);
                let gemm = GemmPlan::with_kernel(c.gemm.target, c.gemm.kernel, rows, np, g.c_in);
                let xs = Matrix::row_major(x, x_off + p0, pixels);
                gemm.run(wt, xs, 1.0, col, np, gemm_scratch);
                col2im(&g, col, p0, np, dst);
            }
        }
    }
}

/// Scatter-adds the column buffer of input pixels `p0 .. p0 + np` into the output planes.
fn col2im(g: &Geometry, col: &[f32], p0: usize, np: usize, out: &mut [f32]) {
    let taps = g.kh * g.kw;
    for (r, values) in col.chunks_exact(np).enumerate() {
        let (co, ky, kx) = (r / taps, (r / g.kw) % g.kh, r % g.kw);
        let plane = &mut out[co * g.oh * g.ow..][..g.oh * g.ow];
        let (mut iy, mut ix) = (p0 / g.iw, p0 % g.iw);
        for &v in values {
            let oy = (iy * g.sh + ky * g.dh) as isize - g.pt as isize;
            let ox = (ix * g.sw + kx * g.dw) as isize - g.pl as isize;
            if (0..g.oh as isize).contains(&oy) && (0..g.ow as isize).contains(&ox) {
                plane[oy as usize * g.ow + ox as usize] += v;
            }
            ix += 1;
            if ix == g.iw {
                ix = 0;
                iy += 1;
            }
        }
    }
}
