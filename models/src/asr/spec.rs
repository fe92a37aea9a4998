//! What the recogniser needs to know about its three graphs, read and checked once.
//!
//! EXPORT.md fixes the tensor names (`x`, `enc`, `token`, `pred`, `logits`) and the state
//! convention: every other input `s` of the encoder or the predictor is a recurrent state
//! whose next value is the output `s_out`, of the same type and shape. The number of
//! layers is therefore read off the graph, not trusted from metadata, and a sliced model
//! (fewer layers, narrower states) needs nothing new. From the metadata (`edgetrim.asr.*`,
//! read from the encoder) come the search constants and the front-end constants, which must
//! equal [`crate::audio`]'s: a model trained on other features would transcribe garbage
//! without any error, so a mismatch is refused here by key.

use super::Role;
use crate::audio::{FEATURE_DIM, FRAME_LEN, F_MAX, F_MIN, HOP, LOG_FLOOR, N_FFT, N_MELS, STACK};
use crate::Error;
use edgetrim_runtime::onnx::{Dim, ValueInfo};
use edgetrim_runtime::{DType, Model, Name, Shape};

/// Recurrent states per graph this build can carry (16 encoder layers of `h` and `c`).
pub const MAX_STATES: usize = 32;

/// The three graphs of one model folder.
#[derive(Clone, Copy, Debug)]
pub struct Models<'a> {
    /// `encoder.onnx`.
    pub encoder: Model<'a>,
    /// `predictor.onnx`.
    pub predictor: Model<'a>,
    /// `joiner.onnx`.
    pub joiner: Model<'a>,
}

/// A recurrent state: input `input` takes the value output `output` had after the last run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct State {
    pub input: usize,
    pub output: usize,
    pub bytes: usize,
}

/// The states of one graph.
pub(crate) type States = heapless::Vec<State, MAX_STATES>;

/// The checked layout and constants of a model folder.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Stacked feature vectors per encoder call (`C`).
    pub chunk: usize,
    /// Width of an encoder frame and of a prediction vector (`J`).
    pub joint: usize,
    /// Tokens, blank included (the joiner's logits).
    pub vocab: usize,
    /// The blank token.
    pub blank: u16,
    /// Tokens the greedy search may emit per encoder frame.
    pub max_symbols: usize,
    /// Encoder input `x` and output `enc`.
    pub(crate) x: usize,
    pub(crate) enc: usize,
    pub(crate) enc_states: States,
    /// Predictor input `token` (int64 `[1, 1]`) and output `pred`.
    pub(crate) token: usize,
    pub(crate) pred: usize,
    pub(crate) pred_states: States,
    /// Joiner inputs `enc`, `pred` and output `logits`.
    pub(crate) join_enc: usize,
    pub(crate) join_pred: usize,
    pub(crate) logits: usize,
}

