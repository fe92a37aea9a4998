//! `edgetrim asr`: transcribe a WAV file or a live stream on stdin, printing the text as the
//! recogniser emits it, then the real-time factor and the per-chunk latency.
//!
//! The audio is read and pushed one encoder chunk at a time (160 ms for the zoo model), the
//! way a device's audio DMA would deliver it, so the printed text appears when a device would
//! have it and a pipe (`arecord ... | edgetrim asr MODEL -`) is transcribed while it plays.

use crate::asr::{self, Engine, ModelFolder};
use crate::backend::BackendKind;
use crate::latency::Latency;
use anyhow::{bail, Context, Result};
use edgetrim_models::asr::nano::ArenaSizes;
use edgetrim_models::audio::{FEATURE_DIM, HOP, SAMPLE_RATE, STACK};
use edgetrim_models::datagen::speech::wav;
use edgetrim_runtime::fps::{Clock, StdClock};
use serde::Serialize;
use std::io::{Read, Write};
use std::path::PathBuf;

/// `edgetrim asr` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  edgetrim asr models/zoo/rnnt-todm --wav data/speech/test/wav/000000.wav
  arecord -q -f S16_LE -r 16000 -c 1 | edgetrim asr models/zoo/rnnt-todm --wav -
  edgetrim asr sliced/ --wav note.wav --backend tract --json | jq .text

MODEL_DIR holds encoder.onnx, predictor.onnx, joiner.onnx and tokens.txt (as `python3 -m rnnt
export` or `edgetrim compress --slice` write them). The audio must be 16 kHz mono 16-bit PCM
WAV. RTF is compute time / audio time; a chunk's latency is the compute it costs from its last
sample to its tokens (front-end, encoder, greedy search).")]
pub struct Args {
    /// The model folder.
    #[arg(value_name = "MODEL_DIR")]
    pub model: PathBuf,
    /// The WAV file, or `-` for stdin (read as it arrives).
    #[arg(long, value_name = "FILE.wav|-")]
    pub wav: PathBuf,
    /// Which runtime executes the graphs.
    #[arg(long, value_enum, default_value_t = BackendKind::Nano)]
    pub backend: BackendKind,
    /// Print one JSON object at the end instead of streaming text.
    #[arg(long)]
    pub json: bool,
}

/// What `--json` prints.
#[derive(Serialize, Debug)]
pub struct Report {
    /// The model folder.
    pub model: String,
    /// The audio (`-` for stdin).
    pub wav: String,
    /// Which runtime ran it.
    pub backend: String,
    /// The transcript.
    pub text: String,
    /// Its token ids.
    pub tokens: Vec<u16>,
    /// Seconds of audio.
    pub audio_s: f64,
    /// Seconds of compute (front-end, graphs, search).
    pub compute_s: f64,
    /// Real-time factor: compute / audio.
    pub rtf: f64,
    /// Audio per encoder chunk, milliseconds.
    pub chunk_ms: f64,
    /// Compute per encoder chunk.
    pub chunk_latency: Option<Latency>,
    /// The nano arena, piece by piece (absent on tract).
    pub arena: Option<ArenaReport>,
}

/// The recogniser's arena on the nano runtime, in bytes.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct ArenaReport {
    /// Everything (a 16-byte-aligned buffer of this size).
    pub total: usize,
    /// The encoder session.
    pub encoder: usize,
    /// The predictor session.
    pub predictor: usize,
    /// The joiner session.
    pub joiner: usize,
    /// The chunk being stacked and the LSTM states.
    pub scratch: usize,
}

impl From<ArenaSizes> for ArenaReport {
    fn from(s: ArenaSizes) -> Self {
        ArenaReport {
            total: s.total(),
            encoder: s.encoder,
            predictor: s.predictor,
            joiner: s.joiner,
            scratch: s.scratch,
        }
    }
}

/// Samples per encoder chunk of `chunk` stacked vectors.
pub fn chunk_samples(chunk: usize) -> usize {
    chunk * STACK * HOP
}

/// Runs `edgetrim asr`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let folder = ModelFolder::read(&args.model)?;
    let models = folder.models()?;
    let mut memory = Vec::new();
    let mut engine = Engine::new(&models, args.backend, &mut memory)?;
    let vocab = folder.vocab(engine.spec())?;
    let piece = chunk_samples(engine.spec().chunk);
    let mut meter = asr::meter();
    let mut clock = StdClock::new();
    let mut tokens = Vec::new();
    let mut compute_ns = 0u64;
    let mut samples = 0usize;
    let mut emit = |new: Vec<u16>, out: &mut dyn Write| -> Result<()> {
        if !args.json && !new.is_empty() {
            write!(out, "{}", asr::render(&vocab, &new))?;
            out.flush()?;
        }
        tokens.extend(new);
        Ok(())
    };
    let input: Box<dyn Read> = if args.wav.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.wav)
                .with_context(|| format!("cannot read {}", args.wav.display()))?,
        )
    };
    stream_wav(input, piece, |pcm| {
        samples += pcm.len();
        let start = clock.now_ns();
        let new = engine.push(pcm, &mut meter, &mut clock)?;
        compute_ns += clock.now_ns() - start;
        emit(new, out)
    })
    .with_context(|| format!("{}", args.wav.display()))?;
    let start = clock.now_ns();
    let new = engine.finish(&mut meter, &mut clock)?;
    compute_ns += clock.now_ns() - start;
    emit(new, out)?;

    let audio_s = samples as f64 / f64::from(SAMPLE_RATE);
    let compute_s = compute_ns as f64 / 1e9;
    let report = Report {
        model: args.model.display().to_string(),
        wav: args.wav.display().to_string(),
        backend: format!("{:?}", args.backend).to_lowercase(),
        text: asr::render(&vocab, &tokens),
        tokens,
        audio_s,
        compute_s,
        rtf: compute_s / audio_s.max(1e-9),
        chunk_ms: piece as f64 * 1e3 / f64::from(SAMPLE_RATE),
        chunk_latency: meter.stats().map(Latency::from),
        arena: engine.arena().map(ArenaReport::from),
    };
    if args.json {
        return crate::cmd::print_json(out, &report);
    }
    writeln!(out)?;
    write_summary(out, &report)
}

