//! Direct int8 depthwise convolution: the [`super::QConv`] of a depthwise conv (one input
//! channel per group, any channel multiplier), where a GEMM would have K = kh·kw (≈9) and
//! nothing to reuse.
//!
//! Each output row is summed over its kernel rows. A kernel row's input row is first
//! widened once into scratch as `x_q − z_x` in i16, with zeros for the padding columns
//! (a padding tap counts as `x_q = z_x`), and split into `sw` phases (columns `≡ p mod
//! sw`), so that every tap of every output column reads one contiguous run. The row's
//! i32 sums are then updated [`LANES`] columns at a time, all kw taps of the kernel row
//! before the next block: no border tests, no stride gathers, and the sums stay in
//! registers across the taps. (The previous kernel walked each tap's valid span of the
//! row, loading and storing the sums once per tap, with 4-wide and scalar tails on spans
//! of 92 to 96 columns; PP-OCR's int8 classifier, whose frame is about a third depthwise
//! 5×5 convs, runs about 4 % faster with this one.)
//!
//! Every product fits i16 (`|x_q − z_x| ≤ 255`, `|W| ≤ 128`) and every sum i32 (`kh·kw ≤
//! MAX_K`), so the row holds exactly the integers the int8 GEMM would end on
//! (`A·(B − z)`, with padding taps of `z`), and the shared [`Epilogue`] turns them into
//! the same floats, activations and int8 outputs, bit for bit.
//!
//! Plain Rust; when the conv's GEMM plan chose an AVX2 kernel, the same code is also
//! compiled with AVX2 enabled, so LLVM vectorises it on 256-bit registers.

use super::{valid_range, Geometry};
use crate::ops::qgemm::{Epilogue, QKernel};

/// Output columns summed together: two AVX2 registers of i32 per tap on x86_64; four
/// elsewhere, which a Cortex-M keeps in core registers (16 would spill, in more code).
const LANES: usize = if cfg!(target_arch = "x86_64") { 16 } else { 4 };

/// Kernel widths up to this have their tap offsets precomputed.
const MAX_KW: usize = 16;

/// Where the scratch of one call puts things (see [`scratch_bytes`]).
struct Layout {
    /// Output columns rounded up to the lane count: the sums' length.
    columns: usize,
    /// i16 values per phase of a widened input row.
    phase: usize,
}

impl Layout {
    fn new(g: &Geometry, lanes: usize) -> Self {
        let columns = g.ow.next_multiple_of(lanes);
        // Output column `o`, tap `t = kx·dw` reads padded column `o·sw + t`: phase `t % sw`,
        // index `o + t / sw`.
        Layout {
            columns,
            phase: columns + (g.kw - 1) * g.dw / g.sw,
        }
    }

    /// Scratch bytes: the sums, then the widened row's `sw` phases.
    fn bytes(&self, g: &Geometry) -> usize {
        4 * self.columns + 2 * g.sw * self.phase
    }
}

/// Scratch bytes [`run`] needs for convs of geometry `g`: one row of i32 sums and one
/// widened, padded input row.
pub fn scratch_bytes(g: &Geometry) -> usize {
    Layout::new(g, LANES).bytes(g)
}

/// Convolves one group: the int8 input channel at `x_off` (zero point `epi.zero`), `mult`
/// output channels whose int8 weights start at `w_off`, into `out`: those `mult` planes,
/// stored as [`Epilogue::store`] says. Epilogue row `m` is output channel `m`
/// of the group. `scratch` holds [`scratch_bytes`] bytes, 4-byte aligned. `kernel` (the
/// conv's GEMM kernel) says which instruction set this CPU has.
#[allow(clippy::too_many_arguments)]
pub fn run(
    kernel: QKernel,
    g: &Geometry,
    x: &[u8],
    x_off: usize,
    w: &[u8],
    w_off: usize,
    mult: usize,
    out: &mut [u8],
    scratch: &mut [u8],
    epi: &Epilogue,
) {
    match kernel {
        // SAFETY: a plan holds these kernels only when the CPU has AVX2 and FMA (see
        // `QKernel::best`), which is all `run_avx2` requires.
        #[cfg(target_arch = "x86_64")]
        QKernel::Avx2 | QKernel::Avx2Narrow | QKernel::Vnni => unsafe {
            run_avx2(g, x, x_off, w, w_off, mult, out, scratch, epi)
        },
        _ => run_inline::<LANES>(g, x, x_off, w, w_off, mult, out, scratch, epi),
    }
}

