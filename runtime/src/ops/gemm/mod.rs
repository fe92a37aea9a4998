//! Packed matrix multiplication, `C += alpha * A·B`: the engine under Conv, ConvTranspose,
//! MatMul and Gemm.
//!
//! BLIS-style blocking: K is cut into `kc` blocks and N into `nc` blocks; each block of B is
//! packed into `NR`-wide column panels and each `mc × kc` block of A into `MR`-tall row
//! panels, both in kernel scratch, so the micro-kernel streams two small contiguous panels
//! and keeps an `MR × NR` tile of C in registers. Packing is where operands differ, so
//! operands are a trait ([`Operand`]) that copies a run of one row: strided matrices over
//! aligned arena data or unaligned weights in place, f32, float16 widened or int8
//! dequantized as it is packed ([`Matrix`], [`GemmWeights`]), transposed views (swap the
//! strides) and the implicit im2col of convolution all share the packers, monomorphised.
//! Which representation an operand has (aligned or not, float16) is known only at run
//! time; the `F32View`/`WeightView` operands resolve it once per row run, so the blocked
//! loop and packers are compiled once per kernel and operand kind, not once per
//! combination of representations (on a Cortex-M that was most of a firmware's flash).
//!
//! Kernels: [`portable`] (the reference, plain Rust that LLVM vectorises; the Cortex-M path)
//! and, on x86_64, an AVX2+FMA one. [`Kernel::best`] picks once at plan time and the choice
//! lives in the prepared [`GemmPlan`], so nothing is detected per call.

#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod portable;

use super::unary::Activation;
use crate::target::Target;
use crate::tensor::{F32Source, F32View, LeF16, LeF32, ScaledI8, WeightView};

/// Block sizes for one [`Target`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Blocking {
    /// Depth of one packed block (rows of a B panel): a B micro-panel `kc × NR` stays in L1.
    kc: usize,
    /// Rows of A packed at once (a multiple of every kernel's `MR`): `mc × kc` stays in L2.
    mc: usize,
    /// Columns of B packed at once.
    nc: usize,
}

impl Blocking {
    const fn for_target(target: Target) -> Blocking {
        match target {
            Target::Host => Blocking {
                kc: 256,
                mc: 72,
                nc: 2048,
            },
            // Cortex-M: a few KiB of packing scratch at most.
            Target::CortexM => Blocking {
                kc: 64,
                mc: 16,
                nc: 64,
            },
        }
    }
}

/// The largest `kc` of any target (the A-packing row buffer).
const MAX_KC: usize = 256;

/// Longest run of one B row read at once while packing (a stack buffer): a host's whole
/// `nc` block; on Cortex-M a small one, to keep the stack small.
#[cfg(not(target_arch = "arm"))]
const ROW_RUN: usize = 2048;
#[cfg(target_arch = "arm")]
const ROW_RUN: usize = 64;

/// Largest `MR × NR` of any kernel (the edge-tile buffer).
const MAX_TILE: usize = 6 * 16;

/// Floats per 64-byte cache line.
const LINE_FLOATS: usize = 16;

/// The part of `buf` from its first cache-line boundary: a 16-float packed row then never
/// straddles two lines, which would split every vector load of the micro-kernel.
fn line_aligned(buf: &mut [f32]) -> &mut [f32] {
    let skip = buf.as_ptr().align_offset(64).min(buf.len());
    &mut buf[skip..]
}

/// A matrix operand as the packers see it.
pub trait Operand: Copy {
    /// Copies row `r`, columns `c0 .. c0 + out.len()`, into `out`.
    fn read_row(&self, r: usize, c0: usize, out: &mut [f32]);
}

/// f32 storage that can copy a contiguous run fast (aligned slice or in-place bytes).
pub trait Run: F32Source {
    /// Copies elements `start .. start + out.len()` into `out`.
    fn copy_run(&self, start: usize, out: &mut [f32]);
}

impl Run for &[f32] {
    #[inline(always)]
    fn copy_run(&self, start: usize, out: &mut [f32]) {
        out.copy_from_slice(&self[start..start + out.len()]);
    }
}

impl Run for LeF32<'_> {
    #[inline(always)]
    fn copy_run(&self, start: usize, out: &mut [f32]) {
        let bytes = &self.0[4 * start..4 * (start + out.len())];
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    }
}