/// The closing lines: RTF, chunk latency and the arena.
fn write_summary(out: &mut dyn Write, r: &Report) -> Result<()> {
    writeln!(
        out,
        "\n{:.2} s of audio in {:.3} s on {}: RTF {:.4}",
        r.audio_s, r.compute_s, r.backend, r.rtf
    )?;
    if let Some(l) = &r.chunk_latency {
        writeln!(
            out,
            "latency per {:.0} ms chunk: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} chunks)",
            r.chunk_ms,
            l.p50_us / 1e3,
            l.p99_us / 1e3,
            l.max_us / 1e3,
            l.frames
        )?;
    }
    if let Some(a) = &r.arena {
        writeln!(
            out,
            "arena {} bytes: encoder {} + predictor {} + joiner {} + chunk and states {} (feature {} floats)",
            a.total, a.encoder, a.predictor, a.joiner, a.scratch, FEATURE_DIM
        )?;
    }
    Ok(())
}

/// Reads a 16 kHz mono 16-bit WAV from `input` as it arrives, handing `each` blocks of
/// `piece` samples (the last one shorter). The header is checked by the data set's WAV
/// reader; a streamed header's placeholder data size (0 or ~2^31, as espeak-ng and arecord
/// write on a pipe) means "to the end of the stream".
fn stream_wav(
    mut input: impl Read,
    piece: usize,
    mut each: impl FnMut(&[i16]) -> Result<()>,
) -> Result<()> {
    let mut buf = Vec::new();
    let (body, data_len) = loop {
        if let Some(found) = data_chunk(&buf) {
            break found;
        }
        let before = buf.len();
        input.by_ref().take(4096).read_to_end(&mut buf)?;
        if buf.len() == before {
            // The whole input is here: let the WAV reader say what is wrong with it.
            wav::read(&buf)?;
            bail!("not a usable WAV: no data chunk");
        }
    };
    asr::check_rate(wav::read(&buf[..body])?.rate)?;
    let mut left = match data_len {
        0 | 0x7fff_0000.. => usize::MAX,
        n => n as usize,
    };
    let mut bytes = buf.split_off(body);
    let mut pcm = Vec::with_capacity(piece);
    loop {
        let want = (2 * piece).min(left);
        if bytes.len() < want {
            let got = input
                .by_ref()
                .take((want - bytes.len()) as u64)
                .read_to_end(&mut bytes)?;
            if got == 0 && bytes.len() < want {
                left = bytes.len();
            }
        }
        let take = bytes.len().min(want) & !1;
        if take == 0 {
            return Ok(());
        }
        pcm.clear();
        pcm.extend(
            bytes[..take]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
        each(&pcm)?;
        bytes.drain(..take);
        left = left.saturating_sub(take);
    }
}

/// Where the `data` chunk's samples start in a RIFF/WAVE prefix, and its stated size;
/// `None` while more bytes are needed.
fn data_chunk(bytes: &[u8]) -> Option<(usize, u32)> {
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?);
        if &bytes[at..at + 4] == b"data" {
            return Some((at + 8, size));
        }
        at += 8 + size as usize + (size & 1) as usize;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_bytes(samples: &[i16]) -> Vec<u8> {
        wav::write(&wav::Pcm {
            rate: SAMPLE_RATE,
            samples: samples.to_vec(),
        })
    }

    fn collect(bytes: &[u8], piece: usize) -> Result<Vec<Vec<i16>>> {
        let mut blocks = Vec::new();
        stream_wav(bytes, piece, |b| {
            blocks.push(b.to_vec());
            Ok(())
        })?;
        Ok(blocks)
    }

    #[test]
    fn streams_blocks_and_stops_at_the_data_size() {
        let samples: Vec<i16> = (0..1000).map(|i| i as i16 - 500).collect();
        let mut bytes = wav_bytes(&samples);
        // A trailing chunk after the samples is not audio.
        bytes.extend_from_slice(b"LIST\x04\x00\x00\x00abcd");
        let blocks = collect(&bytes, 300).unwrap();
        assert_eq!(
            blocks.iter().map(Vec::len).collect::<Vec<_>>(),
            [300, 300, 300, 100]
        );
        assert_eq!(blocks.concat(), samples);
    }

    #[test]
    fn a_streamed_header_reads_to_the_end() {
        let samples = [7i16; 10];
        let mut bytes = wav_bytes(&samples);
        bytes[40..44].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        assert_eq!(collect(&bytes, 4).unwrap().concat(), samples);
    }

    #[test]
    fn refuses_other_rates_and_non_wavs() {
        let mut bytes = wav_bytes(&[0; 4]);
        bytes[24..28].copy_from_slice(&8000u32.to_le_bytes());
        assert!(format!("{:#}", collect(&bytes, 4).unwrap_err()).contains("8000 Hz"));
        assert!(collect(b"RIFF....WAVEfmt ", 4).is_err());
        assert!(collect(b"hello", 4).is_err());
    }
}
