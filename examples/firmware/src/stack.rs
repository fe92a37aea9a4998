//! Stack high-water mark: how deep the firmware's stack went, measured, so that the RAM
//! estimate of `edgetrim inspect --target cortex-m4` (its stack allowance) is checked
//! against real firmware (scripts/firmware-check.sh), not assumed.
//!
//! [`paint`] fills a window below the current stack pointer with a pattern at start-up;
//! [`used`] finds the lowest word the pattern no longer holds. The runtime keeps tensors in
//! the arena and kernels use small fixed tiles, so the stack stays shallow; the window
//! ([`WINDOW`]) is far larger than any measured depth, and a stack that reaches its end is
//! reported as such rather than under-counted.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Bytes below the stack pointer at [`paint`] that are painted (and so measurable).
pub const WINDOW: usize = 64 * 1024;

const PATTERN: u32 = 0x5EED_C0DE;

/// The bottom of the painted window (0: not painted).
static BOTTOM: AtomicUsize = AtomicUsize::new(0);

extern "C" {
    /// Top of the stack (cortex-m-rt's link.x: the end of RAM).
    static _stack_start: u32;
    /// End of .bss and .uninit: the stack may grow down to here (cortex-m-rt).
    static __sheap: u32;
}

/// Paints the window below the current stack pointer. Call first thing in `main`: the
/// frames already on the stack above it are counted by [`used`] from the stack's top.
#[inline(never)]
pub fn paint() {
    // Leave this function's own frame (and a margin) alone.
    let sp = cortex_m::register::msp::read() as usize - 64;
    let heap = core::ptr::addr_of!(__sheap) as usize;
    let (bottom, top) = (
        sp.saturating_sub(WINDOW).max(heap).next_multiple_of(4),
        sp & !3,
    );
    BOTTOM.store(bottom, Ordering::Relaxed);
    for addr in (bottom..top).step_by(4) {
        // SAFETY: [bottom, top) lies between the end of the statics (__sheap) and below
        // the live stack frames, 4-byte aligned: memory nothing else uses yet.
        unsafe { core::ptr::write_volatile(addr as *mut u32, PATTERN) };
    }
}

/// Deepest stack use since [`paint`], in bytes from the stack's top; `None` when nothing
/// was painted or the stack went past the painted window.
#[inline(never)]
pub fn used() -> Option<usize> {
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let sp = cortex_m::register::msp::read() as usize;
    let bottom = BOTTOM.load(Ordering::Relaxed);
    if bottom == 0 {
        return None;
    }
    let lowest = (bottom..sp)
        .step_by(4)
        // SAFETY: an aligned address in the painted window, in RAM.
        .find(|&addr| unsafe { core::ptr::read_volatile(addr as *const u32) } != PATTERN)?;
    (lowest > bottom).then_some(top - lowest)
}
