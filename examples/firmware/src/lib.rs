//! What every firmware binary of this package shares: the instruction-counter markers, the
//! check that the arena sized on the host at build time is exact here, and the exit path.
//!
//! QEMU models no cycles, so cost is counted in executed instructions by the insncount
//! plugin between the entries of two marker functions (`run-qemu.sh --region A B`):
//! [`bench_start`]/[`bench_end`] bracket one inference, [`layer_start`]/[`layer_end`] each
//! step of it (see [`run_counted`]), so one binary serves both profiles.
#![no_std]

use cortex_m_semihosting::{debug, hprintln};
use edgetrim_runtime::{Error, Session};

/// Prints `arena` and `steps` lines, and fails when the arena planned on the host
/// (`reserved` bytes, from build.rs) differs from what the plan needs on this target.
pub fn check_arena(session: &Session<'_>, reserved: usize) -> Result<(), Error> {
    let needed = session.report().total;
    hprintln!(
        "arena: {} bytes reserved (planned on the host), {} needed here",
        reserved,
        needed
    );
    if needed != reserved {
        hprintln!("error: the arena size computed at build time is not exact on this target");
        debug::exit(debug::EXIT_FAILURE);
    }
    hprintln!(
        "steps: {}, macs: {}",
        session.step_count(),
        session.total_macs()
    );
    Ok(())
}

/// Runs `session` once between the inference markers, with the step markers around each
/// step.
pub fn run_counted(session: &mut Session<'_>) -> Result<(), Error> {
    bench_start();
    layer_start();
    let result = session.run_with(|_| {
        layer_end();
        layer_start();
    });
    bench_end();
    result
}

/// Exits QEMU (semihosting) with success, or prints `error` and fails.
pub fn exit<E: core::fmt::Display>(result: Result<(), E>) -> ! {
    let status = match result {
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
