//! Proves the runtime's promise: parsing, planning and running a model allocate nothing.
//!
//! A counting global allocator wraps the system one; the model bytes are built first
//! (that allocates), then the counter is reset and the whole parse → plan → run path is
//! executed with an arena on the stack.

#![cfg(feature = "tract")]

mod common;
use common::*;
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
    let mut arena = Arena::<65536>::new();

    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let model = Model::parse(&bytes).unwrap();
    let mut session = Session::new(&model, &[], &mut arena.0).unwrap();
    session.set_input_f32(0, &input).unwrap();
    session.run().unwrap();
    let first = session.output(0).bytes[0];
    let after = ALLOCATIONS.load(Ordering::SeqCst);

    assert_eq!(after - before, 0, "the runtime allocated on the heap");
    let x0 = input[0];
    let expected = ((x0 + 0.5) * x0 - 3.0) / 2.0;
    assert_eq!(first, expected.to_le_bytes()[0]);
}
