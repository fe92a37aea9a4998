//! x86_64 AVX2 + FMA micro-kernel: a 6×16 tile of C in 12 ymm accumulators; per step of k,
//! two B loads and six A broadcasts feed twelve FMAs (the layout of BLIS's Haswell kernel).
//! Selected only when the CPU has both features ([`super::Kernel::best`]).

use super::MicroKernel;
use crate::ops::unary::Activation;
use core::arch::x86_64::*;

/// The AVX2 + FMA kernel.
pub struct Avx2Fma;

const MR: usize = 6;
const NR: usize = 16;

impl MicroKernel for Avx2Fma {
    const MR: usize = MR;
    const NR: usize = NR;

    #[inline]
    fn tile(kc: usize, a: &[f32], b: &[f32], c: &mut [f32], ldc: usize) {
        assert!(a.len() >= kc * MR && b.len() >= kc * NR && c.len() >= (MR - 1) * ldc + NR);
        // SAFETY: a GemmPlan holds `Kernel::Avx2Fma` only when `Kernel::best`/`available`
        // saw AVX2 and FMA on this CPU (run-time detection, or compile-time target features
        // without std); the assert above bounds every pointer access `tile_6x16` makes.
        unsafe { tile_6x16(kc, a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), ldc) }
    }

    #[inline]
    fn activate(act: Activation, c: &mut [f32], rows: usize, cols: usize, ldc: usize) {
        // SAFETY: as for `tile`, this kernel only runs on CPUs with AVX2 and FMA.
        unsafe { act.apply_rows_avx2(c, rows, cols, ldc) }
    }
}

/// # Safety
/// The CPU supports AVX2 and FMA; `a` has `kc * 6`, `b` has `kc * 16` readable floats and
/// `c` has 6 rows of 16 writable floats `ldc` apart.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_6x16(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize) {
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for p in 0..kc {
        // SAFETY: p < kc, so these reads stay within the panels (see the contract).
        let (b0, b1) = unsafe {
            (
                _mm256_loadu_ps(b.add(p * NR)),
                _mm256_loadu_ps(b.add(p * NR + 8)),
            )
        };
        for (i, row) in acc.iter_mut().enumerate() {
            // SAFETY: p * 6 + i < kc * 6.
            let av = unsafe { _mm256_broadcast_ss(&*a.add(p * MR + i)) };
            row[0] = _mm256_fmadd_ps(av, b0, row[0]);
            row[1] = _mm256_fmadd_ps(av, b1, row[1]);
        }
    }
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: row i of the tile is c[i * ldc .. i * ldc + 16], inside c (see the contract).
        unsafe {
            let dst = c.add(i * ldc);
            _mm256_storeu_ps(dst, _mm256_add_ps(_mm256_loadu_ps(dst), row[0]));
            _mm256_storeu_ps(
                dst.add(8),
                _mm256_add_ps(_mm256_loadu_ps(dst.add(8)), row[1]),
            );
        }
    }
}
