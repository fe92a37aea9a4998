//! Packed int8 matrix multiplication with a float epilogue: the engine under the fused int8
//! Conv of QDQ models (`plan::qdq`).
//!
//! `C[m × n] = act((A·(B − z)) · mul[row] + bias[row])` where A holds int8 weights (read in
//! place from the model, never widened into RAM) and B int8 activations with zero point
//! `z`. B is packed as it is, int8 (half the bytes of i16, and a plain copy out of the
//! image); the kernels sum `A·B` and the epilogue subtracts `z · Σ_k A[row, k]` (a
//! per-row table made at plan time), which is `A·(B − z)` exactly. Exact because every
//! product is at most 128 · 128 and every sum stays in i32 for `k` up to [`MAX_K`]: so
//! every kernel computes the same accumulators bit for bit, and the float epilogue
//! (shared code) the same outputs. Padding taps hold `z`, so they contribute nothing.
//!
//! The blocking is the float GEMM's ([`super::gemm`]): K in `kc` blocks, N in `nc` blocks,
//! `MR`-tall A panels and `NR`-wide B panels in scratch. Values are packed in **k pairs**
//! (`[a(i,2p), a(i,2p+1)]`, `[b(2p,j), b(2p+1,j)]`) — the layout of x86's `pmaddwd`, which
//! multiplies two i16 pairs and adds them into one i32 lane. Between K blocks the partial
//! i32 sums live in C itself (an f32 buffer of the same size, reused as i32), and the last
//! K block turns them into floats, so no accumulator buffer is needed.
//!
//! Kernels: [`portable`] (scalar i32, the reference), on x86_64 an AVX2 one, an AVX2 one
//! for weights within ±64 (`vpmaddubsw`, k in quads, see [`avx2_narrow`]) and an AVX-512
//! VNNI one (k in quads too), and on
//! Cortex-M cores with the DSP extension (M4/M7/M33) an `SMLAD` one, picked at plan time
//! like the float GEMM's. The DSP kernel reads B as i16 pairs (widened once while packing,
//! not once per multiply), so Cortex-M plans reserve B panels of i16 whichever kernel they
//! run: an arena planned on a host is then exact on the device.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_narrow;
#[cfg(all(target_arch = "arm", target_feature = "dsp"))]
mod dsp;
pub mod portable;
#[cfg(target_arch = "x86_64")]
mod quads;
#[cfg(target_arch = "x86_64")]
mod vnni;

use super::lookup::lookup_rows;
use super::unary::Activation;
use crate::target::Target;

/// Longest K an i32 accumulator holds exactly: `|A·B|` and `|z · ΣA|` are at most
/// `128 · 128 · k = 2³⁰` and their difference `|A·(B − z)| ≤ 128 · 255 · k < 2³¹`.
pub const MAX_K: usize = 65536;

/// The largest `kc` of any target (the A-packing row buffers).
#[cfg(not(target_arch = "arm"))]
const MAX_KC: usize = 512;
#[cfg(target_arch = "arm")]
const MAX_KC: usize = 128;

/// The largest `MR` of any kernel.
const MAX_MR: usize = 6;

/// Largest `MR × NR` of any kernel.
const MAX_TILE: usize = 6 * 16;

/// The largest [`QMicroKernel::GROUP`] of any kernel (one B row buffer each on the stack).
#[cfg(not(target_arch = "arm"))]
const MAX_GROUP: usize = 4;
#[cfg(target_arch = "arm")]
const MAX_GROUP: usize = 2;

/// Longest run of one B row read at once while packing (one stack buffer per k of a group).
#[cfg(not(target_arch = "arm"))]
const ROW_RUN: usize = 1024;
#[cfg(target_arch = "arm")]
const ROW_RUN: usize = 64;

/// A cache line.
const LINE: usize = 64;

/// `dst.copy_from_slice(src)` for the short, unaligned runs the packers read (a row of an
/// int8 matrix, a segment of an im2col row: 7 to 112 bytes on YOLO9tr-s). On 32-bit Arm
/// a word at a time through unaligned `LDR`/`STR` (which Cortex-M3 and later do):
/// `memcpy` copies unaligned bytes one by one there, five instructions each, and its call
/// costs as much as a short run. Elsewhere up to 256 bytes inline, 16 at a time and the
/// last 16 overlapping: `memcpy`'s call and size dispatch cost more than such a copy
/// (on YOLO9tr-s int8, x86_64, `memcpy` and `memset` of packing took 12 % of a frame).
///
/// # Panics
/// If `src` is shorter than `dst`.
#[inline(always)]
pub fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    let src = &src[..dst.len()];
    #[cfg(target_arch = "arm")]
    {
        let (mut d, mut s) = (dst.chunks_exact_mut(4), src.chunks_exact(4));
        for (d, s) in (&mut d).zip(&mut s) {
            let word = u32::from_ne_bytes([s[0], s[1], s[2], s[3]]);
            d.copy_from_slice(&word.to_ne_bytes());
        }
        for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
            *d = s;
        }
    }
    #[cfg(not(target_arch = "arm"))]
    {
        let n = dst.len();
        let word = |at: usize| -> [u8; 16] { src[at..][..16].try_into().unwrap_or_default() };
        match n {
            16..=256 => {
                for at in (0..n - 16).step_by(16) {
                    dst[at..][..16].copy_from_slice(&word(at));
                }
                dst[n - 16..].copy_from_slice(&word(n - 16));
            }
            // Two overlapping words, no loop (which LLVM would turn back into `memcpy`).
            8..16 => copy_ends::<8>(dst, src),
            4..8 => copy_ends::<4>(dst, src),
            1..4 => {
                for at in [0, n / 2, n - 1] {
                    dst[at] = src[at];
                }
            }
            0 => {}
            _ => dst.copy_from_slice(src),
        }
    }
}