impl Spec {
    /// Reads and checks the three graphs' inputs, outputs and metadata.
    pub fn new(models: &Models<'_>) -> Result<Spec, Error> {
        for (model, role) in [
            (&models.encoder, Role::Encoder),
            (&models.predictor, Role::Predictor),
            (&models.joiner, Role::Joiner),
        ] {
            if meta(model, "edgetrim.asr.component")? != role.name() {
                return Err(Error::Metadata {
                    key: "edgetrim.asr.component",
                });
            }
        }
        let e = &models.encoder;
        check_front_end(e)?;

        let (x, x_shape) = io(e, Role::Encoder, Io::Input, "x", DType::F32)?;
        let chunk = match x_shape.dims() {
            [1, c, f] if *f == FEATURE_DIM && *c > 0 => *c,
            _ => {
                return Err(graph_err(
                    Role::Encoder,
                    "x",
                    "must be [1, C, 160] stacked log-mel",
                ))
            }
        };
        let (enc, enc_shape) = io(e, Role::Encoder, Io::Output, "enc", DType::F32)?;
        let joint = match enc_shape.dims() {
            [1, c, j] if *c == chunk && *j > 0 => *j,
            _ => {
                return Err(graph_err(
                    Role::Encoder,
                    "enc",
                    "must be [1, C, J] with x's C",
                ))
            }
        };
        let p = &models.predictor;
        let (token, token_shape) = io(p, Role::Predictor, Io::Input, "token", DType::I64)?;
        if token_shape.volume() != 1 {
            return Err(graph_err(Role::Predictor, "token", "must hold one token"));
        }
        let (pred, pred_shape) = io(p, Role::Predictor, Io::Output, "pred", DType::F32)?;
        if pred_shape.volume() != joint {
            return Err(graph_err(Role::Predictor, "pred", "must hold J values"));
        }
        let j = &models.joiner;
        let (join_enc, shape) = io(j, Role::Joiner, Io::Input, "enc", DType::F32)?;
        if shape.volume() != joint {
            return Err(graph_err(Role::Joiner, "enc", "must hold J values"));
        }
        let (join_pred, shape) = io(j, Role::Joiner, Io::Input, "pred", DType::F32)?;
        if shape.volume() != joint {
            return Err(graph_err(Role::Joiner, "pred", "must hold J values"));
        }
        let (logits, shape) = io(j, Role::Joiner, Io::Output, "logits", DType::F32)?;
        let vocab = shape.volume();
        if !(2..=usize::from(u16::MAX)).contains(&vocab) {
            return Err(graph_err(
                Role::Joiner,
                "logits",
                "must hold 2 to 65535 tokens",
            ));
        }

        let blank = meta_usize(e, "edgetrim.asr.blank")?;
        let max_symbols = meta_usize(e, "edgetrim.asr.max_symbols")?;
        let checks = [
            (
                "edgetrim.asr.chunk",
                meta_usize(e, "edgetrim.asr.chunk")? == chunk,
            ),
            (
                "edgetrim.asr.vocab",
                meta_usize(e, "edgetrim.asr.vocab")? == vocab,
            ),
            ("edgetrim.asr.blank", blank < vocab),
            ("edgetrim.asr.max_symbols", max_symbols > 0),
        ];
        if let Some((key, _)) = checks.iter().find(|(_, ok)| !ok) {
            return Err(Error::Metadata { key });
        }
        Ok(Spec {
            chunk,
            joint,
            vocab,
            blank: blank as u16,
            max_symbols,
            x,
            enc,
            enc_states: states(e, Role::Encoder, x)?,
            token,
            pred,
            pred_states: states(p, Role::Predictor, token)?,
            join_enc,
            join_pred,
            logits,
        })
    }

    /// Bytes of one encoder input chunk (`C` stacked vectors, f32).
    pub fn chunk_bytes(&self) -> usize {
        self.chunk * FEATURE_DIM * 4
    }

    /// Bytes of the recurrent states the recogniser carries (encoder and predictor).
    pub fn state_bytes(&self) -> usize {
        self.enc_states
            .iter()
            .chain(&self.pred_states)
            .map(|s| s.bytes)
            .sum()
    }

    /// Scratch the recogniser needs besides its graphs: the chunk being stacked and the
    /// carried states.
    pub fn scratch_bytes(&self) -> usize {
        self.chunk_bytes() + self.state_bytes()
    }

    /// Encoder LSTM layers (states come in `h`/`c` pairs).
    pub fn layers(&self) -> usize {
        self.enc_states.len() / 2
    }
}

