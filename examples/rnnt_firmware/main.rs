//! Host side of the speech firmware check (`scripts/firmware-check.sh`): runs the firmware's
//! RNN-T slice on the firmware's utterance, prints the results in the firmware's format,
//! compares them with a firmware log, and turns QEMU's instruction counts into the cost per
//! second of audio and per chunk.
//!
//! ```text
//! cargo run --example rnnt_firmware                          # host results, in the firmware's format
//! cargo run --example rnnt_firmware -- compare LOG           # compare with a firmware log; exit 1 on mismatch
//! cargo run --example rnnt_firmware -- cost BENCH CHUNKS     # insncount reports -> per second of audio, per chunk
//! ```
//!
//! The streaming, the digest and the printed format are the firmware's own (`speech.rs`),
//! and the host plans the three graphs for `Target::CortexM`: the firmware's kernels and
//! blocks, so every float sum runs in the same order and every encoder output must match bit
//! for bit. `compare` also requires the transcript to equal the utterance's reference text.
//!
//! The assets (`examples/firmware/rnnt-d2w05-int8/`, `speech.s16le`, `speech.tsv`) are
//! written from `models/zoo/rnnt-todm` and the test split by
//! `scripts/gen-rnnt-firmware-assets.sh`.

#[path = "../firmware/src/speech.rs"]
mod speech;

use anyhow::{bail, Context, Result};
use edgetrim_models::asr::nano::{self, NanoRecogniser};
use edgetrim_models::asr::{Role, Vocab};
use edgetrim_runtime::Target;
use speech::Transcript;

/// The firmware's assets.
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/firmware");

/// Lines of a firmware log that are compared (what `speech::result_lines` prints).
const RESULT_PREFIXES: [&str; 3] = ["encoder: ", "frames: ", "transcript: "];

/// Clock of the estimate: a 64 MHz Cortex-M4 at 1 instruction per cycle.
const HZ: f64 = 64e6;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {
            let run = host_run()?;
            println!("reference: {}", run.reference);
            for line in speech::result_lines(&run.transcript) {
                println!("{line}");
            }
            Ok(())
        }
        ["compare", log] => compare(log),
        ["cost", bench, chunks] => cost(bench, chunks),
        _ => bail!("usage: rnnt_firmware [compare FIRMWARE_LOG | cost BENCH_REPORT CHUNK_REPORT]"),
    }
}

/// The host's run and what the cost needs from it.
struct HostRun {
    transcript: Transcript,
    reference: String,
    /// Samples per pushed block, and of the utterance.
    block: usize,
    samples: usize,
    tokens: usize,
    /// MACs of one run of the encoder, predictor and joiner.
    macs: [u64; 3],
}

fn read(file: &str) -> Result<Vec<u8>> {
    let path = format!("{DIR}/{file}");
    std::fs::read(&path)
        .with_context(|| format!("{path} (run scripts/gen-rnnt-firmware-assets.sh)"))
}

/// Transcribes the committed utterance with the committed slice, planned for the firmware's
/// target.
fn host_run() -> Result<HostRun> {
    let slice = |g: &str| read(&format!("rnnt-d2w05-int8/{g}"));
    let (encoder, predictor, joiner) = (
        slice("encoder.onnx")?,
        slice("predictor.onnx")?,
        slice("joiner.onnx")?,
    );
    let tokens = String::from_utf8(slice("tokens.txt")?)?;
    let pcm = read("speech.s16le")?;
    let tsv = String::from_utf8(read("speech.tsv")?)?;
    let models = speech::models(&encoder, &predictor, &joiner)?;
    let vocab = Vocab::new(&tokens)?;
    // Larger than needed: the recogniser takes what it needs from the front.
    let mut arena = vec![0u8; 4 << 20];
    let (mut rec, _) =
        nano::recogniser_for::<{ speech::TOKENS }>(&models, &mut arena, Target::CortexM)?;
    let transcript = speech::transcribe(&mut rec, &mut Plain, &vocab, &pcm, no_marker, no_marker)?;
    let macs = [Role::Encoder, Role::Predictor, Role::Joiner]
        .map(|role| rec.graph(role).session().total_macs());
    Ok(HostRun {
        reference: speech::reference(&tsv)?.to_string(),
        block: speech::block_samples(&rec),
        samples: pcm.len() / 2,
        tokens: rec.tokens().len(),
        macs,
        transcript,
    })
}

/// [`NanoRecogniser::push`] and [`NanoRecogniser::finish`], untimed: the host's results,
/// not its speed, are what the firmware is checked against.
struct Plain;

impl<const T: usize> speech::Feed<T> for Plain {
    fn push(
        &mut self,
        rec: &mut NanoRecogniser<'_, T>,
        samples: &[i16],
    ) -> Result<(), edgetrim_models::Error> {
        rec.push(samples)
    }

    fn finish(&mut self, rec: &mut NanoRecogniser<'_, T>) -> Result<(), edgetrim_models::Error> {
        rec.finish()
    }
}

/// The firmware's instruction-counter markers, which the host does not need.
extern "C" fn no_marker() {}

