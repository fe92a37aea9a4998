//! Cortex-M4F firmware (QEMU `mps2-an386`): pavement-damage detection with YOLO9tr-n int8
//! (128×128 input; its float32 original with feature `f32-model`) on one generated road
//! frame, with edgetrim-runtime and the no_std pre/post-processing of edgetrim-models.
//!
//! Why: it shows the int8 detector running heap-free on a microcontroller from a model read
//! in place out of flash, with the arena planned on the host at build time (build.rs), and
//! — compared with the host's run of the same model on the same frame
//! (`scripts/firmware-check.sh`, `examples/yolo_firmware`) — that the detections and every
//! head value are bit-identical to the host's portable kernels while the int8 convolutions
//! run on the DSP kernel here. Before the inference a self-test runs every compiled-in int8
//! GEMM kernel on random matrices against an exact reference.
//!
//! Runs `FRAMES` frames (letterbox, infer, decode) timed by the device clock, then prints
//! the arena, the self-test, a digest of the head output, the detections and the FPS and
//! latency figures — as defmt frames or semihosting text (`out.rs` in the library).
//! `bench_start`/`bench_end` bracket each inference, `layer_start`/`layer_end` each step
//! and `plan_start`/`plan_end` the start-up (parsing and planning) for the instruction
//! counter (lib.rs).
#![no_std]
#![no_main]

#[path = "../../pavement.rs"]
mod pavement;
mod selftest;

use cortex_m_rt::entry;
use edgetrim_firmware::clock::DeviceClock;
use edgetrim_firmware::{
    check_arena, exit, kernels, plan_end, plan_start, say, Aligned, Bench, FRAMES,
};
use edgetrim_runtime::{Arena, Model, Session};
use pavement::{Buffers, Error, Head, OutputDigest, FRAME_SIZE};

include!(concat!(env!("OUT_DIR"), "/yolo_arena.rs"));

/// The int8 model, in flash, read in place (16-byte aligned, as its tensors are in the
/// file, so float data is read as `f32`s).
#[cfg(not(feature = "f32-model"))]
static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../yolo9tr-n-int8-128.onnx"));

/// The float32 original (`--features f32-model`), to measure what int8 saves.
#[cfg(feature = "f32-model")]
static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../yolo9tr-n-f32-128.onnx"));

/// The road frame, interleaved RGB8 (written by `cargo run --example yolo_firmware -- frame`).
static FRAME: &[u8; FRAME_SIZE * FRAME_SIZE * 3] = include_bytes!("../../../road128.rgb");

#[entry]
fn main() -> ! {
    edgetrim_firmware::stack::paint();
    exit(run())
}

fn run() -> Result<(), Error> {
    let mut core = cortex_m::Peripherals::take().expect("run() is called once");
    let clock = DeviceClock::start(&mut core.DCB, &mut core.DWT, &mut core.SYST);
    // Statics (in .bss, so `arm-none-eabi-size` shows them) handed out exactly once.
    let arena =
        cortex_m::singleton!(: Arena<ARENA_BYTES> = Arena::new()).expect("run() is called once");
    let buffers = cortex_m::singleton!(: Buffers = Buffers::new()).expect("run() is called once");
    // The self-test borrows the arena before the session takes it.
    selftest::qgemm_kernels(&mut arena.0)?;
    selftest::rounding()?;
    plan_start();
    let model = Model::parse(&MODEL.0)?;
    let session = Session::with_kernels(&model, &[], &mut arena.0, kernels::<KERNEL_SET>());
    plan_end();
    let mut session = session?;
    check_arena(&session, ARENA_BYTES)?;
    let head = Head::new(&model, &session)?;
    let mut bench = Bench::new(clock);
    let mut detections = heapless::Vec::new();
    for _ in 0..FRAMES {
        bench.begin();
        let letterbox = pavement::preprocess(&mut session, &head, FRAME)?;
        bench.infer(&mut session)?;
        detections = pavement::postprocess(&session, &head, &letterbox, buffers)?;
        bench.end();
    }
    say!("{}", OutputDigest::of(&session));
    say!("detections: {}", detections.len());
    for line in pavement::detection_lines(&detections, &head) {
        say!("{}", line);
    }
    bench.report();
    Ok(())
}

/// The defmt twin of `OutputDigest`'s `Display` (the same text).
#[cfg(feature = "defmt")]
impl defmt::Format for OutputDigest {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "head: {} bytes, fnv1a64 0x{:016x}",
            self.bytes,
            self.fnv1a
        )
    }
}

/// The defmt twin of `DetectionLine`'s `Display`: the same bit patterns; the values for
/// people in parentheses in defmt's own float notation (the host compares up to them).
#[cfg(feature = "defmt")]
impl defmt::Format for pavement::DetectionLine<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        let d = &self.detection;
        defmt::write!(
            f,
            "det[{}] = {} score 0x{:08x} box 0x{:08x} 0x{:08x} 0x{:08x} 0x{:08x} ({} at {} {} {} {})",
            self.index,
            self.name,
            d.score.to_bits(),
            d.x0.to_bits(),
            d.y0.to_bits(),
            d.x1.to_bits(),
            d.y1.to_bits(),
            d.score,
            d.x0,
            d.y0,
            d.x1,
            d.y1
        )
    }
}