/// The first and the last `W` bytes of `src` into `dst` (same length, `W` to `2W`).
#[cfg(not(target_arch = "arm"))]
#[inline(always)]
fn copy_ends<const W: usize>(dst: &mut [u8], src: &[u8]) {
    let n = dst.len();
    let (head, tail) = (src.first_chunk::<W>(), src.last_chunk::<W>());
    if let (Some(head), Some(tail)) = (head.copied(), tail.copied()) {
        dst[..W].copy_from_slice(&head);
        dst[n - W..].copy_from_slice(&tail);
    }
}

/// `dst.fill(value)` for the short runs the packers pad (an im2col row's border taps, often
/// one byte): inline up to 256 bytes rather than a `memset` call (see [`copy_bytes`]).
#[inline(always)]
pub fn fill_bytes(dst: &mut [u8], value: u8) {
    let n = dst.len();
    match n {
        16..=256 => {
            for at in (0..n - 16).step_by(16) {
                dst[at..][..16].fill(value);
            }
            dst[n - 16..].fill(value);
        }
        8..16 => {
            dst[..8].fill(value);
            dst[n - 8..].fill(value);
        }
        4..8 => {
            dst[..4].fill(value);
            dst[n - 4..].fill(value);
        }
        1..4 => {
            for at in [0, n / 2, n - 1] {
                dst[at] = value;
            }
        }
        0 => {}
        _ => dst.fill(value),
    }
}

/// A matrix operand of the int8 GEMM: int8 values as their bytes.
pub trait QOperand: Copy {
    /// Copies row `r`, columns `c0 .. c0 + out.len()`, into `out`.
    fn read_row(&self, r: usize, c0: usize, out: &mut [u8]);
}

/// A row-major int8 matrix in place (weights in the model, activations in the arena).
#[derive(Clone, Copy, Debug)]
pub struct QMatrix<'t> {
    /// The int8 elements.
    pub data: &'t [u8],
    /// Index of element (0, 0).
    pub offset: usize,
    /// Distance between rows.
    pub cols: usize,
}

impl QOperand for QMatrix<'_> {
    #[inline(always)]
    fn read_row(&self, r: usize, c0: usize, out: &mut [u8]) {
        let start = self.offset + r * self.cols + c0;
        copy_bytes(out, &self.data[start..start + out.len()]);
    }
}

/// What the last K block does to a finished tile:
/// `y = act((acc − zero · a_sum[row]) · mul[row] + bias[row])`, stored as
/// [`Epilogue::store`] says.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'t> {
    /// Per-row multiplier (`s_x · s_w[row]`), or one for every row (a per-tensor weight
    /// scale: most convs, and it saves a table entry per channel on a microcontroller).
    pub mul: &'t [f32],
    /// Per-row float bias.
    pub bias: &'t [f32],
    /// Per-row sum of A (see [`row_sums`]).
    pub a_sum: &'t [i32],
    /// B's zero point.
    pub zero: i32,
    /// Fused activation.
    pub act: Option<Activation>,
    /// How `y` is stored.
    pub store: Store<'t>,
}

/// How the epilogue stores a finished value `y` (activated, if [`Epilogue::act`] says so).
#[derive(Clone, Copy, Debug)]
pub enum Store<'t> {
    /// As f32.
    F32,
    /// As int8: the QuantizeLinear that alone read `y`, fused.
    Int8(Requant),
    /// `table[q]` for the int8 `q` of `y` (the byte indexes the table): the conv's output
    /// QuantizeLinear fused, then `DequantizeLinear → activation → QuantizeLinear`
    /// precomputed on all 256 values of `q` — TFLite's int8 activations, which cost one
    /// lookup instead of an exponential and a division per value.
    Int8Table(Requant, &'t [u8; 256]),
    /// The same with f32 entries, for an activation whose output stays float (one that
    /// a Concat or a float op reads).
    F32Table(Requant, &'t [f32; 256]),
}

impl Store<'_> {
    /// Bytes per stored value.
    pub fn width(&self) -> usize {
        match self {
            Store::F32 | Store::F32Table(..) => 4,
            Store::Int8(_) | Store::Int8Table(..) => 1,
        }
    }

    /// Stores the row `ys` into `dst`, [`Store::width`] bytes per value (f32 as
    /// little-endian words, which an aligned `dst` takes whole).
    #[inline(always)]
    pub fn put(&self, ys: &[f32], dst: &mut [u8]) {
        let n = ys.len();
        if self.width() == 1 {
            self.quantize_bytes(ys, n, 1, n, dst, 0);
            return self.look_up(dst, 0, 1, n);
        }
        match bytemuck::try_cast_slice_mut(dst) {
            Ok(words) => self.put_words(ys, n, 1, n, words, 0),
            Err(_) => {
                for (d, &y) in dst.chunks_exact_mut(4).zip(ys) {
                    let mut word = [0];
                    self.put_words(&[y], 1, 1, 1, &mut word, 0);
                    d.copy_from_slice(&word[0].to_le_bytes());
                }
            }
        }
    }

    /// Stores the int8 values of [`Store::Int8`] and [`Store::Int8Table`] (f32 stores
    /// leave `dst` alone) of `rows` rows of a tile, `tile[i * nr..][..cols]`, into
    /// `dst[i * ld..][..cols]` — for a table, the `q` it is indexed by, which
    /// [`Store::look_up`] then replaces. One dispatch per tile, as a Cortex-M4's tile rows
    /// are four values (per row, it cost 1.2 % of YOLO9tr-n's instructions).
    #[inline(always)]
    pub fn quantize_bytes(
        &self,
        tile: &[f32],
        nr: usize,
        rows: usize,
        cols: usize,
        dst: &mut [u8],
        ld: usize,
    ) {
        if let Store::Int8(rq) | Store::Int8Table(rq, _) = *self {
            for i in 0..rows {
                rq.quantize_row(&tile[i * nr..][..cols], &mut dst[i * ld..][..cols]);
            }
        }
    }

    /// What [`Store::quantize_bytes`] leaves for an [`Store::Int8Table`]: `table[q]` over
    /// `dst[i * ld..][..cols]` for `i < rows` (no-op for other stores). Apart, because a
    /// lookup vectorises only over whole rows: the GEMM calls it once per block, not per
    /// tile ([`super::lookup`]).
    #[inline(always)]
    pub fn look_up(&self, dst: &mut [u8], ld: usize, rows: usize, cols: usize) {
        if let Store::Int8Table(_, table) = *self {
            lookup_rows(table, dst, ld, rows, cols);
        }
    }

    /// Stores the f32 values of [`Store::F32`] and [`Store::F32Table`] as their bits
    /// (int8 stores leave `dst` alone), laid out as [`Store::quantize_bytes`] says.
    #[inline(always)]
    pub fn put_words(
        &self,
        tile: &[f32],
        nr: usize,
        rows: usize,
        cols: usize,
        dst: &mut [u32],
        ld: usize,
    ) {
        let rows = (0..rows).map(|i| (&tile[i * nr..][..cols], i * ld));
        match *self {
            Store::F32 => {
                for (ys, at) in rows {
                    for (d, y) in dst[at..][..cols].iter_mut().zip(ys) {
                        *d = y.to_bits();
                    }
                }
            }
            Store::F32Table(rq, table) => {
                for (ys, at) in rows {
                    let d = &mut dst[at..][..cols];
                    for (d, &y) in d.iter_mut().zip(ys) {
                        *d = rq.quantize(y).into();
                    }
                    for d in d.iter_mut() {
                        *d = table[*d as usize & 0xff].to_bits();
                    }
                }
            }
            Store::Int8(_) | Store::Int8Table(..) => {}
        }
    }
}

