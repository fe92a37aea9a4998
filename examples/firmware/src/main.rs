//! Cortex-M4F firmware (QEMU `mps2-an386`) that runs a small CNN with edgetrim-runtime and
//! prints its outputs as exact f32 bit patterns — as defmt frames or semihosting text
//! (`out.rs` in the library).
//!
//! Why: it proves the runtime really is `no_std` and heap-free on a microcontroller, that
//! the arena size computed on the host at build time (build.rs) is enough on the device,
//! and — compared line by line with the host's run of the same model on the same input
//! (`scripts/firmware-check.sh`) — that the kernels compute the same numbers there.
//! It runs [`FRAMES`] frames (fill the input, infer) timed by the device clock;
//! `bench_start`/`bench_end` (lib.rs) bracket each inference so the QEMU instruction
//! counter (`run-qemu.sh --region bench_start bench_end`) measures exactly that.
#![no_std]
#![no_main]

mod reference;

use cortex_m_rt::entry;
use edgetrim_firmware::clock::DeviceClock;
use edgetrim_firmware::{check_arena, exit, kernels, say, Bench, FRAMES};
use edgetrim_runtime::{Arena, Error, Model, Session};

include!(concat!(env!("OUT_DIR"), "/arena.rs"));

/// The model, in flash, read in place.
static MODEL: &[u8] = include_bytes!("../tiny_cnn.onnx");

#[entry]
fn main() -> ! {
    edgetrim_firmware::stack::paint();
    exit(run())
}

fn run() -> Result<(), Error> {
    let mut core = cortex_m::Peripherals::take().expect("run() is called once");
    let clock = DeviceClock::start(&mut core.DCB, &mut core.DWT, &mut core.SYST);
    // A static (in .bss, so `arm-none-eabi-size` shows it) handed out exactly once.
    let arena =
        cortex_m::singleton!(: Arena<ARENA_BYTES> = Arena::new()).expect("run() is called once");
    let model = Model::parse(MODEL)?;
    let mut session = Session::with_kernels(&model, &[], &mut arena.0, kernels::<KERNEL_SET>())?;
    check_arena(&session, ARENA_BYTES)?;
    let mut bench = Bench::new(clock);
    for _ in 0..FRAMES {
        bench.begin();
        reference::fill_input(&mut session)?;
        bench.infer(&mut session)?;
        bench.end();
    }
    for line in reference::output_lines(&session) {
        say!("{}", line);
    }
    bench.report();
    Ok(())
}

/// The defmt twin of `OutputLine`'s `Display`: the same bit pattern; the value in
/// defmt's own float notation.
#[cfg(feature = "defmt")]
impl defmt::Format for reference::OutputLine {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "y[{}] = 0x{:08x} {}",
            self.index,
            self.value.to_bits(),
            self.value
        )
    }
}
