//! `edgetrim eval-asr`: word and character error rates of a streaming RNN-T on a speech
//! folder, with its real-time factor and per-chunk latency.
//!
//! Every utterance is streamed through the recogniser exactly as `edgetrim asr` does (pushed
//! one encoder chunk of audio at a time, zero-padded last chunk), so the figures are those of
//! the device code path. WER and CER are corpus-level (`models/train/rnnt/decode.py`).

use crate::asr::{self, Engine, ModelFolder};
use crate::backend::BackendKind;
use crate::cmd::asr::{chunk_samples, ArenaReport};
use crate::latency::Latency;
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use edgetrim_models::asr::score::ErrorRates;
use edgetrim_models::audio::SAMPLE_RATE;
use edgetrim_runtime::fps::StdClock;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `edgetrim eval-asr` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  edgetrim datagen speech --split test --count 600 --out data/speech/test
  edgetrim eval-asr models/zoo/rnnt-todm --data data/speech/test
  edgetrim eval-asr sliced/ --data data/speech/test --backend tract --limit 50 --json | jq .wer

DIR holds transcripts.tsv (`id<TAB>voice<TAB>text` per line) and wav/<id>.wav (16 kHz mono
16-bit). WER = word-level edit distance / reference words, summed over the folder; CER the same
over characters; exact = utterances transcribed without any error. --json adds every
utterance's hypothesis and token ids.")]
pub struct Args {
    /// The model folder (encoder.onnx, predictor.onnx, joiner.onnx, tokens.txt).
    #[arg(value_name = "MODEL_DIR")]
    pub model: PathBuf,
    /// The speech folder.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Which runtime executes the graphs.
    #[arg(long, value_enum, default_value_t = BackendKind::Nano)]
    pub backend: BackendKind,
    /// Evaluate only the first N utterances (in transcripts.tsv order).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// What `--json` prints.
#[derive(Serialize, Debug)]
pub struct Report {
    /// The model folder.
    pub model: String,
    /// The speech folder.
    pub data: String,
    /// Which runtime ran it.
    pub backend: String,
    /// Utterances evaluated.
    pub utterances: usize,
    /// Word error rate.
    pub wer: f64,
    /// Character error rate.
    pub cer: f64,
    /// Fraction of utterances transcribed exactly.
    pub exact: f64,
    /// Reference words and their edit distance to the hypotheses.
    pub words: usize,
    /// Word errors.
    pub word_errors: usize,
    /// Seconds of audio.
    pub audio_s: f64,
    /// Seconds of compute.
    pub compute_s: f64,
    /// Real-time factor: compute / audio.
    pub rtf: f64,
    /// Audio per encoder chunk, milliseconds.
    pub chunk_ms: f64,
    /// Compute per encoder chunk over all utterances.
    pub chunk_latency: Option<Latency>,
    /// The nano arena (absent on tract).
    pub arena: Option<ArenaReport>,
    /// Per utterance, in order.
    pub hypotheses: Vec<Hypothesis>,
}

/// One utterance's result.
#[derive(Serialize, Debug)]
pub struct Hypothesis {
    /// Utterance id.
    pub id: String,
    /// Reference text.
    pub reference: String,
    /// Recognised text.
    pub text: String,
    /// Recognised token ids.
    pub tokens: Vec<u16>,
}

/// Evaluates the model folder `model` on the speech folder `data`.
pub fn evaluate(
    model: &Path,
    data: &Path,
    backend: BackendKind,
    limit: Option<usize>,
) -> Result<Report> {
    evaluate_folder(&ModelFolder::read(model)?, data, backend, limit)
}

/// [`evaluate`] on a folder already in memory (the slices of a supernet).
pub fn evaluate_folder(
    folder: &ModelFolder,
    data: &Path,
    backend: BackendKind,
    limit: Option<usize>,
) -> Result<Report> {
    let models = folder.models()?;
    let mut rows = asr::read_transcripts(data)?;
    rows.truncate(limit.unwrap_or(usize::MAX));
    if rows.is_empty() {
        bail!(
            "--data {}: transcripts.tsv lists no utterance",
            data.display()
        );
    }
    let mut memory = Vec::new();
    let mut engine = Engine::new(&models, backend, &mut memory)?;
    let vocab = folder.vocab(engine.spec())?;
    let piece = chunk_samples(engine.spec().chunk);
    let mut meter = asr::meter();
    let mut clock = StdClock::new();
    let (mut rates, mut samples, mut compute_ns) = (ErrorRates::default(), 0usize, 0u64);
    let mut hypotheses = Vec::with_capacity(rows.len());
    let mut progress = Progress::new("utterances", rows.len());
    for (i, row) in rows.iter().enumerate() {
        let path = data.join("wav").join(format!("{}.wav", row.id));
        let pcm = asr::read_wav(&path)?;
        let utt = engine
            .transcribe(&pcm, piece, &vocab, &mut meter, &mut clock)
            .with_context(|| format!("{}", path.display()))?;
        rates.add(&row.text, &utt.text);
        samples += pcm.len();
        compute_ns += utt.compute_ns;
        hypotheses.push(Hypothesis {
            id: row.id.clone(),
            reference: row.text.clone(),
            text: utt.text,
            tokens: utt.tokens,
        });
        progress.update(i + 1);
    }
    progress.finish();
    let audio_s = samples as f64 / f64::from(SAMPLE_RATE);
    let compute_s = compute_ns as f64 / 1e9;
    Ok(Report {
        model: folder.dir.display().to_string(),
        data: data.display().to_string(),
        backend: format!("{backend:?}").to_lowercase(),
        utterances: rates.utterances,
        wer: rates.wer(),
        cer: rates.cer(),
        exact: rates.exact_match(),
        words: rates.words,
        word_errors: rates.word_errors,
        audio_s,
        compute_s,
        rtf: compute_s / audio_s.max(1e-9),
        chunk_ms: piece as f64 * 1e3 / f64::from(SAMPLE_RATE),
        chunk_latency: meter.stats().map(Latency::from),
        arena: engine.arena().map(ArenaReport::from),
        hypotheses,
    })
}

/// Runs `edgetrim eval-asr`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    if args.limit == Some(0) {
        bail!("--limit 0 evaluates nothing; give at least 1");
    }
    let report = evaluate(&args.model, &args.data, args.backend, args.limit)?;
    if args.json {
        return crate::cmd::print_json(out, &report);
    }
    writeln!(
        out,
        "{} on {} ({} utterances, {:.1} s of audio, {} backend)",
        report.model, report.data, report.utterances, report.audio_s, report.backend
    )?;
    writeln!(
        out,
        "WER {:.2}% ({} errors / {} words)  CER {:.2}%  exact {:.1}%",
        report.wer * 100.0,
        report.word_errors,
        report.words,
        report.cer * 100.0,
        report.exact * 100.0
    )?;
    write!(out, "RTF {:.4}", report.rtf)?;
    if let Some(l) = &report.chunk_latency {
        write!(
            out,
            "  latency per {:.0} ms chunk: p50 {:.2} ms, p99 {:.2} ms",
            report.chunk_ms,
            l.p50_us / 1e3,
            l.p99_us / 1e3
        )?;
    }
    writeln!(out)?;
    if let Some(a) = &report.arena {
        writeln!(out, "arena {} bytes", a.total)?;
    }
    Ok(())
}
