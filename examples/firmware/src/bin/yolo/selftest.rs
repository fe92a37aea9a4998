//! On-device test of the int8 GEMM kernels: every kernel compiled in for this core (the
//! portable ones and, on a core with the DSP extension, the `SMLAD` one) multiplies
//! pseudo-random int8 matrices of awkward shapes (tails in every dimension, several K
//! blocks, extreme zero points) and must give exactly the integer product, computed here
//! by a plain triple loop. The host cannot run the DSP kernel, so this is where its unsafe
//! code is tested directly; the detector run then checks it end to end against the host.
//! It works in memory lent by the caller (the arena, before the session takes it), so it
//! costs no RAM of its own.

use crate::pavement::Error;
use edgetrim_firmware::say;
use edgetrim_runtime::ops::qgemm::{row_sums, Epilogue, QGemmPlan, QKernel, QMatrix, Store};
use edgetrim_runtime::{Name, Target};

/// `(m, n, k, zero point)` cases.
const CASES: [(usize, usize, usize, i8); 8] = [
    (1, 1, 1, 0),
    (4, 4, 2, -128),
    (5, 7, 3, 127),
    (16, 64, 64, -9),
    (17, 65, 130, 3),
    (3, 9, 27, -128),
    (33, 19, 301, 127),
    (8, 70, 512, -5),
];

/// Largest `m`, `m · n`, `m · k` and `k · n` of the cases.
const MAX_M: usize = 33;
const MAX_C: usize = 33 * 65;
const MAX_A: usize = 33 * 301;
const MAX_B: usize = 70 * 512;
/// Cortex-M plans need at most `128 · (2 · 16 + 2 · 64) + 128` bytes.
const MAX_SCRATCH: usize = 20_608;

/// Bytes of memory [`qgemm_kernels`] needs.
pub const MEMORY: usize = 4 * (MAX_C + MAX_M) + MAX_A + MAX_B + MAX_SCRATCH;

/// Runs every case on every kernel in `mem` (at least [`MEMORY`] bytes, 4-byte aligned);
/// fails on the first value that differs from the exact product.
pub fn qgemm_kernels(mem: &mut [u8]) -> Result<(), Error> {
    let refuse = |reason| {
        Error::Runtime(edgetrim_runtime::Error::BadInput {
            input: Name::new("qgemm self-test"),
            reason,
        })
    };
    if mem.len() < MEMORY {
        return Err(refuse("needs more memory than it was lent"));
    }
    let (c, rest) = mem.split_at_mut(4 * MAX_C);
    let (a_sum, rest) = rest.split_at_mut(4 * MAX_M);
    let (a_all, rest) = rest.split_at_mut(MAX_A);
    let (b_all, scratch_all) = rest.split_at_mut(MAX_B);
    let (Ok(c_all), Ok(a_sum)) = (
        bytemuck::try_cast_slice_mut::<u8, i32>(c),
        bytemuck::try_cast_slice_mut::<u8, i32>(a_sum),
    ) else {
        return Err(refuse("needs 4-byte aligned memory"));
    };
    let kernels = QKernel::available();
    for (case, &(m, n, k, zero)) in CASES.iter().enumerate() {
        let (a, b) = (&mut a_all[..m * k], &mut b_all[..k * n]);
        for (i, v) in a.iter_mut().chain(b.iter_mut()).enumerate() {
            // Knuth's multiplicative hash: full-range, different bytes for every case.
            *v = ((i as u32 ^ (case as u32) << 20).wrapping_mul(2_654_435_761) >> 24) as u8;
        }
        row_sums(a, k, &mut a_sum[..m]);
        let (mul, bias) = ([1.0f32; MAX_M], [0.0f32; MAX_M]);
        let epi = Epilogue {
            mul: &mul[..m],
            bias: &bias[..m],
            a_sum: &a_sum[..m],
            zero: zero.into(),
            act: None,
            store: Store::F32,
        };
        for &kernel in &kernels {
            let plan = QGemmPlan::with_kernel(Target::CortexM, kernel, m, n, k);
            let c = &mut c_all[..m * n];
            c.fill(i32::MIN);
            let (am, bm) = (
                QMatrix {
                    data: a,
                    offset: 0,
                    cols: k,
                },
                QMatrix {
                    data: b,
                    offset: 0,
                    cols: n,
                },
            );
            let scratch = &mut scratch_all[..plan.scratch_bytes(false)];
            plan.run(am, bm, bytemuck::cast_slice_mut(c), n, scratch, &epi);
            for (idx, &got) in c.iter().enumerate() {
                let (i, j) = (idx / n, idx % n);
                let exact: i32 = (0..k)
                    .map(|p| {
                        i32::from(a[i * k + p] as i8)
                            * (i32::from(b[p * n + j] as i8) - i32::from(zero))
                    })
                    .sum();
                // |exact| ≤ 128 · 255 · 512 = 2^24: the f32 epilogue holds it exactly.
                if f32::from_bits(got as u32) != exact as f32 {
                    say!(
                        "qgemm self-test: {:?} {}x{}x{}: c[{},{}] = {} instead of {}",
                        kernel,
                        m,
                        n,
                        k,
                        i,
                        j,
                        f32::from_bits(got as u32),
                        exact
                    );
                    return Err(refuse("a kernel's product differs from the exact one"));
                }
            }
        }
    }
    say!(
        "qgemm self-test: {:?} exact on {} shapes",
        kernels.as_slice(),
        CASES.len()
    );
    Ok(())
}
