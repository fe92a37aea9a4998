//! `edgetrim`: inspect, run and benchmark ONNX models on edgetrim's no_std runtime.
//!
//! The binary is a thin layer over the library crates: it parses flags, reads and writes
//! files, and formats reports. `main` owns the exit code: 0 on success, 1 on any error
//! (printed as one `edgetrim: ...` line on stderr), 2 for command-line usage errors (clap).

mod annotate;
mod asr;
mod backend;
mod classify;
mod cmd;
mod detector;
mod footprint;
mod human;
mod ihex;
mod inputs;
mod latency;
mod npy;
mod plot;
mod progress;
mod video;

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

/// Take trained neural networks to edge devices.
#[derive(Parser, Debug)]
#[command(
    name = "edgetrim",
    version,
    about,
    long_about = "Take trained neural networks to edge devices.\n\n\
        edgetrim runs ONNX models on a no_std, zero-heap runtime (\"nano\") that needs one \
        fixed-size arena. These commands check a model on a host before it goes to a device: \
        what it costs, whether it runs, whether its numbers match, and how fast it is.\n\n\
        With no command, runs `edgetrim demo`: compress the bundled YOLO9tr pavement-damage \
        detector and measure mAP and FPS before and after on generated road data.",
    after_help = "\
Examples:
  edgetrim                                       the demo: compress YOLO9tr, mAP + FPS before/after
  edgetrim inspect model.onnx                    ops, params, MACs, arena size, unsupported ops
  edgetrim compress model.onnx -o small.onnx --quantize fp16   clean, fp16, aligned; cost report
  edgetrim run model.onnx --input x.npy --output-dir out/
  edgetrim bench model.onnx --backend both       FPS and latency, nano vs tract
  edgetrim datagen pavement --images 100 --out data/train   synthetic road-damage data
  edgetrim datagen speech --split train --count 1000 --out data/speech/train   spoken commands
  edgetrim eval-detect models/zoo/yolo9tr-s.onnx --data data/test   mAP50, mAP50-95
  edgetrim fps models/zoo/yolo9tr-s.onnx --video road.y4m --out annotated.y4m
  edgetrim asr models/zoo/rnnt-todm --wav note.wav       streaming transcript, RTF, latency
  edgetrim eval-asr models/zoo/rnnt-todm --data data/speech/test   WER, CER, RTF
  edgetrim slices models/zoo/rnnt-todm --eval asr:data/speech/test --plot slices.svg
  edgetrim pack model.onnx --target cortex-m4 -o model.bin    flashable image: header, CRC, arena
  edgetrim verify model.bin                      is the image intact and runnable?

Run `edgetrim help <command>` for each command's options and more examples."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Highest x86 instruction set nano's kernels may use: native (all this CPU has), avx2
    /// (no AVX-512, as on most laptops), portable (plain Rust, the code a Cortex-M runs).
    /// Measures a slower CPU's code paths on this one; tract is not affected
    #[arg(long, global = true, value_enum, env = "EDGETRIM_CPU", default_value_t = Cpu::Native)]
    cpu: Cpu,
}

/// The values of `--cpu` (see [`edgetrim_runtime::cpu::Level`]).
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Cpu {
    Native,
    Avx2,
    Portable,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Report a model's inputs, outputs, ops, params, MACs, arena size and unsupported ops.
    Inspect(cmd::inspect::Args),
    /// Compress a model (clean, fp16, aligned layout) and report what each pass cost.
    Compress(Box<cmd::compress::Args>),
    /// Run a model once on .npy inputs and write its outputs as .npy files.
    Run(cmd::run::Args),
    /// Measure FPS and latency percentiles, optionally against tract and per node.
    Bench(cmd::bench::Args),
    /// Generate synthetic data: pavement-damage images (YOLO format), road videos (Y4M) and
    /// spoken inspection commands (WAV + transcripts).
    Datagen(cmd::datagen::Args),
    /// Measure a YOLO detector's COCO mAP50 / mAP50-95 on a YOLO-format folder.
    EvalDetect(cmd::eval_detect::Args),
    /// Run a detector on a video: FPS, per-stage latency, annotated output.
    Fps(cmd::fps::Args),
    /// Transcribe a WAV (or a stream on stdin) with a streaming RNN-T model folder.
    Asr(cmd::asr::Args),
    /// Measure a streaming RNN-T's WER, CER and real-time factor on a speech folder.
    EvalAsr(cmd::eval_asr::Args),
    /// List a supernet folder's slices with their size, MACs and arena (and WER with --eval).
    Slices(cmd::slices::Args),
    /// The main job on bundled defaults: compress YOLO9tr, mAP and FPS before and after.
    Demo(cmd::demo::Args),
    /// Pack a model as a flashable image (raw, Intel HEX or a Rust module) with a checked header.
    Pack(cmd::pack::Args),
    /// Check a packed model image (header, CRC, payload, arena figure); exit 0 if valid.
    Verify(cmd::verify::Args),
}

/// Whether `err` is a closed stdout (e.g. `edgetrim inspect m.onnx | head`), which is not
/// a failure of the command.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    edgetrim_runtime::cpu::limit(match cli.cpu {
        Cpu::Native => edgetrim_runtime::cpu::Level::Native,
        Cpu::Avx2 => edgetrim_runtime::cpu::Level::Avx2,
        Cpu::Portable => edgetrim_runtime::cpu::Level::Portable,
    });
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let command = cli
        .command
        .unwrap_or_else(|| Command::Demo(cmd::demo::Args::default()));
    let result = match command {
        Command::Inspect(args) => cmd::inspect::run(args, &mut out),
        Command::Compress(args) => cmd::compress::run(*args, &mut out),
        Command::Run(args) => cmd::run::run(args, &mut out),
        Command::Bench(args) => cmd::bench::run(args, &mut out),
        Command::Datagen(args) => cmd::datagen::run(args, &mut out),
        Command::EvalDetect(args) => cmd::eval_detect::run(args, &mut out),
        Command::Fps(args) => cmd::fps::run(args, &mut out),
        Command::Asr(args) => cmd::asr::run(args, &mut out),
        Command::EvalAsr(args) => cmd::eval_asr::run(args, &mut out),
        Command::Slices(args) => cmd::slices::run(args, &mut out),
        Command::Demo(args) => cmd::demo::run(args, &mut out),
        Command::Pack(args) => cmd::pack::run(args, &mut out),
        Command::Verify(args) => cmd::verify::run(args, &mut out),
    }
    .and_then(|()| Ok(out.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("edgetrim: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
