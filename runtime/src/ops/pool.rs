//! Pooling over 1-D and 2-D NCHW maps: MaxPool, AveragePool, GlobalMaxPool,
//! GlobalAveragePool.
//!
//! Windowed pooling is separable: the max (or sum) over a kh×kw rectangle is the max over
//! kh rows of each row's max over kw columns, and the number of in-bounds taps of a window
//! is the product of its per-axis counts. So each channel is pooled in two passes — along
//! W into a scratch row block, then along H — and both inner loops run over contiguous
//! output columns, which vectorises for any kernel, stride, padding and dilation. YOLO's
//! SPPELAN (MaxPool 5×5 s1 p2, three times) and AConv (AveragePool 2×2 s1) take 2·k adds
//! per output instead of k².

use super::qgemm::Requant;
use super::quant::Grid;
use super::{Io, Op, Prep};
use crate::error::Result;
use crate::tensor::{DType, F32Source};
use crate::with_f32;

/// Max or average.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// Largest tap.
    Max,
    /// Mean of the in-bounds taps.
    Avg,
    /// Mean of the taps inside the padded input.
    AvgIncludePad,
}

/// Geometry of one spatial axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axis {
    /// Input length.
    pub input: usize,
    /// Output length.
    pub output: usize,
    /// Kernel taps.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Padding before.
    pub pad_begin: usize,
    /// Padding after.
    pub pad_end: usize,
}

impl Axis {
    /// Output positions `lo..hi` whose tap `k` lands inside the input.
    fn valid_outputs(&self, k: usize) -> (usize, usize) {
        let offset = (k * self.dilation) as isize - self.pad_begin as isize;
        super::conv::valid_range(offset, self.stride, self.input, self.output)
    }

    /// How many taps of output position `o` the average divides by.
    fn count(&self, o: usize, kind: PoolKind) -> usize {
        let (lo, hi) = match kind {
            PoolKind::AvgIncludePad => (0, self.input + self.pad_begin + self.pad_end),
            _ => (self.pad_begin, self.input + self.pad_begin),
        };
        (0..self.kernel)
            .map(|k| o * self.stride + k * self.dilation)
            .filter(|i| (lo..hi).contains(i))
            .count()
    }
}

/// A prepared pooling of every `h × w` plane.
#[derive(Clone, Copy, Debug)]
pub struct Pool {
    kind: PoolKind,
    h: Axis,
    w: Axis,
    /// An average pool between int8 tensors: the input's grid and the output's
    /// quantization (set by the planner, `plan/qdq/joins.rs`).
    int8: Option<(Grid, Requant)>,
}

impl Pool {
    /// Whether this is a max pool.
    pub fn is_max(&self) -> bool {
        self.kind == PoolKind::Max
    }

    /// This average pool reading int8 on grid `x` and writing int8 by `y`: each plane is
    /// dequantized into scratch, pooled by the f32 kernel and quantized, which is what the
    /// `DequantizeLinear → AveragePool → QuantizeLinear` steps compute, bit for bit,
    /// without their f32 tensors.
    pub fn with_int8(self, x: Grid, y: Requant) -> Pool {
        Pool {
            int8: Some((x, y)),
            ..self
        }
    }

    /// Scratch bytes: the f32 kernel's, and for an int8 average pool one f32 input and
    /// output plane besides.
    pub fn scratch_bytes(&self) -> usize {
        let planes = match self.int8 {
            Some(_) => self.h.input * self.w.input + self.h.output * self.w.output,
            None => 0,
        };
        (self.h.input * self.w.output + self.w.output + planes) * 4
    }
}

