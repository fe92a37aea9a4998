//! A probe firmware that links the runtime with one kernel set, so that its flash size
//! minus another probe's is what that set costs in Cortex-M code: the measurement behind
//! `edgetrim inspect --target cortex-m4`'s code estimate (`scripts/measure-kernel-code.sh`
//! builds it once per kernel family and writes the table the CLI embeds).
//!
//! The set comes from `EDGETRIM_PROBE_SET` at build time: `bare` (or unset) links no
//! runtime at all (cortex-m-rt, the panic handler, the exit path: the baseline), a number
//! (`0x10000`, decimal too) parses a model, plans it with `Kernels::only::<SET>()` and runs
//! it — what every firmware does, minus its app. The model bytes come through
//! `black_box`, so nothing is folded away and no model is stored: the probe is never run,
//! only sized. Built only with feature `code-probe` (see Cargo.toml).
//!
//! It also records this target's plan-table entry sizes ([`PlanTables::ENTRY_BYTES`]) as the
//! sizes of the symbols `EDGETRIM_PLAN_ENTRY_0..6` (read with `arm-none-eabi-nm
//! --print-size`), for the host to size Cortex-M arenas.
#![no_std]
#![no_main]

use core::hint::black_box;
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use edgetrim_runtime::ops::kernels::Kernels;
use edgetrim_runtime::{Arena, Model, PlanTables, Session};
use panic_semihosting as _;

/// The probed set, `None` for the bare baseline.
const SET: Option<u32> = parse_set(option_env!("EDGETRIM_PROBE_SET"));

/// `EDGETRIM_PROBE_SET` as a set: `bare`/unset, decimal, or `0x` hex (a bad value fails
/// the build).
const fn parse_set(value: Option<&str>) -> Option<u32> {
    let Some(text) = value else { return None };
    let s = text.as_bytes();
    if s.is_empty() || matches!(s, b"bare") {
        return None;
    }
    let (radix, mut i) = if s.len() > 2 && s[0] == b'0' && (s[1] == b'x' || s[1] == b'X') {
        (16, 2)
    } else {
        (10, 0)
    };
    let mut set: u32 = 0;
    while i < s.len() {
        let digit = match s[i] {
            c @ b'0'..=b'9' => (c - b'0') as u32,
            c @ b'a'..=b'f' if radix == 16 => (c - b'a' + 10) as u32,
            c @ b'A'..=b'F' if radix == 16 => (c - b'A' + 10) as u32,
            b'_' => {
                i += 1;
                continue;
            }
            _ => panic!("EDGETRIM_PROBE_SET: expected bare, a decimal or a 0x hex number"),
        };
        set = match set.checked_mul(radix) {
            Some(v) => v + digit,
            None => panic!("EDGETRIM_PROBE_SET: more than 32 bits"),
        };
        i += 1;
    }
    Some(set)
}

/// One symbol per plan table whose size is that table's entry size on this target.
macro_rules! entry_sizes {
    ($($name:ident = $i:literal;)*) => {$(
        #[no_mangle]
        #[used]
        static $name: [u8; PlanTables::ENTRY_BYTES[$i]] = [0; PlanTables::ENTRY_BYTES[$i]];
    )*};
}

entry_sizes! {
    EDGETRIM_PLAN_ENTRY_0 = 0;
    EDGETRIM_PLAN_ENTRY_1 = 1;
    EDGETRIM_PLAN_ENTRY_2 = 2;
    EDGETRIM_PLAN_ENTRY_3 = 3;
    EDGETRIM_PLAN_ENTRY_4 = 4;
    EDGETRIM_PLAN_ENTRY_5 = 5;
    EDGETRIM_PLAN_ENTRY_6 = 6;
}

/// [`SET`] as a constant generic argument (0 for the bare probe, which never uses it).
const KERNEL_SET: u32 = match SET {
    Some(s) => s,
    None => 0,
};

#[entry]
fn main() -> ! {
    let ok = match SET {
        None => true,
        Some(_) => probe(),
    };
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Parses, plans with the probed set and runs a model the compiler cannot see.
fn probe() -> bool {
    // On the stack, so that the probe's .data/.bss are the runtime's own statics; its size
    // does not change the code.
    let mut arena = Arena::<256>::new();
    let bytes: &[u8] = black_box(&[]);
    let Ok(model) = Model::parse(bytes) else {
        return false;
    };
    let kernels = Kernels::only::<KERNEL_SET>();
    let Ok(mut session) = Session::with_kernels(&model, &[], &mut arena.0, kernels) else {
        return false;
    };
    if let Ok(input) = session.input_mut(0) {
        black_box(input.bytes);
    }
    let ok = session.run().is_ok();
    black_box(session.output(0).bytes);
    ok
}