fn graph_err(graph: Role, tensor: &str, reason: &'static str) -> Error {
    Error::Graph {
        graph,
        tensor: Name::new(tensor),
        reason,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Io {
    Input,
    Output,
}

fn value_infos<'a>(model: &Model<'a>, io: Io) -> impl Iterator<Item = ValueInfo<'a>> + 'a {
    let (inputs, outputs) = match io {
        Io::Input => (Some(model.inputs()), None),
        Io::Output => (None, Some(model.outputs())),
    };
    inputs
        .into_iter()
        .flatten()
        .chain(outputs.into_iter().flatten())
}

/// The position, fixed shape and byte size of a declared tensor.
fn fixed(graph: Role, vi: &ValueInfo<'_>) -> Result<(Shape, DType), Error> {
    let dtype = vi
        .dtype()
        .ok_or_else(|| graph_err(graph, vi.name(), "has no supported element type"))?;
    let dims = vi
        .dims()
        .ok_or_else(|| graph_err(graph, vi.name(), "declares no shape"))?;
    let mut shape = Shape::SCALAR;
    for d in dims {
        let Dim::Fixed(d) = d else {
            return Err(graph_err(graph, vi.name(), "has a symbolic dim"));
        };
        shape
            .push(d)
            .map_err(|_| graph_err(graph, vi.name(), "has too many dims"))?;
    }
    Ok((shape, dtype))
}

/// Finds input or output `name`, of type `dtype`; returns its index and shape.
fn io(
    model: &Model<'_>,
    graph: Role,
    io: Io,
    name: &str,
    dtype: DType,
) -> Result<(usize, Shape), Error> {
    let (i, vi) = value_infos(model, io)
        .enumerate()
        .find(|(_, vi)| vi.name() == name)
        .ok_or_else(|| graph_err(graph, name, "is missing"))?;
    let (shape, found) = fixed(graph, &vi)?;
    if found != dtype {
        return Err(graph_err(graph, name, "has the wrong element type"));
    }
    Ok((i, shape))
}

/// Every input but `data` is a state `s` fed back from output `s_out` (same type, shape).
fn states(model: &Model<'_>, graph: Role, data: usize) -> Result<States, Error> {
    let mut out = States::new();
    for (i, vi) in model.inputs().enumerate().filter(|&(i, _)| i != data) {
        let name = vi.name();
        let (o, twin) = model
            .outputs()
            .enumerate()
            .find(|(_, o)| {
                o.name()
                    .strip_suffix("_out")
                    .is_some_and(|stem| stem == name)
            })
            .ok_or_else(|| graph_err(graph, name, "is a state input without a `_out` output"))?;
        let (shape, dtype) = fixed(graph, &vi)?;
        if fixed(graph, &twin)? != (shape, dtype) {
            return Err(graph_err(
                graph,
                name,
                "differs from its `_out` in type or shape",
            ));
        }
        let bytes = shape.volume() * dtype.size();
        out.push(State {
            input: i,
            output: o,
            bytes,
        })
        .map_err(|_| Error::Capacity {
            what: "recurrent states per graph",
            limit: MAX_STATES,
        })?;
    }
    Ok(out)
}

fn meta<'a>(model: &Model<'a>, key: &'static str) -> Result<&'a str, Error> {
    model
        .metadata_value(key)
        .ok_or(Error::MetadataMissing { key })
}

fn meta_usize(model: &Model<'_>, key: &'static str) -> Result<usize, Error> {
    meta(model, key)?
        .trim()
        .parse()
        .map_err(|_| Error::Metadata { key })
}

/// The front-end constants the export writes (`features.metadata()`) against this crate's.
fn check_front_end(model: &Model<'_>) -> Result<(), Error> {
    let expected: [(&'static str, f64); 10] = [
        (
            "edgetrim.asr.sample_rate",
            f64::from(crate::audio::SAMPLE_RATE),
        ),
        ("edgetrim.asr.frame_len", FRAME_LEN as f64),
        ("edgetrim.asr.hop", HOP as f64),
        ("edgetrim.asr.n_fft", N_FFT as f64),
        ("edgetrim.asr.n_mels", N_MELS as f64),
        ("edgetrim.asr.f_min", F_MIN),
        ("edgetrim.asr.f_max", F_MAX),
        ("edgetrim.asr.log_floor", f64::from(LOG_FLOOR)),
        ("edgetrim.asr.stack", STACK as f64),
        ("edgetrim.asr.feature_dim", FEATURE_DIM as f64),
    ];
    for (key, want) in expected {
        let got: f64 = meta(model, key)?
            .trim()
            .parse()
            .map_err(|_| Error::Metadata { key })?;
        // LOG_FLOOR is an f32 here and a decimal in the metadata: equal to f32 precision.
        if (got - want).abs() > want.abs() * 1e-6 {
            return Err(Error::Metadata { key });
        }
    }
    Ok(())
}
