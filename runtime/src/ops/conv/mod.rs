//! Conv and ConvTranspose (1-D and 2-D, NCHW), on the packed GEMM.
//!
//! Conv is `W[C_out/g × C_in/g·kh·kw] · im2col(X)` per batch and group. The im2col matrix is
//! never materialised (for a 640-px detector layer it would take hundreds of MB): the GEMM's
//! B packer reads the image directly through [`im2col::Im2col`], one row run at a time. A
//! 1×1, stride-1, unpadded conv needs no im2col at all (X already is B). Depthwise convs
//! (one input channel per group) have too little reuse for a GEMM and run a direct kernel
//! ([`depthwise`]). ConvTranspose ([`transpose`]) is GEMM into a column buffer plus col2im.
//!
//! 1-D convs run as 2-D ones with a height of 1.
//!
//! W and B may be the float16 constants of an fp16 model: the GEMM widens W while packing
//! its A panels and the depthwise kernel per tap, so the weights stay in the model bytes.
//!
//! A Conv may carry a fused [`Activation`] (set by the planner, see `plan::fuse`): the GEMM
//! applies it to each output tile after its last K block and the depthwise kernel to each
//! finished output row, so SiLU/Relu/Clip cost no extra pass over the output.
//!
//! A QDQ Conv whose operands are int8 becomes a [`QConv`] (set by the planner, see
//! `plan::qdq`): the same geometry on the int8 GEMM, or a depthwise one on the direct
//! int8 kernel ([`qdepthwise`]).

mod depthwise;
mod im2col;
mod qconv;
mod qdepthwise;
mod transpose;

use super::gemm::{GemmPlan, Matrix};
use super::unary::Activation;
use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, F32Source, Shape, WeightView};
use crate::with_weights;
pub use qconv::{eval as eval_quantized, QConv};
pub use transpose::{conv_transpose, eval as eval_transpose, ConvTranspose};

/// How `auto_pad` places the padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AutoPad {
    /// Explicit `pads`.
    NotSet,
    /// Output = ceil(input / stride), extra padding at the end.
    SameUpper,
    /// Output = ceil(input / stride), extra padding at the start.
    SameLower,
    /// No padding.
    Valid,
}

/// Spatial geometry of one (1-D as 2-D) convolution, per group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Input channels per group.
    pub c_in: usize,
    /// Input height.
    pub ih: usize,
    /// Input width.
    pub iw: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Vertical dilation.
    pub dh: usize,
    /// Horizontal dilation.
    pub dw: usize,
    /// Padding above.
    pub pt: usize,
    /// Padding left.
    pub pl: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Geometry {
    /// The geometry of one group from the attributes and the inferred sizes.
    fn new(
        c_in: usize,
        input: [usize; 2],
        a: &Attrs,
        pad_begin: [usize; 2],
        out: [usize; 2],
    ) -> Geometry {
        Geometry {
            c_in,
            ih: input[0],
            iw: input[1],
            kh: a.kernel[0],
            kw: a.kernel[1],
            sh: a.strides[0],
            sw: a.strides[1],
            dh: a.dilations[0],
            dw: a.dilations[1],
            pt: pad_begin[0],
            pl: pad_begin[1],
            oh: out[0],
            ow: out[1],
        }
    }
}

/// `[batch, c_out, spatial...]`.
fn output_shape(batch: usize, c_out: usize, spatial: &[usize]) -> Result<Shape> {
    let mut shape = Shape::new(&[batch, c_out])?;
    for &d in spatial {
        shape.push(d)?;
    }
    Ok(shape)
}

