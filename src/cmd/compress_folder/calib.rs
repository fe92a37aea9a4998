//! Calibration inputs for the int8 pass on each graph of a model folder.
//!
//! The three graphs of a streaming RNN-T only see realistic inputs inside the recogniser:
//! the encoder's states are its own earlier outputs, the predictor's tokens are what the
//! greedy search emitted, the joiner pairs encoder frames with prediction vectors. So
//! `--calib speech:DIR` runs the recogniser (`edgetrim_models::asr::Recogniser`, the code a
//! device runs) with the float, sliced graphs over the first [`UTTERANCES`] recordings of
//! a speech folder, and records the inputs of every graph run: real activations for all
//! three graphs, for whatever slice is being compressed. `--calib DIR` takes recorded
//! inputs instead: `DIR/encoder/`, `DIR/predictor/` and `DIR/joiner/`, each in the
//! single-model `--calib` layout (one subfolder per sample, one `.npy` per graph input).

use super::GRAPHS;
use crate::cmd::compress as single;
use anyhow::{anyhow, bail, Context as _, Result};
use edgetrim_models::asr::{Graph, Models, Recogniser, Spec};
use edgetrim_runtime::{Model, Session, TensorRef};
use std::path::{Path, PathBuf};

/// Recordings run through the recogniser for calibration (about 45 s of speech in the
/// generated data sets).
pub const UTTERANCES: usize = 16;

/// Samples kept per graph, evenly spread over the recordings (the int8 pass runs the
/// model once per sample).
pub const MAX_SAMPLES: usize = 256;

/// Raw little-endian bytes of each graph input, per sample.
pub type Samples = Vec<Vec<Vec<u8>>>;

/// Where calibration inputs come from.
pub enum Calib {
    /// Seeded random inputs (the int8 pass's placeholder).
    Random,
    /// Recorded inputs, one single-model `--calib` folder per graph.
    Npy(PathBuf),
    /// Audio, run through the recogniser.
    Speech {
        /// The speech folder.
        dir: PathBuf,
        /// Its first recordings.
        audio: Vec<Vec<i16>>,
    },
}

impl Calib {
    /// Reads what `--calib` names (audio is decoded once, whatever is sliced later).
    pub fn from_flag(flag: Option<&str>) -> Result<Calib> {
        let Some(flag) = flag else {
            return Ok(Calib::Random);
        };
        if flag.starts_with("images:") {
            bail!("--calib {flag}: a model folder calibrates on speech:DIR or a folder of .npy");
        }
        if let Some(dir) = flag.strip_prefix("speech:") {
            return speech(Path::new(dir));
        }
        let dir = PathBuf::from(flag);
        if let Some(missing) = GRAPHS.iter().find(|g| !dir.join(g).is_dir()) {
            bail!(
                "--calib {flag}: no {missing}/ in it (a model folder needs encoder/, predictor/ and joiner/, each with one subfolder of .npy files per sample; or use speech:DIR)"
            );
        }
        Ok(Calib::Npy(dir))
    }

    /// For the model card.
    pub fn describe(&self) -> String {
        match self {
            Calib::Random => "random inputs (a placeholder)".into(),
            Calib::Npy(dir) => format!("recorded inputs in {}", dir.display()),
            Calib::Speech { dir, audio } => format!(
                "the recogniser's own inputs on {} recordings of {}",
                audio.len(),
                dir.display()
            ),
        }
    }

    /// The samples of each graph of the (sliced, float) model `graphs`.
    pub fn samples(&self, graphs: &[Vec<u8>]) -> Result<Vec<Option<Samples>>> {
        match self {
            Calib::Random => Ok(vec![None; GRAPHS.len()]),
            Calib::Npy(dir) => graphs
                .iter()
                .zip(GRAPHS)
                .map(|(bytes, g)| {
                    let model = Model::parse(bytes)?;
                    let shapes = crate::inputs::resolve_shapes(&model, &[])?;
                    let sub = dir.join(g);
                    single::calibration(&sub.display().to_string(), &model, &shapes).map(Some)
                })
                .collect(),
            Calib::Speech { dir, audio } => record(graphs, audio)
                .with_context(|| format!("--calib speech:{}", dir.display()))
                .map(|s| s.into_iter().map(Some).collect()),
        }
    }
}

