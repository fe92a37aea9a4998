//! Cortex-M int8 micro-kernel on the DSP extension (Cortex-M4/M7/M33): `SMLAD` multiplies
//! the two i16 halves of one register by those of another and adds both products to an
//! i32 — two multiply-adds per instruction, the most these cores retire.
//!
//! A pair `[a(i, 2p), a(i, 2p+1)]` of the packed A panel is one 32-bit word; so is a pair
//! `[b(2p, j), b(2p+1, j)]` of the B panel, which is why this kernel asks for B packed as
//! i16 ([`QMicroKernel::WIDE_B`]): widened once while packing instead of by two `SXTB16`
//! per multiply. The 4×4 tile runs as two sweeps of 2 rows × 4 columns: eight
//! accumulators, two A words, one B word and three loop registers — all 14 general
//! registers, which is why the sweep is a hand-written function (`global_asm!`) rather
//! than Rust around `asm!` multiplies: LLVM keeps r7 as the frame pointer, spills
//! accumulators and doubles the instruction count. Per k pair and sweep: one `LDRD` of A,
//! four `LDR` of B and eight `SMLAD`, 13 instructions for 16 multiply-adds, plus the loop
//! branch every second pair.
//!
//! Exact: every product is at most 128 · 128 and the sums stay within i32 (see
//! [`super::MAX_K`]), so the accumulators equal the portable kernel's bit for bit — the
//! firmware runs both on random matrices against the exact product (its self-test), and a
//! whole int8 detector with this kernel against the host's portable run.

use super::{QMicroKernel, MAX_TILE};

/// The DSP kernel.
pub struct Dsp;

const MR: usize = 4;
const NR: usize = 4;

impl QMicroKernel for Dsp {
    const MR: usize = MR;
    const NR: usize = NR;
    const WIDE_B: bool = true;

    #[inline]
    fn tile(kp: usize, a: &[i16], b: &[u8], acc: &mut [i32; MAX_TILE]) {
        // Panels start on 4-byte boundaries (cache-line-aligned blocks, 16 · kp bytes per
        // panel), which LDRD requires.
        assert!(
            kp > 0
                && a.len() >= 2 * MR * kp
                && b.len() >= 4 * NR * kp
                && a.as_ptr().align_offset(4) == 0
                && b.as_ptr().align_offset(4) == 0
        );
        for half in 0..2 {
            // SAFETY: the assert bounds every read: a sweep reads kp groups of 16 bytes from
            // A starting at row pair `half` (8 bytes in) and from B, 4-byte aligned, and
            // writes 8 i32 at `acc[8 * half..]`, inside the MAX_TILE values. The function
            // follows the AAPCS (tested by the firmware self-test).
            unsafe {
                edgetrim_qgemm_dsp_sweep_2x4(
                    kp,
                    a.as_ptr().add(4 * half).cast(),
                    b.as_ptr().cast(),
                    acc.as_mut_ptr().add(2 * NR * half),
                )
            }
        }
    }
}

extern "C" {
    /// `acc[i * 4 + j] = Σ_p smlad(a[p * 4 + i], b[p * 4 + j])` for rows i < 2 and columns
    /// j < 4 over `kp ≥ 1` k pairs; `a` and `b` step 16 bytes per k pair, `a` 4-byte aligned.
    fn edgetrim_qgemm_dsp_sweep_2x4(kp: usize, a: *const u32, b: *const u32, acc: *mut i32);
}

// r0 k-pair count (then pairs of them), r1 A, r2 B, r3/r12 the two A words, lr the B
// word, r4-r7 row 0 and r8-r11 row 1 accumulators; `acc` waits on the stack (saved r3).
// The loop body runs twice per iteration; an odd count enters at the second copy.
core::arch::global_asm!(
    ".syntax unified",
    ".section .text.edgetrim_qgemm_dsp_sweep_2x4,\"ax\",%progbits",
    ".global edgetrim_qgemm_dsp_sweep_2x4",
    ".type edgetrim_qgemm_dsp_sweep_2x4,%function",
    ".p2align 2",
    ".thumb_func",
    "edgetrim_qgemm_dsp_sweep_2x4:",
    "    push    {{r3-r11, lr}}",
    "    mov     r4, #0",
    "    mov     r5, #0",
    "    mov     r6, #0",
    "    mov     r7, #0",
    "    mov     r8, #0",
    "    mov     r9, #0",
    "    mov     r10, #0",
    "    mov     r11, #0",
    "    adds    r0, r0, #1",
    "    lsrs    r0, r0, #1",
    "    bcc     2f",
    "1:",
    "    ldrd    r3, r12, [r1], #16",
    "    ldr     lr, [r2], #4",
    "    smlad   r4, r3, lr, r4",
    "    smlad   r8, r12, lr, r8",
    "    ldr     lr, [r2], #4",
    "    smlad   r5, r3, lr, r5",
    "    smlad   r9, r12, lr, r9",
    "    ldr     lr, [r2], #4",
    "    smlad   r6, r3, lr, r6",
    "    smlad   r10, r12, lr, r10",
    "    ldr     lr, [r2], #4",
    "    smlad   r7, r3, lr, r7",
    "    smlad   r11, r12, lr, r11",
    "2:",
    "    ldrd    r3, r12, [r1], #16",
    "    ldr     lr, [r2], #4",
    "    smlad   r4, r3, lr, r4",
    "    smlad   r8, r12, lr, r8",
    "    ldr     lr, [r2], #4",
    "    smlad   r5, r3, lr, r5",
    "    smlad   r9, r12, lr, r9",
    "    ldr     lr, [r2], #4",
    "    smlad   r6, r3, lr, r6",
    "    smlad   r10, r12, lr, r10",
    "    ldr     lr, [r2], #4",
    "    smlad   r7, r3, lr, r7",
    "    smlad   r11, r12, lr, r11",
    "    subs    r0, r0, #1",
    "    bne     1b",
    "    ldr     r0, [sp]",
    "    stm     r0, {{r4-r11}}",
    "    pop     {{r3-r11, pc}}",
    ".size edgetrim_qgemm_dsp_sweep_2x4, . - edgetrim_qgemm_dsp_sweep_2x4",
);