/// float16 weights are widened here, one packed row at a time, so a GEMM over an fp16
/// model's weights needs no scratch beyond its usual packing buffers.
impl Run for LeF16<'_> {
    #[inline(always)]
    fn copy_run(&self, start: usize, out: &mut [f32]) {
        crate::widen::widen(&self.0[2 * start..2 * (start + out.len())], out);
    }
}

/// int8 weights are dequantized here, one packed row at a time, like float16 ones: no f32
/// copy of an int8 MatMul/Gemm weight sits in the arena.
impl Run for ScaledI8<'_> {
    #[inline(always)]
    fn copy_run(&self, start: usize, out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = self.at(start + j);
        }
    }
}

impl F32View<'_> {
    /// [`Run::copy_run`] on whichever representation this view has: one branch per run,
    /// so a kernel taking an `F32View` is compiled once.
    #[inline]
    pub fn copy_run(&self, start: usize, out: &mut [f32]) {
        match self {
            F32View::Slice(s) => s.copy_run(start, out),
            F32View::Bytes(b) => b.copy_run(start, out),
        }
    }
}

/// A strided matrix view: element `(r, c)` is `data[offset + r * row_stride + c * col_stride]`.
/// A transposed operand is the same data with the strides swapped.
#[derive(Clone, Copy, Debug)]
pub struct Matrix<S> {
    /// The elements.
    pub data: S,
    /// Index of element (0, 0).
    pub offset: usize,
    /// Distance between rows.
    pub row_stride: usize,
    /// Distance between columns.
    pub col_stride: usize,
}

impl<S> Matrix<S> {
    /// A row-major matrix with `cols` columns starting at `offset`.
    pub fn row_major(data: S, offset: usize, cols: usize) -> Self {
        Matrix {
            data,
            offset,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns starting at `offset`.
    pub fn transposed(data: S, offset: usize, cols: usize) -> Self {
        Matrix {
            data,
            offset,
            row_stride: 1,
            col_stride: cols,
        }
    }
}

impl<S: Run> Operand for Matrix<S> {
    #[inline]
    fn read_row(&self, r: usize, c0: usize, out: &mut [f32]) {
        let base = self.offset + r * self.row_stride + c0 * self.col_stride;
        if self.col_stride == 1 {
            self.data.copy_run(base, out);
        } else {
            for (j, o) in out.iter_mut().enumerate() {
                *o = self.data.at(base + j * self.col_stride);
            }
        }
    }
}

impl<S> Matrix<S> {
    /// The same view over other storage (the run-time representation, resolved).
    #[inline(always)]
    fn over<T>(&self, data: T) -> Matrix<T> {
        Matrix {
            data,
            offset: self.offset,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }
}

/// A matrix whose f32 storage (aligned or not) is known only at run time: the
/// representation is resolved once per row run, so the packers and the blocked loop are
/// compiled once, not once per representation — the inner copy stays monomorphic.
impl Operand for Matrix<F32View<'_>> {
    #[inline]
    fn read_row(&self, r: usize, c0: usize, out: &mut [f32]) {
        match self.data {
            F32View::Slice(s) => self.over(s).read_row(r, c0, out),
            F32View::Bytes(b) => self.over(b).read_row(r, c0, out),
        }
    }
}

/// As for [`F32View`], with the float16 representation of an fp16 model's weights too.
impl Operand for Matrix<WeightView<'_>> {
    #[inline]
    fn read_row(&self, r: usize, c0: usize, out: &mut [f32]) {
        match self.data {
            WeightView::F32(F32View::Slice(s)) => self.over(s).read_row(r, c0, out),
            WeightView::F32(F32View::Bytes(b)) => self.over(b).read_row(r, c0, out),
            WeightView::Half(h) => self.over(h).read_row(r, c0, out),
        }
    }
}

/// The weight operand of MatMul and Gemm: as the model stores it, or int8 read through the
/// scales of the DequantizeLinear that planning removed (`plan/qdq/matmul.rs`). One type
/// for both, so each op's blocked loop is compiled once.
#[derive(Clone, Copy, Debug)]
pub enum GemmWeights<'t> {
    /// f32 or float16 data.
    View(WeightView<'t>),
    /// int8 with its scales.
    Int8(ScaledI8<'t>),
}

impl Operand for Matrix<GemmWeights<'_>> {
    #[inline]
    fn read_row(&self, r: usize, c0: usize, out: &mut [f32]) {
        match self.data {
            GemmWeights::View(v) => self.over(v).read_row(r, c0, out),
            GemmWeights::Int8(q) => self.over(q).read_row(r, c0, out),
        }
    }
}

/// The portable kernel [`Kernel::best`] falls back to: 4×8, or 4×4 on 32-bit Arm.
#[cfg(not(target_arch = "arm"))]
const PORTABLE: Kernel = Kernel::Portable;
#[cfg(target_arch = "arm")]
const PORTABLE: Kernel = Kernel::Portable4x4;

/// Which micro-kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust, 4×8 tile (two 128-bit vectors per row on hosts). Not on 32-bit Arm: a
    /// Cortex-M's FPU has 32 single registers, which the 4×8 accumulators alone fill, so
    /// it would never be chosen there and only cost flash.
    #[cfg(not(target_arch = "arm"))]
    Portable,
    /// Plain Rust, 4×4 tile: fits a Cortex-M4's 32 single-precision FPU registers.
    Portable4x4,
    /// x86_64 AVX2 + FMA intrinsics (6×16 tile).
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

impl Kernel {
    /// The fastest kernel this CPU runs: detected at run time with `std`, fixed by the
    /// compile-time target features without it. Call at plan time and keep the answer.
    pub fn best() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if avx2_fma_available() {
            return Kernel::Avx2Fma;
        }
        PORTABLE
    }