/// The first [`UTTERANCES`] recordings of a speech folder (`transcripts.tsv` + `wav/`).
fn speech(dir: &Path) -> Result<Calib> {
    let what = || format!("--calib speech:{}", dir.display());
    let rows = crate::asr::read_transcripts(dir).with_context(what)?;
    if rows.is_empty() {
        bail!("{}: transcripts.tsv lists no recording", what());
    }
    let audio = rows
        .iter()
        .take(UTTERANCES)
        .map(|r| crate::asr::read_wav(&dir.join("wav").join(format!("{}.wav", r.id))))
        .collect::<Result<Vec<_>>>()
        .with_context(what)?;
    Ok(Calib::Speech {
        dir: dir.to_path_buf(),
        audio,
    })
}

/// A runtime session that keeps a copy of the inputs of every run.
struct Recorder<'a> {
    session: Session<'a>,
    graph: &'static str,
    inputs: Vec<Vec<u8>>,
    runs: Samples,
}

impl Graph for &mut Recorder<'_> {
    type Error = anyhow::Error;

    fn set_input(&mut self, i: usize, bytes: &[u8]) -> Result<()> {
        let graph = self.graph;
        self.session
            .set_input_bytes(i, bytes)
            .with_context(|| format!("{graph} input {i}"))?;
        self.inputs[i].clear();
        self.inputs[i].extend_from_slice(bytes);
        Ok(())
    }

    fn run(&mut self) -> Result<()> {
        self.runs.push(self.inputs.clone());
        let graph = self.graph;
        self.session.run().with_context(|| graph.to_string())
    }

    fn output(&self, i: usize) -> TensorRef<'_> {
        self.session.output(i)
    }
}

/// An arena for `model` planned with its declared shapes.
fn arena_for(model: &Model<'_>) -> Result<Vec<u8>> {
    let report = Session::arena_report(model, &[])?;
    Ok(vec![0u8; report.total + edgetrim_runtime::arena::ALIGN])
}

/// Runs the recogniser over `audio` and returns each graph's recorded inputs, thinned to
/// [`MAX_SAMPLES`].
fn record(graphs: &[Vec<u8>], audio: &[Vec<i16>]) -> Result<Vec<Samples>> {
    let [e, p, j] = graphs else {
        bail!("a model folder has three graphs");
    };
    let models = Models {
        encoder: Model::parse(e)?,
        predictor: Model::parse(p)?,
        joiner: Model::parse(j)?,
    };
    let spec = Spec::new(&models)?;
    let mut arenas = [
        arena_for(&models.encoder)?,
        arena_for(&models.predictor)?,
        arena_for(&models.joiner)?,
    ];
    let [ae, ap, aj] = &mut arenas;
    let mut recorders = Vec::with_capacity(3);
    for ((model, arena), graph) in [&models.encoder, &models.predictor, &models.joiner]
        .into_iter()
        .zip([ae, ap, aj])
        .zip(GRAPHS)
    {
        let session = Session::new(model, &[], arena)?;
        let inputs = session
            .inputs()
            .map(|i| vec![0u8; i.shape.volume() * i.dtype.size()])
            .collect();
        recorders.push(Recorder {
            session,
            graph,
            inputs,
            runs: Vec::new(),
        });
    }
    let [re, rp, rj] = &mut recorders[..] else {
        bail!("three recorders");
    };
    let mut scratch = vec![0u8; spec.scratch_bytes()];
    {
        let mut rec = Recogniser::<_, 1024>::new(spec, re, rp, rj, &mut scratch)?;
        for pcm in audio {
            for piece in pcm.chunks(4096) {
                rec.push(piece)?;
                rec.clear_tokens();
            }
            rec.finish()?;
            rec.reset()?;
        }
    }
    recorders
        .into_iter()
        .map(|r| {
            if r.runs.is_empty() {
                return Err(anyhow!(
                    "the {} never ran: is the audio too short?",
                    r.graph
                ));
            }
            Ok(thin(r.runs, MAX_SAMPLES))
        })
        .collect()
}

/// At most `max` of `items`, evenly spread, in order.
fn thin<T>(items: Vec<T>, max: usize) -> Vec<T> {
    let n = items.len();
    if n <= max {
        return items;
    }
    let mut next = 0;
    items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| {
            let take = *i == next * n / max;
            if take {
                next += 1;
            }
            take
        })
        .map(|(_, item)| item)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::thin;

    #[test]
    fn thinning_keeps_an_even_spread_in_order() {
        assert_eq!(thin((0..10).collect(), 20), (0..10).collect::<Vec<_>>());
        assert_eq!(thin((0..10).collect(), 5), vec![0, 2, 4, 6, 8]);
        assert_eq!(thin((0..10).collect(), 3), vec![0, 3, 6]);
    }
}
