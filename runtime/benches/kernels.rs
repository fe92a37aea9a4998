//! Kernel benchmarks: the packed GEMM per micro-kernel, float and int8 on the same shapes
//! (the int8 weights within ±64, so every int8 kernel runs them, the narrow one too), and
//! conv layers end to end through a one-node model on our runtime and on tract (both
//! single thread).
//!
//! `cargo bench -p edgetrim-runtime --features tract --bench kernels`

use criterion::{criterion_group, criterion_main, Criterion};
use edgetrim_compress::build::{dt, tensor_f32, Attr, ModelBuilder};
use edgetrim_runtime::ops::gemm::{GemmPlan, Kernel, Matrix};
use edgetrim_runtime::ops::qgemm::{row_sums, Epilogue, QGemmPlan, QKernel, QMatrix, Store};
use edgetrim_runtime::tract::TractSession;
use edgetrim_runtime::{Model, Session, Target};
use std::hint::black_box;

fn data(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// `C[m × n] += A[m × k] · B[k × n]` on every kernel this CPU has.
fn gemm(c: &mut Criterion, name: &str, m: usize, n: usize, k: usize) {
    let (a, b) = (data(m * k), data(k * n));
    let mut out = vec![0f32; m * n];
    for kernel in Kernel::available() {
        let plan = GemmPlan::with_kernel(Target::Host, kernel, m, n, k);
        let mut scratch = vec![0f32; plan.scratch_floats()];
        c.bench_function(&format!("{name}/{kernel:?}"), |bench| {
            bench.iter(|| {
                let am = Matrix::row_major(&a[..], 0, k);
                let bm = Matrix::row_major(&b[..], 0, n);
                plan.run(am, bm, 1.0, &mut out, n, &mut scratch);
                black_box(&out);
            })
        });
    }
}

/// The int8 `C[m × n] = A[m × k] · B[k × n]` (float output, no activation) on every int8
/// kernel this CPU has; weights within ±64.
fn qgemm(c: &mut Criterion, name: &str, m: usize, n: usize, k: usize) {
    let bytes = |n: usize, seed: usize, bound: usize| -> Vec<u8> {
        let span = 2 * bound + 1;
        (0..n)
            .map(|i| (((i * 7919 + seed) % span) as i32 - bound as i32) as i8 as u8)
            .collect()
    };
    let (a, b) = (bytes(m * k, 1, 64), bytes(k * n, 2, 127));
    let mut a_sum = vec![0; m];
    row_sums(&a, k, &mut a_sum);
    let (mul, bias) = (vec![1e-3f32; m], vec![0f32; m]);
    let epi = Epilogue {
        mul: &mul,
        bias: &bias,
        a_sum: &a_sum,
        zero: -3,
        act: None,
        store: Store::F32,
    };
    let mut out = vec![0u8; 4 * m * n];
    for kernel in QKernel::available() {
        let plan = QGemmPlan::with_kernel(Target::Host, kernel, m, n, k);
        let mut scratch = vec![0u8; plan.scratch_bytes(false)];
        c.bench_function(&format!("{name}/int8/{kernel:?}"), |bench| {
            bench.iter(|| {
                let am = QMatrix {
                    data: &a,
                    offset: 0,
                    cols: k,
                };
                let bm = QMatrix {
                    data: &b,
                    offset: 0,
                    cols: n,
                };
                plan.run(am, bm, &mut out, n, &mut scratch, &epi);
                black_box(&out);
            })
        });
    }
}

/// A one-node Conv model with constant weights and bias.
fn conv_model(x: &[usize], w: &[usize], group: i64, pad: i64) -> Vec<u8> {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, x);
    m.init(tensor_f32("w", w, &data(w.iter().product())));
    m.init(tensor_f32("b", &[w[0]], &data(w[0])));
    let attrs = vec![
        ("group", Attr::Int(group)),
        ("pads", Attr::Ints(vec![pad; 4])),
    ];
    m.node("Conv", &["x", "w", "b"], &["y"], attrs);
    m.output("y", dt::FLOAT);
    m.build()
}

/// The same conv layer on our runtime and on tract.
fn conv(c: &mut Criterion, name: &str, x: &[usize], w: &[usize], group: i64, pad: i64) {
    let bytes = conv_model(x, w, group, pad);
    let input = data(x.iter().product());
    let model = Model::parse(&bytes).unwrap();
    let report = Session::arena_report(&model, &[x]).unwrap();
    let mut arena = vec![0u8; report.total + 16];
    let mut session = Session::new(&model, &[x], &mut arena).unwrap();
    session.set_input_f32(0, &input).unwrap();
    c.bench_function(&format!("{name}/nano"), |b| {
        b.iter(|| session.run().unwrap())
    });
    let mut tract = TractSession::new(&bytes, &[x]).unwrap();
    let le: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
    tract.set_input_bytes(0, &le).unwrap();
    c.bench_function(&format!("{name}/tract"), |b| {
        b.iter(|| tract.run().unwrap())
    });
}

fn benches(c: &mut Criterion) {
    gemm(c, "gemm_256", 256, 256, 256);
    // The GEMMs inside a 3x3 64->64 conv at 80x80 and a 1x1 128->256 conv at 40x40.
    gemm(c, "gemm_conv3x3_64_80", 64, 80 * 80, 64 * 9);
    gemm(c, "gemm_conv1x1_128_256_40", 256, 40 * 40, 128);
    // YOLO9tr-s's heaviest layers at 224 px: the head's 3x3 128->32 convs at 28x28.
    gemm(c, "gemm_head3x3_128_32_28", 32, 28 * 28, 128 * 9);
    qgemm(c, "gemm_head3x3_128_32_28", 32, 28 * 28, 128 * 9);
    qgemm(c, "gemm_conv3x3_64_80", 64, 80 * 80, 64 * 9);
    conv(
        c,
        "conv3x3_64_64_80",
        &[1, 64, 80, 80],
        &[64, 64, 3, 3],
        1,
        1,
    );
    conv(
        c,
        "depthwise3x3_128_40",
        &[1, 128, 40, 40],
        &[128, 1, 3, 3],
        128,
        1,
    );
    conv(
        c,
        "conv1x1_128_256_40",
        &[1, 128, 40, 40],
        &[256, 128, 1, 1],
        1,
        0,
    );
    conv(
        c,
        "conv3x3_64_128_160",
        &[1, 64, 160, 160],
        &[128, 64, 3, 3],
        1,
        1,
    );
}

criterion_group! {
    name = kernels;
    config = Criterion::default()
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(kernels);