fn prepare_windowed(p: &mut Prep, max: bool) -> Result<Op> {
    p.arity(1, 1)?;
    let x = p.input_of(0, DType::F32)?;
    if x.value.is_some() {
        // The kernel reads its input as an aligned slice; weights may be unaligned.
        return Err(p.err("pooling a constant input is not supported"));
    }
    let rank = x.shape.rank();
    if !(rank == 3 || rank == 4) {
        return Err(p.err("only 1-D and 2-D pooling (rank 3 or 4 input) is supported"));
    }
    let n_sp = rank - 2;
    let kernel = p
        .attr_ints::<2>("kernel_shape")?
        .ok_or_else(|| p.attr_err("kernel_shape", "required"))?;
    let len_ok =
        |v: &Option<heapless::Vec<i64, 4>>, n: usize| v.as_ref().is_none_or(|v| v.len() == n);
    let strides = p.attr_ints::<4>("strides")?;
    let dilations = p.attr_ints::<4>("dilations")?;
    let pads = p.attr_ints::<4>("pads")?;
    if kernel.len() != n_sp || !len_ok(&strides, n_sp) || !len_ok(&dilations, n_sp) {
        return Err(
            p.err("kernel_shape, strides and dilations must have one value per spatial axis")
        );
    }
    if !len_ok(&pads, 2 * n_sp) {
        return Err(p.attr_err("pads", "expected two values per spatial axis"));
    }
    if !max
        && dilations
            .as_ref()
            .is_some_and(|d| d.iter().any(|&d| d != 1))
    {
        return Err(p.attr_err("dilations", "AveragePool dilations are not supported"));
    }
    let ceil = p.attr_int("ceil_mode", 0)? != 0;
    let auto_pad = p.attr_str("auto_pad", "NOTSET")?;
    let kind = if max {
        PoolKind::Max
    } else if p.attr_int("count_include_pad", 0)? != 0 {
        PoolKind::AvgIncludePad
    } else {
        PoolKind::Avg
    };

    let mut axes = [Axis {
        input: 1,
        output: 1,
        kernel: 1,
        stride: 1,
        dilation: 1,
        pad_begin: 0,
        pad_end: 0,
    }; 2];
    let first = 2 - n_sp; // 1-D pools only fill the W axis
    for i in 0..n_sp {
        let get =
            |v: &Option<heapless::Vec<i64, 4>>, j: usize, d: i64| v.as_ref().map_or(d, |v| v[j]);
        let (k, s, d) = (kernel[i], get(&strides, i, 1), get(&dilations, i, 1));
        let (pb, pe) = (get(&pads, i, 0), get(&pads, i + n_sp, 0));
        if k < 1 || s < 1 || d < 1 || pb < 0 || pe < 0 {
            return Err(p.err("kernel, strides and dilations must be positive, pads non-negative"));
        }
        let input = x.shape.dim(2 + i);
        let (k, s, d) = (k as usize, s as usize, d as usize);
        let extent = (k - 1) * d + 1;
        let (mut pb, mut pe) = (pb as usize, pe as usize);
        let output = match auto_pad {
            "NOTSET" => {
                let span = (input + pb + pe)
                    .checked_sub(extent)
                    .ok_or_else(|| p.err("the kernel is larger than the padded input"))?;
                let mut out = if ceil { span.div_ceil(s) } else { span / s } + 1;
                // A ceil-mode window must start inside the input or the leading pad.
                if ceil && (out - 1) * s >= input + pb {
                    out -= 1;
                }
                out
            }
            "VALID" => {
                (pb, pe) = (0, 0);
                input
                    .checked_sub(extent)
                    .ok_or_else(|| p.err("the kernel is larger than the input"))?
                    / s
                    + 1
            }
            "SAME_UPPER" | "SAME_LOWER" => {
                let out = input.div_ceil(s);
                let total = ((out - 1) * s + extent).saturating_sub(input);
                let small = total / 2;
                (pb, pe) = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                out
            }
            _ => return Err(p.attr_err("auto_pad", "unknown value")),
        };
        if pb >= extent || pe >= extent {
            return Err(p.attr_err("pads", "pads must be smaller than the kernel"));
        }
        axes[first + i] = Axis {
            input,
            output,
            kernel: k,
            stride: s,
            dilation: d,
            pad_begin: pb,
            pad_end: pe,
        };
    }
    let [h, w] = axes;
    let mut out = x.shape;
    out.dims_mut()[2..].copy_from_slice(&[h.output, w.output][first..]);
    p.output(0, DType::F32, out)?;
    p.macs((out.volume() * h.kernel * w.kernel) as u64);
    // Per channel: the W pass for every input row, then 1/count per output column.
    let pool = Pool {
        kind,
        h,
        w,
        int8: None,
    };
    p.scratch(pool.scratch_bytes());
    Ok(Op::Pool(pool))
}

/// MaxPool (the optional Indices output is refused by the planner).
pub fn max_pool(p: &mut Prep) -> Result<Op> {
    if p.attr_int("storage_order", 0)? != 0 {
        return Err(p.attr_err("storage_order", "only row-major is supported"));
    }
    prepare_windowed(p, true)
}

/// AveragePool.
pub fn average_pool(p: &mut Prep) -> Result<Op> {
    prepare_windowed(p, false)
}

