//! Float16 → float32 widening of weights read in place.
//!
//! fp16 models (`edgetrim compress --quantize fp16`) keep their weights as IEEE float16 in
//! the model bytes; kernels widen them while packing a panel ([`crate::ops::gemm::Run`]) or
//! per element ([`crate::tensor::LeF16`]), so no float32 copy of a weight ever sits in the
//! arena and the flash saving does not cost RAM.
//!
//! [`widen`] picks the fastest conversion this CPU has: on x86_64 the F16C instruction
//! `vcvtph2ps` (8 values per instruction), detected at run time with `std` and fixed by the
//! compile-time target features without it; elsewhere [`widen_portable`], the `half`
//! crate's conversion, which is the reference. Widening is exact (every float16 is a
//! float32), so both agree bit for bit on every one of the 65,536 inputs (tested).

use half::f16;

/// Widens the little-endian float16 values in `src` (2 bytes each, any alignment) into
/// `out`; `src` holds at least `2 * out.len()` bytes.
#[inline]
pub fn widen(src: &[u8], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if f16c_available() {
        // SAFETY: the CPU has F16C and AVX, checked just above; that is all
        // `widen_f16c` requires.
        unsafe { widen_f16c(src, out) };
        return;
    }
    widen_portable(src, out);
}

/// Widens one little-endian float16 (the first two bytes of `b`).
#[inline(always)]
pub fn widen_one(b: &[u8]) -> f32 {
    f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// The reference: one value at a time through the `half` crate.
pub fn widen_portable(src: &[u8], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(src.chunks_exact(2)) {
        *o = widen_one(b);
    }
}

/// Whether [`widen_f16c`] may run on this CPU.
#[cfg(target_arch = "x86_64")]
pub fn f16c_available() -> bool {
    crate::cpu::x86_has!(Avx2: "f16c", "avx")
}

/// [`widen_portable`] with F16C: 8 values per `vcvtph2ps`, the tail through the reference.
///
/// # Safety
/// The CPU supports F16C and AVX ([`f16c_available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
pub unsafe fn widen_f16c(src: &[u8], out: &mut [f32]) {
    use core::arch::x86_64::{__m128i, _mm256_cvtph_ps, _mm256_storeu_ps, _mm_loadu_si128};
    let n = out.len().min(src.len() / 2);
    let whole = n / 8 * 8;
    for i in (0..whole).step_by(8) {
        let s = &src[2 * i..2 * i + 16];
        let o = &mut out[i..i + 8];
        // SAFETY: `s` is 16 readable bytes and `o` 8 writable floats (the slices above are
        // bounds-checked); both intrinsics take unaligned pointers.
        unsafe {
            let h = _mm_loadu_si128(s.as_ptr().cast::<__m128i>());
            _mm256_storeu_ps(o.as_mut_ptr(), _mm256_cvtph_ps(h));
        }
    }
    widen_portable(&src[2 * whole..], &mut out[whole..n]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Every float16 bit pattern, little-endian.
    fn all_halves() -> Vec<u8> {
        (0..=u16::MAX).flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn portable_widening_is_exact() {
        let src = all_halves();
        let mut out = std::vec![0f32; 1 << 16];
        widen_portable(&src, &mut out);
        for (bits, v) in (0..=u16::MAX).zip(&out) {
            let h = f16::from_bits(bits);
            if h.is_nan() {
                assert!(v.is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(f16::from_f32(*v).to_bits(), bits, "{bits:#06x} round trip");
            }
        }
        assert_eq!(out[0x3c00], 1.0);
        assert_eq!(out[0xfc00], f32::NEG_INFINITY);
        assert_eq!(out[0x0001], 2f32.powi(-24), "smallest subnormal");
    }

    /// The F16C path equals the reference bit for bit on every input, at every alignment
    /// of the source and every tail length.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn f16c_matches_portable_bit_for_bit() {
        if !f16c_available() {
            return;
        }
        let src = all_halves();
        let mut want = std::vec![0f32; 1 << 16];
        widen_portable(&src, &mut want);
        let mut got = std::vec![0f32; 1 << 16];
        // SAFETY: F16C and AVX were detected above.
        unsafe { widen_f16c(&src, &mut got) };
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
        let mut shifted = std::vec![0u8; 1];
        shifted.extend_from_slice(&src[..2 * 40]);
        for len in 0..40 {
            let mut a = std::vec![0f32; len];
            let mut b = std::vec![0f32; len];
            widen_portable(&shifted[1..], &mut a);
            // SAFETY: as above.
            unsafe { widen_f16c(&shifted[1..], &mut b) };
            assert_eq!(bits(&a), bits(&b), "unaligned, length {len}");
        }
    }

    #[test]
    fn dispatch_equals_the_reference() {
        let src = all_halves();
        let (mut a, mut b) = (std::vec![0f32; 1001], std::vec![0f32; 1001]);
        widen(&src[2 * 30000..], &mut a);
        widen_portable(&src[2 * 30000..], &mut b);
        assert_eq!(a, b);
    }
}
