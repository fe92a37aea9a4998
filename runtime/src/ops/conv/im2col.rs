//! Implicit im2col: the convolution's B matrix (rows: input channel × kernel tap, columns:
//! output pixels) read straight from the image by the GEMM's packer, so no K × H·W buffer
//! is ever built. One row run maps to whole output-row segments, each a contiguous copy
//! (stride 1) or a strided gather, with the padded borders zero-filled outside the loop.
//! The float GEMM reads f32 ([`Im2col`]), the int8 one int8 ([`QIm2col`]); both share the
//! geometry walk.

use super::{valid_range, Geometry};
use crate::ops::gemm::{Operand, Run};
use crate::ops::qgemm::{copy_bytes, fill_bytes, QOperand};
use crate::tensor::F32View;

/// The im2col matrix of one image and group.
#[derive(Clone, Copy, Debug)]
pub struct Im2col<S> {
    x: S,
    offset: usize,
    g: Geometry,
}

impl<S> Im2col<S> {
    /// Views the `g.c_in` channels of `x` starting at element `offset`.
    pub fn new(x: S, offset: usize, g: Geometry) -> Self {
        Im2col { x, offset, g }
    }
}

impl<S: Run> Operand for Im2col<S> {
    #[inline]
    fn read_row(&self, r: usize, c0: usize, out: &mut [f32]) {
        self.read_from(self.x, r, c0, out)
    }
}

impl<S> Im2col<S> {
    /// [`Operand::read_row`] reading the image from `x` (this view's data, resolved). Out
    /// of line: called once per row run, it holds the loops of each representation.
    #[inline(never)]
    fn read_from<X: Run>(&self, x: X, r: usize, c0: usize, out: &mut [f32]) {
        let g = &self.g;
        walk_row(g, self.offset, r, c0, out, |seg, src| {
            let Some(start) = src else {
                seg.fill(0.0);
                return;
            };
            if g.sw == 1 {
                x.copy_run(start, seg);
            } else if let Some(row) = x.run(start, (seg.len() - 1) * g.sw + 1) {
                // Slice walks have no bounds checks per element; stride 2 (every
                // downsampling layer) reads pairs, which LLVM vectorises.
                if let (2, Some((last, body))) = (g.sw, seg.split_last_mut()) {
                    for (v, pair) in body.iter_mut().zip(row.chunks_exact(2)) {
                        *v = pair[0];
                    }
                    *last = row[row.len() - 1];
                } else {
                    for (v, &x) in seg.iter_mut().zip(row.iter().step_by(g.sw)) {
                        *v = x;
                    }
                }
            } else {
                for (t, v) in seg.iter_mut().enumerate() {
                    *v = x.at(start + t * g.sw);
                }
            }
        })
    }
}

/// The run-time view of X: its representation is resolved once per row run, so the GEMM's
/// loops are compiled once for both.
impl Operand for Im2col<F32View<'_>> {
    #[inline]
    fn read_row(&self, r: usize, c0: usize, out: &mut [f32]) {
        match self.x {
            F32View::Slice(x) => self.read_from(x, r, c0, out),
            F32View::Bytes(x) => self.read_from(x, r, c0, out),
        }
    }
}

/// The im2col matrix of one int8 image and group; padding taps hold the zero point `zero`
/// (the float model's 0.0).
#[derive(Clone, Copy, Debug)]
pub struct QIm2col<'t> {
    x: &'t [u8],
    offset: usize,
    g: Geometry,
    zero: u8,
}

impl<'t> QIm2col<'t> {
    /// Views the `g.c_in` int8 channels of `x` starting at element `offset`.
    pub fn new(x: &'t [u8], offset: usize, g: Geometry, zero: i8) -> Self {
        QIm2col {
            x,
            offset,
            g,
            zero: zero as u8,
        }
    }
}

impl QOperand for QIm2col<'_> {
    #[inline(always)]
    fn read_row(&self, r: usize, c0: usize, out: &mut [u8]) {
        let g = &self.g;
        // Inlined, the segment copies are compiled for the GEMM packer's AVX2; LLVM kept
        // this closure out of line (four call sites), compiled for SSE2 and called per
        // segment.
        walk_row(
            g,
            self.offset,
            r,
            c0,
            out,
            #[inline(always)]
            |seg, src| {
                let Some(start) = src else {
                    fill_bytes(seg, self.zero);
                    return;
                };
                let row = &self.x[start..][..(seg.len() - 1) * g.sw + 1];
                match g.sw {
                    1 => copy_bytes(seg, row),
                    2 => every_other(row, seg),
                    _ => {
                        for (v, &x) in seg.iter_mut().zip(row.iter().step_by(g.sw)) {
                            *v = x;
                        }
                    }
                }
            },
        )
    }
}

