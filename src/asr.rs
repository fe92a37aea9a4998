//! The streaming recogniser on either backend: what `asr` and `eval-asr` share.
//!
//! A model folder (`encoder.onnx`, `predictor.onnx`, `joiner.onnx`, `tokens.txt`) is read
//! once; [`Engine`] runs `edgetrim_models::asr::Recogniser` over it — on the nano runtime
//! exactly as a device does (three sessions and the scratch in one arena), or on tract as the
//! reference — and times every encoder chunk with the runtime's FPS meter.

use crate::backend::BackendKind;
use anyhow::{bail, Context, Result};
use edgetrim_models::asr::nano::{self, ArenaSizes, NanoRecogniser};
use edgetrim_models::asr::{Graph, Models, Recogniser, Role, Spec, Vocab};
use edgetrim_models::datagen::speech::wav;
use edgetrim_runtime::fps::{FpsMeter, StdClock};
use edgetrim_runtime::tract::TractSession;
use edgetrim_runtime::{Model, TensorRef};
use std::path::{Path, PathBuf};

/// Tokens one push can emit before the CLI drains them (a push is at most a few chunks).
const MAX_TOKENS: usize = 1024;

/// Chunk latencies kept for percentiles (about 30 minutes of audio at 160 ms per chunk).
pub const METER_WINDOW: usize = 1 << 14;

/// The files of a model folder, read into memory.
pub struct ModelFolder {
    /// The folder.
    pub dir: PathBuf,
    encoder: Vec<u8>,
    predictor: Vec<u8>,
    joiner: Vec<u8>,
    tokens: String,
}

impl ModelFolder {
    /// Reads `DIR/{encoder,predictor,joiner}.onnx` and `DIR/tokens.txt`.
    pub fn read(dir: &Path) -> Result<ModelFolder> {
        if !dir.is_dir() {
            bail!(
                "{}: not a model folder (expected encoder.onnx, predictor.onnx, joiner.onnx, tokens.txt)",
                dir.display()
            );
        }
        let read = |name: &str| crate::cmd::read_model(&dir.join(name));
        let tokens_path = dir.join("tokens.txt");
        Ok(ModelFolder {
            dir: dir.to_path_buf(),
            encoder: read("encoder.onnx")?,
            predictor: read("predictor.onnx")?,
            joiner: read("joiner.onnx")?,
            tokens: std::fs::read_to_string(&tokens_path)
                .with_context(|| format!("cannot read {}", tokens_path.display()))?,
        })
    }

    /// A folder's graphs already in memory (e.g. a slice cut from `dir`).
    pub fn from_parts(dir: &Path, graphs: [Vec<u8>; 3], tokens: String) -> ModelFolder {
        let [encoder, predictor, joiner] = graphs;
        ModelFolder {
            dir: dir.to_path_buf(),
            encoder,
            predictor,
            joiner,
            tokens,
        }
    }

    /// The three parsed graphs.
    pub fn models(&self) -> Result<Models<'_>> {
        let parse = |name: &str, bytes| crate::cmd::parse_model(&self.dir.join(name), bytes);
        Ok(Models {
            encoder: parse("encoder.onnx", &self.encoder)?,
            predictor: parse("predictor.onnx", &self.predictor)?,
            joiner: parse("joiner.onnx", &self.joiner)?,
        })
    }

    /// The vocabulary, checked against the joiner's logits.
    pub fn vocab(&self, spec: &Spec) -> Result<Vocab<'_>> {
        let vocab = Vocab::new(&self.tokens)
            .with_context(|| format!("{}", self.dir.join("tokens.txt").display()))?;
        if vocab.len() != spec.vocab {
            bail!(
                "{}: {} tokens, but the joiner has {} logits",
                self.dir.join("tokens.txt").display(),
                vocab.len(),
                spec.vocab
            );
        }
        Ok(vocab)
    }
}

/// A tract session as one of the recogniser's graphs.
pub struct TractGraph {
    session: TractSession,
    graph: Role,
}

impl TractGraph {
    fn new(model: &Model<'_>, graph: Role) -> Result<TractGraph> {
        let session = TractSession::new(model.bytes(), &[])
            .with_context(|| format!("tract could not load the {graph}"))?;
        Ok(TractGraph { session, graph })
    }
}

impl Graph for TractGraph {
    type Error = anyhow::Error;

    fn set_input(&mut self, i: usize, bytes: &[u8]) -> Result<()> {
        let graph = self.graph;
        self.session
            .set_input_bytes(i, bytes)
            .with_context(|| format!("{graph} input {i}"))
    }

    fn run(&mut self) -> Result<()> {
        let graph = self.graph;
        self.session.run().context(graph.name())
    }

    fn output(&self, i: usize) -> TensorRef<'_> {
        self.session.output(i)
    }
}

