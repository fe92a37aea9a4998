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
//! both sides run on the same bytes. Outputs compare bit for bit; when they differ (kernels
//! may sum in another order on the host, e.g. vectorised), each element must stay within
//! [`TOLERANCE`] and the largest difference is printed.

mod model;
#[path = "../firmware/src/reference.rs"]
mod reference;

use anyhow::{bail, Context, Result};
use edgetrim_runtime::{Model, Session};
use reference::OutputLine;

/// Largest accepted |host - firmware| per output element (the outputs are probabilities).
const TOLERANCE: f32 = 1e-6;

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
    let report = Session::arena_report(&model, &[])?;
    let mut arena = vec![0u8; report.total + edgetrim_runtime::arena::ALIGN];
    let mut session = Session::new(&model, &[], &mut arena)?;
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
    let (mut differing, mut max_diff, mut max_ulps) = (0usize, 0f32, 0u32);
    for (&(index, fw), h) in firmware.iter().zip(&host) {
        if index != h.index {
            bail!(
                "firmware line for y[{index}] where y[{}] was expected",
                h.index
            );
        }
        if fw.to_bits() != h.value.to_bits() {
            differing += 1;
            let diff = (fw - h.value).abs();
            max_diff = if diff.is_nan() {
                f32::INFINITY
            } else {
                max_diff.max(diff)
            };
            max_ulps = max_ulps.max(ulps_apart(fw, h.value));
        }
    }
    if differing == 0 {
        println!("host vs firmware: all {} outputs bit-exact", host.len());
        return Ok(());
    }
    println!(
        "host vs firmware: {differing} of {} outputs differ, max |diff| = {max_diff:e} \
         ({max_ulps} ulp; tolerance {TOLERANCE:e})",
        host.len()
    );
    if max_diff > TOLERANCE {
        bail!("firmware outputs differ from the host's beyond the tolerance");
    }
    Ok(())
}

/// Distance in units in the last place (representable f32 values between `a` and `b`).
fn ulps_apart(a: f32, b: f32) -> u32 {
    // Map the sign-magnitude bit patterns onto a monotonic integer line.
    let key = |x: f32| {
        let bits = x.to_bits() as i32;
        if bits < 0 {
            i32::MIN - bits
        } else {
            bits
        }
    };
    key(a).abs_diff(key(b))
}