/// A fused per-tensor int8 QuantizeLinear: `saturate(round_half_even(y / scale) + zero)`,
/// through the standalone op's own function, so fusing it changes no bit — with a
/// multiplication by the reciprocal where that is exact
/// ([`exact_reciprocal`](crate::ops::quant::exact_reciprocal)).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Requant {
    /// The output scale.
    pub scale: f32,
    /// The output zero point.
    pub zero: i8,
    /// `1 / scale` when it quantizes exactly, else 0.
    recip: f32,
}

impl Requant {
    /// Quantization to `scale` and `zero`.
    pub fn new(scale: f32, zero: i8) -> Requant {
        let recip = crate::ops::quant::exact_reciprocal(scale).unwrap_or(0.0);
        Requant { scale, zero, recip }
    }

    /// `y` as an int8 value (its byte).
    #[inline(always)]
    pub fn quantize(self, y: f32) -> u8 {
        use crate::ops::quant::{quantize, round_to_grid};
        let (lo, hi) = (f32::from(i8::MIN), f32::from(i8::MAX));
        let zero = self.zero.into();
        match self.recip != 0.0 {
            true => round_to_grid(y * self.recip, zero, lo, hi) as u8,
            false => quantize(y, self.scale, zero, lo, hi) as u8,
        }
    }

    /// [`Requant::quantize`] of each of `ys` into `dst`, choosing multiplication or
    /// division once per row, so the loop vectorises. (Not recursion through
    /// [`Store::put`]: a recursive function is never inlined, and outside the AVX2
    /// callers this loop is compiled for SSE2, half as wide.)
    #[inline(always)]
    pub(crate) fn quantize_row(self, ys: &[f32], dst: &mut [u8]) {
        use crate::ops::quant::{quantize, round_to_grid};
        let (lo, hi) = (f32::from(i8::MIN), f32::from(i8::MAX));
        let zero = self.zero.into();
        if self.recip != 0.0 {
            for (d, &y) in dst.iter_mut().zip(ys) {
                *d = round_to_grid(y * self.recip, zero, lo, hi) as u8;
            }
        } else {
            for (d, &y) in dst.iter_mut().zip(ys) {
                *d = quantize(y, self.scale, zero, lo, hi) as u8;
            }
        }
    }
}

impl Epilogue<'_> {
    /// Row `row`'s scaling, before the activation: `(acc - zero · a_sum) · mul + bias`.
    /// Every kernel goes through this one function, so all agree bit for bit.
    #[inline(always)]
    pub fn row(&self, row: usize) -> impl Fn(i32) -> f32 {
        let correction = self.zero * self.a_sum[row];
        let (mul, bias) = (self.mul[row.min(self.mul.len() - 1)], self.bias[row]);
        move |acc| (acc - correction) as f32 * mul + bias
    }
}

/// `Σ_k A[r, k]` of each `k`-long row of a row-major int8 matrix, into `out` (the
/// epilogue's zero-point correction, computed at plan time).
pub fn row_sums(a: &[u8], k: usize, out: &mut [i32]) {
    for (o, row) in out.iter_mut().zip(a.chunks_exact(k.max(1))) {
        *o = row.iter().map(|&v| i32::from(v as i8)).sum();
    }
}

/// Which int8 micro-kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QKernel {
    /// Scalar i32, 4×8 tile (compiled out on 32-bit Arm, whose plans use the 4×4: one
    /// copy of the blocked loop less in every firmware).
    #[cfg(not(target_arch = "arm"))]
    Portable,
    /// Scalar i32, 4×4 tile (Cortex-M).
    Portable4x4,
    /// x86_64 AVX2 `pmaddwd` (6×16 tile).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// x86_64 AVX2 `vpmaddubsw` (6×16 tile, k quads) for weights within ±64 only
    /// ([`QKernel::for_weights`]).
    #[cfg(target_arch = "x86_64")]
    Avx2Narrow,
    /// x86_64 AVX-512 VNNI `vpdpbusd` on ymm registers (6×16 tile, k quads).
    #[cfg(target_arch = "x86_64")]
    Vnni,
    /// Cortex-M DSP extension `SMLAD` (4×4 tile, B packed as i16 pairs).
    #[cfg(all(target_arch = "arm", target_feature = "dsp"))]
    Dsp,
}