/// The recogniser on one backend.
pub enum Engine<'a> {
    /// Three runtime sessions in one arena.
    Nano(Box<NanoRecogniser<'a, MAX_TOKENS>>, ArenaSizes),
    /// tract, with its scratch in a Vec.
    Tract(Box<Recogniser<'a, TractGraph, MAX_TOKENS>>),
}

/// Runs the same expression on either recogniser.
macro_rules! each {
    ($engine:expr, |$r:ident| $body:expr) => {
        match $engine {
            Engine::Nano($r, _) => $body,
            Engine::Tract($r) => $body,
        }
    };
}

/// What one utterance gave.
#[derive(Clone, Debug)]
pub struct Utterance {
    /// Token ids, in order.
    pub tokens: Vec<u16>,
    /// Their text.
    pub text: String,
    /// Compute time (front-end, graphs, search), nanoseconds.
    pub compute_ns: u64,
}

impl<'a> Engine<'a> {
    /// Plans the recogniser on `kind`; `memory` holds the nano arena or tract's scratch.
    pub fn new(models: &Models<'a>, kind: BackendKind, memory: &'a mut Vec<u8>) -> Result<Self> {
        Ok(match kind {
            BackendKind::Nano => {
                let sizes = ArenaSizes::of(models)?;
                memory.resize(sizes.total() + edgetrim_runtime::arena::ALIGN, 0);
                let (rec, sizes) = nano::recogniser(models, memory)?;
                Engine::Nano(Box::new(rec), sizes)
            }
            BackendKind::Tract => {
                let spec = Spec::new(models)?;
                memory.resize(spec.scratch_bytes(), 0);
                let graph = TractGraph::new;
                Engine::Tract(Box::new(Recogniser::new(
                    spec,
                    graph(&models.encoder, Role::Encoder)?,
                    graph(&models.predictor, Role::Predictor)?,
                    graph(&models.joiner, Role::Joiner)?,
                    memory,
                )?))
            }
        })
    }

    /// The model's layout and constants.
    pub fn spec(&self) -> &Spec {
        each!(self, |r| r.spec())
    }

    /// The nano arena's pieces (`None` on tract).
    pub fn arena(&self) -> Option<ArenaSizes> {
        match self {
            Engine::Nano(_, sizes) => Some(*sizes),
            Engine::Tract(_) => None,
        }
    }

    /// Starts a new utterance.
    pub fn reset(&mut self) -> Result<()> {
        each!(self, |r| Ok(r.reset()?))
    }

    /// Feeds `samples`, timing each completed chunk into `meter`; returns the tokens this
    /// push emitted.
    pub fn push(
        &mut self,
        samples: &[i16],
        meter: &mut FpsMeter<METER_WINDOW>,
        clock: &mut StdClock,
    ) -> Result<Vec<u16>> {
        each!(self, |r| {
            r.push_metered(samples, clock, meter)?;
            let out = r.tokens().to_vec();
            r.clear_tokens();
            Ok(out)
        })
    }

    /// Ends the utterance; returns the tokens the last chunk emitted.
    pub fn finish(
        &mut self,
        meter: &mut FpsMeter<METER_WINDOW>,
        clock: &mut StdClock,
    ) -> Result<Vec<u16>> {
        each!(self, |r| {
            r.finish_metered(clock, meter)?;
            let out = r.tokens().to_vec();
            r.clear_tokens();
            Ok(out)
        })
    }

    /// Transcribes one whole utterance, pushing it in `piece`-sample steps as a stream
    /// would arrive.
    pub fn transcribe(
        &mut self,
        pcm: &[i16],
        piece: usize,
        vocab: &Vocab<'_>,
        meter: &mut FpsMeter<METER_WINDOW>,
        clock: &mut StdClock,
    ) -> Result<Utterance> {
        use edgetrim_runtime::fps::Clock;
        let start = clock.now_ns();
        self.reset()?;
        let mut tokens = Vec::new();
        for samples in pcm.chunks(piece.max(1)) {
            tokens.extend(self.push(samples, meter, clock)?);
        }
        tokens.extend(self.finish(meter, clock)?);
        let compute_ns = clock.now_ns() - start;
        Ok(Utterance {
            text: render(vocab, &tokens),
            tokens,
            compute_ns,
        })
    }
}

/// The text of `tokens`.
pub fn render(vocab: &Vocab<'_>, tokens: &[u16]) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = vocab.write(tokens, &mut text);
    text
}

/// A new meter for chunk latencies (no warm-up: every chunk of the audio counts).
pub fn meter() -> Box<FpsMeter<METER_WINDOW>> {
    Box::new(FpsMeter::new(0))
}

/// Reads a 16 kHz mono 16-bit WAV file.
pub fn read_wav(path: &Path) -> Result<Vec<i16>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let pcm = wav::read(&bytes).with_context(|| format!("{}", path.display()))?;
    check_rate(pcm.rate).with_context(|| format!("{}", path.display()))?;
    Ok(pcm.samples)
}

/// Refuses audio that is not at the front-end's sample rate.
pub fn check_rate(rate: u32) -> Result<()> {
    let want = edgetrim_models::audio::SAMPLE_RATE;
    if rate != want {
        bail!("{rate} Hz audio; the recogniser needs {want} Hz (resample it first)");
    }
    Ok(())
}

/// One line of a speech folder's `transcripts.tsv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    /// Utterance id (`wav/<id>.wav`).
    pub id: String,
    /// The voice that spoke it.
    pub voice: String,
    /// The reference text.
    pub text: String,
}

/// Reads `DIR/transcripts.tsv` (`id<TAB>voice<TAB>text` per line).
pub fn read_transcripts(dir: &Path) -> Result<Vec<Transcript>> {
    let path = dir.join("transcripts.tsv");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "--data {}: cannot read transcripts.tsv (expected a speech folder: transcripts.tsv + wav/)",
            dir.display()
        )
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(n, line)| match line.split('\t').collect::<Vec<_>>()[..] {
            [id, voice, text] => Ok(Transcript {
                id: id.to_string(),
                voice: voice.to_string(),
                text: text.to_string(),
            }),
            _ => bail!(
                "{} line {}: expected id<TAB>voice<TAB>text",
                path.display(),
                n + 1
            ),
        })
        .collect()
}
