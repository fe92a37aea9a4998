//! Direct depthwise convolution (one input channel per group, any channel multiplier).
//!
//! A GEMM would have K = kh·kw (≈9) and nothing to reuse, so each output row is instead
//! accumulated tap by tap: for every kernel tap the range of output columns whose input
//! lies inside the image is computed once, and the inner loop over that range is a plain
//! `out += w · in` over slices (contiguous for stride 1, so it vectorises) with no border
//! tests. The input row is first copied into scratch so weights stored in place (possibly
//! unaligned) and aligned activations share one kernel.
//!
//! The loops are plain Rust; when the GEMM plan chose the AVX2+FMA kernel, the same code is
//! also compiled with those target features enabled so LLVM vectorises 8 wide.
//!
//! A fused activation is applied to each output row as soon as its last tap is added.

use super::{valid_range, Geometry};
use crate::ops::gemm::Kernel;
use crate::ops::unary::Activation;
use crate::tensor::{F32Source, F32View};

/// Kernel widths up to this have their column spans precomputed.
const MAX_KW: usize = 16;

/// For each kernel column `kx`: the output columns `lo..hi` it reaches inside the image,
/// and the input column of `lo`. The same for every row, so the divisions happen once per
/// call, not per row and tap.
struct Spans<'g> {
    g: &'g Geometry,
    first: [(usize, usize, usize); MAX_KW],
}

impl<'g> Spans<'g> {
    fn new(g: &'g Geometry) -> Self {
        let mut first = [(0, 0, 0); MAX_KW];
        for (kx, s) in first.iter_mut().enumerate().take(g.kw) {
            *s = Self::span(g, kx);
        }
        Spans { g, first }
    }

    fn span(g: &Geometry, kx: usize) -> (usize, usize, usize) {
        let ix0 = (kx * g.dw) as isize - g.pl as isize;
        let (lo, hi) = valid_range(ix0, g.sw, g.iw, g.ow);
        (lo, hi, (ix0 + (lo * g.sw) as isize).max(0) as usize)
    }

    /// `(lo, hi, start)` of kernel column `kx`.
    #[inline(always)]
    fn get(&self, kx: usize) -> (usize, usize, usize) {
        self.first
            .get(kx)
            .copied()
            .unwrap_or_else(|| Self::span(self.g, kx))
    }
}

/// Convolves one group: input channel at `x_off`, `mult` output channels whose weights
/// start at `w_off`; `out` holds those `mult` output planes (already holding the bias).
/// `row` is scratch of `g.iw` floats. `kernel` says which instruction set this CPU has;
/// `act` is applied to the output.
#[allow(clippy::too_many_arguments)]
pub fn run<W: F32Source>(
    kernel: Kernel,
    g: &Geometry,
    x: F32View,
    x_off: usize,
    w: W,
    w_off: usize,
    mult: usize,
    out: &mut [f32],
    row: &mut [f32],
    act: Option<Activation>,
) {
    match kernel {
        // SAFETY: a plan holds `Kernel::Avx2Fma` only when the CPU has AVX2 and FMA
        // (see `Kernel::best`), which is all `run_avx2` requires.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2Fma => unsafe { run_avx2(g, x, x_off, w, w_off, mult, out, row, act) },
        // The portable kernels (4×8 and 4×4 GEMM tiles) share this one.
        _ => run_inline(
            g,
            x,
            x_off,
            w,
            w_off,
            mult,
            out,
            row,
            act,
            activate_portable,
        ),
    }
}

/// Applies `act` to one output row, out of line: inlined, the activation loops (SiLU's
/// exp above all) would be copied into every weight representation's kernel.
#[inline(never)]
fn activate_portable(act: Activation, row: &mut [f32]) {
    act.apply(row)
}

/// [`run_inline`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn run_avx2<W: F32Source>(
    g: &Geometry,
    x: F32View,
    x_off: usize,
    w: W,
    w_off: usize,
    mult: usize,
    out: &mut [f32],
    row: &mut [f32],
    act: Option<Activation>,
) {
    run_inline(
        g,
        x,
        x_off,
        w,
        w_off,
        mult,
        out,
        row,
        act,
        Activation::apply,
    )
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn run_inline<W: F32Source>(
    g: &Geometry,
    x: F32View,
    x_off: usize,
    w: W,
    w_off: usize,
    mult: usize,
    out: &mut [f32],
    row: &mut [f32],
    act: Option<Activation>,
    activate: impl Fn(Activation, &mut [f32]),
) {
    let row = &mut row[..g.iw];
    let taps = g.kh * g.kw;
    let spans = Spans::new(g);
    for (m, plane) in out.chunks_exact_mut(g.oh * g.ow).take(mult).enumerate() {
        for (oy, dst) in plane.chunks_exact_mut(g.ow).enumerate() {
            for ky in 0..g.kh {
                let iy = (oy * g.sh + ky * g.dh) as isize - g.pt as isize;
                if iy < 0 || iy >= g.ih as isize {
                    continue;
                }
                x.copy_run(x_off + iy as usize * g.iw, row);
                for kx in 0..g.kw {
                    let wv = w.at(w_off + m * taps + ky * g.kw + kx);
                    let (lo, hi, start) = spans.get(kx);
                    if lo >= hi {
                        continue;
                    }
                    let dst = &mut dst[lo..hi];
                    if g.sw == 1 {
                        for (d, &v) in dst.iter_mut().zip(&row[start..start + (hi - lo)]) {
                            *d += wv * v;
                        }
                    } else {
                        for (d, &v) in dst.iter_mut().zip(row[start..].iter().step_by(g.sw)) {
                            *d += wv * v;
                        }
                    }
                }
            }
            if let Some(act) = act {
                activate(act, dst);
            }
        }
    }
}
