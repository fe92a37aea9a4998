//! x86_64 AVX2 int8 micro-kernel for **narrow weights** (every weight within ±64, 7 bits):
//! `vpmaddubsw` multiplies 32 unsigned activation bytes by 32 signed weight bytes and adds
//! adjacent products into 16 i16 lanes; `vpmaddwd` by ones adds those pairs into i32.
//! Two multiplies per 32 multiply-adds where [`super::avx2`] needs two per 16, which
//! matters where `vpmaddwd` issues once per cycle and the FMA twice (AMD Zen): there the
//! full-range int8 kernel is no faster than the float one. On such a VM the GEMM of a 3×3
//! 64→64 conv at 80×80 takes 3.90 ms here, 4.37 ms on [`super::avx2`] and 7.40 ms in f32
//! (`cargo bench -p edgetrim-runtime --features tract --bench kernels -- gemm_conv3x3`).
//!
//! Why only narrow weights: `vpmaddubsw` saturates its i16 pair sums. With activations as
//! `b + 128 ∈ [0, 255]` and weights `|a| ≤ 64`, a pair sum is at most `2 · 255 · 64 =
//! 32640 < 2¹⁵`, so it never saturates and the accumulators equal the portable kernel's
//! bit for bit; with full int8 weights (`2 · 255 · 128`) it would. The planner picks this
//! kernel for a conv only after reading all of its weights ([`fits`]); onnxruntime's
//! `reduce_range` and the compressor's `--quantize int8 --reduce-range` write such
//! weights for exactly this instruction.
//!
//! Layout: the quads of [`super::vnni`] (see [`super::quads`]), so both share the packers
//! and the epilogue.

use super::quads::{QuadTile, MR, NR};
use core::arch::x86_64::*;

/// The narrow-weight AVX2 kernel's tile ([`super::quads::Quads`] makes it a micro-kernel).
pub struct Avx2Narrow;

/// The largest weight magnitude this kernel multiplies exactly.
pub const WEIGHT_BOUND: i8 = 64;

/// Whether every int8 weight in `weights` is within ±[`WEIGHT_BOUND`].
pub fn fits(weights: &[u8]) -> bool {
    weights
        .iter()
        .all(|&w| (-WEIGHT_BOUND..=WEIGHT_BOUND).contains(&(w as i8)))
}

impl QuadTile for Avx2Narrow {
    unsafe fn tile(kp: usize, a: *const u8, b: *const u8, acc: *mut i32) {
        // SAFETY: forwarded contract (see `QuadTile::tile`), which is `tile_6x16`'s.
        unsafe { tile_6x16(kp, a, b, acc) }
    }
}

/// # Safety
/// The CPU supports AVX2; `a` has `4 * MR * kp` readable bytes, `b` `64 * kp` and `acc`
/// has 96 writable i32.
#[target_feature(enable = "avx2")]
unsafe fn tile_6x16(kp: usize, a: *const u8, b: *const u8, acc: *mut i32) {
    let ones = _mm256_set1_epi16(1);
    let mut t = [[_mm256_setzero_si256(); 2]; MR];
    for p in 0..kp {
        // SAFETY: p < kp, so these reads stay within the panels (see the contract).
        let (b0, b1) = unsafe {
            (
                _mm256_loadu_si256(b.add(p * 4 * NR).cast()),
                _mm256_loadu_si256(b.add(p * 4 * NR + 32).cast()),
            )
        };
        for (i, row) in t.iter_mut().enumerate() {
            // SAFETY: the quad at 4 * (p * MR + i) is inside the A panel.
            let quad = unsafe { a.add(4 * (p * MR + i)).cast::<i32>().read_unaligned() };
            let av = _mm256_set1_epi32(quad);
            let s0 = _mm256_madd_epi16(_mm256_maddubs_epi16(b0, av), ones);
            let s1 = _mm256_madd_epi16(_mm256_maddubs_epi16(b1, av), ones);
            row[0] = _mm256_add_epi32(row[0], s0);
            row[1] = _mm256_add_epi32(row[1], s1);
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