/// [`run_inline`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn run_avx2(
    g: &Geometry,
    x: &[u8],
    x_off: usize,
    w: &[u8],
    w_off: usize,
    mult: usize,
    out: &mut [u8],
    scratch: &mut [u8],
    epi: &Epilogue,
) {
    run_inline::<LANES>(g, x, x_off, w, w_off, mult, out, scratch, epi)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn run_inline<const L: usize>(
    g: &Geometry,
    x: &[u8],
    x_off: usize,
    w: &[u8],
    w_off: usize,
    mult: usize,
    out: &mut [u8],
    scratch: &mut [u8],
    epi: &Epilogue,
) {
    let zero = i16::from(epi.zero as i8);
    // The sums are of `x_q − z_x` already: no zero-point correction is left to apply.
    let epi = Epilogue { zero: 0, ..*epi };
    let width = epi.store.width();
    let l = Layout::new(g, L);
    let (sums, row) = scratch[..l.bytes(g)].split_at_mut(4 * l.columns);
    // The caller's scratch is 4-byte aligned (as every arena buffer), so neither view fails.
    let sums: &mut [i32] = bytemuck::cast_slice_mut(sums);
    let row: &mut [i16] = bytemuck::cast_slice_mut(row);
    // Where tap kx's run starts in the widened row, computed once per call.
    let offset = |kx: usize| (kx * g.dw % g.sw) * l.phase + kx * g.dw / g.sw;
    let mut offsets = [0; MAX_KW];
    for (kx, o) in offsets.iter_mut().enumerate().take(g.kw) {
        *o = offset(kx);
    }
    let (taps, plane) = (g.kh * g.kw, g.oh * g.ow);
    for m in 0..mult {
        let scale = epi.row(m);
        let w = &w[w_off + m * taps..][..taps];
        for oy in 0..g.oh {
            sums.fill(0);
            for ky in 0..g.kh {
                let iy = (oy * g.sh + ky * g.dh) as isize - g.pt as isize;
                if iy < 0 || iy >= g.ih as isize {
                    continue;
                }
                widen(g, &l, &x[x_off + iy as usize * g.iw..][..g.iw], zero, row);
                let w = &w[ky * g.kw..][..g.kw];
                for (c, block) in sums.chunks_exact_mut(L).enumerate() {
                    let mut acc: [i32; L] = core::array::from_fn(|j| block[j]);
                    for (kx, &wv) in w.iter().enumerate() {
                        let start = offsets.get(kx).copied().unwrap_or_else(|| offset(kx));
                        let run = &row[start + c * L..][..L];
                        let wv = i16::from(wv as i8);
                        // i16 products (see the module doc) widened once: `pmullw`, not `pmulld`.
                        for (a, v) in acc.iter_mut().zip(run) {
                            *a += i32::from(v * wv);
                        }
                    }
                    block.copy_from_slice(&acc);
                }
            }
            // The finished row, scaled in place (i32 → f32 bits), then activated and stored.
            let sums = &mut sums[..g.ow];
            for a in sums.iter_mut() {
                *a = scale(*a).to_bits() as i32;
            }
            let ys: &mut [f32] = bytemuck::cast_slice_mut(sums);
            if let Some(act) = epi.act {
                act.apply(ys);
            }
            let dst = &mut out[width * (m * plane + oy * g.ow)..][..width * g.ow];
            epi.store.put(ys, dst);
        }
    }
}

/// Writes input row `src` into `row` as `x_q − zero` in i16, phase by phase: index `i` of
/// phase `p` is padded column `i·sw + p`, input column `i·sw + p − pl`, 0 outside the row.
#[inline(always)]
fn widen(g: &Geometry, l: &Layout, src: &[u8], zero: i16, row: &mut [i16]) {
    let widened = |v: &u8| i16::from(*v as i8) - zero;
    for (p, phase) in row.chunks_exact_mut(l.phase).enumerate() {
        let (lo, hi) = valid_range(p as isize - g.pl as isize, g.sw, g.iw, l.phase);
        phase[..lo].fill(0);
        phase[hi..].fill(0);
        if lo == hi {
            continue;
        }
        // Inside the row, so `lo·sw + p ≥ pl`.
        let first = lo * g.sw + p - g.pl;
        if g.sw == 1 {
            for (d, v) in phase[lo..hi].iter_mut().zip(&src[first..]) {
                *d = widened(v);
            }
        } else {
            for (d, v) in phase[lo..hi]
                .iter_mut()
                .zip(src[first..].iter().step_by(g.sw))
            {
                *d = widened(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::qgemm::{row_sums, Requant, Store};
    use crate::ops::unary::Activation;
    use std::{vec, vec::Vec};

    fn ints(n: usize, seed: u32) -> Vec<u8> {
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8)
            .collect()
    }

    /// `Σ_taps (x − z)·W` of output `(m, oy, ox)` in i64, padding taps skipped.
    fn exact(g: &Geometry, x: &[u8], w: &[u8], zero: i8, m: usize, oy: usize, ox: usize) -> i64 {
        let mut sum = 0;
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let iy = (oy * g.sh + ky * g.dh) as isize - g.pt as isize;
                let ix = (ox * g.sw + kx * g.dw) as isize - g.pl as isize;
                if iy < 0 || ix < 0 || iy >= g.ih as isize || ix >= g.iw as isize {
                    continue;
                }
                let v = i64::from(x[iy as usize * g.iw + ix as usize] as i8) - i64::from(zero);
                sum += v * i64::from(w[(m * g.kh + ky) * g.kw + kx] as i8);
            }
        }
        sum
    }

    /// Every kernel variant, over strides, dilations, paddings, kernel sizes (one wider
    /// than the precomputed spans), multipliers, zero points, activations and int8
    /// outputs, equals the exact i64 sums put through the shared epilogue, bit for bit.
    #[test]
    fn every_variant_equals_the_exact_sums_through_the_epilogue() {
        let mut cases = 0;
        for (i, &(s, d, p, k, mult, zero)) in [
            (1, 1, 1, 3, 1, -9i8),
            (2, 1, 1, 3, 2, 0),
            (1, 2, 2, 3, 1, 127),
            (3, 1, 0, 5, 2, -128),
            (2, 2, 3, 1, 1, 5),
            (1, 1, 8, 17, 1, 44),
        ]
        .iter()
        .enumerate()
        {
            let (ih, iw) = (7 + i, 19 - i);
            let extent = (k - 1) * d + 1;
            let g = Geometry {
                c_in: 1,
                ih,
                iw,
                kh: k.min(5),
                kw: k,
                sh: s,
                sw: s,
                dh: d,
                dw: d,
                pt: p.min(2),
                pl: p,
                oh: (ih + 2 * p.min(2) - ((k.min(5) - 1) * d + 1)) / s + 1,
                ow: (iw + 2 * p - extent) / s + 1,
            };
            let taps = g.kh * g.kw;
            let (x, w) = (ints(ih * iw + 3, 1 + i as u32), ints(mult * taps, 7));
            let mut a_sum = vec![0; mult];
            row_sums(&w, taps, &mut a_sum);
            let mul: Vec<f32> = (0..mult).map(|c| 0.0013 + c as f32 * 3e-4).collect();
            let bias: Vec<f32> = (0..mult).map(|c| c as f32 * 0.37 - 0.5).collect();
            // A scale that divides, or (odd cases) one that multiplies by its reciprocal.
            let rq = Requant::new(if i % 2 == 0 { 0.02 } else { 1.0 / 64.0 }, -3);
            // Tables whose entries differ from their indices, so a missed lookup shows.
            let int8_table: [u8; 256] = core::array::from_fn(|b| (b as u8).wrapping_mul(7) ^ 1);
            let f32_table: [f32; 256] = core::array::from_fn(|b| b as f32 * 0.25 - 9.0);
            let stores = [
                Store::F32,
                Store::Int8(rq),
                Store::Int8Table(rq, &int8_table),
                Store::F32Table(rq, &f32_table),
            ];
            for act in [None, Some(Activation::Silu), Some(Activation::Relu)] {
                for store in stores {
                    let epi = Epilogue {
                        mul: &mul,
                        bias: &bias,
                        a_sum: &a_sum,
                        zero: zero.into(),
                        act,
                        store,
                    };
                    // The expected bytes: the exact sums through the shared epilogue.
                    let plane = g.oh * g.ow;
                    let mut want = Vec::new();
                    for m in 0..mult {
                        let scale = Epilogue { zero: 0, ..epi }.row(m);
                        let mut ys: Vec<f32> = (0..plane)
                            .map(|o| {
                                scale(exact(&g, &x[3..], &w, zero, m, o / g.ow, o % g.ow) as i32)
                            })
                            .collect();
                        if let Some(act) = act {
                            act.apply(&mut ys);
                        }
                        for y in ys {
                            let q = usize::from(rq.quantize(y));
                            match store {
                                Store::F32 => want.extend_from_slice(&y.to_le_bytes()),
                                Store::Int8(_) => want.push(q as u8),
                                Store::Int8Table(..) => want.push(int8_table[q]),
                                Store::F32Table(..) => {
                                    want.extend_from_slice(&f32_table[q].to_le_bytes())
                                }
                            }
                        }
                    }
                    for kernel in QKernel::available() {
                        let mut out = vec![0xa5; want.len()];
                        // Stale scratch: the kernel must not depend on what it held.
                        let mut scratch = vec![0xa5u32; scratch_bytes(&g).div_ceil(4)];
                        let scratch = bytemuck::cast_slice_mut(&mut scratch);
                        run(kernel, &g, &x, 3, &w, 0, mult, &mut out, scratch, &epi);
                        assert_eq!(out, want, "case {i} {kernel:?} {act:?} {store:?}");
                        cases += 1;
                        // The Cortex-M lane count, in the scratch this target plans.
                        out.fill(0xa5);
                        run_inline::<4>(&g, &x, 3, &w, 0, mult, &mut out, scratch, &epi);
                        assert_eq!(out, want, "case {i} 4 lanes {act:?} {store:?}");
                    }
                }
            }
        }
        assert!(cases >= 72);
    }
}
