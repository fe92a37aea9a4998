//! What every firmware binary of this package shares: the output transport ([`out`]), the
//! clock ([`clock`]), the timed and instruction-counted inference loop ([`Bench`]), the
//! check that the arena sized on the host at build time is exact here, and the exit path.
//!
//! QEMU models no cycles, so cost is counted in executed instructions by the insncount
//! plugin between the entries of two marker functions (`run-qemu.sh --region A B`):
//! [`bench_start`]/[`bench_end`] bracket each inference, [`layer_start`]/[`layer_end`] each
//! step of it (see [`Bench::infer`]), so one binary serves both profiles; [`plan_start`]/
//! [`plan_end`] bracket a firmware's start-up (parsing and planning). On a board the
//! same loop reports FPS and latency percentiles from the cycle counter.
#![no_std]

pub mod clock;
pub mod out;
pub mod stack;

use clock::DeviceClock;
use cortex_m_semihosting::debug;
use edgetrim_runtime::fps::FpsMeter;
use edgetrim_runtime::ops::kernels::Kernels;
use edgetrim_runtime::{Error, Session};

/// Bytes aligned to 16, as the compressor's layout pass aligns every tensor inside a model
/// file: `static M: &Aligned<[u8]> = &Aligned(*include_bytes!(..));` puts a model in flash
/// where its float tensors are read as `f32` slices in place (unaligned ones go through a
/// byte-wise path).
#[repr(C, align(16))]
pub struct Aligned<Bytes: ?Sized>(pub Bytes);

/// Frames each firmware runs: enough for a median and to show every inference executes
/// the same instructions; raise it on a board for tighter percentiles.
pub const FRAMES: usize = 3;

/// The kernels a firmware's session may run: its model's set `SET` (build.rs's
/// `KERNEL_SET`), so only those are linked — or, with feature `all-kernels`, every kernel
/// of the runtime, to measure what the set saves.
pub const fn kernels<const SET: u32>() -> Kernels {
    if cfg!(feature = "all-kernels") {
        Kernels::ALL
    } else {
        Kernels::only::<SET>()
    }
}

/// Prints `arena` and `steps` lines, and fails when the arena planned on the host
/// (`reserved` bytes, from build.rs) differs from what the plan needs on this target.
pub fn check_arena(session: &Session<'_>, reserved: usize) -> Result<(), Error> {
    let needed = session.report().total;
    say!(
        "arena: {} bytes reserved (planned on the host), {} needed here",
        reserved,
        needed
    );
    if needed != reserved {
        say!("error: the arena size computed at build time is not exact on this target");
        exit_with(false);
    }
    say!(
        "steps: {}, macs: {}",
        session.step_count(),
        session.total_macs()
    );
    Ok(())
}

/// Times [`FRAMES`] frames on a [`DeviceClock`]: `begin`, whatever a frame does around its
/// inferences ([`Bench::infer`]), `end`; then [`Bench::report`].
pub struct Bench {
    clock: DeviceClock,
    meter: FpsMeter<FRAMES>,
}

impl Bench {
    /// A bench over `clock`, keeping every frame (a microcontroller has no caches to warm).
    pub fn new(clock: DeviceClock) -> Bench {
        Bench {
            clock,
            meter: FpsMeter::new(0),
        }
    }

    /// Marks the start of a frame.
    pub fn begin(&mut self) {
        self.meter.begin_frame(&mut self.clock);
    }

    /// Runs `session` once between the inference markers, with the step markers around
    /// each step and the clock polled between steps (outside the step regions).
    pub fn infer(&mut self, session: &mut Session<'_>) -> Result<(), Error> {
        let clock = &mut self.clock;
        bench_start();
        layer_start();
        let result = session.run_with(|_| {
            layer_end();
            clock.poll();
            layer_start();
        });
        bench_end();
        result
    }

    /// Marks the end of the frame begun last.
    pub fn end(&mut self) {
        self.meter.end_frame(&mut self.clock);
    }

    /// Prints `fps:` and `latency:` lines (device clock figures, labelled with their
    /// source) over the frames measured.
    pub fn report(&self) {
        let Some(s) = self.meter.stats() else {
            say!("fps: no frame measured");
            return;
        };
        say!(
            "fps: {} frames, {} FPS (device clock: {})",
            s.frames,
            s.fps as f32,
            self.clock.source().label()
        );
        say!(
            "latency: mean {} us, p50 {} us, p99 {} us, min {} us, max {} us (device clock)",
            s.mean_ns / 1000,
            s.p50_ns / 1000,
            s.p99_ns / 1000,
            s.min_ns / 1000,
            s.max_ns / 1000
        );
    }
}

/// Exits QEMU (semihosting) with success, or prints `error` and fails; after a run that
/// called [`stack::paint`] first, prints its `stack:` high-water mark.
pub fn exit<E: core::fmt::Display>(result: Result<(), E>) -> ! {
    if let Err(e) = &result {
        out::say_error(e);
    }
    match stack::used() {
        Some(bytes) => say!("stack: {} bytes used at most", bytes),
        None => say!("stack: not measured (unpainted, or deeper than the painted window)"),
    }
    exit_with(result.is_ok())
}

/// Exits with success or failure: QEMU and `probe-rs run` both end on semihosting's exit.
pub fn exit_with(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

// The markers have distinct bodies: identical functions could be merged into one address.

/// Entry marks the start of the measured inference.
#[no_mangle]
#[inline(never)]
pub extern "C" fn bench_start() {
    core::hint::black_box(0x5747_u32);
}

/// Entry marks the end of the measured inference.
#[no_mangle]
#[inline(never)]
pub extern "C" fn bench_end() {
    core::hint::black_box(0x0E4D_u32);
}

/// Entry marks the start of start-up: parsing the model and planning its session.
#[no_mangle]
#[inline(never)]
pub extern "C" fn plan_start() {
    core::hint::black_box(0x91A5_u32);
}

/// Entry marks the end of start-up.
#[no_mangle]
#[inline(never)]
pub extern "C" fn plan_end() {
    core::hint::black_box(0x91AE_u32);
}

/// Entry marks the start of one step (the next step's start follows each end).
#[no_mangle]
#[inline(never)]
pub extern "C" fn layer_start() {
    core::hint::black_box(0x1A7E_u32);
}

/// Entry marks the end of one step.
#[no_mangle]
#[inline(never)]
pub extern "C" fn layer_end() {
    core::hint::black_box(0x1E7D_u32);
}