impl QKernel {
    /// The fastest kernel this CPU runs (see [`super::gemm::Kernel::best`]).
    pub fn best() -> QKernel {
        #[cfg(target_arch = "x86_64")]
        if vnni::available() {
            return QKernel::Vnni;
        }
        #[cfg(target_arch = "x86_64")]
        if super::gemm::avx2_fma_available() {
            return QKernel::Avx2;
        }
        #[cfg(target_arch = "arm")]
        return QKernel::Portable4x4;
        #[cfg(not(target_arch = "arm"))]
        QKernel::Portable
    }

    /// The fastest kernel for a matrix of int8 `weights` on `target`: on an AVX2 host
    /// without VNNI, the narrow-weight kernel when every weight fits it (one pass over
    /// the weights at plan time), else [`QKernel::best`]; on Cortex-M [`QKernel::cortex_m`].
    pub fn for_weights(target: Target, weights: &[u8]) -> QKernel {
        match target {
            Target::CortexM => QKernel::cortex_m(),
            Target::Host => {
                let best = QKernel::best();
                #[cfg(target_arch = "x86_64")]
                if best == QKernel::Avx2 && avx2_narrow::fits(weights) {
                    return QKernel::Avx2Narrow;
                }
                let _ = weights;
                best
            }
        }
    }

    /// The largest weight magnitude the kernel multiplies exactly: 128 (all of int8) but
    /// for [`QKernel::Avx2Narrow`]'s 64.
    pub fn weight_bound(self) -> i32 {
        #[cfg(target_arch = "x86_64")]
        if self == QKernel::Avx2Narrow {
            return avx2_narrow::WEIGHT_BOUND.into();
        }
        128
    }

    /// The kernel of Cortex-M plans: the DSP one when this build runs on a core with the
    /// DSP extension (unless feature `portable-qgemm` asks for the reference), else the
    /// portable 4×4 (as on a host planning for a Cortex-M). Same tile and scratch either
    /// way (see [`QGemmPlan::scratch_bytes`]).
    pub fn cortex_m() -> QKernel {
        #[cfg(all(target_arch = "arm", target_feature = "dsp"))]
        if !cfg!(feature = "portable-qgemm") {
            return QKernel::Dsp;
        }
        QKernel::Portable4x4
    }

    /// Every kernel compiled in that this CPU can run (for tests and benchmarks).
    pub fn available() -> heapless::Vec<QKernel, 5> {
        let mut v = heapless::Vec::new();
        #[cfg(not(target_arch = "arm"))]
        let _ = v.push(QKernel::Portable);
        let _ = v.push(QKernel::Portable4x4);
        #[cfg(target_arch = "x86_64")]
        if super::gemm::avx2_fma_available() {
            let _ = v.push(QKernel::Avx2);
            let _ = v.push(QKernel::Avx2Narrow);
        }
        #[cfg(target_arch = "x86_64")]
        if vnni::available() {
            let _ = v.push(QKernel::Vnni);
        }
        #[cfg(all(target_arch = "arm", target_feature = "dsp"))]
        let _ = v.push(QKernel::Dsp);
        v
    }

    fn tile(self) -> (usize, usize) {
        match self {
            #[cfg(not(target_arch = "arm"))]
            QKernel::Portable => (portable::Portable::<8>::MR, portable::Portable::<8>::NR),
            QKernel::Portable4x4 => (portable::Portable::<4>::MR, portable::Portable::<4>::NR),
            #[cfg(target_arch = "x86_64")]
            QKernel::Avx2 => (avx2::Avx2::MR, avx2::Avx2::NR),
            #[cfg(target_arch = "x86_64")]
            QKernel::Avx2Narrow | QKernel::Vnni => (quads::MR, quads::NR),
            #[cfg(all(target_arch = "arm", target_feature = "dsp"))]
            QKernel::Dsp => (dsp::Dsp::MR, dsp::Dsp::NR),
        }
    }

    /// How many k values the kernel takes per packed group ([`QMicroKernel::GROUP`]).
    fn group(self) -> usize {
        #[cfg(target_arch = "x86_64")]
        if matches!(self, QKernel::Vnni | QKernel::Avx2Narrow) {
            return 4;
        }
        2
    }

    /// Whether the kernel reads B as i16 pairs ([`QMicroKernel::WIDE_B`]).
    fn wide_b(self) -> bool {
        #[cfg(all(target_arch = "arm", target_feature = "dsp"))]
        if self == QKernel::Dsp {
            return dsp::Dsp::WIDE_B;
        }
        false
    }
}

/// A register-tile kernel: `acc[MR × NR] = Apanel · Bpanel` over `kp` k pairs.
pub(crate) trait QMicroKernel {
    /// Rows of the tile.
    const MR: usize;
    /// Columns of the tile.
    const NR: usize;
    /// `a` holds `kp` groups of `MR` i16 pairs, `b` `kp` groups of `NR` int8 pairs; `acc`
    /// gets the tile row-major (`NR` apart). (Quad kernels: see [`QMicroKernel::GROUP`].)
    fn tile(kp: usize, a: &[i16], b: &[u8], acc: &mut [i32; MAX_TILE]);

