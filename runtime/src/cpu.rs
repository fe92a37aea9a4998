//! Which x86 instruction-set extensions the kernels may use.
//!
//! With `std` the CPU is asked at run time (`is_x86_feature_detected!`, cached by std),
//! and [`limit`] can cap the answer: a bench on an AVX-512 machine then measures the code
//! paths an AVX2-only laptop or a plain-Rust build would take. Without `std` nothing is
//! detected: the build's target features decide, at compile time, and there is no cap.
//! Every kernel choice goes through [`x86_has!`], so the rule lives here once.

#[cfg(any(test, feature = "std"))]
use core::sync::atomic::{AtomicU8, Ordering};

/// How far up the x86 extensions the kernels may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// No SIMD kernels: the portable Rust ones (what a Cortex-M runs, on this CPU).
    Portable,
    /// AVX2, FMA and F16C, nothing of AVX-512 (the int8 GEMM then takes `vpmaddubsw`).
    Avx2,
    /// Everything this CPU has.
    Native,
}

#[cfg(any(test, feature = "std"))]
static LIMIT: AtomicU8 = AtomicU8::new(Level::Native as u8);

/// Caps the extensions that kernels chosen from now on may use (plans made before keep
/// theirs). For measuring and testing; a process-wide setting, so set it before planning.
#[cfg(feature = "std")]
pub fn limit(level: Level) {
    LIMIT.store(level as u8, Ordering::Relaxed);
}

/// Whether the cap lets kernels of `level` run (see [`limit`]).
#[cfg(all(target_arch = "x86_64", any(test, feature = "std")))]
pub(crate) fn allows(level: Level) -> bool {
    LIMIT.load(Ordering::Relaxed) >= level as u8
}

/// `x86_has!(Level: "feature", ...)`: whether kernels may use all those target features:
/// the cap allows `Level` and the CPU has them (with `std`), or the build enables them
/// (without).
#[cfg(target_arch = "x86_64")]
macro_rules! x86_has {
    ($level:ident: $($feature:tt),+) => {{
        #[cfg(any(test, feature = "std"))]
        {
            $crate::cpu::allows($crate::cpu::Level::$level)
                $(&& std::is_x86_feature_detected!($feature))+
        }
        #[cfg(not(any(test, feature = "std")))]
        {
            cfg!(all($(target_feature = $feature),+))
        }
    }};
}
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_has;
