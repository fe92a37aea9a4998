//! Weight rows times a few vectors: the products of the recurrent ops.
//!
//! `out[r][j] += Σₖ W[j, k] · x_r[k]` for every row `j` of a row-major weight matrix and
//! `R` vectors at once (R = 1 for the recurrent `R·h` of one batch row, [`ROWS`] for the
//! input projection of several steps): each weight row is read once per `R` vectors and
//! the vectors stay in L1. With one to a few dozen rows per call, a packed GEMM would copy
//! the whole weight matrix per call to fill tiles that are mostly padding.
//!
//! Weights are the model's bytes read in place, aligned or not ([`Rows`]): little-endian
//! f32, or int8 with one f32 scale per row (the compressor's int8 LSTM weights), whose
//! products are summed in f32 and scaled once per row — a quarter of the flash traffic and
//! no dequantized copy in RAM. The kernel is chosen at plan time
//! ([`DotKernel::for_target`]): [`DotKernel::Portable`] is plain Rust with independent
//! partial sums (the Cortex-M path and the reference), and on x86_64 an AVX2 + FMA one
//! (`avx2.rs`) loads unaligned vectors straight from the bytes (int8 widened to f32 in
//! registers).

#[cfg(target_arch = "x86_64")]
use super::avx2;
#[cfg(target_arch = "x86_64")]
use crate::ops::gemm::avx2_fma_available;
use crate::target::Target;

/// Vectors per pass of the input projection: four weight rows' worth of accumulators fit
/// in the AVX registers (and leave the Cortex-M4's FPU registers room for loads).
pub const ROWS: usize = 4;

/// A row-major weight matrix as the model stores it, `n` weights per row.
#[derive(Clone, Copy, Debug)]
pub enum Rows<'w> {
    /// Little-endian f32 bytes, `4·n` per row.
    F32(&'w [u8]),
    /// Symmetric int8 (zero point 0), `n` bytes per row, and one little-endian f32 scale
    /// per row: weight `[j, k]` is `scales[j] · q[j·n + k]`, as `DequantizeLinear` with a
    /// per-row scale defines it.
    I8 {
        /// The int8 weights.
        q: &'w [u8],
        /// `4 ×` rows bytes.
        scales: &'w [u8],
    },
}

impl Rows<'_> {
    /// Number of rows of `n` weights, when the bytes hold whole rows (and, for int8, a
    /// scale for each).
    fn count(&self, n: usize) -> Option<usize> {
        match *self {
            Rows::F32(w) => w.len().is_multiple_of(4 * n).then(|| w.len() / (4 * n)),
            Rows::I8 { q, scales } => {
                let rows = q.len() / n;
                (q.len().is_multiple_of(n) && scales.len() >= 4 * rows).then_some(rows)
            }
        }
    }
}

/// Which kernel computes the products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DotKernel {
    /// Plain Rust, any target.
    Portable,
    /// x86_64 AVX2 + FMA intrinsics.
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

impl DotKernel {
    /// The fastest kernel for `target` on this CPU: AVX2 + FMA on a host that has them
    /// (detected at run time with `std`, by target features without), portable otherwise.
    pub fn for_target(target: Target) -> DotKernel {
        #[cfg(target_arch = "x86_64")]
        if target == Target::Host && avx2_fma_available() {
            return DotKernel::Avx2Fma;
        }
        let _ = target;
        DotKernel::Portable
    }

    /// Every kernel this CPU runs (for tests).
    pub fn available() -> heapless::Vec<DotKernel, 2> {
        let mut v = heapless::Vec::new();
        let _ = v.push(DotKernel::Portable);
        #[cfg(target_arch = "x86_64")]
        if avx2_fma_available() {
            let _ = v.push(DotKernel::Avx2Fma);
        }
        v
    }

