//! Host side of the firmware check (`scripts/firmware-check.sh`): regenerates the firmware's
//! model, prints the host's outputs for it, and compares them with the firmware's.
//!
//! ```text
//! cargo run --release --example tiny_cnn                 # host outputs, in the firmware's format
//! cargo run --release --example tiny_cnn -- write        # regenerate examples/firmware/tiny_cnn.onnx
//! cargo run --release --example tiny_cnn -- compare LOG  # compare with a firmware log; exit 1 on mismatch
//! ```
//!
//! The input generator and the output format are the firmware's own (`reference.rs`), so
//! both sides run on the same bytes, and the host plans for `Target::CortexM` — the
//! firmware's kernels and block sizes, so every sum runs in the same order. Outputs must
//! then match bit for bit (Rust does not contract `a * b + c` into FMA, and the
//! transcendental functions are the same portable code on both).

mod model;
#[path = "../firmware/src/reference.rs"]
mod reference;

use anyhow::{bail, Context, Result};
use edgetrim_runtime::{Model, Session, Target};
use reference::OutputLine;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {
            for line in host_outputs()? {
                println!("{line}");
            }
            Ok(())
        }
        ["write"] => {
            std::fs::write(model::PATH, model::build()).context(model::PATH)?;
            println!("wrote {}", model::PATH);
            Ok(())
        }
        ["compare", log] => compare(log),
        _ => bail!("usage: tiny_cnn [write | compare FIRMWARE_LOG]"),
    }
}

/// The host runtime's outputs for the committed model on the check's input.
fn host_outputs() -> Result<Vec<OutputLine>> {
    let bytes = std::fs::read(model::PATH).context(model::PATH)?;
    let model = Model::parse(&bytes)?;
    // The firmware's plan: same kernels and blocks, so the same summation order.
    let report = Session::arena_report_for(&model, &[], Target::CortexM)?;
    let mut arena = vec![0u8; report.total + edgetrim_runtime::arena::ALIGN];
    let mut session = Session::with_target(&model, &[], &mut arena, Target::CortexM)?;
    reference::fill_input(&mut session)?;
    session.run()?;
    Ok(reference::output_lines(&session).collect())
}

/// Parses a firmware output line `y[i] = 0x<bits> ...` into (i, value).
fn parse_line(line: &str) -> Option<(usize, f32)> {
    let rest = line.strip_prefix("y[")?;
    let (index, rest) = rest.split_once("] = 0x")?;
    let bits = rest.split_whitespace().next()?;
    Some((
        index.parse().ok()?,
        f32::from_bits(u32::from_str_radix(bits, 16).ok()?),
    ))
}

/// Compares the firmware log's output lines with the host's.
fn compare(log: &str) -> Result<()> {
    let text = std::fs::read_to_string(log).context(log.to_string())?;
    let firmware: Vec<(usize, f32)> = text.lines().filter_map(parse_line).collect();
    let host = host_outputs()?;
    if firmware.len() != host.len() {
        bail!(
            "firmware printed {} outputs, the host computed {}",
            firmware.len(),
            host.len()
        );
    }
    let mut differing = 0usize;
    for (&(index, fw), h) in firmware.iter().zip(&host) {
        if index != h.index {
            bail!(
                "firmware line for y[{index}] where y[{}] was expected",
                h.index
            );
        }
        if fw.to_bits() != h.value.to_bits() {
            differing += 1;
            println!("y[{index}]: firmware {fw:e}, host {:e}", h.value);
        }
    }
    if differing > 0 {
        bail!(
            "{differing} of {} firmware outputs differ from the host's",
            host.len()
        );
    }
    println!("host vs firmware: all {} outputs bit-exact", host.len());
    Ok(())
}
