//! Proves the runtime's promise: parsing, planning and running a model allocate nothing.
//!
//! A counting global allocator wraps the system one; the model bytes are built first
//! (that allocates), then the counter is reset and the whole parse → plan → run path is
//! executed with an arena on the stack.

#![cfg(feature = "tract")]

mod common;
use common::*;
use edgetrim_compress::build::tensor;
use edgetrim_runtime::{Arena, Model, Session};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations made while parsing `bytes`, planning it into a 64 KiB arena on the
/// stack and running it once on `input`; `after` then looks at the session.
fn allocations_to_run(bytes: &[u8], input: &[f32], after: impl FnOnce(&Session<'_>)) -> usize {
    let mut arena = Arena::<65536>::new();
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let model = Model::parse(bytes).unwrap();
    let mut session = Session::new(&model, &[], &mut arena.0).unwrap();
    session.set_input_f32(0, input).unwrap();
    session.run().unwrap();
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    after(&session);
    allocations
}

#[test]
fn parse_plan_and_run_allocate_nothing() {
    // y = ((x + w) * x - 3) / 2 with a broadcast constant and a folded constant subgraph.
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 4, 8, 8])
        .init_f32("w", &[1, 4, 1, 1], &[0.5, -1.0, 2.0, 0.25])
        .init_f32("three", &[], &[3.0])
        .init_f32("two", &[], &[2.0])
        .node("Add", &["x", "w"], &["a"], vec![])
        .node("Mul", &["a", "x"], &["b"], vec![])
        .node("Sub", &["b", "three"], &["c"], vec![])
        .node("Div", &["c", "two"], &["y"], vec![])
        .output("y", dt::FLOAT);
    let bytes = m.build();
    let input: Vec<f32> = rand_vec(256, 1);
    let mut first = 0;
    let allocations = allocations_to_run(&bytes, &input, |s| first = s.output(0).bytes[0]);
    assert_eq!(allocations, 0, "the runtime allocated on the heap");
    let x0 = input[0];
    let expected = ((x0 + 0.5) * x0 - 3.0) / 2.0;
    assert_eq!(first, expected.to_le_bytes()[0]);
    int8_conv_allocates_nothing();
    lstm_allocates_nothing();
}

/// The recurrent path too: the RNN-T toy encoder (Linear, two LSTMs with their states as
/// graph inputs and outputs, Linear) plans and runs without touching the heap. Called from
/// the test above, like `int8_conv_allocates_nothing`.
fn lstm_allocates_nothing() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/rnnt-toy/encoder.onnx"
    );
    let bytes = std::fs::read(path).unwrap();
    let input: Vec<f32> = rand_vec(4 * 12, 3);
    let mut steps: Vec<String> = Vec::new();
    let allocations = allocations_to_run(&bytes, &input, |s| {
        steps = (0..s.step_count())
            .map(|k| s.step_info(k).op.into())
            .collect();
    });
    assert_eq!(allocations, 0, "the LSTM path allocated on the heap");
    assert_eq!(steps.iter().filter(|op| *op == "LSTM").count(), 2);
}

/// The int8 conv path too: a QDQ Conv + SiLU (what the compressor writes) plans into one
/// `QConv+SiLU` step and runs without touching the heap. Called from the test above, not a
/// test itself: the counter is global, and tests run in parallel threads.
fn int8_conv_allocates_nothing() {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 8, 6, 6])
        .init_f32("s_x", &[], &[0.05])
        .init(tensor("z_x", dt::INT8, &[], vec![3]))
        .init(tensor(
            "w_q",
            dt::INT8,
            &[4, 8, 3, 3],
            (0..288).map(|i| (i * 37 % 255) as u8).collect(),
        ))
        .init_f32("s_w", &[4], &[0.01, 0.02, 0.03, 0.04])
        .init(tensor("z_w", dt::INT8, &[4], vec![0; 4]))
        .node("QuantizeLinear", &["x", "s_x", "z_x"], &["x_q"], vec![])
        .node("DequantizeLinear", &["x_q", "s_x", "z_x"], &["x_f"], vec![])
        .node(
            "DequantizeLinear",
            &["w_q", "s_w", "z_w"],
            &["w_f"],
            vec![("axis", Attr::Int(0))],
        )
        .node(
            "Conv",
            &["x_f", "w_f"],
            &["c"],
            vec![("pads", Attr::Ints(vec![1; 4]))],
        )
        .node("Sigmoid", &["c"], &["s"], vec![])
        .node("Mul", &["c", "s"], &["y"], vec![])
        .output("y", dt::FLOAT);
    let bytes = m.build();
    let input: Vec<f32> = rand_vec(288, 2);
    let mut ops: Vec<String> = Vec::new();
    let allocations = allocations_to_run(&bytes, &input, |s| {
        ops = (0..s.step_count())
            .map(|k| s.step_info(k).op.into())
            .collect();
    });
    assert_eq!(allocations, 0, "the int8 path allocated on the heap");
    assert_eq!(ops, ["QuantizeLinear", "QConv+SiLU"]);
}
