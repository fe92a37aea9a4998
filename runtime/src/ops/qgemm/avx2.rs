//! x86_64 AVX2 int8 micro-kernel: a 6×16 tile of i32 in 12 ymm accumulators. Per k pair,
//! two B loads sign-extended to i16 (16 columns × 2 int8) and six A broadcasts (one row's
//! i16 pair as an i32) feed twelve `vpmaddwd` (`a0·b0 + a1·b1` per i32 lane, exact for
//! our ranges) and twelve adds. Selected only when the CPU has AVX2 ([`super::QKernel::best`]).
//!
//! CPUs with AVX-512 VNNI run [`super::vnni`] instead, which multiplies bytes four at a
//! time (`vpdpbusd`) rather than i16 pairs (`vpdpwssd` would only fuse the add: ~8%).

use super::{QMicroKernel, MAX_TILE};
use crate::ops::unary::Activation;
use core::arch::x86_64::*;

/// The AVX2 kernel.
pub struct Avx2;

const MR: usize = 6;
const NR: usize = 16;

impl QMicroKernel for Avx2 {
    const MR: usize = MR;
    const NR: usize = NR;

    #[inline]
    fn tile(kp: usize, a: &[i16], b: &[u8], acc: &mut [i32; MAX_TILE]) {
        assert!(a.len() >= 2 * kp * MR && b.len() >= 2 * kp * NR);
        // SAFETY: a plan holds `QKernel::Avx2` only when `QKernel::best`/`available` saw
        // AVX2 (and FMA) on this CPU; the assert bounds every read and `acc` holds
        // MR × NR = MAX_TILE values.
        unsafe { tile_6x16(kp, a.as_ptr(), b.as_ptr(), acc.as_mut_ptr()) }
    }

    #[inline]
    fn activate(act: Activation, c: &mut [f32], rows: usize, cols: usize, ldc: usize) {
        // SAFETY: as for `tile`, this kernel only runs on CPUs with AVX2 and FMA.
        unsafe { activate(act, c, rows, cols, ldc) }
    }
}

/// The activation of a finished tile, compiled for AVX2 + FMA: shared by every kernel of
/// the family (this one, [`super::avx2_narrow`] and [`super::vnni`]).
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[inline]
pub(super) unsafe fn activate(
    act: Activation,
    c: &mut [f32],
    rows: usize,
    cols: usize,
    ldc: usize,
) {
    // SAFETY: per the contract.
    unsafe { act.apply_rows_avx2(c, rows, cols, ldc) }
}

/// # Safety
/// The CPU supports AVX2; `a` has `2 * kp * 6` readable i16, `b` has `2 * kp * 16`
/// readable bytes and `acc` has 96 writable i32.
#[target_feature(enable = "avx2")]
unsafe fn tile_6x16(kp: usize, a: *const i16, b: *const u8, acc: *mut i32) {
    let mut t = [[_mm256_setzero_si256(); 2]; MR];
    for p in 0..kp {
        // SAFETY: p < kp, so these reads stay within the panels (see the contract).
        let (b0, b1) = unsafe {
            (
                _mm256_cvtepi8_epi16(_mm_loadu_si128(b.add(p * 2 * NR).cast())),
                _mm256_cvtepi8_epi16(_mm_loadu_si128(b.add(p * 2 * NR + 16).cast())),
            )
        };
        for (i, row) in t.iter_mut().enumerate() {
            // SAFETY: the pair at 2 * (p * 6 + i) is inside the A panel.
            let pair = unsafe { a.add(2 * (p * MR + i)).cast::<i32>().read_unaligned() };
            let av = _mm256_set1_epi32(pair);
            row[0] = _mm256_add_epi32(row[0], _mm256_madd_epi16(av, b0));
            row[1] = _mm256_add_epi32(row[1], _mm256_madd_epi16(av, b1));
        }
    }
    for (i, row) in t.iter().enumerate() {
        // SAFETY: row i of the tile is acc[i * 16 .. i * 16 + 16], inside the 96 values.
        unsafe {
            _mm256_storeu_si256(acc.add(i * NR).cast(), row[0]);
            _mm256_storeu_si256(acc.add(i * NR + 8).cast(), row[1]);
        }
    }
}
