//! Cortex-M4F firmware (QEMU `mps2-an386`): pavement-damage detection with YOLO9tr-n int8
//! (128×128 input) on one generated road frame, with edgetrim-runtime and the no_std
//! pre/post-processing of edgetrim-models.
//!
//! Why: it shows the int8 detector running heap-free on a microcontroller from a model read
//! in place out of flash, with the arena planned on the host at build time (build.rs), and
//! — compared with the host's run of the same model on the same frame
//! (`scripts/firmware-check.sh`, `examples/yolo_firmware`) — that the detections and every
//! head value are bit-identical to the host's portable kernels while the int8 convolutions
//! run on the DSP kernel here. Before the inference a self-test runs every compiled-in int8
//! GEMM kernel on random matrices against an exact reference.
//!
//! Prints the arena, the self-test, a digest of the head output and the detections;
//! `bench_start`/`bench_end` bracket the inference and `layer_start`/`layer_end` each step
//! for the instruction counter (lib.rs).
#![no_std]
#![no_main]

#[path = "../../pavement.rs"]
mod pavement;
mod selftest;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use edgetrim_firmware::{check_arena, exit, run_counted};
use edgetrim_runtime::{Arena, Model, Session};
use panic_semihosting as _;
use pavement::{Buffers, Error, Head, OutputDigest, FRAME_SIZE};

include!(concat!(env!("OUT_DIR"), "/yolo_arena.rs"));

/// The int8 model, in flash, read in place.
static MODEL: &[u8] = include_bytes!("../../../yolo9tr-n-int8-128.onnx");

/// The road frame, interleaved RGB8 (written by `cargo run --example yolo_firmware -- frame`).
static FRAME: &[u8; FRAME_SIZE * FRAME_SIZE * 3] = include_bytes!("../../../road128.rgb");

#[entry]
fn main() -> ! {
    exit(run())
}

fn run() -> Result<(), Error> {
    // Statics (in .bss, so `arm-none-eabi-size` shows them) handed out exactly once.
    let arena =
        cortex_m::singleton!(: Arena<ARENA_BYTES> = Arena::new()).expect("run() is called once");
    let buffers = cortex_m::singleton!(: Buffers = Buffers::new()).expect("run() is called once");
    // The self-test borrows the arena before the session takes it.
    selftest::qgemm_kernels(&mut arena.0)?;
    let model = Model::parse(MODEL)?;
    let mut session = Session::new(&model, &[], &mut arena.0)?;
    check_arena(&session, ARENA_BYTES)?;
    let head = Head::new(&model, &session)?;
    let letterbox = pavement::preprocess(&mut session, &head, FRAME)?;
    run_counted(&mut session)?;
    let detections = pavement::postprocess(&session, &head, &letterbox, buffers)?;
    hprintln!("{}", OutputDigest::of(&session));
    hprintln!("detections: {}", detections.len());
    for line in pavement::detection_lines(&detections, &head) {
        hprintln!("{}", line);
    }
    Ok(())
}
