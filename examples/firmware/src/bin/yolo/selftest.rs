//! On-device tests of what the host cannot run.
//!
//! The int8 GEMM kernels: every kernel compiled in for this core (the
//! portable ones and, on a core with the DSP extension, the `SMLAD` one) multiplies
//! pseudo-random int8 matrices of awkward shapes (tails in every dimension, several K
//! blocks, extreme zero points) and must give exactly the integer product, computed here
//! by a plain triple loop. The host cannot run the DSP kernel, so this is where its unsafe
//! code is tested directly; the detector run then checks it end to end against the host.
//! It works in memory lent by the caller (the arena, before the session takes it), so it
//! costs no RAM of its own.
//!
//! Quantization's rounding: here `round_to_grid` rounds with the VFP's `VCVTR`, which must
//! equal the portable definition on every input, the rare ones (NaN, infinities, exact
//! halves, values past the i32 range) included.

use crate::pavement::Error;
use edgetrim_firmware::say;
use edgetrim_runtime::ops::qgemm::{row_sums, Epilogue, QGemmPlan, QKernel, QMatrix, Store};
use edgetrim_runtime::ops::quant::{round_to_grid, round_to_grid_portable};
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

/// Zero points and ranges of int8, uint8, int16 and uint16 outputs.
const GRIDS: [(i64, f32, f32); 8] = [
    (0, -128.0, 127.0),
    (-128, -128.0, 127.0),
    (127, -128.0, 127.0),
    (0, 0.0, 255.0),
    (255, 0.0, 255.0),
    (-32768, -32768.0, 32767.0),
    (32767, -32768.0, 32767.0),
    (65535, 0.0, 65535.0),
];

/// Special values: NaNs, infinities, zeros, the rounding trick's and i32's edges.
const SPECIAL: [f32; 14] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    0.0,
    -0.0,
    4_194_304.0,
    4_194_305.0,
    8_388_608.0,
    2_147_483_520.0,
    2_147_483_648.0,
    -2_147_483_648.0,
    -2_147_483_904.0,
    f32::MAX,
    f32::MIN_POSITIVE,
];

/// `round_to_grid` against its portable definition on the special values, every half from
/// -70,000.5 to 70,000.5 (and the values just beside each) and 65,536 hashed bit patterns
/// (every exponent, both signs, NaN payloads), for every grid of [`GRIDS`].
pub fn rounding() -> Result<(), Error> {
    let halves = (-70_000..=70_000).flat_map(|k| {
        let half = k as f32 + 0.5;
        [half, next_float(half, true), next_float(half, false)]
    });
    let hashed = (0..65_536u32).map(|i| f32::from_bits(i.wrapping_mul(2_654_435_761)));
    let mut checked = 0u32;
    for v in SPECIAL.into_iter().chain(halves).chain(hashed) {
        for (zp, lo, hi) in GRIDS {
            let (got, want) = (
                round_to_grid(v, zp, lo, hi),
                round_to_grid_portable(v, zp, lo, hi),
            );
            if got != want {
                say!(
                    "rounding self-test: {} (bits {:x}) with zero point {}: {} instead of {}",
                    v,
                    v.to_bits(),
                    zp,
                    got,
                    want
                );
                return Err(Error::Runtime(edgetrim_runtime::Error::BadInput {
                    input: Name::new("rounding self-test"),
                    reason: "VCVTR rounding differs from the portable definition",
                }));
            }
            checked += 1;
        }
    }
    say!(
        "rounding self-test: {} cases equal to the portable definition",
        checked
    );
    Ok(())
}

/// The float next to `v` towards +inf (`up`) or -inf (finite, nonzero `v`).
fn next_float(v: f32, up: bool) -> f32 {
    let bits = v.to_bits();
    let away = (v > 0.0) == up;
    f32::from_bits(if away { bits + 1 } else { bits - 1 })
}
