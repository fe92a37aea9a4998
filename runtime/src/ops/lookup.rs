//! Byte-table lookups in place, `v = table[v]`: the int8 activations that
//! `plan::qdq::table` precomputes on all 256 inputs (TFLite's int8 SiLU and sigmoid),
//! applied by the int8 GEMM's epilogue to every value it stores.
//!
//! One lookup is a dependent load and a store per byte, which no compiler vectorises: on
//! YOLO9tr-s int8 at 224 px the scalar loop took 0.9 ms of 9.3 (`edgetrim bench
//! target/edgetrim-demo/yolo9tr-s.int8.onnx` with and without it, on an AVX-512 VNNI VM). x86_64 CPUs with
//! AVX-512 VBMI look up 64 bytes at once: `vpermi2b` indexes a 128-byte table (two zmm
//! registers) by each byte's low 7 bits, so two of them — the table's low and high halves
//! — and a blend on each index's sign bit cover all 256 entries, with masked loads and
//! stores for runs shorter than 64. Other CPUs keep the scalar loop.

/// `dst[i * ld..][..cols] = table[..]` of themselves, for each row `i < rows`.
///
/// # Panics
/// If `dst` is shorter than `(rows - 1) * ld + cols` (the callers size it so).
#[inline(always)]
pub fn lookup_rows(table: &[u8; 256], dst: &mut [u8], ld: usize, rows: usize, cols: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    let dst = &mut dst[..(rows - 1) * ld + cols];
    #[cfg(target_arch = "x86_64")]
    if vbmi::available() {
        // SAFETY: the CPU has AVX-512 F, BW and VBMI (just checked), and `dst` holds every
        // row (sliced above, so the bounds were checked).
        return unsafe { vbmi::lookup_rows(table, dst, ld, rows, cols) };
    }
    lookup_rows_portable(table, dst, ld, rows, cols)
}

/// [`lookup_rows`] one byte at a time: the reference, and every CPU without VBMI.
#[inline(always)]
pub fn lookup_rows_portable(
    table: &[u8; 256],
    dst: &mut [u8],
    ld: usize,
    rows: usize,
    cols: usize,
) {
    for i in 0..rows {
        for v in &mut dst[i * ld..][..cols] {
            *v = table[usize::from(*v)];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vbmi {
    use core::arch::x86_64::{
        __m512i, _mm512_loadu_si512, _mm512_mask_blend_epi8, _mm512_mask_storeu_epi8,
        _mm512_maskz_loadu_epi8, _mm512_movepi8_mask, _mm512_permutex2var_epi8,
    };

    /// Whether this CPU runs [`lookup_rows`] (AVX-512 F, BW and VBMI).
    pub(super) fn available() -> bool {
        crate::cpu::x86_has!(Native: "avx512f", "avx512bw", "avx512vbmi")
    }

    /// [`super::lookup_rows`], 64 bytes per step.
    ///
    /// # Safety
    /// The CPU supports AVX-512 F, BW and VBMI; `rows ≥ 1` and `dst` holds
    /// `(rows - 1) * ld + cols` bytes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(super) unsafe fn lookup_rows(
        table: &[u8; 256],
        dst: &mut [u8],
        ld: usize,
        rows: usize,
        cols: usize,
    ) {
        let quarter = |i: usize| -> __m512i {
            // SAFETY: bytes 64·i .. 64·i + 64 of the 256-byte table (i < 4); an unaligned load.
            unsafe { _mm512_loadu_si512(table.as_ptr().add(64 * i).cast()) }
        };
        let (t0, t1, t2, t3) = (quarter(0), quarter(1), quarter(2), quarter(3));
        for i in 0..rows {
            for run in dst[i * ld..][..cols].chunks_mut(64) {
                // The run's bytes: the low `run.len()` (1 ..= 64) lanes.
                let lanes = u64::MAX >> (64 - run.len());
                let at = run.as_mut_ptr();
                // SAFETY: the masked load and store touch only the `run.len()` bytes of
                // `run` (masked-off lanes are not accessed, so they cannot fault).
                unsafe {
                    let index = _mm512_maskz_loadu_epi8(lanes, at.cast());
                    let low = _mm512_permutex2var_epi8(t0, index, t1);
                    let high = _mm512_permutex2var_epi8(t2, index, t3);
                    let value = _mm512_mask_blend_epi8(_mm512_movepi8_mask(index), low, high);
                    _mm512_mask_storeu_epi8(at.cast(), lanes, value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn table(seed: u32) -> [u8; 256] {
        let mut t = [0u8; 256];
        let mut s = seed;
        for v in &mut t {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *v = (s >> 24) as u8;
        }
        t
    }

    /// Every byte value, runs of every length around the 64-byte step, rows apart by more
    /// than their length: the dispatched lookup (VBMI on CPUs that have it) equals the
    /// scalar one, and the bytes between rows are left alone.
    #[test]
    fn lookup_equals_the_scalar_loop_and_touches_only_the_rows() {
        let t = table(7);
        for cols in [1, 2, 15, 16, 17, 63, 64, 65, 127, 128, 130] {
            for rows in [1, 3, 6] {
                let ld = cols + 5;
                let len = (rows - 1) * ld + cols + 3;
                let data: Vec<u8> = (0..len).map(|i| (i * 37 + cols) as u8).collect();
                let (mut fast, mut slow) = (data.clone(), data.clone());
                lookup_rows(&t, &mut fast, ld, rows, cols);
                lookup_rows_portable(&t, &mut slow, ld, rows, cols);
                assert_eq!(fast, slow, "cols {cols} rows {rows}");
                for (i, (&after, &before)) in slow.iter().zip(&data).enumerate() {
                    let in_row = i % ld < cols && i / ld < rows;
                    assert_eq!(
                        after,
                        if in_row {
                            t[usize::from(before)]
                        } else {
                            before
                        }
                    );
                }
            }
        }
    }

    /// All 256 indices through the fast path where this CPU has it (each half of the table
    /// and the blend on the sign bit).
    #[test]
    fn every_index_reads_its_entry() {
        let t = table(11);
        let mut all: Vec<u8> = (0..=255).collect();
        lookup_rows(&t, &mut all, 64, 4, 64);
        assert_eq!(all, t.to_vec());
    }
}