/// `out[j] = row[2j]` (stride-2 convs, the downsampling layers). On x86_64 16 at a time:
/// the even bytes of 32 are the low bytes of 16 u16 lanes, which SSE2 masks and packs
/// (LLVM compiles the scalar loop to a byte load and insert per value); elsewhere over
/// exact pairs, which LLVM turns into byte shuffles where `step_by(2)` would copy one byte
/// at a time.
#[inline(always)]
fn every_other(row: &[u8], out: &mut [u8]) {
    let Some((last, body)) = out.split_last_mut() else {
        return;
    };
    #[cfg(target_arch = "x86_64")]
    let done = {
        use core::arch::x86_64::{
            _mm_and_si128, _mm_loadu_si128, _mm_packus_epi16, _mm_set1_epi16, _mm_storeu_si128,
        };
        let whole = body.len() / 16 * 16;
        for (o, r) in body[..whole].chunks_exact_mut(16).zip(row.chunks_exact(32)) {
            // SAFETY: SSE2 is part of x86_64; the loads read the 32 bytes of `r` and the
            // store writes the 16 of `o` (unaligned accesses).
            unsafe {
                let low = _mm_set1_epi16(0xff);
                let a = _mm_and_si128(_mm_loadu_si128(r.as_ptr().cast()), low);
                let b = _mm_and_si128(_mm_loadu_si128(r[16..].as_ptr().cast()), low);
                _mm_storeu_si128(o.as_mut_ptr().cast(), _mm_packus_epi16(a, b));
            }
        }
        whole
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for (v, pair) in body[done..].iter_mut().zip(row[2 * done..].chunks_exact(2)) {
        *v = pair[0];
    }
    *last = row[2 * body.len()];
}

/// Walks row `r` (input channel × kernel tap) of the im2col matrix from column `c0` over
/// `out`, one output-row segment at a time: `fill(seg, None)` for padding, `fill(seg,
/// Some(start))` for taps inside the image, read from element `start` every `g.sw`.
#[inline(always)]
fn walk_row<T>(
    g: &Geometry,
    offset: usize,
    r: usize,
    c0: usize,
    out: &mut [T],
    mut fill: impl FnMut(&mut [T], Option<usize>),
) {
    let (kx, ky, ci) = (r % g.kw, (r / g.kw) % g.kh, r / (g.kw * g.kh));
    let channel = offset + ci * g.ih * g.iw;
    let (mut oy, mut ox) = (c0 / g.ow, c0 % g.ow);
    let mut rest = out;
    while !rest.is_empty() {
        let run = (g.ow - ox).min(rest.len());
        let (seg, tail) = core::mem::take(&mut rest).split_at_mut(run);
        let iy = (oy * g.sh + ky * g.dh) as isize - g.pt as isize;
        if iy < 0 || iy >= g.ih as isize {
            fill(seg, None);
        } else {
            let ix0 = (ox * g.sw + kx * g.dw) as isize - g.pl as isize;
            let (lo, hi) = valid_range(ix0, g.sw, g.iw, run);
            let (head, seg) = seg.split_at_mut(lo);
            let (seg, end) = seg.split_at_mut(hi - lo);
            if !head.is_empty() {
                fill(head, None);
            }
            if !end.is_empty() {
                fill(end, None);
            }
            if !seg.is_empty() {
                let start = channel + iy as usize * g.iw + (ix0 + (lo * g.sw) as isize) as usize;
                fill(seg, Some(start));
            }
        }
        rest = tail;
        ox = 0;
        oy += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::every_other;
    use std::{vec, vec::Vec};

    /// Every output length around the 16-wide SSE2 step: the even bytes of the row, and
    /// nothing written past the output.
    #[test]
    fn every_other_takes_the_even_bytes() {
        let row: Vec<u8> = (0..200u32).map(|i| (i * 13 + 1) as u8).collect();
        for n in 0..=70 {
            let mut out = vec![0xEEu8; n + 2];
            every_other(&row[..(2 * n).saturating_sub(1)], &mut out[..n]);
            let want: Vec<u8> = (0..n).map(|j| row[2 * j]).chain([0xEE, 0xEE]).collect();
            assert_eq!(out, want, "{n}");
        }
    }
}
