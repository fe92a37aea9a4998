//! Which machine a plan is made for.
//!
//! Kernel choice and GEMM block sizes decide how much scratch each node asks for, and so
//! the arena size. Making the target an explicit input of planning lets a host plan *for*
//! a microcontroller — a firmware's build script computes the exact arena the device will
//! need (with [`crate::ArenaReport::for_this_target`] re-sizing the plan tables).

/// The machine a plan is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Target {
    /// Hosts and Linux boards: the fastest kernels this CPU runs, cache-sized blocks.
    Host,
    /// Cortex-M class microcontrollers: 4×4 kernels (the int8 one on the DSP extension
    /// where the core has it) and small blocks, so kernel scratch stays within tens of KiB.
    CortexM,
}

impl Target {
    /// The machine this code is compiled for.
    pub const fn native() -> Target {
        if cfg!(target_arch = "arm") {
            Target::CortexM
        } else {
            Target::Host
        }
    }
}
