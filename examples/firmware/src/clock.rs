//! The runtime's [`Clock`] on a Cortex-M core: the DWT cycle counter (`CYCCNT`) where it
//! counts, SysTick otherwise.
//!
//! Why two sources: every Cortex-M3/M4/M7 has SysTick, but `CYCCNT` is optional (absent
//! on M0/M0+, "present" but stuck at 0 under QEMU), and it is the only one that counts
//! core cycles for 32 bits (67 s at 64 MHz). SysTick is 24 bits wide (0.26 s at 64 MHz),
//! so [`DeviceClock::poll`] is called between the steps of an inference to extend it
//! without an interrupt — an interrupt would add work at host-time-dependent moments and
//! make QEMU's instruction counts irreproducible.
//!
//! Under QEMU neither counts cycles (QEMU models none): SysTick follows the host's clock
//! unless QEMU runs with `-icount`. Its figures are printed labelled as device-clock
//! figures; the work is measured by QEMU's instruction counter instead (lib.rs markers).

use cortex_m::peripheral::{syst::SystClkSource, DCB, DWT, SYST};
use edgetrim_runtime::fps::{Clock, CounterClock};

/// The core clock in Hz: the mps2-an386 FPGA image's 25 MHz. Set the board's own for a
/// real one (e.g. 64 MHz for an nRF52840).
pub const CORE_HZ: u32 = 25_000_000;

/// Which counter a [`DeviceClock`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Source {
    /// DWT `CYCCNT`: core cycles, 32 bits.
    Dwt,
    /// SysTick counting down from `0xFF_FFFF` at the core clock, 24 bits.
    SysTick,
}

impl Source {
    /// How the printed figures should be read.
    pub fn label(self) -> &'static str {
        match self {
            Source::Dwt => "DWT CYCCNT, core cycles",
            Source::SysTick => {
                "SysTick, the DWT cycle counter does not count here (under QEMU: host time, not guest work)"
            }
        }
    }
}

/// A [`Clock`] over the core's cycle counter or SysTick, at [`CORE_HZ`].
pub struct DeviceClock {
    counter: CounterClock<fn() -> u32>,
    source: Source,
}

fn read_dwt() -> u32 {
    DWT::cycle_count()
}

fn read_systick() -> u32 {
    // SysTick counts down from the reload value: turn it into an up-counter.
    0x00FF_FFFF - SYST::get_current()
}

impl DeviceClock {
    /// Starts the DWT cycle counter and keeps it if it runs; otherwise starts SysTick
    /// (free-running, no interrupt) at the core clock.
    pub fn start(dcb: &mut DCB, dwt: &mut DWT, syst: &mut SYST) -> DeviceClock {
        if DWT::has_cycle_counter() {
            dcb.enable_trace();
            DWT::unlock();
            dwt.enable_cycle_counter();
            let before = DWT::cycle_count();
            cortex_m::asm::delay(64);
            if DWT::cycle_count() != before {
                return DeviceClock {
                    counter: CounterClock::new(read_dwt, CORE_HZ, 32),
                    source: Source::Dwt,
                };
            }
            dwt.disable_cycle_counter();
        }
        syst.disable_interrupt();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_counter();
        DeviceClock {
            counter: CounterClock::new(read_systick, CORE_HZ, 24),
            source: Source::SysTick,
        }
    }

    /// The counter this clock reads.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Reads the counter so no wrap goes unnoticed; the same instructions run whatever it
    /// reads (see [`CounterClock::ticks`]).
    #[inline]
    pub fn poll(&mut self) {
        self.counter.ticks();
    }
}

impl Clock for DeviceClock {
    fn now_ns(&mut self) -> u64 {
        self.counter.now_ns()
    }
}
