//! Every kernel against the exact product: tails in every dimension, several K blocks,
//! extreme values, and proptest shapes; plus the wide-B packing the DSP kernel reads,
//! through a portable model of that kernel (the DSP kernel itself only runs on a Cortex-M:
//! the firmware's self-test).

use super::*;
use proptest::prelude::*;
use std::{vec, vec::Vec};

/// A row-major int8 matrix with `cols` columns starting at element 0.
fn dense(data: &[u8], cols: usize) -> QMatrix<'_> {
    QMatrix {
        data,
        offset: 0,
        cols,
    }
}

fn ints(n: usize, seed: u32, lo: i32, hi: i32) -> Vec<u8> {
    (0..n)
        .map(|i| {
            let r = (i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8;
            (lo + (r % (hi - lo + 1) as u32) as i32) as i8 as u8
        })
        .collect()
}

/// Runs `kernel` on random int8 operands (weights within its
/// [`QKernel::weight_bound`]) and returns C's floats; checks them against the exact i64
/// product through the same epilogue.
fn run(kernel: QKernel, target: Target, m: usize, n: usize, k: usize, zero: i8) -> Vec<f32> {
    run_bounded(kernel, kernel.weight_bound(), target, m, n, k, zero)
}

/// [`run`] with weights within ±`bound`.
fn run_bounded(
    kernel: QKernel,
    bound: i32,
    target: Target,
    m: usize,
    n: usize,
    k: usize,
    zero: i8,
) -> Vec<f32> {
    let plan = QGemmPlan::with_kernel(target, kernel, m, n, k);
    let label = std::format!("{kernel:?} {target:?}");
    check(&label, m, n, k, zero, bound, |a, b, c, epi| {
        let mut scratch = vec![0x55; plan.scratch_bytes(false)];
        plan.run(a, b, bytemuck::cast_slice_mut(c), n, &mut scratch, epi)
    })
}

/// Random int8 operands of an `m × k` by `k × n` product, with a per-row epilogue.
struct Operands {
    a: Vec<u8>,
    b: Vec<u8>,
    mul: Vec<f32>,
    bias: Vec<f32>,
    a_sum: Vec<i32>,
}

impl Operands {
    /// Weights within ±`bound` (128: all of int8), activations all of int8.
    fn new(m: usize, n: usize, k: usize, bound: i32) -> Operands {
        let a = ints(m * k, 1, -bound, bound.min(127));
        let mut a_sum = vec![0; m];
        row_sums(&a, k, &mut a_sum);
        Operands {
            a,
            b: ints(k * n, 2, -128, 127),
            mul: (0..m).map(|i| 0.01 + i as f32 * 1e-3).collect(),
            bias: (0..m).map(|i| i as f32 * 0.5 - 3.0).collect(),
            a_sum,
        }
    }

    /// With B's zero point `zero`, SiLU, and `store`.
    fn epilogue<'a>(&'a self, zero: i8, store: Store<'a>) -> Epilogue<'a> {
        Epilogue {
            mul: &self.mul,
            bias: &self.bias,
            a_sum: &self.a_sum,
            zero: zero.into(),
            act: Some(Activation::Silu),
            store,
        }
    }
}

/// Calls `gemm(A, B, C, epilogue)` on random int8 operands and returns C's floats; checks
/// them against the exact i64 product through the same epilogue.
fn check(
    label: &str,
    m: usize,
    n: usize,
    k: usize,
    zero: i8,
    bound: i32,
    gemm: impl FnOnce(QMatrix, QMatrix, &mut [i32], &Epilogue),
) -> Vec<f32> {
    let ops = Operands::new(m, n, k, bound);
    let (a, b) = (&ops.a, &ops.b);
    let epi = ops.epilogue(zero, Store::F32);
    let (mul, bias) = (epi.mul, epi.bias);
    let mut c = vec![i32::MIN; m * n];
    gemm(dense(a, k), dense(b, n), &mut c, &epi);
    let got: Vec<f32> = c.iter().map(|&v| f32::from_bits(v as u32)).collect();
    for i in 0..m {
        for j in 0..n {
            let exact: i64 = (0..k)
                .map(|p| {
                    i64::from(a[i * k + p] as i8)
                        * (i64::from(b[p * n + j] as i8) - i64::from(zero))
                })
                .sum();
            let mut want = [exact as f32 * mul[i] + bias[i]];
            Activation::Silu.apply(&mut want);
            assert_eq!(
                got[i * n + j].to_bits(),
                want[0].to_bits(),
                "{label} {m}x{n}x{k}: c[{i},{j}]"
            );
        }
    }
    got
}

#[test]
fn every_kernel_handles_tails_and_k_blocks() {
    for kernel in QKernel::available() {
        for (m, n, k) in [
            (1, 1, 1),
            (7, 5, 1),
            (6, 16, 3),
            (13, 33, 17),
            (73, 9, 2),
            (5, 1100, 3),
            (9, 17, 1200),
        ] {
            for target in [Target::Host, Target::CortexM] {
                run(kernel, target, m, n, k, -7);
            }
        }
    }
}

/// Extreme operands: the largest products and corrections (each kernel's most negative
/// weight), at the longest exact K.
#[test]
fn extreme_values_accumulate_exactly() {
    let (m, n, k) = (2, 3, MAX_K);
    let b = vec![0x7fu8; k * n];
    for kernel in QKernel::available() {
        let low = -kernel.weight_bound();
        let a = vec![low as i8 as u8; m * k];
        let mut a_sum = vec![0; m];
        row_sums(&a, k, &mut a_sum);
        let plan = QGemmPlan::with_kernel(Target::Host, kernel, m, n, k);
        let mut scratch = vec![0; plan.scratch_bytes(false)];
        let mut c = vec![0i32; m * n];
        let (mul, bias) = ([1.0f32; 2], [0.0f32; 2]);
        let epi = Epilogue {
            mul: &mul,
            bias: &bias,
            a_sum: &a_sum,
            zero: -128,
            act: None,
            store: Store::F32,
        };
        let (am, bm) = (dense(&a, k), dense(&b, n));
        plan.run(
            am,
            bm,
            bytemuck::cast_slice_mut(&mut c),
            n,
            &mut scratch,
            &epi,
        );
        let want = (i64::from(low) * 255 * k as i64) as f32;
        assert!(
            c.iter().all(|&v| f32::from_bits(v as u32) == want),
            "{kernel:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Every kernel's outputs are bit-identical to the portable reference's (and to the
    /// exact product, checked inside `run`).
    #[test]
    fn kernels_are_bit_exact(m in 1usize..40, n in 1usize..70, k in 1usize..700, zero in -128i8..=127) {
        for kernel in QKernel::available() {
            let bound = kernel.weight_bound();
            let reference = run_bounded(QKernel::Portable, bound, Target::Host, m, n, k, zero);
            let got = run(kernel, Target::Host, m, n, k, zero);
            prop_assert!(got.iter().zip(&reference).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}

/// The DSP kernel's arithmetic in portable Rust: `SMLAD` of an A word (two i16) with a B
/// word of the wide panel (two little-endian i16), 4×4 tile. Runs the wide-B packing and
/// panel walk that the DSP kernel relies on through every host test.
struct WideModel;

impl QMicroKernel for WideModel {
    const MR: usize = 4;
    const NR: usize = 4;
    const WIDE_B: bool = true;

    fn tile(kp: usize, a: &[i16], b: &[u8], acc: &mut [i32; MAX_TILE]) {
        acc[..16].fill(0);
        for p in 0..kp {
            for (i, a) in a[8 * p..][..8].chunks_exact(2).enumerate() {
                for (j, b) in b[16 * p..][..16].chunks_exact(4).enumerate() {
                    let (b0, b1) = (
                        i16::from_le_bytes([b[0], b[1]]),
                        i16::from_le_bytes([b[2], b[3]]),
                    );
                    acc[4 * i + j] +=
                        i32::from(a[0]) * i32::from(b0) + i32::from(a[1]) * i32::from(b1);
                }
            }
        }
    }
}

#[test]
fn wide_b_panels_hold_the_exact_product() {
    for (m, n, k) in [
        (1, 1, 1),
        (7, 5, 1),
        (6, 16, 3),
        (13, 33, 17),
        (5, 1100, 3),
        (9, 17, 1200),
    ] {
        // Cortex-M plans reserve the wide panels whichever kernel they name.
        let plan = QGemmPlan::with_kernel(Target::CortexM, QKernel::Portable4x4, m, n, k);
        let want = run(QKernel::Portable4x4, Target::CortexM, m, n, k, -7);
        let got = check("wide model", m, n, k, -7, 128, |a, b, c, epi| {
            let mut scratch = vec![0x55; plan.scratch_bytes(false)];
            plan.run_with::<WideModel, _, _>(
                a,
                b,
                bytemuck::cast_slice_mut(c),
                n,
                &mut scratch,
                epi,
            )
        });
        assert!(got
            .iter()
            .zip(&want)
            .all(|(g, w)| g.to_bits() == w.to_bits()));
    }
}

/// With a fused QuantizeLinear every kernel stores exactly the int8 values the float
/// output quantized by the standalone op's function would be — one K block or several
/// (partial sums in scratch), tails in every dimension — and needs no more scratch than it
/// asks for (the buffer is exactly `scratch_bytes`); with an activation table after it,
/// exactly the table's entries at those values, int8 or f32.
#[test]
fn requantized_outputs_equal_the_quantized_float_outputs() {
    // Tables whose entries differ from their indices, so a missed lookup shows.
    let int8_table: [u8; 256] = core::array::from_fn(|b| (b as u8).wrapping_mul(7) ^ 1);
    let f32_table: [f32; 256] = core::array::from_fn(|b| b as f32 * 0.25 - 9.0);
    for kernel in QKernel::available() {
        for target in [Target::Host, Target::CortexM] {
            for (m, n, k) in [(1, 1, 1), (13, 33, 17), (9, 70, 1200), (7, 1100, 600)] {
                let floats = run(kernel, target, m, n, k, 5);
                // A scale that spreads the outputs over the int8 range (a few saturate);
                // with an odd K, the power of two above it (multiplied by its reciprocal).
                let largest = floats.iter().fold(0f32, |l, y| l.max(y.abs()));
                let scale = largest / 100.0 + 1e-3;
                let scale = match k % 2 {
                    1 => 2f32.powi(scale.log2().ceil() as i32),
                    _ => scale,
                };
                let rq = Requant::new(scale, -3);
                let q: Vec<usize> = floats.iter().map(|&y| rq.quantize(y).into()).collect();
                assert!(
                    q.iter().any(|&v| v != 0x7f && v != 0x80),
                    "{kernel:?} {target:?} {m}x{n}x{k}: all saturated"
                );
                for store in [
                    Store::Int8(rq),
                    Store::Int8Table(rq, &int8_table),
                    Store::F32Table(rq, &f32_table),
                ] {
                    let want: Vec<u8> = match store {
                        Store::Int8(_) => q.iter().map(|&v| v as u8).collect(),
                        Store::Int8Table(..) => q.iter().map(|&v| int8_table[v]).collect(),
                        _ => q.iter().flat_map(|&v| f32_table[v].to_le_bytes()).collect(),
                    };
                    let int8_out = store.width() == 1;
                    let plan = QGemmPlan::with_kernel(target, kernel, m, n, k);
                    let plan = if int8_out { plan.requantized() } else { plan };
                    let label = std::format!("{kernel:?} {target:?} {m}x{n}x{k} {store:?}");
                    let ops = Operands::new(m, n, k, kernel.weight_bound());
                    let (a, b) = (&ops.a, &ops.b);
                    let epi = ops.epilogue(5, store);
                    let mut scratch = vec![0x55; plan.scratch_bytes(int8_out)];
                    // f32 outputs are 4-byte aligned, as an arena buffer is.
                    let mut out = vec![0xaaaa_aaaau32; want.len().div_ceil(4)];
                    let out = &mut bytemuck::cast_slice_mut(&mut out)[..want.len()];
                    plan.run(dense(a, k), dense(b, n), out, n, &mut scratch, &epi);
                    assert_eq!(out, want.as_slice(), "{label}");
                }
            }
        }
    }
}

/// The narrow-weight kernel is picked only for weights it multiplies exactly: one weight
/// of 65 (or -65) keeps a conv on the full-range kernel. And the bound is real: on full
/// int8 weights that kernel's i16 pair sums saturate and its products come out wrong.
#[cfg(target_arch = "x86_64")]
#[test]
fn narrow_kernel_only_for_weights_within_64() {
    if !crate::ops::gemm::avx2_fma_available() || QKernel::best() != QKernel::Avx2 {
        return; // (a VNNI CPU keeps its own kernel for every weight)
    }
    let narrow = [0u8, 64, (-64i8) as u8, 7];
    assert_eq!(
        QKernel::for_weights(Target::Host, &narrow),
        QKernel::Avx2Narrow
    );
    for wide in [65i8, -65, 127, -128] {
        let mut w = narrow;
        w[2] = wide as u8;
        assert_eq!(QKernel::for_weights(Target::Host, &w), QKernel::Avx2);
    }
    assert_eq!(
        QKernel::for_weights(Target::CortexM, &narrow),
        QKernel::cortex_m()
    );
    // Full-range weights through the narrow kernel: some output differs from the exact one.
    let (m, n, k) = (6, 16, 64);
    let a = vec![0x81u8; m * k]; // -127
    let b = vec![0x7fu8; k * n]; // 127, i.e. 255 once flipped: 2 · 255 · 127 > 2¹⁵
    let mut a_sum = vec![0; m];
    row_sums(&a, k, &mut a_sum);
    let (mul, bias) = ([1.0f32; 6], [0.0f32; 6]);
    let epi = Epilogue {
        mul: &mul,
        bias: &bias,
        a_sum: &a_sum,
        zero: 0,
        act: None,
        store: Store::F32,
    };
    let plan = QGemmPlan::with_kernel(Target::Host, QKernel::Avx2Narrow, m, n, k);
    let mut scratch = vec![0; plan.scratch_bytes(false)];
    let mut c = vec![0i32; m * n];
    let c_bytes = bytemuck::cast_slice_mut(&mut c);
    plan.run(dense(&a, k), dense(&b, n), c_bytes, n, &mut scratch, &epi);
    let exact = (-127 * 127 * k as i64) as f32;
    assert!(c.iter().any(|&v| f32::from_bits(v as u32) != exact));
}

/// The packers' short-run helpers equal `copy_from_slice` and `fill` at every length
/// across their inline cases (0, 1-3, 4-7, 8-15, 16-256) and past them, and write nothing
/// beyond `dst`.
#[test]
fn copy_and_fill_bytes_equal_the_slice_methods() {
    let src: Vec<u8> = (0..300u32).map(|i| (i * 31 + 7) as u8).collect();
    for n in 0..=290 {
        let mut got = vec![0xAAu8; n + 4];
        let mut want = got.clone();
        copy_bytes(&mut got[..n], &src);
        want[..n].copy_from_slice(&src[..n]);
        assert_eq!(got, want, "copy {n}");
        fill_bytes(&mut got[..n], 0x5C);
        want[..n].fill(0x5C);
        assert_eq!(got, want, "fill {n}");
    }
}
