//! Host side of the pavement-detection firmware check (`scripts/firmware-check.sh`): runs
//! the firmware's int8 YOLO9tr-n on the firmware's frame, prints the results in the
//! firmware's format, compares them with a firmware log, and turns a per-step instruction
//! count from QEMU into a per-layer profile.
//!
//! ```text
//! cargo run --example yolo_firmware                    # host results, in the firmware's format
//! cargo run --example yolo_firmware -- frame           # regenerate examples/firmware/road128.rgb
//! cargo run --example yolo_firmware -- compare LOG     # compare with a firmware log; exit 1 on mismatch
//! cargo run --example yolo_firmware -- compare LOG f32 # ... of the float32 build (feature f32-model)
//! cargo run --example yolo_firmware -- layers REPORT   # instructions per step and per MAC
//! ```
//!
//! The pre/post-processing and the printed format are the firmware's own (`pavement.rs`),
//! and the host plans for `Target::CortexM`: the firmware's blocks, with the portable int8
//! kernel where the firmware runs the DSP one. Integer sums are exact in any order, so every
//! head value — and so every detection — must match bit for bit.
//!
//! The committed model is made with (`data/` is git-ignored):
//! ```text
//! edgetrim datagen pavement --split val --images 64 --size 128 --out data/calib128
//! edgetrim compress models/zoo/yolo9tr-n.onnx -o examples/firmware/yolo9tr-n-int8-128.onnx \
//!   --input-shape images=1x3x128x128 --quantize int8 --calib images:data/calib128 \
//!   --act-tables --pow2-scales
//! ```
//! (`--act-tables`: the convs feeding int8 convs compute their SiLU as a 256-entry table;
//! `--pow2-scales`: activation scales are powers of two, so requantizing multiplies instead
//! of divides. The firmware checks both against the host. Adding `--int8-joins` makes the
//! firmware faster but its arena larger, since the planner's working tables grow with the
//! QDQ nodes it adds: the README's Cortex-M4 row has both.)

#[path = "../firmware/src/pavement.rs"]
mod pavement;

use anyhow::{anyhow, bail, Context, Result};
use edgetrim_models::datagen::{scene::generate_image, Split};
use edgetrim_runtime::{Model, Session, Target};
use pavement::{Buffers, Head, OutputDigest, FRAME_SIZE};
use std::collections::BTreeMap;

/// The committed int8 model.
const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/firmware/yolo9tr-n-int8-128.onnx"
);

/// Its float32 original, which the firmware's `f32-model` build runs
/// (`edgetrim compress models/zoo/yolo9tr-n.onnx -o examples/firmware/yolo9tr-n-f32-128.onnx`:
/// cleaned and laid out, the same function).
const MODEL_F32: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/firmware/yolo9tr-n-f32-128.onnx"
);

/// The committed frame, interleaved RGB8.
const FRAME: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/firmware/road128.rgb");

/// The frame is image `FRAME_INDEX` of the test split (seed 0): never seen in training or
/// calibration (val), with several damage instances.
const FRAME_INDEX: u64 = 6;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {
            for line in host_run(MODEL)?.lines {
                println!("{line}");
            }
            Ok(())
        }
        ["frame"] => {
            std::fs::write(FRAME, frame()).context(FRAME)?;
            println!("wrote {FRAME}");
            Ok(())
        }
        ["compare", log] => compare(log, MODEL),
        ["compare", log, "f32"] => compare(log, MODEL_F32),
        ["layers", report] => layers(report),
        _ => bail!(
            "usage: yolo_firmware [frame | compare FIRMWARE_LOG [f32] | layers INSNCOUNT_REPORT]"
        ),
    }
}

/// The frame as generated (what `road128.rgb` must hold).
fn frame() -> Vec<u8> {
    generate_image(Split::Test, 0, FRAME_INDEX, FRAME_SIZE).rgb
}

/// The host's run: its printed result lines and what each step is.
struct HostRun {
    lines: Vec<String>,
    /// `(op, node, MACs)` per step.
    steps: Vec<(String, String, u64)>,
}

