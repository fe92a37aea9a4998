//! x86_64 AVX2 + FMA kernels of [`super::dot`]: per weight row, eight floats at a time are
//! loaded unaligned straight from the model bytes (x86 is little-endian) and multiplied
//! into the accumulators with FMA. One vector gets two accumulators (two independent FMA
//! chains), [`super::dot::ROWS`] vectors one each. The accumulators are named locals, not
//! arrays, so they stay in registers at any optimisation level. Int8 rows are widened to f32
//! eight at a time (sign-extend, convert) and take the same FMAs; the row's scale multiplies
//! the finished sum. Selected only when the CPU has both features.

use core::arch::x86_64::*;

/// Adds the eight lanes of `v`.
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
}

/// Element `k` of the little-endian f32 row `row` (the scalar tail; row `k`'s scale).
#[inline(always)]
fn le(row: &[u8], k: usize) -> f32 {
    let b = &row[4 * k..4 * k + 4];
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// `out[j] += Σₖ w[j·n + k] · x[k]` for every row `j` of `w` (`n = x.len()`).
///
/// # Safety
/// The CPU supports AVX2 and FMA; `n > 0`, `w.len()` is a multiple of `4·n` and `out` has
/// at least `w.len() / (4·n)` floats (what [`super::dot::DotKernel::mul_one`] asserts).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn mul_one(w: &[u8], x: &[f32], out: &mut [f32]) {
    let n = x.len();
    let xp = x.as_ptr();
    for (row, o) in w.chunks_exact(4 * n).zip(out.iter_mut()) {
        let wp = row.as_ptr().cast::<f32>();
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut k = 0;
        while k + 16 <= n {
            // SAFETY: k + 16 <= n: the 16 floats lie inside this row (4·n bytes) and x; the
            // loads are unaligned.
            unsafe {
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(k)), _mm256_loadu_ps(xp.add(k)), a0);
                let (w1, x1) = (wp.add(k + 8), xp.add(k + 8));
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1), _mm256_loadu_ps(x1), a1);
            }
            k += 16;
        }
        if k + 8 <= n {
            // SAFETY: k + 8 <= n, as above.
            unsafe {
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(k)), _mm256_loadu_ps(xp.add(k)), a0);
            }
            k += 8;
        }
        let mut s = hsum(_mm256_add_ps(a0, a1));
        for (kk, xv) in x.iter().enumerate().skip(k) {
            s += le(row, kk) * xv;
        }
        *o += s;
    }
}

/// [`mul_one`] for four vectors `xs` (one after the other, `n = xs.len() / 4`), vector `r`'s
/// results at `out[r·ldo ..]`; each weight load feeds four FMAs.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `n > 0`, `xs.len() == 4·n`, `w.len()` is a multiple of
/// `4·n` and `out` has at least `3·ldo + w.len() / (4·n)` floats when `w` is not empty
/// (what [`super::dot::DotKernel::mul_rows`] asserts).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn mul_rows(w: &[u8], xs: &[f32], out: &mut [f32], ldo: usize) {
    let n = xs.len() / 4;
    let x0 = xs.as_ptr();
    // SAFETY: xs holds 4·n floats, so these are inside it (or one past its end).
    let (x1, x2, x3) = unsafe { (x0.add(n), x0.add(2 * n), x0.add(3 * n)) };
    for (j, row) in w.chunks_exact(4 * n).enumerate() {
        let wp = row.as_ptr().cast::<f32>();
        let z = _mm256_setzero_ps();
        let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
        let mut k = 0;
        while k + 8 <= n {
            // SAFETY: k + 8 <= n: inside this row and inside each of the four vectors.
            unsafe {
                let wv = _mm256_loadu_ps(wp.add(k));
                a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0.add(k)), a0);
                a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1.add(k)), a1);
                a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x2.add(k)), a2);
                a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x3.add(k)), a3);
            }
            k += 8;
        }
        let mut s = [hsum(a0), hsum(a1), hsum(a2), hsum(a3)];
        for kk in k..n {
            let wv = le(row, kk);
            for (r, s) in s.iter_mut().enumerate() {
                *s += wv * xs[r * n + kk];
            }
        }
        for (r, s) in s.iter().enumerate() {
            out[r * ldo + j] += s;
        }
    }
}

