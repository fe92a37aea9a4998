//! The reference micro-kernel in plain Rust: exact-size chunks let LLVM drop the bounds
//! checks and vectorise the `MR × NR` update with whatever SIMD the target has. It is the
//! path on Cortex-M (where the tile is 4×4 to fit the FPU's 32 single registers) and the
//! oracle every intrinsic kernel is tested against.

use super::MicroKernel;

/// The portable kernel with a `4 × NR` tile: NR = 8 (two 128-bit vectors) on hosts, 4 on
/// Cortex-M.
pub struct Portable<const NR: usize>;

const MR: usize = 4;

impl<const NR: usize> MicroKernel for Portable<NR> {
    const MR: usize = MR;
    const NR: usize = NR;

    #[inline]
    fn tile(kc: usize, a: &[f32], b: &[f32], c: &mut [f32], ldc: usize) {
        let mut acc = [[0f32; NR]; MR];
        for (ap, bp) in a[..kc * MR]
            .chunks_exact(MR)
            .zip(b[..kc * NR].chunks_exact(NR))
        {
            for (row, &av) in acc.iter_mut().zip(ap) {
                for (x, &bv) in row.iter_mut().zip(bp) {
                    *x += av * bv;
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (d, v) in c[i * ldc..][..NR].iter_mut().zip(row) {
                *d += v;
            }
        }
    }
}
