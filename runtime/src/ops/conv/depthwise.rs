//! Direct depthwise convolution (one input channel per group, any channel multiplier).
//!
//! A GEMM would have K = kh·kw (≈9) and nothing to reuse, so each output row is instead
//! accumulated tap by tap: for every kernel tap the range of output columns whose input
//! lies inside the image is computed once, and the inner loop over that range is a plain
//! `out += w · in` over slices (contiguous for stride 1, so it vectorises) with no border
//! tests. The input row is first copied into scratch so weights stored in place (possibly
//! unaligned) and aligned activations share one kernel.

use super::{valid_range, Geometry};
use crate::ops::gemm::Run;
use crate::tensor::F32Source;

/// Convolves one group: input channel at `x_off`, `mult` output channels whose weights
/// start at `w_off`; `out` holds those `mult` output planes (already holding the bias).
/// `row` is scratch of `g.iw` floats.
#[allow(clippy::too_many_arguments)]
pub fn run<X: Run, W: F32Source>(
    g: &Geometry,
    x: X,
    x_off: usize,
    w: W,
    w_off: usize,
    mult: usize,
    out: &mut [f32],
    row: &mut [f32],
) {
    let row = &mut row[..g.iw];
    let taps = g.kh * g.kw;
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
                    let ix0 = (kx * g.dw) as isize - g.pl as isize;
                    let (lo, hi) = valid_range(ix0, g.sw, g.iw, g.ow);
                    if lo >= hi {
                        continue;
                    }
                    let start = (ix0 + (lo * g.sw) as isize) as usize;
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
        }
    }
}
