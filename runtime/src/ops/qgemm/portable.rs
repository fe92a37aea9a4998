//! The reference int8 micro-kernel: scalar i32 multiply-adds over k pairs. The path on
//! Cortex-M (4×4 tile) and the oracle the intrinsic kernels are tested against.

use super::{QMicroKernel, MAX_TILE};

/// The portable kernel with a `4 × NR` tile.
pub struct Portable<const NR: usize>;

const MR: usize = 4;

impl<const NR: usize> QMicroKernel for Portable<NR> {
    const MR: usize = MR;
    const NR: usize = NR;

    #[inline]
    fn tile(kp: usize, a: &[i16], b: &[u8], acc: &mut [i32; MAX_TILE]) {
        let mut t = [[0i32; NR]; MR];
        for (ap, bp) in a[..2 * kp * MR]
            .chunks_exact(2 * MR)
            .zip(b[..2 * kp * NR].chunks_exact(2 * NR))
        {
            for (row, a) in t.iter_mut().zip(ap.chunks_exact(2)) {
                let (a0, a1) = (i32::from(a[0]), i32::from(a[1]));
                for (x, b) in row.iter_mut().zip(bp.chunks_exact(2)) {
                    *x += a0 * i32::from(b[0] as i8) + a1 * i32::from(b[1] as i8);
                }
            }
        }
        for (i, row) in t.iter().enumerate() {
            acc[i * NR..][..NR].copy_from_slice(row);
        }
    }
}