/// Output positions `lo..hi` (of `outputs`) whose tap lands inside `0..input`, for taps at
/// `o * stride + offset`. Always inlined: im2col calls it once per image row of every tap,
/// and LLVM's heuristics dropped a plain `#[inline]` hint here as the crate grew (the f32
/// firmware's instruction count in `scripts/firmware-check.sh` shows it when they do).
#[inline(always)]
pub(crate) fn valid_range(
    offset: isize,
    stride: usize,
    input: usize,
    outputs: usize,
) -> (usize, usize) {
    if stride == 1 {
        // The common case, without the two divisions (im2col calls this per image row).
        let hi = (input as isize - offset).clamp(0, outputs as isize) as usize;
        return (((-offset).max(0) as usize).min(hi), hi);
    }
    if stride == 2 {
        // Every downsampling layer: the same bounds with shifts for the divisions.
        let lo = if offset >= 0 {
            0
        } else {
            ((1 - offset) >> 1) as usize
        };
        let end = input as isize - offset;
        let hi = if end <= 0 {
            0
        } else {
            (((end + 1) >> 1) as usize).min(outputs)
        };
        return (lo.min(hi), hi);
    }
    let s = stride as isize;
    let lo = if offset >= 0 {
        0
    } else {
        ((-offset + s - 1) / s) as usize
    };
    let end = input as isize - offset;
    let hi = if end <= 0 {
        0
    } else {
        (((end + s - 1) / s) as usize).min(outputs)
    };
    (lo.min(hi), hi)
}

/// Attributes shared by Conv and ConvTranspose, mapped to (height, width); a 1-D op gets
/// height 1 with unit kernel, stride and dilation.
struct Attrs {
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    /// begin h, begin w, end h, end w
    pads: [usize; 4],
    auto_pad: AutoPad,
}

/// Reads the spatial attributes; `kernel` is the kernel shape from the weight.
fn read_attrs(p: &Prep, spatial: usize, kernel: [usize; 2]) -> Result<Attrs> {
    let first = 2 - spatial;
    let positive = |name: &str, default: [usize; 2]| -> Result<[usize; 2]> {
        let mut out = default;
        if let Some(v) = p.attr_ints::<4>(name)? {
            if v.len() != spatial {
                return Err(p.attr_err(name, "expected one value per spatial axis"));
            }
            for (i, &x) in v.iter().enumerate() {
                out[first + i] = usize::try_from(x)
                    .ok()
                    .filter(|&x| x >= 1)
                    .ok_or_else(|| p.attr_err(name, "values must be positive"))?;
            }
        }
        Ok(out)
    };
    if positive("kernel_shape", kernel)? != kernel {
        return Err(p.attr_err("kernel_shape", "does not match the weight's shape"));
    }
    let mut pads = [0; 4];
    if let Some(v) = p.attr_ints::<4>("pads")? {
        if v.len() != 2 * spatial {
            return Err(p.attr_err("pads", "expected two values per spatial axis"));
        }
        for (i, &x) in v.iter().enumerate() {
            let slot = if i < spatial {
                first + i
            } else {
                2 + first + i - spatial
            };
            pads[slot] =
                usize::try_from(x).map_err(|_| p.attr_err("pads", "must not be negative"))?;
        }
    }
    let auto_pad = match p.attr_str("auto_pad", "NOTSET")? {
        "NOTSET" => AutoPad::NotSet,
        "SAME_UPPER" => AutoPad::SameUpper,
        "SAME_LOWER" => AutoPad::SameLower,
        "VALID" => AutoPad::Valid,
        _ => return Err(p.attr_err("auto_pad", "unknown value")),
    };
    Ok(Attrs {
        kernel,
        strides: positive("strides", [1, 1])?,
        dilations: positive("dilations", [1, 1])?,
        pads,
        auto_pad,
    })
}

/// Splits `total` padding by `auto_pad`: (begin, end).
fn split_pad(auto_pad: AutoPad, total: usize) -> (usize, usize) {
    let small = total / 2;
    match auto_pad {
        AutoPad::SameLower => (total - small, small),
        _ => (small, total - small),
    }
}