    /// `out[j] += Σₖ w[j·n + k] · x[k]` for every row `j` of `w` (`n = x.len()`).
    ///
    /// Panics if `w` is not whole rows or `out` is too short: the callers size every
    /// buffer at plan time.
    pub fn mul_one(self, w: Rows<'_>, x: &[f32], out: &mut [f32]) {
        let n = x.len();
        let rows = w.count(n.max(1));
        assert!(n > 0 && rows.is_some_and(|r| out.len() >= r));
        match (self, w) {
            (DotKernel::Portable, Rows::F32(w)) => portable_one(w, x, out),
            (DotKernel::Portable, Rows::I8 { q, scales }) => portable_one_i8(q, scales, x, out),
            // SAFETY: `Avx2Fma` is only chosen when `avx2_fma_available` saw AVX2 and FMA
            // on this CPU; the assert above is the bound `avx2::mul_one` relies on.
            #[cfg(target_arch = "x86_64")]
            (DotKernel::Avx2Fma, Rows::F32(w)) => unsafe { avx2::mul_one(w, x, out) },
            // SAFETY: as above, with the int8 bounds `avx2::mul_one_i8` relies on.
            #[cfg(target_arch = "x86_64")]
            (DotKernel::Avx2Fma, Rows::I8 { q, scales }) => unsafe {
                avx2::mul_one_i8(q, scales, x, out)
            },
        }
    }

    /// [`DotKernel::mul_one`] for [`ROWS`] vectors at once: `xs` holds them one after the
    /// other (`n = xs.len() / ROWS`) and vector `r`'s results go to `out[r·ldo ..]`.
    pub fn mul_rows(self, w: Rows<'_>, xs: &[f32], out: &mut [f32], ldo: usize) {
        let n = xs.len() / ROWS;
        assert!(n > 0 && xs.len() == ROWS * n);
        let rows = w.count(n).expect("whole weight rows");
        assert!(rows == 0 || out.len() >= (ROWS - 1) * ldo + rows);
        match (self, w) {
            (DotKernel::Portable, Rows::F32(w)) => portable_rows(w, xs, out, ldo),
            (DotKernel::Portable, Rows::I8 { q, scales }) => {
                portable_rows_i8(q, scales, xs, out, ldo)
            }
            // SAFETY: as for `mul_one`; the asserts above are `avx2::mul_rows`'s bounds.
            #[cfg(target_arch = "x86_64")]
            (DotKernel::Avx2Fma, Rows::F32(w)) => unsafe { avx2::mul_rows(w, xs, out, ldo) },
            // SAFETY: as above, and `avx2::mul_rows_i8`'s bounds.
            #[cfg(target_arch = "x86_64")]
            (DotKernel::Avx2Fma, Rows::I8 { q, scales }) => unsafe {
                avx2::mul_rows_i8(q, scales, xs, out, ldo)
            },
        }
    }
}

