//! Cortex-M4F firmware (QEMU `mps2-an386`) that runs a small CNN with edgetrim-runtime and
//! prints its outputs as exact f32 bit patterns over semihosting.
//!
//! Why: it proves the runtime really is `no_std` and heap-free on a microcontroller, that
//! the arena size computed on the host at build time (build.rs) is enough on the device,
//! and — compared line by line with the host's run of the same model on the same input
//! (`scripts/firmware-check.sh`) — that the kernels compute the same numbers there.
//! `bench_start`/`bench_end` bracket one inference so the QEMU instruction counter
//! (`run-qemu.sh --region bench_start bench_end`) measures exactly that.
#![no_std]
#![no_main]

mod reference;

use core::hint::black_box;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use edgetrim_runtime::{Arena, Error, Model, Session};
use panic_semihosting as _;

include!(concat!(env!("OUT_DIR"), "/arena.rs"));

/// The model, in flash, read in place.
static MODEL: &[u8] = include_bytes!("../tiny_cnn.onnx");

#[entry]
fn main() -> ! {
    let status = match run() {
        Ok(()) => debug::EXIT_SUCCESS,
        Err(e) => {
            hprintln!("error: {}", e);
            debug::EXIT_FAILURE
        }
    };
    debug::exit(status);
    #[allow(clippy::empty_loop)]
    loop {}
}

fn run() -> Result<(), Error> {
    // A static (in .bss, so `arm-none-eabi-size` shows it) handed out exactly once.
    let arena =
        cortex_m::singleton!(: Arena<ARENA_BYTES> = Arena::new()).expect("run() is called once");
    let model = Model::parse(MODEL)?;
    let mut session = Session::new(&model, &[], &mut arena.0)?;
    let needed = session.report().total;
    hprintln!(
        "arena: {} bytes reserved (planned on the host), {} needed here",
        ARENA_BYTES,
        needed
    );
    if needed != ARENA_BYTES {
        hprintln!("error: the arena size computed at build time is not exact on this target");
        debug::exit(debug::EXIT_FAILURE);
    }
    hprintln!(
        "steps: {}, macs: {}",
        session.step_count(),
        session.total_macs()
    );
    reference::fill_input(&mut session)?;

    bench_start();
    let result = session.run();
    bench_end();
    result?;

    for line in reference::output_lines(&session) {
        hprintln!("{}", line);
    }
    Ok(())
}

/// Entry marks the start of the measured inference (instruction counter region).
#[no_mangle]
#[inline(never)]
extern "C" fn bench_start() {
    // Distinct bodies: identical functions could be merged into one address.
    black_box(0x5747_u32);
}

/// Entry marks the end of the measured inference.
#[no_mangle]
#[inline(never)]
extern "C" fn bench_end() {
    black_box(0x0E4D_u32);
}