    /// Every kernel compiled in that this CPU can run (for tests and benchmarks).
    pub fn available() -> heapless::Vec<Kernel, 3> {
        let mut v = heapless::Vec::new();
        #[cfg(not(target_arch = "arm"))]
        let _ = v.push(Kernel::Portable);
        let _ = v.push(Kernel::Portable4x4);
        #[cfg(target_arch = "x86_64")]
        if avx2_fma_available() {
            let _ = v.push(Kernel::Avx2Fma);
        }
        v
    }

    /// The register tile `(MR, NR)`.
    fn tile(self) -> (usize, usize) {
        match self {
            #[cfg(not(target_arch = "arm"))]
            Kernel::Portable => (portable::Portable::<8>::MR, portable::Portable::<8>::NR),
            Kernel::Portable4x4 => (portable::Portable::<4>::MR, portable::Portable::<4>::NR),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => (avx2::Avx2Fma::MR, avx2::Avx2Fma::NR),
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn avx2_fma_available() -> bool {
    crate::cpu::x86_has!(Avx2: "avx2", "fma")
}

/// A register-tile kernel: `C[MR × NR] += Apanel · Bpanel`.
pub(crate) trait MicroKernel {
    /// Rows of the tile.
    const MR: usize;
    /// Columns of the tile.
    const NR: usize;
    /// `a` holds `kc` groups of `MR` values (one packed A column each), `b` holds `kc`
    /// groups of `NR`; `c` holds `MR` rows `ldc` apart of which the first `NR` are updated.
    fn tile(kc: usize, a: &[f32], b: &[f32], c: &mut [f32], ldc: usize);

    /// Applies `act` to a finished `rows × cols` tile of C (rows `ldc` apart), compiled for
    /// the kernel's instruction set. Out of line and called only from the tile loop
    /// (`cols <= NR`): LLVM specialises it for tiles and links its loops once.
    #[inline(never)]
    fn activate(act: Activation, c: &mut [f32], rows: usize, cols: usize, ldc: usize) {
        act.apply_rows(c, rows, cols, ldc)
    }
}

/// A prepared multiplication `C[m × n] += alpha · A[m × k] · B[k × n]`: sizes, block sizes and
/// kernel, fixed at plan time so the scratch it needs is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmPlan {
    /// The machine it was planned for.
    pub target: Target,
    /// The micro-kernel.
    pub kernel: Kernel,
    m: usize,
    n: usize,
    k: usize,
    mc: usize,
    nc: usize,
    kc: usize,
}

impl GemmPlan {
    /// Plans for `target`: there, the fastest kernel this CPU runs ([`Kernel::best`]);
    /// on a Cortex-M, the 4×4 portable kernel with small blocks.
    pub fn for_target(target: Target, m: usize, n: usize, k: usize) -> Self {
        let kernel = match target {
            Target::Host => Kernel::best(),
            Target::CortexM => Kernel::Portable4x4,
        };
        Self::with_kernel(target, kernel, m, n, k)
    }

    /// Plans with a given kernel and `target`'s blocks; blocks shrink to what the sizes need.
    pub fn with_kernel(target: Target, kernel: Kernel, m: usize, n: usize, k: usize) -> Self {
        let (mr, nr) = kernel.tile();
        let b = Blocking::for_target(target);
        GemmPlan {
            target,
            kernel,
            m,
            n,
            k,
            mc: b.mc.min(m.div_ceil(mr) * mr),
            nc: b.nc.min(n.div_ceil(nr) * nr),
            // Equal K blocks (576 = 3 × 192, not 256 + 256 + 64) keep every pass efficient.
            kc: k.div_ceil(k.div_ceil(b.kc).max(1)),
        }
    }

    /// Scratch floats [`GemmPlan::run`] needs (packed A block, then packed B block, each
    /// starting on a cache line).
    pub fn scratch_floats(&self) -> usize {
        self.kc * (self.mc + self.nc) + 2 * LINE_FLOATS
    }

    /// `C += alpha · A·B`, with C row-major `ldc` apart; `scratch` has at least
    /// [`GemmPlan::scratch_floats`] floats.
    pub fn run<A: Operand, B: Operand>(
        &self,
        a: A,
        b: B,
        alpha: f32,
        c: &mut [f32],
        ldc: usize,
        scratch: &mut [f32],
    ) {
        self.run_then(a, b, alpha, c, ldc, scratch, None)
    }

    /// [`GemmPlan::run`], then `C = act(C)`: each tile gets the activation right after its
    /// last K block, while it is still in L1, instead of in another pass over C.
    #[allow(clippy::too_many_arguments)]
    pub fn run_then<A: Operand, B: Operand>(
        &self,
        a: A,
        b: B,
        alpha: f32,
        c: &mut [f32],
        ldc: usize,
        scratch: &mut [f32],
        act: Option<Activation>,
    ) {
        match self.kernel {
            #[cfg(not(target_arch = "arm"))]
            Kernel::Portable => {
                self.run_with::<portable::Portable<8>, A, B>(a, b, alpha, c, ldc, scratch, act)
            }
            Kernel::Portable4x4 => {
                self.run_with::<portable::Portable<4>, A, B>(a, b, alpha, c, ldc, scratch, act)
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => {
                self.run_with::<avx2::Avx2Fma, A, B>(a, b, alpha, c, ldc, scratch, act)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_with<K: MicroKernel, A: Operand, B: Operand>(
        &self,
        a: A,
        b: B,
        alpha: f32,
        c: &mut [f32],
        ldc: usize,
        scratch: &mut [f32],
        act: Option<Activation>,
    ) {
        let (m, n, k) = (self.m, self.n, self.k);
        if m == 0 || n == 0 || k == 0 {
            return;
        }
        let (a_pack, rest) = line_aligned(scratch).split_at_mut(self.mc * self.kc);
        let b_pack = &mut line_aligned(rest)[..self.kc * self.nc];
        for jc in (0..n).step_by(self.nc) {
            let ncb = self.nc.min(n - jc);
            for pc in (0..k).step_by(self.kc) {
                let kcb = self.kc.min(k - pc);
                // Tiles are final after the last K block.
                let act = act.filter(|_| pc + kcb == k);
                pack_b::<K, B>(b, pc, kcb, jc, ncb, b_pack);
                for ic in (0..m).step_by(self.mc) {
                    let mcb = self.mc.min(m - ic);
                    pack_a::<K, A>(a, alpha, ic, mcb, pc, kcb, a_pack);
                    let a_panels = a_pack.chunks_exact(K::MR * kcb);
                    let b_panels = b_pack.chunks_exact(K::NR * kcb);
                    for (jr, bp) in (0..ncb).step_by(K::NR).zip(b_panels) {
                        let cols = K::NR.min(ncb - jr);
                        for (ir, ap) in (0..mcb).step_by(K::MR).zip(a_panels.clone()) {
                            let rows = K::MR.min(mcb - ir);
                            let origin = (ic + ir) * ldc + jc + jr;
                            if rows == K::MR && cols == K::NR {
                                K::tile(kcb, ap, bp, &mut c[origin..], ldc);
                            } else {
                                let mut tile = [0f32; MAX_TILE];
                                K::tile(kcb, ap, bp, &mut tile, K::NR);
                                for i in 0..rows {
                                    let dst = &mut c[origin + i * ldc..][..cols];
                                    for (d, t) in dst.iter_mut().zip(&tile[i * K::NR..]) {
                                        *d += t;
                                    }
                                }
                            }
                            if let Some(act) = act {
                                K::activate(act, &mut c[origin..], rows, cols, ldc);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Packs `B[k0 .. k0+kc, n0 .. n0+nc]` into `nr`-wide panels: panel `p` holds, for each row,
/// `nr` consecutive columns, zero-padded past `nc`. Each row is read in one run (one call
/// into the operand, which for im2col means whole image rows) and then dealt out.
// Out of line (one call per packed block): inlined into every caller's loops, the
// packers would be copied per operand type for no measurable gain.
#[inline(never)]
fn pack_b<K: MicroKernel, B: Operand>(
    b: B,
    k0: usize,
    kc: usize,
    n0: usize,
    nc: usize,
    dst: &mut [f32],
) {
    let mut buf = [0f32; ROW_RUN];
    let nr = K::NR;
    // Runs are whole multiples of every kernel's NR, so panels never straddle two runs.
    let run_len = ROW_RUN / nr * nr;
    for k in 0..kc {
        for r0 in (0..nc).step_by(run_len) {
            let row = &mut buf[..run_len.min(nc - r0)];
            b.read_row(k0 + k, n0 + r0, row);
            let slot = |p: usize| ((r0 / nr + p) * kc + k) * nr;
            // Whole panels copy a constant `NR` floats (inlined vector moves; a
            // variable-length copy would call memmove once per panel).
            let mut whole = row.chunks_exact(nr);
            for (p, chunk) in (&mut whole).enumerate() {
                dst[slot(p)..][..nr].copy_from_slice(chunk);
            }
            let tail = whole.remainder();
            if !tail.is_empty() {
                let panel = &mut dst[slot(row.len() / nr)..][..nr];
                panel[..tail.len()].copy_from_slice(tail);
                panel[tail.len()..].fill(0.0);
            }
        }
    }
}

/// Packs `alpha · A[m0 .. m0+mc, k0 .. k0+kc]` into `mr`-tall panels: panel `p` holds, for
/// each column, `mr` consecutive rows, zero-padded past `mc`.
#[inline(never)]
fn pack_a<K: MicroKernel, A: Operand>(
    a: A,
    alpha: f32,
    m0: usize,
    mc: usize,
    k0: usize,
    kc: usize,
    dst: &mut [f32],
) {
    let mr = K::MR;
    let mut row = [0f32; MAX_KC];
    let row = &mut row[..kc];
    for (p, panel) in dst
        .chunks_exact_mut(mr * kc)
        .take(mc.div_ceil(mr))
        .enumerate()
    {
        for i in 0..mr {
            let r = p * mr + i;
            if r < mc {
                a.read_row(m0 + r, k0, row);
            } else {
                row.fill(0.0);
            }
            for (d, v) in panel[i..].iter_mut().step_by(mr).zip(row.iter()) {
                *d = alpha * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(n: usize, seed: u32) -> std::vec::Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 20) as f32 / 2048.0 - 1.0
            })
            .collect()
    }

    /// Runs `plan` on row-major A, B (B optionally given transposed) and checks against the
    /// naive triple loop.
    fn check(kernel: Kernel, m: usize, n: usize, k: usize, b_transposed: bool) {
        let (a, b) = (data(m * k, 1), data(k * n, 2));
        let c0 = data(m * n, 3);
        let plan = GemmPlan::with_kernel(Target::Host, kernel, m, n, k);
        let mut scratch = std::vec![f32::NAN; plan.scratch_floats()];
        let mut c = c0.clone();
        let a_op = Matrix::row_major(&a[..], 0, k);
        if b_transposed {
            // b holds Bᵀ (n × k) row-major.
            plan.run(
                a_op,
                Matrix::transposed(&b[..], 0, k),
                0.5,
                &mut c,
                n,
                &mut scratch,
            );
        } else {
            plan.run(
                a_op,
                Matrix::row_major(&b[..], 0, n),
                0.5,
                &mut c,
                n,
                &mut scratch,
            );
        }
        for i in 0..m {
            for j in 0..n {
                let bv = |p: usize| {
                    if b_transposed {
                        b[j * k + p]
                    } else {
                        b[p * n + j]
                    }
                };
                let want = c0[i * n + j] + 0.5 * (0..k).map(|p| a[i * k + p] * bv(p)).sum::<f32>();
                let got = c[i * n + j];
                assert!(
                    (got - want).abs() <= 1e-4 * (1.0 + k as f32),
                    "{kernel:?} {m}x{n}x{k}: c[{i},{j}] = {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn every_kernel_handles_tails() {
        for kernel in Kernel::available() {
            for (m, n, k) in [
                (1, 1, 1),
                (1, 1, 7),
                (7, 5, 1),
                (6, 16, 3),
                (13, 33, 17),
                (73, 9, 2),
                (5, 2100, 3),
                (9, 17, 600),
            ] {
                check(kernel, m, n, k, false);
                check(kernel, m, n, k, true);
            }
        }
    }

    #[test]
    fn unaligned_weights_pack_like_aligned() {
        let (m, k, n) = (7, 5, 9);
        let a = data(m * k, 4);
        let mut bytes = std::vec![0u8; 4 * m * k + 1];
        for (c, v) in bytes[1..].chunks_exact_mut(4).zip(&a) {
            c.copy_from_slice(&v.to_le_bytes());
        }
        let b = data(k * n, 5);
        let plan = GemmPlan::for_target(Target::Host, m, n, k);
        let mut scratch = std::vec![0.0; plan.scratch_floats()];
        let (mut c1, mut c2) = (std::vec![0.0; m * n], std::vec![0.0; m * n]);
        let bm = Matrix::row_major(&b[..], 0, n);
        plan.run(
            Matrix::row_major(LeF32(&bytes[1..]), 0, k),
            bm,
            1.0,
            &mut c1,
            n,
            &mut scratch,
        );
        plan.run(
            Matrix::row_major(&a[..], 0, k),
            bm,
            1.0,
            &mut c2,
            n,
            &mut scratch,
        );
        assert_eq!(c1, c2);
    }

    /// int8 weights read through their scales give bit for bit the product of the f32
    /// tensor DequantizeLinear writes, for one scale per column (MatMul's axis 1), per row
    /// of a transposed B (Gemm transB's axis 0) and per tensor, with unaligned scales.
    #[test]
    fn int8_weights_pack_like_their_dequantized_f32() {
        let (m, k, n) = (7, 19, 11);
        let a = data(m * k, 6);
        let q: std::vec::Vec<u8> = (0..k * n).map(|i| (i * 37 % 256) as u8).collect();
        let plan = GemmPlan::for_target(Target::Host, m, n, k);
        let mut scratch = std::vec![0.0; plan.scratch_floats()];
        // (B transposed, scales, elements per scale index)
        for (transposed, channels, inner) in [(false, n, 1), (true, n, k), (false, 1, 1)] {
            let scales = data(channels, 7);
            let mut bytes = std::vec![0u8; 1];
            bytes.extend(scales.iter().flat_map(|s| s.to_le_bytes()));
            let w = ScaledI8 {
                q: &q,
                scales: &bytes[1..],
                channels,
                inner,
            };
            let f: std::vec::Vec<f32> = (0..k * n)
                .map(|i| (q[i] as i8) as f32 * scales[(i / inner) % channels])
                .collect();
            let view = |t| match transposed {
                true => Matrix::transposed(t, 0, k),
                false => Matrix::row_major(t, 0, n),
            };
            let (mut c1, mut c2) = (std::vec![0.0; m * n], std::vec![0.0; m * n]);
            let am = Matrix::row_major(&a[..], 0, k);
            plan.run(
                am,
                view(GemmWeights::Int8(w)),
                1.0,
                &mut c1,
                n,
                &mut scratch,
            );
            let fv = GemmWeights::View(WeightView::F32(F32View::Slice(&f)));
            plan.run(am, view(fv), 1.0, &mut c2, n, &mut scratch);
            assert_eq!(c1, c2, "transposed {transposed}, {channels} scales");
            assert!(c1.iter().any(|&v| v != 0.0));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn kernels_match_the_naive_product(m in 1usize..40, n in 1usize..70, k in 1usize..300, t: bool) {
            for kernel in Kernel::available() {
                check(kernel, m, n, k, t);
            }
        }
    }
}