    /// Consecutive k values per packed group: 2 (pairs, as above), or 4 for kernels that
    /// multiply four bytes at once (`vpdpbusd`): their A quads stay int8 (in the bytes of
    /// the i16 panel buffer, which is then twice what they need) and their B quads are
    /// u8, the int8 value plus [`QMicroKernel::B_OFFSET`].
    const GROUP: usize = 2;

    /// What the packer adds to every B value (128: the sign bit flipped, making int8
    /// unsigned); the epilogue subtracts it with the zero point, so every kernel ends on
    /// the same `A·(B − z)`.
    const B_OFFSET: i32 = 0;

    /// Whether `b` holds the pairs as i16 (little-endian) rather than int8: for kernels
    /// whose multiply takes two i16 of each operand (`SMLAD`), so the widening happens
    /// once per packed value instead of once per multiply.
    const WIDE_B: bool = false;

    /// Applies `act` to a finished float tile, compiled for the kernel's instruction set.
    #[inline]
    fn activate(act: Activation, c: &mut [f32], rows: usize, cols: usize, ldc: usize) {
        act.apply_rows(c, rows, cols, ldc)
    }
}

/// A prepared int8 multiplication `C[m × n] = epilogue(A[m × k] · B[k × n])`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QGemmPlan {
    /// The micro-kernel.
    pub kernel: QKernel,
    m: usize,
    n: usize,
    k: usize,
    mc: usize,
    nc: usize,
    /// A multiple of the kernel's group, so k pairs (quads) never straddle two blocks.
    kc: usize,
    /// Bytes per packed B value the scratch holds (2 on Cortex-M, see the module doc).
    b_bytes: usize,
}

impl QGemmPlan {
    /// Plans with a given kernel and `target`'s blocks.
    pub fn with_kernel(target: Target, kernel: QKernel, m: usize, n: usize, k: usize) -> Self {
        let (mr, nr) = kernel.tile();
        // i16 panels are half the float ones, so the host's K blocks are twice as deep. On
        // Cortex-M, 128-deep blocks (20 KiB of scratch) take 7% fewer instructions on
        // YOLO9tr-n than 64-deep ones: fewer partial-sum passes and A re-packs.
        let (kc, mc, nc, b_bytes) = match target {
            Target::Host => (512, 72, 1024, 1),
            Target::CortexM => (128, 16, 64, 2),
        };
        let kc = kc.min(MAX_KC);
        let blocks = k.div_ceil(kc).max(1);
        QGemmPlan {
            kernel,
            m,
            n,
            k,
            // Whole panels: a block is a multiple of the kernel's tile.
            mc: mc.min(m).div_ceil(mr) * mr,
            nc: nc.min(n).div_ceil(nr) * nr,
            kc: k.div_ceil(blocks).next_multiple_of(kernel.group()),
            b_bytes: if kernel.wide_b() { 2 } else { b_bytes },
        }
    }

    /// This plan for an int8 output ([`Store::width`] 1). With more than one K block
    /// the partial sums of an N block then take scratch (`4 · m · nc` bytes) instead of
    /// living in C, so N blocks shrink to at most half of N (and 256 columns): the
    /// partials stay smaller than the f32 output the fusion removes (`4 · m · n`), and
    /// the step needs less memory than before — at the price of A packed once more per
    /// extra N block (`m · k` bytes against `m · k · nc` multiplies).
    pub fn requantized(self) -> Self {
        if self.k <= self.kc {
            return self;
        }
        let (_, nr) = self.kernel.tile();
        QGemmPlan {
            nc: self
                .nc
                .min(256)
                .min(self.n.div_ceil(2))
                .next_multiple_of(nr),
            ..self
        }
    }

    /// Scratch bytes [`QGemmPlan::run`] needs (packed A block as i16, then packed B block
    /// as int8 or i16, each starting on a cache line); with an int8 output (`int8_out`)
    /// and more than one K block, then the partial sums of one N block (`m × nc` i32),
    /// which float outputs keep in C itself.
    pub fn scratch_bytes(&self, int8_out: bool) -> usize {
        let packs = self.kc * (2 * self.mc + self.b_bytes * self.nc) + 2 * LINE;
        if int8_out && self.k > self.kc {
            packs.next_multiple_of(4) + 4 * self.m * self.nc
        } else {
            packs
        }
    }

    /// `C = epilogue(A·B)` with C row-major `ldc` apart: f32 values (4-byte aligned), or
    /// int8 ones ([`Store::width`] 1); `scratch` has at least
    /// [`QGemmPlan::scratch_bytes`] bytes.
    pub fn run<A: QOperand, B: QOperand>(
        &self,
        a: A,
        b: B,
        c: &mut [u8],
        ldc: usize,
        scratch: &mut [u8],
        epi: &Epilogue,
    ) {
        match self.kernel {
            #[cfg(not(target_arch = "arm"))]
            QKernel::Portable => {
                self.run_with::<portable::Portable<8>, A, B>(a, b, c, ldc, scratch, epi)
            }
            QKernel::Portable4x4 => {
                self.run_with::<portable::Portable<4>, A, B>(a, b, c, ldc, scratch, epi)
            }
            #[cfg(all(target_arch = "arm", target_feature = "dsp"))]
            QKernel::Dsp => self.run_with::<dsp::Dsp, A, B>(a, b, c, ldc, scratch, epi),
            // SAFETY: these kernels are only planned on CPUs with AVX2 (see `QKernel::best`).
            #[cfg(target_arch = "x86_64")]
            QKernel::Avx2 => unsafe {
                self.run_avx2::<avx2::Avx2, A, B>(a, b, c, ldc, scratch, epi)
            },
            // SAFETY: planned only on CPUs with AVX2 (`QKernel::for_weights`).
            #[cfg(target_arch = "x86_64")]
            QKernel::Avx2Narrow => unsafe {
                self.run_avx2::<quads::Quads<avx2_narrow::Avx2Narrow>, A, B>(
                    a, b, c, ldc, scratch, epi,
                )
            },
            // SAFETY: planned only on CPUs with AVX2 and AVX-512 VNNI (`QKernel::best`).
            #[cfg(target_arch = "x86_64")]
            QKernel::Vnni => unsafe {
                self.run_avx2::<quads::Quads<vnni::Vnni>, A, B>(a, b, c, ldc, scratch, epi)
            },
        }
    }