/// Runs a committed model on the committed frame, planned for the firmware's target.
fn host_run(path: &str) -> Result<HostRun> {
    let bytes = std::fs::read(path).context(path.to_string())?;
    let model = Model::parse(&bytes)?;
    let frame = std::fs::read(FRAME).context(FRAME)?;
    if frame != self::frame() {
        bail!("{FRAME} is stale: run `cargo run --example yolo_firmware -- frame`");
    }
    let report = Session::arena_report_for(&model, &[], Target::CortexM)?;
    let mut arena = vec![0u8; report.total + edgetrim_runtime::arena::ALIGN];
    let mut session = Session::with_target(&model, &[], &mut arena, Target::CortexM)?;
    let head = Head::new(&model, &session).map_err(|e| anyhow!("{path}: {e}"))?;
    let letterbox =
        pavement::preprocess(&mut session, &head, &frame).map_err(|e| anyhow!("{FRAME}: {e}"))?;
    session.run()?;
    let mut buffers = Box::new(Buffers::new());
    let detections = pavement::postprocess(&session, &head, &letterbox, &mut buffers)
        .map_err(|e| anyhow!("{path}: decoding the head: {e}"))?;
    let mut lines = vec![
        OutputDigest::of(&session).to_string(),
        format!("detections: {}", detections.len()),
    ];
    lines.extend(pavement::detection_lines(&detections, &head).map(|l| l.to_string()));
    let steps = (0..session.step_count())
        .map(|k| {
            let s = session.step_info(k);
            (s.op.to_string(), s.node.to_string(), s.macs)
        })
        .collect();
    Ok(HostRun { lines, steps })
}

/// Compares the firmware log's result lines with the host's run of `model`.
fn compare(log: &str, model: &str) -> Result<()> {
    let text = std::fs::read_to_string(log).context(log.to_string())?;
    let firmware: Vec<&str> = text.lines().filter(|l| is_result_line(l)).collect();
    let host = host_run(model)?.lines;
    let differing = host
        .iter()
        .zip(&firmware)
        .filter(|(h, f)| {
            let differs = compared_part(h) != compared_part(f);
            if differs {
                println!("host:     {h}\nfirmware: {f}");
            }
            differs
        })
        .count();
    if differing > 0 || firmware.len() != host.len() {
        bail!(
            "{differing} result lines differ; the firmware printed {}, the host {}",
            firmware.len(),
            host.len()
        );
    }
    println!(
        "host vs firmware: head output and all {} detections bit-exact",
        host.len() - 2
    );
    Ok(())
}

/// What is compared of a result line: everything before the values for people in
/// parentheses, which the firmware's defmt build prints in defmt's own float notation.
fn compared_part(line: &str) -> &str {
    line.split_once(" (").map_or(line, |(exact, _)| exact)
}

/// Whether a log line is one of the compared results (the head digest and the detections).
fn is_result_line(line: &str) -> bool {
    ["head: ", "detections: ", "det["]
        .iter()
        .any(|p| line.starts_with(p))
}

/// Prints instructions per step and per MAC from an insncount report of
/// `run-qemu.sh --region layer_start layer_end`: one region per step, in order, for each
/// of the firmware's frames; every frame must have executed the same instructions.
fn layers(report: &str) -> Result<()> {
    let text = std::fs::read_to_string(report).context(report.to_string())?;
    let counts: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("insncount: region #")?.split(": ").nth(1))
        .map(|rest| rest.trim_end_matches(" instructions").parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{report}: region lines"))?;
    let steps = host_run(MODEL)?.steps;
    if steps.is_empty() || counts.is_empty() || !counts.len().is_multiple_of(steps.len()) {
        bail!(
            "{report} has {} regions, not a whole number of runs of the plan's {} steps",
            counts.len(),
            steps.len()
        );
    }
    let (first, frames) = counts.split_at(steps.len());
    if let Some(k) = frames.chunks(steps.len()).position(|f| f != first) {
        bail!(
            "{report}: frame {} executed other instructions than frame 0",
            k + 1
        );
    }
    let counts = first;
    let per_mac = |insns: u64, macs: u64| {
        if macs == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", insns as f64 / macs as f64)
        }
    };
    let mut by_op: BTreeMap<&str, (usize, u64, u64)> = BTreeMap::new();
    for ((op, _, macs), &insns) in steps.iter().zip(counts) {
        let e = by_op.entry(op).or_default();
        *e = (e.0 + 1, e.1 + insns, e.2 + macs);
    }
    let total: u64 = counts.iter().sum();
    println!(
        "{:<14} {:>5} {:>13} {:>6} {:>12} {:>9}",
        "op", "steps", "instructions", "share", "MACs", "insn/MAC"
    );
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by_key(|(_, (_, insns, _))| std::cmp::Reverse(*insns));
    for (op, (n, insns, macs)) in ops {
        println!(
            "{op:<14} {n:>5} {insns:>13} {:>5.1}% {macs:>12} {:>9}",
            100.0 * insns as f64 / total as f64,
            per_mac(insns, macs)
        );
    }
    println!("\nheaviest steps");
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(counts[k]));
    for &k in order.iter().take(12) {
        let (op, node, macs) = &steps[k];
        println!(
            "{k:>4} {op:<14} {:>11} {:>11} {:>6}  {node}",
            counts[k],
            macs,
            per_mac(counts[k], *macs)
        );
    }
    Ok(())
}
