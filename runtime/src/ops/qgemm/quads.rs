//! The x86_64 kernels that take k in **quads** ([`super::vnni`]'s `vpdpbusd` and
//! [`super::avx2_narrow`]'s `vpmaddubsw`): one [`QMicroKernel`] over their tile functions,
//! since they share everything else — the 6×16 tile, the panels and the AVX2 epilogue.
//!
//! Layout ([`QMicroKernel::GROUP`] 4): A panels hold `[a(i, 4p) .. a(i, 4p+3)]` as int8
//! (in the bytes of the i16 panel buffer, which is then twice what they need), B panels
//! `[b(4p, j) .. b(4p+3, j)]` with the sign bit flipped, i.e. `b + 128` as u8, the unsigned
//! operand both instructions want ([`QMicroKernel::B_OFFSET`]).

use super::{QMicroKernel, MAX_TILE};
use crate::ops::unary::Activation;
use core::marker::PhantomData;

/// Rows of the tile.
pub const MR: usize = 6;
/// Columns of the tile.
pub const NR: usize = 16;

/// The tile function of a quad kernel.
pub trait QuadTile {
    /// `acc[i * 16 + j] = Σ_p Σ_q a[(p * 6 + i) * 4 + q] · b[(p * 16 + j) * 4 + q]` for
    /// the 6 × 16 tile over `kp` k quads (B's bytes unsigned, A's signed).
    ///
    /// # Safety
    /// The CPU has the kernel's instructions (and AVX2); `kp ≥ 1`; `a` has `24 * kp`
    /// readable bytes, `b` `64 * kp` and `acc` 96 writable i32.
    unsafe fn tile(kp: usize, a: *const u8, b: *const u8, acc: *mut i32);
}

/// The micro-kernel of tile `T`.
pub struct Quads<T>(PhantomData<T>);

impl<T: QuadTile> QMicroKernel for Quads<T> {
    const MR: usize = MR;
    const NR: usize = NR;
    const GROUP: usize = 4;
    const B_OFFSET: i32 = 128;

    #[inline]
    fn tile(kp: usize, a: &[i16], b: &[u8], acc: &mut [i32; MAX_TILE]) {
        assert!(kp > 0 && 2 * a.len() >= 4 * kp * MR && b.len() >= 4 * kp * NR);
        // SAFETY: a plan holds a quad kernel only when the CPU has its instructions and
        // AVX2 (`QKernel::best`, `QKernel::for_weights`); the assert bounds every read, and
        // `acc` holds MR × NR = MAX_TILE values.
        unsafe { T::tile(kp, a.as_ptr().cast(), b.as_ptr(), acc.as_mut_ptr()) }
    }

    #[inline]
    fn activate(act: Activation, c: &mut [f32], rows: usize, cols: usize, ldc: usize) {
        // SAFETY: as for `tile`: these kernels run only on CPUs with AVX2 and FMA.
        unsafe { super::avx2::activate(act, c, rows, cols, ldc) }
    }
}