    /// [`QGemmPlan::run_with`] with the packers and the epilogue compiled for AVX2 too
    /// (they convert and move more bytes than the kernel multiplies).
    ///
    /// # Safety
    /// The CPU supports AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2<K: QMicroKernel, A: QOperand, B: QOperand>(
        &self,
        a: A,
        b: B,
        c: &mut [u8],
        ldc: usize,
        scratch: &mut [u8],
        epi: &Epilogue,
    ) {
        self.run_with::<K, A, B>(a, b, c, ldc, scratch, epi)
    }

    #[inline(always)]
    fn run_with<K: QMicroKernel, A: QOperand, B: QOperand>(
        &self,
        a: A,
        b: B,
        c: &mut [u8],
        ldc: usize,
        scratch: &mut [u8],
        epi: &Epilogue,
    ) {
        let (m, n, k) = (self.m, self.n, self.k);
        if m == 0 || n == 0 || k == 0 {
            return;
        }
        let (a_pack, rest) = line_aligned(scratch).split_at_mut(2 * self.mc * self.kc);
        let a_pack: &mut [i16] = bytemuck::cast_slice_mut(a_pack);
        let (b_pack, rest) = line_aligned(rest).split_at_mut(self.kc * self.nc * b_width::<K>());
        // Partial sums between K blocks: in C itself when it holds f32 (an i32 per value),
        // else in scratch, one N block's worth (`Sums::Apart`).
        let mut sums = if epi.store.width() == 4 {
            Sums::InC(bytemuck::cast_slice_mut(c))
        } else {
            // (Only read and written between K blocks: none with one block.)
            let len = if k > self.kc { m * self.nc } else { 0 };
            let skip = rest.as_ptr().align_offset(4).min(rest.len());
            let partials = bytemuck::cast_slice_mut(&mut rest[skip..][..4 * len]);
            Sums::Apart { out: c, partials }
        };
        let epi = &Epilogue {
            zero: epi.zero + K::B_OFFSET,
            ..*epi
        };
        // Buffers zeroed once per call rather than once per block or tile.
        let mut a_rows = [[0u8; MAX_KC]; MAX_MR];
        let mut b_rows = [[0u8; ROW_RUN]; MAX_GROUP];
        let mut acc = [0i32; MAX_TILE];
        let mut tile = [0f32; MAX_TILE];
        for jc in (0..n).step_by(self.nc) {
            let ncb = self.nc.min(n - jc);
            for pc in (0..k).step_by(self.kc) {
                let kcb = self.kc.min(k - pc);
                let kp = kcb.div_ceil(K::GROUP);
                let (first, last) = (pc == 0, pc + kcb == k);
                pack_b::<K, B>(b, pc, kcb, jc, ncb, b_pack, &mut b_rows);
                for ic in (0..m).step_by(self.mc) {
                    let mcb = self.mc.min(m - ic);
                    pack_a::<K, A>(a, ic, mcb, pc, kcb, a_pack, &mut a_rows);
                    let a_panels = a_pack.chunks_exact(2 * K::MR * kp);
                    // A panels are 2·MR·kp i16 for pairs and quads alike (see `GROUP`).
                    let b_panels = b_pack.chunks_exact(K::GROUP * K::NR * kp * b_width::<K>());
                    for (jr, bp) in (0..ncb).step_by(K::NR).zip(b_panels) {
                        let cols = K::NR.min(ncb - jr);
                        for (ir, ap) in (0..mcb).step_by(K::MR).zip(a_panels.clone()) {
                            let rows = K::MR.min(mcb - ir);
                            K::tile(kp, ap, bp, &mut acc);
                            let (row0, origin) = (ic + ir, (ic + ir) * ldc + jc + jr);
                            let (partial, at, ld) = match &mut sums {
                                Sums::InC(c) => (&mut **c, origin, ldc),
                                Sums::Apart { partials, .. } => {
                                    (&mut **partials, row0 * self.nc + jr, self.nc)
                                }
                            };
                            if !first {
                                for i in 0..rows {
                                    let src = &partial[at + i * ld..][..cols];
                                    for (t, s) in acc[i * K::NR..][..cols].iter_mut().zip(src) {
                                        *t += s;
                                    }
                                }
                            }
                            if !last {
                                for i in 0..rows {
                                    partial[at + i * ld..][..cols]
                                        .copy_from_slice(&acc[i * K::NR..][..cols]);
                                }
                                continue;
                            }
                            finish::<K>(&acc, &mut tile, row0, rows, cols, epi);
                            let (nr, st) = (K::NR, &epi.store);
                            match &mut sums {
                                Sums::InC(c) => {
                                    let d = bytemuck::cast_slice_mut(&mut c[origin..]);
                                    st.put_words(&tile, nr, rows, cols, d, ldc);
                                }
                                Sums::Apart { out, .. } => st.quantize_bytes(
                                    &tile,
                                    nr,
                                    rows,
                                    cols,
                                    &mut out[origin..],
                                    ldc,
                                ),
                            }
                        }
                    }
                    // The block's activations, a whole block row at a time.
                    if let (true, Sums::Apart { out, .. }) = (last, &mut sums) {
                        epi.store.look_up(&mut out[ic * ldc + jc..], ldc, mcb, ncb);
                    }
                }
            }
        }
    }
}