/// One little-endian f32.
#[inline(always)]
fn le(b: &[u8]) -> f32 {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Portable [`DotKernel::mul_one`]: four partial sums (independent FPU chains), added in a
/// fixed order. Plain locals, not arrays, so they stay in registers at any optimisation
/// level.
fn portable_one(w: &[u8], x: &[f32], out: &mut [f32]) {
    let n = x.len();
    for (row, o) in w.chunks_exact(4 * n).zip(out.iter_mut()) {
        let (mut s0, mut s1, mut s2, mut s3) = (0f32, 0f32, 0f32, 0f32);
        let mut ws = row.chunks_exact(16);
        let mut xs = x.chunks_exact(4);
        for (wc, xc) in (&mut ws).zip(&mut xs) {
            s0 += le(&wc[0..]) * xc[0];
            s1 += le(&wc[4..]) * xc[1];
            s2 += le(&wc[8..]) * xc[2];
            s3 += le(&wc[12..]) * xc[3];
        }
        let mut s = (s0 + s1) + (s2 + s3);
        for (wb, xv) in ws.remainder().chunks_exact(4).zip(xs.remainder()) {
            s += le(wb) * xv;
        }
        *o += s;
    }
}

/// Portable [`DotKernel::mul_rows`]: each weight is loaded once and used by the four
/// vectors' sums (four independent chains).
fn portable_rows(w: &[u8], xs: &[f32], out: &mut [f32], ldo: usize) {
    let n = xs.len() / ROWS;
    let (x0, rest) = xs.split_at(n);
    let (x1, rest) = rest.split_at(n);
    let (x2, x3) = rest.split_at(n);
    for (j, row) in w.chunks_exact(4 * n).enumerate() {
        let (mut s0, mut s1, mut s2, mut s3) = (0f32, 0f32, 0f32, 0f32);
        let xs = x0.iter().zip(x1).zip(x2.iter().zip(x3));
        for (wb, ((a, b), (c, d))) in row.chunks_exact(4).zip(xs) {
            let wv = le(wb);
            s0 += wv * a;
            s1 += wv * b;
            s2 += wv * c;
            s3 += wv * d;
        }
        out[j] += s0;
        out[ldo + j] += s1;
        out[2 * ldo + j] += s2;
        out[3 * ldo + j] += s3;
    }
}

/// One int8 weight as f32.
#[inline(always)]
fn i8f(b: u8) -> f32 {
    f32::from(b as i8)
}

/// Portable [`DotKernel::mul_one`] on int8 rows: [`portable_one`]'s four partial sums over
/// the widened weights, times the row's scale.
fn portable_one_i8(q: &[u8], scales: &[u8], x: &[f32], out: &mut [f32]) {
    let n = x.len();
    for ((row, o), s_j) in q
        .chunks_exact(n)
        .zip(out.iter_mut())
        .zip(scales.chunks_exact(4))
    {
        let (mut s0, mut s1, mut s2, mut s3) = (0f32, 0f32, 0f32, 0f32);
        let mut ws = row.chunks_exact(4);
        let mut xs = x.chunks_exact(4);
        for (wc, xc) in (&mut ws).zip(&mut xs) {
            s0 += i8f(wc[0]) * xc[0];
            s1 += i8f(wc[1]) * xc[1];
            s2 += i8f(wc[2]) * xc[2];
            s3 += i8f(wc[3]) * xc[3];
        }
        let mut s = (s0 + s1) + (s2 + s3);
        for (&wb, xv) in ws.remainder().iter().zip(xs.remainder()) {
            s += i8f(wb) * xv;
        }
        *o += le(s_j) * s;
    }
}

/// Portable [`DotKernel::mul_rows`] on int8 rows.
fn portable_rows_i8(q: &[u8], scales: &[u8], xs: &[f32], out: &mut [f32], ldo: usize) {
    let n = xs.len() / ROWS;
    let (x0, rest) = xs.split_at(n);
    let (x1, rest) = rest.split_at(n);
    let (x2, x3) = rest.split_at(n);
    for (j, (row, s_j)) in q.chunks_exact(n).zip(scales.chunks_exact(4)).enumerate() {
        let (mut s0, mut s1, mut s2, mut s3) = (0f32, 0f32, 0f32, 0f32);
        let xs = x0.iter().zip(x1).zip(x2.iter().zip(x3));
        for (&wb, ((a, b), (c, d))) in row.iter().zip(xs) {
            let wv = i8f(wb);
            s0 += wv * a;
            s1 += wv * b;
            s2 += wv * c;
            s3 += wv * d;
        }
        let scale = le(s_j);
        out[j] += scale * s0;
        out[ldo + j] += scale * s1;
        out[2 * ldo + j] += scale * s2;
        out[3 * ldo + j] += scale * s3;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 20) as f32 / 2048.0 - 1.0
            })
            .collect()
    }

    /// A `rows × n` matrix stored at byte offset `shift` of `bytes` (and `scales`), as
    /// f32 or as int8 with per-row scales (every int8 value, -128 and 127 included,
    /// appears); returns the dequantized values.
    fn store(rows: usize, n: usize, shift: usize, int8: bool) -> (Vec<f32>, Vec<u8>, Vec<u8>) {
        let w = data(rows * n, 1);
        if !int8 {
            let mut bytes = std::vec![0u8; 4 * w.len() + shift];
            for (c, v) in bytes[shift..].chunks_exact_mut(4).zip(&w) {
                c.copy_from_slice(&v.to_le_bytes());
            }
            return (w, bytes, Vec::new());
        }
        let q: Vec<i8> = (0..rows * n).map(|i| (i * 97 + rows) as u8 as i8).collect();
        let s: Vec<f32> = data(rows, 6).iter().map(|v| (v + 1.5) / 127.0).collect();
        let mut bytes = std::vec![0u8; shift];
        bytes.extend(q.iter().map(|&v| v as u8));
        let mut scales = std::vec![0u8; shift];
        scales.extend(s.iter().flat_map(|v| v.to_le_bytes()));
        let w = (0..rows * n).map(|i| s[i / n] * f32::from(q[i])).collect();
        (w, bytes, scales)
    }

    /// What [`store`] stored, from byte `shift` on.
    fn view<'a>(bytes: &'a [u8], scales: &'a [u8], shift: usize, int8: bool) -> Rows<'a> {
        match int8 {
            false => Rows::F32(&bytes[shift..]),
            true => Rows::I8 {
                q: &bytes[shift..],
                scales: &scales[shift..],
            },
        }
    }

    /// `R` vectors against a `rows × n` matrix stored at byte offset `shift`.
    fn check<const R: usize>(kernel: DotKernel, rows: usize, n: usize, shift: usize, int8: bool) {
        let (w, bytes, scales) = store(rows, n, shift, int8);
        let m = view(&bytes, &scales, shift, int8);
        let xs = data(R * n, 2);
        let ldo = rows + 3;
        let init = data(R * ldo, 3);
        let mut out = init.clone();
        match R {
            1 => kernel.mul_one(m, &xs, &mut out),
            _ => kernel.mul_rows(m, &xs, &mut out, ldo),
        }
        for r in 0..R {
            for j in 0..rows {
                let dot: f64 = (0..n)
                    .map(|k| w[j * n + k] as f64 * xs[r * n + k] as f64)
                    .sum();
                let want = init[r * ldo + j] as f64 + dot;
                let got = out[r * ldo + j] as f64;
                assert!(
                    (got - want).abs() <= 3e-5 * n as f64,
                    "{kernel:?} int8 {int8} R={R} {rows}x{n} shift {shift}: [{r}][{j}] = \
                     {got}, want {want}"
                );
            }
            // Past the rows, nothing is written.
            assert_eq!(out[r * ldo + rows..][..3], init[r * ldo + rows..][..3]);
        }
    }

    #[test]
    fn every_kernel_matches_the_naive_product() {
        for kernel in DotKernel::available() {
            for int8 in [false, true] {
                for n in [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100] {
                    for shift in [0, 1, 3] {
                        check::<1>(kernel, 5, n, shift, int8);
                        check::<ROWS>(kernel, 6, n, shift, int8);
                    }
                }
                check::<1>(kernel, 0, 4, 0, int8);
            }
        }
    }

    /// Aligned and unaligned weights give the same bits (the kernels read the same values
    /// in the same order).
    #[test]
    fn alignment_does_not_change_a_bit() {
        for kernel in DotKernel::available() {
            for int8 in [false, true] {
                let (rows, n) = (7, 45);
                let xs = data(ROWS * n, 5);
                let mut outs = Vec::new();
                for shift in [0, 1, 2] {
                    let (_, bytes, scales) = store(rows, n, shift, int8);
                    let m = view(&bytes, &scales, shift, int8);
                    let mut out = std::vec![0f32; ROWS * rows];
                    kernel.mul_rows(m, &xs, &mut out, rows);
                    outs.push(out);
                }
                assert_eq!(outs[0], outs[1], "{kernel:?} int8 {int8}");
                assert_eq!(outs[0], outs[2], "{kernel:?} int8 {int8}");
            }
        }
    }
}
