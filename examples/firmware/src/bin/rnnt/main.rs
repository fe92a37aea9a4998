//! Cortex-M4F firmware (QEMU `mps2-an386`): streaming speech recognition with the smallest
//! int8 slice of the RNN-T TODM supernet (`models/zoo/rnnt-todm`, depth 2, width 0.5) on a
//! bundled utterance of the held-out test split (voices never heard in training).
//!
//! Why: it shows the recogniser of `edgetrim-models` — front-end, three graphs, greedy
//! search — running heap-free on a microcontroller from graphs read in place out of flash,
//! in one arena sized on the host at build time (build.rs), and — compared with the host's
//! run of the same slice on the same audio (`scripts/firmware-check.sh`,
//! `examples/rnnt_firmware`) — that every encoder output and the transcript are
//! bit-identical to the host's.
//!
//! The three graphs are embedded as raw ONNX (`include_bytes!`), as the other firmware do,
//! not as `edgetrim pack` images: an image header describes at most 4 inputs and outputs
//! and the encoder has 9 (the chunk and 2 LSTM states per layer in, the same out); the
//! runtime's ONNX reader already refuses malformed bytes with a typed error.
//!
//! Prints the arena, the MACs per graph run, the reference text, the results (encoder
//! digest, frames, transcript) and each chunk's latency and the real-time factor on the
//! device clock — as defmt frames or semihosting text (`out.rs` in the library).
//! `bench_start`/`bench_end` bracket the whole utterance and `layer_start`/`layer_end` each
//! pushed chunk of audio for the instruction counter (lib.rs), which is what measures the
//! work under QEMU.
#![no_std]
#![no_main]

#[path = "../../speech.rs"]
mod speech;

use cortex_m_rt::entry;
use edgetrim_firmware::clock::DeviceClock;
use edgetrim_firmware::{bench_end, bench_start, exit, layer_end, layer_start, say};
use edgetrim_models::asr::nano::{self, NanoRecogniser};
use edgetrim_models::asr::{Role, Vocab};
use edgetrim_models::Error;
use edgetrim_runtime::fps::{Clock, FpsMeter};
use edgetrim_runtime::Arena;

include!(concat!(env!("OUT_DIR"), "/rnnt_arena.rs"));

/// The slice's graphs and vocabulary (written by scripts/gen-rnnt-firmware-assets.sh).
static ENCODER: &[u8] = include_bytes!("../../../rnnt-d2w05-int8/encoder.onnx");
static PREDICTOR: &[u8] = include_bytes!("../../../rnnt-d2w05-int8/predictor.onnx");
static JOINER: &[u8] = include_bytes!("../../../rnnt-d2w05-int8/joiner.onnx");
static TOKENS: &str = include_str!("../../../rnnt-d2w05-int8/tokens.txt");

/// The utterance: raw 16 kHz mono int16 little-endian, and its `transcripts.tsv` line.
static PCM: &[u8] = include_bytes!("../../../speech.s16le");
static UTTERANCE: &str = include_str!("../../../speech.tsv");

/// Encoder chunks whose latencies the meter keeps (10 s of audio at 160 ms a chunk).
const CHUNKS: usize = 64;

#[entry]
fn main() -> ! {
    edgetrim_firmware::stack::paint();
    exit(run())
}

fn run() -> Result<(), Error> {
    let mut core = cortex_m::Peripherals::take().expect("run() is called once");
    let mut clock = DeviceClock::start(&mut core.DCB, &mut core.DWT, &mut core.SYST);
    // A static (in .bss, so `arm-none-eabi-size` shows it) handed out exactly once.
    let arena =
        cortex_m::singleton!(: Arena<ARENA_BYTES> = Arena::new()).expect("run() is called once");
    let models = speech::models(ENCODER, PREDICTOR, JOINER)?;
    let vocab = Vocab::new(TOKENS)?;
    let (mut rec, sizes) = nano::recogniser::<{ speech::TOKENS }>(&models, &mut arena.0)?;
    say!(
        "arena: {} bytes reserved (planned on the host): encoder {}, predictor {}, joiner {}, scratch {}",
        ARENA_BYTES,
        sizes.encoder,
        sizes.predictor,
        sizes.joiner,
        sizes.scratch
    );
    if sizes != ARENA_SIZES {
        return Err(Error::Invalid(
            "the recogniser arena computed at build time is not exact on this target",
        ));
    }
    let macs = |role| rec.graph(role).session().total_macs();
    say!(
        "macs: encoder {} per chunk, predictor {} per token, joiner {} per query",
        macs(Role::Encoder),
        macs(Role::Predictor),
        macs(Role::Joiner)
    );
    let audio_ms = duration_ms(PCM);
    say!(
        "audio: {} samples ({} ms), pushed {} samples at a time",
        PCM.len() / 2,
        audio_ms,
        speech::block_samples(&rec)
    );
    say!("reference: {}", speech::reference(UTTERANCE)?);
    let mut meter = FpsMeter::<CHUNKS>::new(0);
    let mut feed = Metered {
        clock: &mut clock,
        meter: &mut meter,
    };
    bench_start();
    let transcript = speech::transcribe(&mut rec, &mut feed, &vocab, PCM, layer_start, layer_end);
    bench_end();
    let transcript = transcript?;
    say!("regions: {}", transcript.ran_chunk.len());
    say!("tokens: {}", rec.tokens().len());
    for line in speech::result_lines(&transcript) {
        say!("{}", line);
    }
    if let Some(s) = meter.stats() {
        say!(
            "latency per chunk: {} chunks, mean {} us, p50 {} us, p99 {} us, max {} us (device clock: {})",
            s.frames,
            s.mean_ns / 1000,
            s.p50_ns / 1000,
            s.p99_ns / 1000,
            s.max_ns / 1000,
            clock.source().label()
        );
        let compute_us = s.mean_ns / 1000 * s.frames as u64;
        say!(
            "real-time factor: {} us of compute for {} ms of audio (device clock)",
            compute_us,
            audio_ms
        );
    }
    Ok(())
}

/// The metered pushes: each encoder chunk's compute time, from its last sample to its
/// tokens, goes into `meter` (read on `clock`).
struct Metered<'c, C: Clock, const N: usize> {
    /// The device clock.
    clock: &'c mut C,
    /// One latency per encoder chunk.
    meter: &'c mut FpsMeter<N>,
}

impl<C: Clock, const N: usize, const T: usize> speech::Feed<T> for Metered<'_, C, N> {
    fn push(&mut self, rec: &mut NanoRecogniser<'_, T>, samples: &[i16]) -> Result<(), Error> {
        rec.push_metered(samples, self.clock, self.meter)
    }

    fn finish(&mut self, rec: &mut NanoRecogniser<'_, T>) -> Result<(), Error> {
        rec.finish_metered(self.clock, self.meter)
    }
}

/// Audio length in milliseconds of `pcm` bytes.
fn duration_ms(pcm: &[u8]) -> usize {
    pcm.len() / 2 * 1000 / edgetrim_models::audio::SAMPLE_RATE as usize
}

/// The defmt twin of `ResultLine`'s `Display` (the same text).
#[cfg(feature = "defmt")]
impl defmt::Format for speech::ResultLine<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            speech::ResultLine::Digest(d) => defmt::write!(
                f,
                "encoder: {} runs, {} bytes, fnv1a64 0x{:016x}",
                d.runs,
                d.bytes,
                d.fnv1a
            ),
            speech::ResultLine::Frames(n) => defmt::write!(f, "frames: {}", n),
            speech::ResultLine::Text(t) => defmt::write!(f, "transcript: {}", t),
        }
    }
}
