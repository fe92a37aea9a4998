//! Where the firmware's lines go, chosen by a cargo feature:
//! - `defmt-semihosting`: defmt frames over semihosting (QEMU here), decoded on the host by
//!   `defmt-print -e ELF`;
//! - `defmt-rtt`: defmt frames over RTT, for a board with a debug probe (`probe-rs run`);
//! - neither: plain semihosting text (`hprintln!`), the fallback that needs no decoder.
//!
//! defmt sends an index into a table in the ELF instead of the formatted text, so a firmware
//! logging through it carries no `core::fmt` machinery for its messages and spends
//! microseconds, not milliseconds, per line. Both paths print the same lines; only the
//! human-readable float values differ (defmt has no precision or exponent hints), never the
//! bit patterns the host compares.
//!
//! [`say!`](crate::say) takes a format string both `defmt::println!` and `hprintln!` accept:
//! `{}` and integer hints like `{:08x}`. A record type printed with `{}` implements
//! `core::fmt::Display` for the text path and `defmt::Format` for the defmt one.

#[cfg(all(feature = "defmt-semihosting", feature = "defmt-rtt"))]
compile_error!("choose one defmt transport: `defmt-semihosting` or `defmt-rtt`");
#[cfg(all(
    feature = "defmt",
    not(any(feature = "defmt-semihosting", feature = "defmt-rtt"))
))]
compile_error!("feature `defmt` needs a transport: `defmt-semihosting` or `defmt-rtt`");

// The global defmt logger.
#[cfg(feature = "defmt-rtt")]
use defmt_rtt as _;
#[cfg(feature = "defmt-semihosting")]
use defmt_semihosting as _;
// The text path's panic handler: prints the message over semihosting and exits with 1.
#[cfg(not(feature = "defmt"))]
use panic_semihosting as _;

/// Prints one line through the transport the features chose (see the module docs).
#[macro_export]
macro_rules! say {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::println!($fmt $(, $arg)*);
        #[cfg(not(feature = "defmt"))]
        ::cortex_m_semihosting::hprintln!($fmt $(, $arg)*);
    }};
}

/// Prints `error: <e>` through the transport; `e` needs only `Display`.
pub fn say_error<E: core::fmt::Display>(e: &E) {
    #[cfg(feature = "defmt")]
    defmt::println!("error: {}", defmt::Display2Format(e));
    #[cfg(not(feature = "defmt"))]
    cortex_m_semihosting::hprintln!("error: {}", e);
}

/// With defmt, panics are logged as defmt frames too (text would corrupt the frame
/// stream), then the firmware exits with a failure status.
#[cfg(feature = "defmt")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    defmt::println!("panic: {}", defmt::Display2Format(info));
    crate::exit_with(false)
}