fn prepare_global(p: &mut Prep, max: bool) -> Result<Op> {
    p.arity(1, 1)?;
    let x = p.input_of(0, DType::F32)?;
    if x.shape.rank() < 3 {
        return Err(p.err("global pooling needs an N, C, spatial... input"));
    }
    let mut out = x.shape;
    out.dims_mut()[2..].fill(1);
    let spatial = x.shape.dims()[2..].iter().product::<usize>();
    p.output(0, DType::F32, out)?;
    p.macs(x.shape.volume() as u64);
    Ok(Op::GlobalPool(GlobalPool { max, spatial }))
}

/// A prepared global pooling: reduce each run of `spatial` values to one.
#[derive(Clone, Copy, Debug)]
pub struct GlobalPool {
    max: bool,
    spatial: usize,
}

/// GlobalMaxPool.
pub fn global_max_pool(p: &mut Prep) -> Result<Op> {
    prepare_global(p, true)
}

/// GlobalAveragePool.
pub fn global_average_pool(p: &mut Prep) -> Result<Op> {
    prepare_global(p, false)
}

/// The separable passes over one `h.input × w.input` plane into `h.output × w.output`:
/// every output starts at `init` and `tap` folds each in-bounds input into it. Shared by
/// the f32 pools and the int8 ones.
#[inline(always)]
fn fold_plane<T: Copy>(
    g: &Pool,
    x: &[T],
    out: &mut [T],
    rows: &mut [T],
    init: T,
    tap: impl Fn(&mut T, T) + Copy,
) {
    let (h, w) = (&g.h, &g.w);
    let fold = |dst: &mut [T], src: &[T]| dst.iter_mut().zip(src).for_each(|(d, &s)| tap(d, s));
    // Pass 1: along W, every input row into `rows` (taps outermost, so each tap's valid
    // range is worked out once per plane).
    rows.fill(init);
    for k in 0..w.kernel {
        let (lo, hi) = w.valid_outputs(k);
        if lo == hi {
            continue;
        }
        let start = lo * w.stride + k * w.dilation - w.pad_begin;
        for (row_in, row_out) in x.chunks_exact(w.input).zip(rows.chunks_exact_mut(w.output)) {
            let dst = &mut row_out[lo..hi];
            if w.stride == 1 {
                fold(dst, &row_in[start..start + dst.len()]);
            } else {
                let src = row_in[start..].iter().step_by(w.stride);
                dst.iter_mut().zip(src).for_each(|(d, &s)| tap(d, s));
            }
        }
    }
    // Pass 2: along H, whole output rows at a time.
    out.fill(init);
    for k in 0..h.kernel {
        let (lo, hi) = h.valid_outputs(k);
        for oh in lo..hi {
            let ih = oh * h.stride + k * h.dilation - h.pad_begin;
            fold(
                &mut out[oh * w.output..(oh + 1) * w.output],
                &rows[ih * w.output..(ih + 1) * w.output],
            );
        }
    }
}

/// Pools one f32 plane (`counts_w`: each output column's tap count along W). An average
/// is the sum divided by the window's count, as ONNX and tract define it: multiplying by
/// a rounded `1 / count` differs in the last bit now and then (2 of the 36 int8 outputs
/// of `diff_quant`'s padded 3×3 pool on a 1/128 grid, after requantization).
fn pool_plane(g: &Pool, x: &[f32], out: &mut [f32], rows: &mut [f32], counts_w: &[f32]) {
    if g.kind == PoolKind::Max {
        fold_plane(g, x, out, rows, f32::NEG_INFINITY, |d, s| *d = d.max(s));
        return;
    }
    fold_plane(g, x, out, rows, 0.0, |d, s| *d += s);
    for (oh, row) in out.chunks_exact_mut(g.w.output).enumerate() {
        let count_h = g.h.count(oh, g.kind) as f32;
        row.iter_mut()
            .zip(counts_w)
            .for_each(|(v, &cw)| *v /= count_h * cw);
    }
}