/// Eight int8 weights from `p` as f32 lanes.
///
/// # Safety
/// The CPU supports AVX2; `p` points to 8 readable bytes (any alignment).
#[target_feature(enable = "avx2,fma")]
unsafe fn widen8(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees 8 readable bytes; `_mm_loadl_epi64` reads exactly 8,
    // unaligned.
    let v = unsafe { _mm_loadl_epi64(p.cast::<__m128i>()) };
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))
}

/// [`mul_one`] on int8 rows `q` (`n` bytes each) with one little-endian f32 scale per row
/// in `scales`: `out[j] += scales[j] · Σₖ q[j·n + k] · x[k]`.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `n > 0`, `q.len()` is a multiple of `n`, `scales` has
/// `4·rows` bytes and `out` at least `rows` floats, with `rows = q.len() / n` (what
/// [`super::dot::DotKernel::mul_one`] asserts).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn mul_one_i8(q: &[u8], scales: &[u8], x: &[f32], out: &mut [f32]) {
    let n = x.len();
    let xp = x.as_ptr();
    for (j, (row, o)) in q.chunks_exact(n).zip(out.iter_mut()).enumerate() {
        let wp = row.as_ptr();
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut k = 0;
        while k + 16 <= n {
            // SAFETY: k + 16 <= n: 16 bytes of this row (n bytes) and 16 floats of x.
            unsafe {
                a0 = _mm256_fmadd_ps(widen8(wp.add(k)), _mm256_loadu_ps(xp.add(k)), a0);
                a1 = _mm256_fmadd_ps(widen8(wp.add(k + 8)), _mm256_loadu_ps(xp.add(k + 8)), a1);
            }
            k += 16;
        }
        if k + 8 <= n {
            // SAFETY: k + 8 <= n, as above.
            unsafe {
                a0 = _mm256_fmadd_ps(widen8(wp.add(k)), _mm256_loadu_ps(xp.add(k)), a0);
            }
            k += 8;
        }
        let mut s = hsum(_mm256_add_ps(a0, a1));
        for (&wb, xv) in row[k..].iter().zip(&x[k..]) {
            s += f32::from(wb as i8) * xv;
        }
        *o += le(scales, j) * s;
    }
}

/// [`mul_rows`] on int8 rows with per-row scales, as [`mul_one_i8`].
///
/// # Safety
/// The CPU supports AVX2 and FMA; `n > 0`, `xs.len() == 4·n`, `q.len()` is a multiple of
/// `n`, `scales` has `4·rows` bytes and `out` at least `3·ldo + rows` floats when `q` is not
/// empty, with `rows = q.len() / n` (what [`super::dot::DotKernel::mul_rows`] asserts).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn mul_rows_i8(q: &[u8], scales: &[u8], xs: &[f32], out: &mut [f32], ldo: usize) {
    let n = xs.len() / 4;
    let x0 = xs.as_ptr();
    // SAFETY: xs holds 4·n floats, so these are inside it (or one past its end).
    let (x1, x2, x3) = unsafe { (x0.add(n), x0.add(2 * n), x0.add(3 * n)) };
    for (j, row) in q.chunks_exact(n).enumerate() {
        let wp = row.as_ptr();
        let z = _mm256_setzero_ps();
        let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
        let mut k = 0;
        while k + 8 <= n {
            // SAFETY: k + 8 <= n: 8 bytes of this row, 8 floats of each of the vectors.
            unsafe {
                let wv = widen8(wp.add(k));
                a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0.add(k)), a0);
                a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1.add(k)), a1);
                a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x2.add(k)), a2);
                a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x3.add(k)), a3);
            }
            k += 8;
        }
        let mut s = [hsum(a0), hsum(a1), hsum(a2), hsum(a3)];
        for (kk, &wb) in row.iter().enumerate().skip(k) {
            let wv = f32::from(wb as i8);
            for (r, s) in s.iter_mut().enumerate() {
                *s += wv * xs[r * n + kk];
            }
        }
        let sc = le(scales, j);
        for (r, s) in s.iter().enumerate() {
            out[r * ldo + j] += sc * s;
        }
    }
}
