//! The recogniser's promise on a device: planning its three graphs, streaming an utterance
//! and decoding it allocate nothing. A counting global allocator wraps the system one and
//! counts only on the thread under test (the test harness's own thread allocates now and
//! then while it waits); the audio and the arena are made first, then the whole
//! plan → push → finish path runs with the counter watched.

use edgetrim_models::asr::nano;
use edgetrim_models::asr::Models;
use edgetrim_runtime::Model;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread's allocations count (const-initialised: reading it allocates nothing).
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHED.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
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
fn planning_streaming_and_decoding_allocate_nothing() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rnnt-stream");
    let wav = std::fs::read(format!("{dir}/speech/wav/000005.wav")).unwrap();
    let pcm: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let mut arena = vec![0u8; 1 << 18];

    WATCHED.with(|w| w.set(true));
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let models = Models {
        encoder: Model::parse(include_bytes!("data/rnnt-stream/model/encoder.onnx")).unwrap(),
        predictor: Model::parse(include_bytes!("data/rnnt-stream/model/predictor.onnx")).unwrap(),
        joiner: Model::parse(include_bytes!("data/rnnt-stream/model/joiner.onnx")).unwrap(),
    };
    let (mut rec, _) = nano::recogniser::<256>(&models, &mut arena).unwrap();
    for samples in pcm.chunks(2560) {
        rec.push(samples).unwrap();
    }
    rec.finish().unwrap();
    let tokens = rec.tokens().len();
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    WATCHED.with(|w| w.set(false));

    assert!(
        tokens > 20,
        "the utterance must decode to something: {tokens} tokens"
    );
    assert_eq!(allocations, 0, "heap allocations while recognising");
}
