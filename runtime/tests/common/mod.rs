//! Differential testing against tract: build a tiny graph, run it on both backends,
//! compare every output.
//!
//! Tolerance: `|nano - tract| <= tol * max(1, max |tract|)` per output, element-wise. f32
//! kernels sum in a different order than tract's (blocked GEMM, FMA), so exact equality is
//! not expected; `TOL` = 1e-4 covers reductions over a few thousand terms.

#![allow(dead_code)]

pub use edgetrim_compress::build::{dt, Attr, ModelBuilder};
use edgetrim_runtime::tract::{OwnedTensor, TractSession};
use edgetrim_runtime::{DType, Error, Model, Session, Shape, Target};

/// Default relative tolerance.
pub const TOL: f32 = 1e-4;

/// Deterministic pseudo-random f32 data in [-1, 1).
pub fn rand_f32(shape: &[usize], seed: u64) -> OwnedTensor {
    let n: usize = shape.iter().product();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let data: Vec<f32> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    f32_tensor(shape, &data)
}

/// Random data as a plain vector.
pub fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    rand_f32(&[n], seed).to_f32_vec()
}

/// An f32 tensor from data.
pub fn f32_tensor(shape: &[usize], data: &[f32]) -> OwnedTensor {
    OwnedTensor {
        dtype: DType::F32,
        shape: Shape::new(shape).unwrap(),
        bytes: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// An i64 tensor from data.
pub fn i64_tensor(shape: &[usize], data: &[i64]) -> OwnedTensor {
    OwnedTensor {
        dtype: DType::I64,
        shape: Shape::new(shape).unwrap(),
        bytes: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// Runs `model` on our runtime.
pub fn run_nano(model: &[u8], inputs: &[OwnedTensor]) -> Vec<OwnedTensor> {
    run_nano_with_ops(model, inputs).0
}

/// [`run_nano`], plus the op name of every planned step (to check what fused).
pub fn run_nano_with_ops(model: &[u8], inputs: &[OwnedTensor]) -> (Vec<OwnedTensor>, Vec<String>) {
    run_nano_on(model, inputs, Target::native())
}

/// [`run_nano_with_ops`] with the kernels and block sizes planned for `target`.
pub fn run_nano_on(
    model: &[u8],
    inputs: &[OwnedTensor],
    target: Target,
) -> (Vec<OwnedTensor>, Vec<String>) {
    let parsed = Model::parse(model).expect("parse");
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.dims()).collect();
    let report = Session::arena_report_for(&parsed, &shapes, target).expect("plan");
    let mut arena = vec![0u8; report.total + 16];
    let mut session = Session::with_target(&parsed, &shapes, &mut arena, target).expect("session");
    assert_eq!(
        session.report(),
        report,
        "plan size must not depend on the arena's address"
    );
    for (i, t) in inputs.iter().enumerate() {
        session.set_input_bytes(i, &t.bytes).expect("input");
    }
    session.run().expect("run");
    let ops = (0..session.step_count())
        .map(|k| session.step_info(k).op.to_string())
        .collect();
    let outputs = (0..session.outputs().count())
        .map(|i| OwnedTensor::copy_of(session.output(i)))
        .collect();
    (outputs, ops)
}

/// Runs `model` on tract.
pub fn run_tract(model: &[u8], inputs: &[OwnedTensor]) -> Vec<OwnedTensor> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.dims()).collect();
    let mut s = TractSession::new(model, &shapes).expect("tract load");
    for (i, t) in inputs.iter().enumerate() {
        s.set_input_bytes(i, &t.bytes).expect("tract input");
    }
    s.run().expect("tract run");
    (0..s.output_count())
        .map(|i| OwnedTensor::copy_of(s.output(i)))
        .collect()
}

/// Asserts both backends agree within `tol` (relative to the output's largest magnitude).
pub fn assert_close(what: &str, nano: &[OwnedTensor], reference: &[OwnedTensor], tol: f32) {
    assert_eq!(nano.len(), reference.len(), "{what}: output count");
    for (k, (a, b)) in nano.iter().zip(reference).enumerate() {
        assert_eq!(a.shape.dims(), b.shape.dims(), "{what}: output {k} shape");
        assert_eq!(a.dtype, b.dtype, "{what}: output {k} dtype");
        let (x, y) = (a.to_f32_vec(), b.to_f32_vec());
        let scale = y.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (p, q)) in x.iter().zip(&y).enumerate() {
            let ok = (p - q).abs() <= tol * scale || (p.is_nan() && q.is_nan());
            assert!(
                ok,
                "{what}: output {k}[{i}] = {p}, tract says {q} (tol {tol} x {scale})"
            );
        }
    }
}

/// Builds, runs on both backends, compares.
pub fn check(what: &str, model: &ModelBuilder, inputs: &[OwnedTensor], tol: f32) {
    let bytes = model.build();
    let nano = run_nano(&bytes, inputs);
    let reference = run_tract(&bytes, inputs);
    assert_close(what, &nano, &reference, tol);
}

/// A one-node model with f32 graph inputs `x0, x1, ...` of the given shapes, constant
/// initializers, and outputs `y0, y1, ...`.
pub fn one_node(
    op: &str,
    input_shapes: &[&[usize]],
    inits: &[(&str, OwnedTensor)],
    extra_inputs: &[&str],
    n_outputs: usize,
    attrs: Vec<(&str, Attr)>,
    opset: i64,
) -> ModelBuilder {
    let mut m = ModelBuilder::new(opset);
    let mut names: Vec<String> = Vec::new();
    for (i, s) in input_shapes.iter().enumerate() {
        let n = format!("x{i}");
        m.input(&n, dt::FLOAT, s);
        names.push(n);
    }
    for (name, t) in inits {
        m.init(edgetrim_compress::build::tensor(
            name,
            t.dtype.onnx_code() as i32,
            t.shape.dims(),
            t.bytes.clone(),
        ));
    }
    names.extend(extra_inputs.iter().map(|s| s.to_string()));
    let outs: Vec<String> = (0..n_outputs).map(|i| format!("y{i}")).collect();
    let ins: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let outs_ref: Vec<&str> = outs.iter().map(|s| s.as_str()).collect();
    m.node(op, &ins, &outs_ref, attrs);
    for o in &outs {
        m.output(o, dt::FLOAT);
    }
    m
}

/// The planning error of a model that must be refused (`None` if it plans).
pub fn plan_err(m: &ModelBuilder, shapes: &[&[usize]]) -> Option<Error> {
    let bytes = m.build();
    let model = Model::parse(&bytes).unwrap();
    let mut arena = vec![0u8; 1 << 16];
    Session::new(&model, shapes, &mut arena).err()
}