/// Checks X and W of a conv-like op: ranks 3/4 alike, X f32, W and B f32 or float16
/// constants (read in place). Returns (spatial dims, kernel).
fn check_operands(p: &Prep) -> Result<(usize, [usize; 2])> {
    let (x, w) = (p.input_of(0, DType::F32)?, p.weight_input(1)?);
    let rank = x.shape.rank();
    if !(rank == 3 || rank == 4) || w.shape.rank() != rank {
        return Err(p.err("only 1-D and 2-D convolution (rank 3 or 4 X and W) is supported"));
    }
    let spatial = rank - 2;
    let mut kernel = [1, 1];
    kernel[2 - spatial..].copy_from_slice(&w.shape.dims()[2..]);
    if kernel.contains(&0) || x.shape.dims().contains(&0) || w.shape.dim(0) == 0 {
        return Err(p.err("empty input or weight"));
    }
    if p.opt_input(2).is_some() && p.weight_input(2)?.shape.rank() != 1 {
        return Err(p.err("bias must be a 1-D tensor"));
    }
    Ok((spatial, kernel))
}

/// Fills every `plane`-long output channel with its bias (or zero), ready to accumulate into.
fn fill_bias(out: &mut [f32], bias: Option<WeightView>, channels: usize, plane: usize) {
    for (i, dst) in out.chunks_exact_mut(plane).enumerate() {
        let v = bias.map_or(0.0, |b| with_weights!(b, |b| b.at(i % channels)));
        dst.fill(v);
    }
}

/// Which kernel a Conv runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// 1×1, stride 1, no padding: X is the B matrix.
    Pointwise,
    /// GEMM over implicit im2col.
    Im2col,
    /// One input channel per group: direct kernel.
    Depthwise,
}

/// What a prepared conv is, whichever arithmetic runs it: its geometry, grouping, path and
/// fused activation. A float [`Conv`] adds its GEMM plan, an int8 [`QConv`] its own and
/// the quantization — not both: every plan step is as large as the largest op, and the
/// int8 conv is the largest (a Cortex-M plan holds one step per node of a QDQ graph).
#[derive(Clone, Copy, Debug)]
struct Core {
    geo: Geometry,
    batch: usize,
    group: usize,
    c_out: usize,
    path: Path,
    /// Applied to the output in place (fused by the planner).
    act: Option<Activation>,
}

/// A prepared Conv.
#[derive(Clone, Copy, Debug)]
pub struct Conv {
    core: Core,
    gemm: GemmPlan,
}

impl Conv {
    /// The fused activation, if any.
    pub fn activation(&self) -> Option<Activation> {
        self.core.act
    }

    /// Output channels.
    pub fn channels(&self) -> usize {
        self.core.c_out
    }

    /// This conv with `act` applied to its output.
    pub fn with_activation(mut self, act: Activation) -> Conv {
        self.core.act = Some(act);
        self
    }
}

/// The `group` attribute (default 1, must be positive).
fn read_group(p: &Prep) -> Result<usize> {
    usize::try_from(p.attr_int("group", 1)?)
        .ok()
        .filter(|&g| g >= 1)
        .ok_or_else(|| p.attr_err("group", "must be positive"))
}