/// Compares the firmware log's result lines with the host's, and the transcript with the
/// reference.
fn compare(log: &str) -> Result<()> {
    let text = std::fs::read_to_string(log).context(log.to_string())?;
    let firmware: Vec<&str> = text
        .lines()
        .filter(|l| RESULT_PREFIXES.iter().any(|p| l.starts_with(p)))
        .collect();
    let run = host_run()?;
    let host: Vec<String> = speech::result_lines(&run.transcript)
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut differing = 0;
    for (h, f) in host.iter().zip(&firmware) {
        if h != f {
            println!("host:     {h}\nfirmware: {f}");
            differing += 1;
        }
    }
    if differing > 0 || firmware.len() != host.len() {
        bail!(
            "{differing} result lines differ; the firmware printed {}, the host {}",
            firmware.len(),
            host.len()
        );
    }
    if *run.transcript.text != run.reference {
        bail!(
            "host and firmware agree, but transcribe {:?} where the reference says {:?}: \
             regenerate the assets with another UTTERANCE (scripts/gen-rnnt-firmware-assets.sh)",
            &*run.transcript.text,
            run.reference
        );
    }
    println!(
        "host vs firmware: all {} encoder outputs ({} bytes) bit-exact, transcript identical and equal to the reference",
        run.transcript.digest.runs, run.transcript.digest.bytes
    );
    Ok(())
}

/// The region counts of an insncount report (`insncount: region #K: N instructions`).
fn regions(report: &str) -> Result<Vec<u64>> {
    let text = std::fs::read_to_string(report).context(report.to_string())?;
    text.lines()
        .filter_map(|l| l.strip_prefix("insncount: region #")?.split(": ").nth(1))
        .map(|rest| rest.trim_end_matches(" instructions").parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{report}: region lines"))
}

/// Prints the instructions per utterance, per second of audio and per chunk, from the
/// reports of `run-qemu.sh --region bench_start bench_end` (`bench`: one region, the whole
/// utterance) and `--region layer_start layer_end` (`chunks`: one region per pushed block,
/// then the finish), with the real-time factor and latency at an assumed 64 MHz.
fn cost(bench: &str, chunks: &str) -> Result<()> {
    let run = host_run()?;
    let t = &run.transcript;
    let [total] = regions(bench)?[..] else {
        bail!("{bench}: expected one region (bench_start .. bench_end)");
    };
    let blocks = regions(chunks)?;
    if blocks.len() != t.ran_chunk.len() {
        bail!(
            "{chunks} has {} regions, the host marked {}",
            blocks.len(),
            t.ran_chunk.len()
        );
    }
    let seconds = run.samples as f64 / 16000.0;
    let per_second = total as f64 / seconds;
    // The predictor runs once per token and once at the reset; the joiner once per token and
    // once per frame that ends on a blank (all but those cut at max_symbols: an upper bound).
    let [enc, pred, join] = run.macs;
    let macs = t.digest.runs as u64 * enc
        + (run.tokens as u64 + 1) * pred
        + (t.frames + run.tokens) as u64 * join;
    println!(
        "rnnt: instructions per utterance: {total} for {:.0} ms of audio (Cortex-M4F, QEMU TCG count); \
         {:.1} M per second of audio",
        seconds * 1e3,
        per_second / 1e6
    );
    println!(
        "rnnt: at 64 MHz and 1 instruction/cycle (an estimate): real-time factor {:.2}, {:.1} ms per second of audio",
        per_second / HZ,
        per_second / HZ * 1e3
    );
    println!(
        "rnnt: MACs <= {macs} ({} encoder chunks, {} tokens, {} frames): {:.2} instructions/MAC",
        t.digest.runs,
        run.tokens,
        t.frames,
        total as f64 / macs as f64
    );
    // The regions that ran an encoder chunk (every push but the first, and the last push
    // and the finish when the utterance's length makes them complete one).
    let mut per_chunk: Vec<u64> = blocks
        .iter()
        .zip(&t.ran_chunk)
        .filter_map(|(&n, &ran)| ran.then_some(n))
        .collect();
    if per_chunk.len() != t.digest.runs || per_chunk.is_empty() {
        bail!(
            "{} regions ran a chunk, the encoder ran {} times",
            per_chunk.len(),
            t.digest.runs
        );
    }
    per_chunk.sort_unstable();
    let mean = per_chunk.iter().sum::<u64>() as f64 / per_chunk.len() as f64;
    let (p50, max) = (
        per_chunk[per_chunk.len() / 2],
        per_chunk[per_chunk.len() - 1],
    );
    let ms = |n: f64| n / HZ * 1e3;
    println!(
        "rnnt: per encoder chunk ({:.0} ms of audio; {} chunks): instructions mean {mean:.0}, p50 {p50}, max {max}; \
         latency at 64 MHz mean {:.1} ms, p50 {:.1} ms, max {:.1} ms",
        run.block as f64 / 16.0,
        per_chunk.len(),
        ms(mean),
        ms(p50 as f64),
        ms(max as f64)
    );
    Ok(())
}