/// Where the partial sums between K blocks live, and the finished values go.
enum Sums<'c> {
    /// In C, which holds f32 outputs (as i32 bits, the same size).
    InC(&'c mut [i32]),
    /// In `partials` (`m × nc`, one N block), the int8 outputs in `out`.
    Apart {
        out: &'c mut [u8],
        partials: &'c mut [i32],
    },
}

/// The float outputs of a finished tile, activation applied, into `tile` (`NR` apart).
#[inline(always)]
fn finish<K: QMicroKernel>(
    acc: &[i32; MAX_TILE],
    tile: &mut [f32; MAX_TILE],
    row0: usize,
    rows: usize,
    cols: usize,
    epi: &Epilogue,
) {
    if (rows, cols) == (K::MR, K::NR) {
        // A whole tile (nearly all of them): constant trip counts, so the loops unroll
        // without a test per value (fewer instructions per Cortex-M4 tile).
        for i in 0..K::MR {
            let scale = epi.row(row0 + i);
            for j in 0..K::NR {
                tile[i * K::NR + j] = scale(acc[i * K::NR + j]);
            }
        }
    } else {
        for i in 0..rows {
            let scale = epi.row(row0 + i);
            for (t, &a) in tile[i * K::NR..][..cols].iter_mut().zip(&acc[i * K::NR..]) {
                *t = scale(a);
            }
        }
    }
    if let Some(act) = epi.act {
        K::activate(act, tile, rows, cols, K::NR);
    }
}

/// The part of `buf` from its first cache-line boundary.
fn line_aligned(buf: &mut [u8]) -> &mut [u8] {
    let skip = buf.as_ptr().align_offset(64).min(buf.len());
    &mut buf[skip..]
}

/// Bytes per packed B value of kernel `K`.
const fn b_width<K: QMicroKernel>() -> usize {
    if K::WIDE_B {
        2
    } else {
        1
    }
}

/// Packs `B[k0 .. k0+kc, n0 .. n0+nc]` into `NR`-wide panels of k groups: panel `q`,
/// group `p` holds `[b(gp, j) .. b(gp+g-1, j)]` for its `NR` columns (`g` the kernel's
/// [`QMicroKernel::GROUP`]; int8 plus [`QMicroKernel::B_OFFSET`], or i16 for
/// [`QMicroKernel::WIDE_B`] kernels), zero-padded past `nc` and `kc`.
#[inline(always)]
fn pack_b<K: QMicroKernel, B: QOperand>(
    b: B,
    k0: usize,
    kc: usize,
    n0: usize,
    nc: usize,
    dst: &mut [u8],
    rows: &mut [[u8; ROW_RUN]; MAX_GROUP],
) {
    let (nr, g, width) = (K::NR, K::GROUP, b_width::<K>());
    let kp = kc.div_ceil(g);
    // An offset of 128 flips the sign bit: int8 → u8.
    let flip = if K::B_OFFSET == 0 { 0 } else { 0x80 };
    let run_len = ROW_RUN / nr * nr;
    for p in 0..kp {
        for r0 in (0..nc).step_by(run_len) {
            let len = run_len.min(nc - r0);
            for (i, row) in rows[..g].iter_mut().enumerate() {
                if g * p + i < kc {
                    b.read_row(k0 + g * p + i, n0 + r0, &mut row[..len]);
                } else {
                    fill_bytes(&mut row[..len], 0);
                }
            }
            let group = g * nr * width;
            // Whole panels of a wide B go straight into place a quad of columns at a time:
            // per panel, the generic loop's setup and zero fill cost a Cortex-M4 more than
            // widening its four pairs does.
            let whole = if K::WIDE_B && nr % 4 == 0 {
                len / nr
            } else {
                0
            };
            let (e, o) = (&rows[0][..whole * nr], &rows[1][..whole * nr]);
            let first = (r0 / nr * kp + p) * group;
            let panels = dst[first..].chunks_mut(kp * group);
            for ((panel, e), o) in panels.zip(e.chunks_exact(nr)).zip(o.chunks_exact(nr)) {
                for ((out, e), o) in panel[..group]
                    .chunks_exact_mut(16)
                    .zip(e.chunks_exact(4))
                    .zip(o.chunks_exact(4))
                {
                    widen_quad(e, o, out);
                }
            }
            for q in whole..len.div_ceil(nr) {
                let panel = &mut dst[((r0 / nr + q) * kp + p) * group..][..group];
                let cols = nr.min(len - q * nr);
                if K::WIDE_B {
                    let (e, o) = (&rows[0][q * nr..][..cols], &rows[1][q * nr..][..cols]);
                    widen_pairs(e, o, panel);
                } else if g == 2 {
                    // Pairs without the generic loop below (which is ~25% slower here).
                    let (e, o) = (&rows[0][q * nr..][..cols], &rows[1][q * nr..][..cols]);
                    for ((pair, &e), &o) in panel.chunks_exact_mut(2).zip(e).zip(o) {
                        pair[0] = e;
                        pair[1] = o;
                    }
                } else if !(g == 4
                    && (nr, cols) == (16, 16)
                    && interleave16x4(rows, q * nr, flip, panel))
                {
                    for (j, out) in panel.chunks_exact_mut(g).take(cols).enumerate() {
                        for (v, row) in out.iter_mut().zip(rows.iter()) {
                            *v = row[q * nr + j] ^ flip;
                        }
                    }
                }
                fill_bytes(&mut panel[g * cols * width..], 0);
            }
        }
    }
}