/// Conv: X [N, C, (H,) W], W [M, C/group, (kh,) kw], optional B [M].
pub fn conv(p: &mut Prep) -> Result<Op> {
    p.arity(2, 3)?;
    let (spatial, kernel) = check_operands(p)?;
    let (x, w) = (p.input(0)?.shape, p.input(1)?.shape);
    let a = read_attrs(p, spatial, kernel)?;
    let group = read_group(p)?;
    let (batch, c_in, c_out) = (x.dim(0), x.dim(1), w.dim(0));
    if c_in != w.dim(1) * group || c_out % group != 0 {
        return Err(p.err("channel counts do not match the weight and group"));
    }
    if p.opt_input(2).is_some_and(|b| b.shape.dim(0) != c_out) {
        return Err(p.err("bias length must equal the output channels"));
    }
    let mut input = [1, 1];
    input[2 - spatial..].copy_from_slice(&x.dims()[2..]);
    let mut out = [0; 2];
    let mut pad_begin = [0; 2];
    for i in 0..2 {
        let (n, k, s, d) = (input[i], a.kernel[i], a.strides[i], a.dilations[i]);
        let extent = (k - 1) * d + 1;
        (out[i], pad_begin[i]) = match a.auto_pad {
            AutoPad::NotSet => {
                let span = (n + a.pads[i] + a.pads[2 + i])
                    .checked_sub(extent)
                    .ok_or_else(|| p.err("the kernel is larger than the padded input"))?;
                (span / s + 1, a.pads[i])
            }
            AutoPad::Valid => {
                let span = n
                    .checked_sub(extent)
                    .ok_or_else(|| p.err("the kernel is larger than the input"))?;
                (span / s + 1, 0)
            }
            AutoPad::SameUpper | AutoPad::SameLower => {
                let o = n.div_ceil(s);
                let total = ((o - 1) * s + extent).saturating_sub(n);
                (o, split_pad(a.auto_pad, total).0)
            }
        };
    }
    let geo = Geometry::new(c_in / group, input, &a, pad_begin, out);
    let shape = output_shape(batch, c_out, &out[2 - spatial..])?;
    p.output(0, DType::F32, shape)?;
    let k = geo.c_in * geo.kh * geo.kw;
    let plane = geo.oh * geo.ow;
    p.macs((batch * c_out * plane * k) as u64);
    let path = if geo.c_in == 1 && group > 1 {
        Path::Depthwise
    } else if geo.kh * geo.kw * geo.sh * geo.sw == 1 && pad_begin == [0, 0] && out == input {
        Path::Pointwise
    } else {
        Path::Im2col
    };
    let gemm = GemmPlan::for_target(p.target(), c_out / group, plane, k);
    p.scratch(
        4 * match path {
            Path::Depthwise => geo.iw,
            _ => gemm.scratch_floats(),
        },
    );
    Ok(Op::Conv(Conv {
        core: Core {
            geo,
            batch,
            group,
            c_out,
            path,
            act: None,
        },
        gemm,
    }))
}

/// Runs a prepared Conv.
pub fn eval(conv: &Conv, io: &mut Io) {
    let (c, gemm) = (&conv.core, &conv.gemm);
    let (x, w) = (io.input(0), io.input(1));
    let bias = io.inputs.get(2).copied().flatten().map(|b| b.weights());
    let out = io.outputs[0].f32_mut();
    let scratch: &mut [f32] = bytemuck::cast_slice_mut(io.scratch);
    let g = c.geo;
    let plane = g.oh * g.ow;
    fill_bias(out, bias, c.c_out, plane);
    let m = c.c_out / c.group;
    let k = g.c_in * g.kh * g.kw;
    // One copy of the loops below: the views' representations (aligned or not, float16)
    // are resolved per row run inside the operands, not by monomorphising this body.
    let (x, w) = (x.f32(), w.weights());
    for n in 0..c.batch {
        for grp in 0..c.group {
            let x_off = (n * c.group + grp) * g.c_in * g.ih * g.iw;
            let dst = &mut out[(n * c.c_out + grp * m) * plane..][..m * plane];
            let a = Matrix::row_major(w, grp * m * k, k);
            match c.path {
                Path::Depthwise => with_weights!(w, |w| {
                    let (w_off, kernel) = (grp * m * k, gemm.kernel);
                    depthwise::run(kernel, &g, x, x_off, w, w_off, m, dst, scratch, c.act)
                }),
                Path::Pointwise => {
                    let b = Matrix::row_major(x, x_off, plane);
                    gemm.run_then(a, b, 1.0, dst, plane, scratch, c.act)
                }
                Path::Im2col => {
                    let b = im2col::Im2col::new(x, x_off, g);
                    gemm.run_then(a, b, 1.0, dst, plane, scratch, c.act)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_range;

    /// Every stride (1 takes a shortcut) gives exactly the outputs whose tap is inside.
    #[test]
    fn valid_range_is_the_set_of_inside_taps() {
        for stride in 1..4 {
            for offset in -7isize..9 {
                for input in 0..8 {
                    for outputs in 0..9 {
                        let (lo, hi) = valid_range(offset, stride, input, outputs);
                        assert!(lo <= hi && hi <= outputs);
                        for o in 0..outputs {
                            let tap = (o * stride) as isize + offset;
                            let inside = tap >= 0 && tap < input as isize;
                            assert_eq!(
                                (lo..hi).contains(&o),
                                inside,
                                "offset {offset} stride {stride} input {input} o {o}"
                            );
                        }
                    }
                }
            }
        }
    }
}
