//! x86_64 AVX-512 VNNI int8 micro-kernel: `vpdpbusd` multiplies four unsigned bytes by
//! four signed bytes and adds the four products to an i32 lane in one instruction — 32
//! multiply-adds per ymm instruction where the AVX2 kernel's `vpmaddwd` + `vpaddd` do 16 in
//! two. Selected only when the CPU has AVX-512 VNNI and VL ([`super::QKernel::best`]).
//!
//! Layout: the k quads of [`super::quads`], B as `b + 128` (u8). The kernel thus sums
//! `A·(B + 128)`, and the shared epilogue subtracts `(z + 128) · Σ A` instead of `z · Σ A`
//! ([`super::QMicroKernel::B_OFFSET`]): the same `A·(B − z)`, exact, because `vpdpbusd`
//! neither saturates nor rounds and `|A·(B + 128)| ≤ 128 · 255 · k < 2³¹` for `k ≤`
//! [`super::MAX_K`]. So its accumulators equal the portable kernel's bit for bit.
//!
//! The 6×16 tile keeps its twelve ymm accumulators in registers; per k quad it loads the
//! two B vectors and takes each row's A quad as an embedded broadcast (`{1to8}`) operand.
//! The instruction is written in `asm!` because its intrinsics and `target_feature`
//! names need Rust 1.89, above our MSRV; the assembler encodes it whatever features the
//! enclosing function enables, and only CPUs that have it run it (see above).

use super::quads::QuadTile;
use core::arch::asm;

/// The VNNI kernel's tile ([`super::quads::Quads`] makes it a micro-kernel).
pub struct Vnni;

/// Whether this CPU runs the kernel (AVX-512 VNNI on 256-bit registers, and AVX2 and FMA
/// for the packers and epilogue it shares with [`super::avx2`]).
pub(crate) fn available() -> bool {
    crate::cpu::x86_has!(Native: "avx2", "fma", "avx512vnni", "avx512vl")
}

impl QuadTile for Vnni {
    unsafe fn tile(kp: usize, a: *const u8, b: *const u8, acc: *mut i32) {
        // SAFETY: forwarded contract (see `QuadTile::tile`), which is `tile_6x16`'s.
        unsafe { tile_6x16(kp, a, b, acc) }
    }
}

/// # Safety
/// The CPU supports AVX2 and AVX-512 VNNI + VL; `kp ≥ 1`; `a` has `24 * kp` readable
/// bytes, `b` `64 * kp` and `acc` has 96 writable i32.
#[target_feature(enable = "avx2")]
unsafe fn tile_6x16(kp: usize, a: *const u8, b: *const u8, acc: *mut i32) {
    // SAFETY: per the contract: the loop reads kp quads (24 bytes of A, 64 of B each) and
    // the stores write the 96 i32 of `acc`; every register used is declared clobbered.
    unsafe {
        asm!(
            "vpxor ymm0, ymm0, ymm0",
            "vpxor ymm1, ymm1, ymm1",
            "vpxor ymm2, ymm2, ymm2",
            "vpxor ymm3, ymm3, ymm3",
            "vpxor ymm4, ymm4, ymm4",
            "vpxor ymm5, ymm5, ymm5",
            "vpxor ymm6, ymm6, ymm6",
            "vpxor ymm7, ymm7, ymm7",
            "vpxor ymm8, ymm8, ymm8",
            "vpxor ymm9, ymm9, ymm9",
            "vpxor ymm10, ymm10, ymm10",
            "vpxor ymm11, ymm11, ymm11",
            "2:",
            "vmovdqu ymm12, ymmword ptr [{b}]",
            "vmovdqu ymm13, ymmword ptr [{b} + 32]",
            "{{evex}} vpdpbusd ymm0, ymm12, dword ptr [{a}]{{1to8}}",
            "{{evex}} vpdpbusd ymm1, ymm13, dword ptr [{a}]{{1to8}}",
            "{{evex}} vpdpbusd ymm2, ymm12, dword ptr [{a} + 4]{{1to8}}",
            "{{evex}} vpdpbusd ymm3, ymm13, dword ptr [{a} + 4]{{1to8}}",
            "{{evex}} vpdpbusd ymm4, ymm12, dword ptr [{a} + 8]{{1to8}}",
            "{{evex}} vpdpbusd ymm5, ymm13, dword ptr [{a} + 8]{{1to8}}",
            "{{evex}} vpdpbusd ymm6, ymm12, dword ptr [{a} + 12]{{1to8}}",
            "{{evex}} vpdpbusd ymm7, ymm13, dword ptr [{a} + 12]{{1to8}}",
            "{{evex}} vpdpbusd ymm8, ymm12, dword ptr [{a} + 16]{{1to8}}",
            "{{evex}} vpdpbusd ymm9, ymm13, dword ptr [{a} + 16]{{1to8}}",
            "{{evex}} vpdpbusd ymm10, ymm12, dword ptr [{a} + 20]{{1to8}}",
            "{{evex}} vpdpbusd ymm11, ymm13, dword ptr [{a} + 20]{{1to8}}",
            "add {a}, 24",
            "add {b}, 64",
            "dec {kp}",
            "jnz 2b",
            "vmovdqu ymmword ptr [{acc}], ymm0",
            "vmovdqu ymmword ptr [{acc} + 32], ymm1",
            "vmovdqu ymmword ptr [{acc} + 64], ymm2",
            "vmovdqu ymmword ptr [{acc} + 96], ymm3",
            "vmovdqu ymmword ptr [{acc} + 128], ymm4",
            "vmovdqu ymmword ptr [{acc} + 160], ymm5",
            "vmovdqu ymmword ptr [{acc} + 192], ymm6",
            "vmovdqu ymmword ptr [{acc} + 224], ymm7",
            "vmovdqu ymmword ptr [{acc} + 256], ymm8",
            "vmovdqu ymmword ptr [{acc} + 288], ymm9",
            "vmovdqu ymmword ptr [{acc} + 320], ymm10",
            "vmovdqu ymmword ptr [{acc} + 352], ymm11",
            a = inout(reg) a => _,
            b = inout(reg) b => _,
            kp = inout(reg) kp => _,
            acc = in(reg) acc,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _,
            out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _,
            out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
            out("ymm12") _, out("ymm13") _,
            options(nostack),
        );
    }
}