/// Computes a windowed pooling. An int8 input (a max pool between int8 tensors of one
/// grid, which the planner rewires: `plan/qdq/joins.rs`) is pooled as int8: the largest of
/// the same taps, since quantization keeps order, and `i8::MIN` where a float window would
/// hold only padding's `-inf` (which quantizes to it).
pub fn eval(g: &Pool, io: &mut Io) {
    let x = io.input(0);
    if let (DType::I8, Some((grid, requant))) = (x.dtype, g.int8) {
        return eval_int8_average(g, grid, requant, io);
    }
    if x.dtype == DType::I8 {
        let (in_plane, out_plane) = (g.h.input * g.w.input, g.h.output * g.w.output);
        let x: &[i8] = bytemuck::cast_slice(x.bytes);
        let out: &mut [i8] = bytemuck::cast_slice_mut(&mut *io.outputs[0].bytes);
        if out_plane > 0 {
            let rows: &mut [i8] =
                bytemuck::cast_slice_mut(&mut io.scratch[..g.h.input * g.w.output]);
            for (src, dst) in x
                .chunks_exact(in_plane)
                .zip(out.chunks_exact_mut(out_plane))
            {
                fold_plane(g, src, dst, rows, i8::MIN, |d, s| *d = (*d).max(s));
            }
        }
        return;
    }
    let out = io.outputs[0].f32_mut();
    if out.is_empty() {
        // No scratch was asked for, so there is nothing aligned to cast.
        return;
    }
    let scratch: &mut [f32] = bytemuck::cast_slice_mut(io.scratch);
    let (rows, rest) = scratch.split_at_mut(g.h.input * g.w.output);
    let counts_w = &mut rest[..g.w.output];
    for (o, v) in counts_w.iter_mut().enumerate() {
        *v = g.w.count(o, g.kind) as f32;
    }
    let (in_plane, out_plane) = (g.h.input * g.w.input, g.h.output * g.w.output);
    // Prepare refused constant inputs, so this is an aligned arena tensor.
    let x: &[f32] = bytemuck::cast_slice(x.bytes);
    for (src, dst) in x
        .chunks_exact(in_plane)
        .zip(out.chunks_exact_mut(out_plane))
    {
        pool_plane(g, src, dst, rows, counts_w);
    }
}

/// An int8 average pool ([`Pool::with_int8`]).
fn eval_int8_average(g: &Pool, grid: Grid, requant: Requant, io: &mut Io) {
    let x = io.input(0).bytes;
    let out = &mut *io.outputs[0].bytes;
    let (in_plane, out_plane) = (g.h.input * g.w.input, g.h.output * g.w.output);
    if out.is_empty() {
        return;
    }
    let scratch: &mut [f32] = bytemuck::cast_slice_mut(io.scratch);
    let (rows, rest) = scratch.split_at_mut(g.h.input * g.w.output);
    let (counts_w, rest) = rest.split_at_mut(g.w.output);
    let (xs, rest) = rest.split_at_mut(in_plane);
    let ys = &mut rest[..out_plane];
    for (o, v) in counts_w.iter_mut().enumerate() {
        *v = g.w.count(o, g.kind) as f32;
    }
    let exact = sums_are_exact(g, grid);
    for (src, dst) in x
        .chunks_exact(in_plane)
        .zip(out.chunks_exact_mut(out_plane))
    {
        let (plane, scratch) = (
            (src, dst, &*counts_w, grid, requant),
            (&mut *xs, &mut *ys, &mut *rows),
        );
        if exact {
            #[cfg(target_arch = "x86_64")]
            if crate::ops::gemm::avx2_fma_available() {
                // SAFETY: the CPU has AVX2 (just checked).
                unsafe { average_plane_ints_avx2(g, plane, scratch) };
                continue;
            }
            average_plane_ints(g, plane, scratch);
        } else {
            average_plane_floats(g, plane, scratch);
        }
    }
}

/// One int8 plane and what pools it: input, output, the tap counts along W, the input's
/// grid and the output's quantization.
type Int8Plane<'a> = (&'a [u8], &'a mut [u8], &'a [f32], Grid, Requant);

/// f32 scratch of an int8 plane's pool: the input's size, the output's, and the rows
/// between the two passes.
type PlaneScratch<'a> = (&'a mut [f32], &'a mut [f32], &'a mut [f32]);

/// Whether [`average_plane_ints`] equals [`average_plane_floats`] bit for bit: with a
/// power-of-two scale every dequantized value `(q − z) · s` is exact, and so is every
/// partial sum of a window (at most `255 · kernel area` steps of `s`, within f32's 24-bit
/// significand), whatever the order — so the integer sum, times `s`, is the float sum.
/// (They are summed as i16, so the kernel area is at most 128: `|q − z| ≤ 255`.)
fn sums_are_exact(g: &Pool, grid: Grid) -> bool {
    let area = g.h.kernel * g.w.kernel;
    let pow2 = crate::ops::quant::exact_reciprocal(grid.scale).is_some();
    // (No sum overflows f32 either: `255 · 128 · s` stays finite.)
    pow2 && grid.scale < 1e30 && area <= 128
}

/// Pools an int8 plane as the float ops would one by one: dequantize, pool in f32,
/// quantize.
fn average_plane_floats(
    g: &Pool,
    (src, dst, counts_w, grid, requant): Int8Plane,
    (xs, ys, rows): PlaneScratch,
) {
    for (v, &q) in xs.iter_mut().zip(src) {
        *v = grid.value(q);
    }
    pool_plane(g, xs, ys, rows, counts_w);
    requant.quantize_row(ys, dst);
}