/// The i16 pairs `[e[j], o[j]]` (each byte sign-extended) as little-endian words into
/// `out`: four columns at a time from one word of each row, which `SXTB16` widens two bytes
/// at a time and `PKHBT`/`PKHTB` pair up (12 instructions and 2 loads per 4 pairs on a
/// Cortex-M4, against 4 loads and 4 packs one pair at a time), then the rest one by one.
#[inline(always)]
fn widen_pairs(e: &[u8], o: &[u8], out: &mut [u8]) {
    let quads = e.len().min(o.len()) / 4;
    for ((dst, e), o) in out
        .chunks_exact_mut(16)
        .zip(e.chunks_exact(4))
        .zip(o.chunks_exact(4))
    {
        widen_quad(e, o, dst);
    }
    let rest = out.chunks_exact_mut(4).skip(4 * quads);
    for ((pair, &e), &o) in rest.zip(&e[4 * quads..]).zip(&o[4 * quads..]) {
        let word = (i32::from(e as i8) as u32 & 0xffff) | (i32::from(o as i8) as u32) << 16;
        pair.copy_from_slice(&word.to_le_bytes());
    }
}

/// The four pairs of columns `e[..4]`, `o[..4]` into `out[..16]` (see [`widen_pairs`]).
#[inline(always)]
fn widen_quad(e: &[u8], o: &[u8], out: &mut [u8]) {
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let (e, o) = (word(e), word(o));
    // Bytes 0 and 2 of each row, then bytes 1 and 3, as two i16 halves.
    let (e02, e13) = (sxtb16(e), sxtb16(e.rotate_right(8)));
    let (o02, o13) = (sxtb16(o), sxtb16(o.rotate_right(8)));
    let pairs = [
        (e02 & 0xffff) | (o02 << 16),
        (e13 & 0xffff) | (o13 << 16),
        (e02 >> 16) | (o02 & 0xffff_0000),
        (e13 >> 16) | (o13 & 0xffff_0000),
    ];
    for (d, p) in out.chunks_exact_mut(4).zip(pairs) {
        d.copy_from_slice(&p.to_le_bytes());
    }
}

/// Bytes 0 and 2 of `x`, each sign-extended to the i16 half it lands in: Arm's `SXTB16`.
#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    #[cfg(all(target_arch = "arm", target_feature = "dsp"))]
    {
        let y: u32;
        // SAFETY: a register-only instruction of the DSP extension this build targets; no
        // memory, stack or flags are touched. (Tested on the device: the firmware's qgemm
        // self-test and its bit-exact detector run pack the DSP kernel's panels with it.)
        unsafe {
            core::arch::asm!("sxtb16 {y}, {x}", x = in(reg) x, y = lateout(reg) y,
                options(pure, nomem, nostack, preserves_flags))
        };
        y
    }
    #[cfg(not(all(target_arch = "arm", target_feature = "dsp")))]
    {
        let half = |b: u32| u32::from(b as u8 as i8 as i16 as u16);
        half(x) | half(x >> 16) << 16
    }
}

/// 16 columns from `at` of a quad group: `out[4j + i] = rows[i][at + j] ^ flip`, on
/// fixed-size arrays so that it compiles to byte and word unpacks rather than 64 single
/// stores. False (nothing written) when the 16 columns or 64 bytes are not there.
#[inline(always)]
fn interleave16x4(rows: &[[u8; ROW_RUN]; MAX_GROUP], at: usize, flip: u8, out: &mut [u8]) -> bool {
    let row = |i: usize| rows.get(i)?.get(at..)?.first_chunk::<16>();
    let (Some(r0), Some(r1), Some(r2), Some(r3), Some(out)) =
        (row(0), row(1), row(2), row(3), out.first_chunk_mut::<64>())
    else {
        return false;
    };
    for (j, quad) in out.chunks_exact_mut(4).enumerate() {
        quad.copy_from_slice(&[r0[j] ^ flip, r1[j] ^ flip, r2[j] ^ flip, r3[j] ^ flip]);
    }
    true
}

/// Packs `A[m0 .. m0+mc, k0 .. k0+kc]` into `MR`-tall panels of k groups: panel `q`,
/// group `p` holds `[a(i, gp) .. a(i, gp+g-1)]` for its `MR` rows (i16 pairs, or int8
/// quads in the buffer's bytes, see [`QMicroKernel::GROUP`]), zero-padded past `mc` and
/// `kc`. A panel's rows are read first, then written out in order (no scattered stores).
#[inline(always)]
fn pack_a<K: QMicroKernel, A: QOperand>(
    a: A,
    m0: usize,
    mc: usize,
    k0: usize,
    kc: usize,
    dst: &mut [i16],
    rows: &mut [[u8; MAX_KC]; MAX_MR],
) {
    let (mr, g) = (K::MR, K::GROUP);
    let kp = kc.div_ceil(g);
    for (q, panel) in dst
        .chunks_exact_mut(2 * mr * kp)
        .take(mc.div_ceil(mr))
        .enumerate()
    {
        for (i, row) in rows[..mr].iter_mut().enumerate() {
            let (r, row) = (q * mr + i, &mut row[..g * kp]);
            if r < mc {
                a.read_row(m0 + r, k0, &mut row[..kc]);
                fill_bytes(&mut row[kc..], 0);
            } else {
                fill_bytes(row, 0);
            }
        }
        if g == 4 {
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(panel);
            for (p, out) in bytes.chunks_exact_mut(4 * mr).enumerate() {
                for (quad, row) in out.chunks_exact_mut(4).zip(rows.iter()) {
                    quad.copy_from_slice(&row[4 * p..][..4]);
                }
            }
            continue;
        }
        for (p, out) in panel.chunks_exact_mut(2 * mr).enumerate() {
            for (pair, row) in out.chunks_exact_mut(2).zip(rows.iter()) {
                pair[0] = i16::from(row[2 * p] as i8);
                pair[1] = i16::from(row[2 * p + 1] as i8);
            }
        }
    }
}

#[cfg(test)]
mod tests;
