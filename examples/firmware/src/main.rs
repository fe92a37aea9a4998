//! Cortex-M4F firmware (QEMU `mps2-an386`) that runs a small CNN with edgetrim-runtime and
//! prints its outputs as exact f32 bit patterns over semihosting.
//!
//! Why: it proves the runtime really is `no_std` and heap-free on a microcontroller, that
//! the arena size computed on the host at build time (build.rs) is enough on the device,
//! and — compared line by line with the host's run of the same model on the same input
//! (`scripts/firmware-check.sh`) — that the kernels compute the same numbers there.
//! `bench_start`/`bench_end` (lib.rs) bracket one inference so the QEMU instruction
//! counter (`run-qemu.sh --region bench_start bench_end`) measures exactly that.
#![no_std]
#![no_main]

mod reference;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use edgetrim_firmware::{check_arena, exit, run_counted};
use edgetrim_runtime::{Arena, Error, Model, Session};
use panic_semihosting as _;

include!(concat!(env!("OUT_DIR"), "/arena.rs"));

/// The model, in flash, read in place.
static MODEL: &[u8] = include_bytes!("../tiny_cnn.onnx");

#[entry]
fn main() -> ! {
    exit(run())
}

fn run() -> Result<(), Error> {
    // A static (in .bss, so `arm-none-eabi-size` shows it) handed out exactly once.
    let arena =
        cortex_m::singleton!(: Arena<ARENA_BYTES> = Arena::new()).expect("run() is called once");
    let model = Model::parse(MODEL)?;
    let mut session = Session::new(&model, &[], &mut arena.0)?;
    check_arena(&session, ARENA_BYTES)?;
    reference::fill_input(&mut session)?;
    run_counted(&mut session)?;
    for line in reference::output_lines(&session) {
        hprintln!("{}", line);
    }
    Ok(())
}