/// [`average_plane_floats`] summing the windows' `q − z` as i16, for grids where that
/// is exact ([`sums_are_exact`]): the same bytes, with every pass on integers twice as
/// many to a vector and no conversion of the input to float (YOLO9tr-s's five int8 AConv
/// pools took longer than their f32 originals).
#[inline(always)]
fn average_plane_ints(
    g: &Pool,
    (src, dst, counts_w, grid, requant): Int8Plane,
    (xs, ys, rows): PlaneScratch,
) {
    let zero = i16::from(grid.zero);
    let (n_in, n_out, n_rows) = (src.len(), dst.len(), g.h.input * g.w.output);
    let ints = bytemuck::cast_slice_mut::<f32, i16>;
    for (v, &q) in ints(xs).iter_mut().zip(src) {
        *v = i16::from(q as i8) - zero;
    }
    let (sums, rows) = (&mut ints(ys)[..n_out], &mut ints(rows)[..n_rows]);
    fold_plane(g, &ints(xs)[..n_in], sums, rows, 0, |d, s| *d += s);
    // The inputs are consumed: `xs` takes the pooled values, quantized in one run (rows
    // are short, 7 to 55 values on YOLO9tr-s, and a vector loop's scalar tail per row
    // cost more than its body).
    let values = &mut xs[..n_out];
    let lines = values
        .chunks_exact_mut(g.w.output)
        .zip(sums.chunks_exact(g.w.output));
    for (oh, (line, sums)) in lines.enumerate() {
        let count_h = g.h.count(oh, g.kind) as f32;
        for ((v, &sum), &cw) in line.iter_mut().zip(sums.iter()).zip(counts_w) {
            // `pool_plane`'s `v / (count_h * cw)`, with `v` the exact float sum.
            *v = f32::from(sum) * grid.scale / (count_h * cw);
        }
    }
    requant.quantize_row(values, dst);
}

/// [`average_plane_ints`] compiled for AVX2 (16 i16 to a vector).
///
/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn average_plane_ints_avx2(g: &Pool, plane: Int8Plane, scratch: PlaneScratch) {
    average_plane_ints(g, plane, scratch)
}

/// Computes a global pooling.
pub fn eval_global(g: &GlobalPool, io: &mut Io) {
    let x = io.input(0);
    let out = io.outputs[0].f32_mut();
    let n = g.spatial;
    with_f32!(x.f32(), |x| {
        for (c, y) in out.iter_mut().enumerate() {
            *y = if g.max {
                fold_channel(x, c * n, n, f32::NEG_INFINITY, f32::max)
            } else {
                fold_channel(x, c * n, n, 0.0, |a, b| a + b) / n as f32
            };
        }
    })
}

/// Running folds per pooled value (of a sum or a max).
const FOLD_LANES: usize = 8;

/// Folds `x[base..base + n]` into [`FOLD_LANES`] running folds (value `i` into fold `i %
/// FOLD_LANES`), then folds those in order. One running sum would be a serial chain of
/// float adds that LLVM may not reorder, so it could not vectorise; these lanes become
/// vector registers. The order does not depend on the target or on the data's alignment,
/// so host and Cortex-M agree bit for bit.
#[inline(always)]
fn fold_channel<S: F32Source>(
    x: S,
    base: usize,
    n: usize,
    init: f32,
    fold: impl Fn(f32, f32) -> f32 + Copy,
) -> f32 {
    match x.run(base, n) {
        Some(plane) => fold_lanes(n, |i| plane[i], init, fold),
        None => fold_lanes(n, |i| x.at(base + i), init, fold),
    }
}

/// [`fold_channel`] over values `at(0..n)`.
#[inline(always)]
fn fold_lanes(
    n: usize,
    at: impl Fn(usize) -> f32,
    init: f32,
    fold: impl Fn(f32, f32) -> f32 + Copy,
) -> f32 {
    let mut lanes = [init; FOLD_LANES];
    let full = n - n % FOLD_LANES;
    for i in (0..full).step_by(FOLD_LANES) {
        for (j, lane) in lanes.iter_mut().enumerate() {
            *lane = fold(*lane, at(i + j));
        }
    }
    for (lane, i) in lanes.iter_mut().zip(full..n) {
        *lane = fold(*lane, at(i));
    }
    lanes.into_iter().fold(init, fold)
}
