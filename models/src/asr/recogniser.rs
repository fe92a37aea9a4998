//! The streaming loop: audio → front-end → chunks of stacked vectors → encoder (states
//! carried) → greedy RNN-T search → token ids.
//!
//! The search is EXPORT.md's, which `onnx_check.py` and PyTorch's `decode.greedy` also run:
//! start from `pred = predictor(<blank>)` with zero states; for each encoder frame ask the
//! joiner up to `max_symbols` times, moving on at the first blank and otherwise emitting the
//! argmax and advancing the predictor with it. The encoder runs on whole chunks of `C`
//! frames; the last, partial chunk of an utterance is padded with zero vectors and its
//! padding frames are not decoded. Because the encoder is causal, the tokens do not depend on
//! how the audio was split into [`Recogniser::push`] calls.
//!
//! State lives in three places, none on the heap: the graphs' own arenas (activations, and
//! the last run's outputs, which the search reads in place), a caller-given scratch slice
//! (the chunk being stacked, and the LSTM states copied out of each run's outputs before the
//! next run overwrites its inputs — a planner may place an input over another output), and
//! the fixed-capacity transcript.

use super::spec::{Spec, States};
use super::{Graph, Role};
use crate::audio::{FrontEnd, FEATURE_DIM};
use crate::Error;
use edgetrim_runtime::fps::{Clock, FpsMeter};
use edgetrim_runtime::DType;

/// A streaming recogniser over three [`Graph`]s, emitting at most `T` tokens per
/// utterance (see [`Recogniser::clear_tokens`] to stream longer).
pub struct Recogniser<'s, G: Graph, const T: usize> {
    encoder: G,
    predictor: G,
    joiner: G,
    spec: Spec,
    front: FrontEnd,
    /// `chunk[..filled * FEATURE_DIM * 4]`: the stacked vectors of the next encoder call.
    chunk: &'s mut [u8],
    filled: usize,
    /// The encoder's states, then the predictor's, as the last run left them.
    states: &'s mut [u8],
    tokens: heapless::Vec<u16, T>,
    frames: usize,
    finished: bool,
    /// Compute time already spent on the chunk being stacked (metered pushes).
    pending_ns: u64,
}

impl<'s, G: Graph, const T: usize> Recogniser<'s, G, T> {
    /// A recogniser at the start of an utterance. `scratch` must hold at least
    /// [`Spec::scratch_bytes`] bytes; it runs the predictor once (on `<blank>`).
    pub fn new(
        spec: Spec,
        encoder: G,
        predictor: G,
        joiner: G,
        scratch: &'s mut [u8],
    ) -> Result<Self, G::Error> {
        let need = spec.scratch_bytes();
        if scratch.len() < need {
            return Err(Error::Length {
                what: "recogniser scratch bytes",
                expected: need,
                actual: scratch.len(),
            }
            .into());
        }
        let (chunk, rest) = scratch.split_at_mut(spec.chunk_bytes());
        let mut rec = Recogniser {
            encoder,
            predictor,
            joiner,
            front: FrontEnd::new(),
            chunk,
            filled: 0,
            states: &mut rest[..spec.state_bytes()],
            spec,
            tokens: heapless::Vec::new(),
            frames: 0,
            finished: false,
            pending_ns: 0,
        };
        rec.reset()?;
        Ok(rec)
    }

    /// Starts a new utterance: zero states, an empty transcript, `pred = predictor(<blank>)`.
    pub fn reset(&mut self) -> Result<(), G::Error> {
        self.front.reset();
        self.filled = 0;
        self.states.fill(0);
        self.tokens.clear();
        self.frames = 0;
        self.finished = false;
        self.pending_ns = 0;
        self.predict(self.spec.blank)
    }

    /// The model's layout and constants.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// One of the three graphs, as the last run left it: the encoder's outputs are the last
    /// chunk's (a firmware check digests them), and a runtime graph reports its plan.
    pub fn graph(&self, role: Role) -> &G {
        match role {
            Role::Encoder => &self.encoder,
            Role::Predictor => &self.predictor,
            Role::Joiner => &self.joiner,
        }
    }

    /// Tokens emitted since the last [`Recogniser::reset`] or [`Recogniser::clear_tokens`].
    pub fn tokens(&self) -> &[u16] {
        &self.tokens
    }

    /// Empties the transcript buffer (the search goes on): a device that streams for longer
    /// than `T` tokens hands them on and clears.
    pub fn clear_tokens(&mut self) {
        self.tokens.clear();
    }

    /// Encoder frames decoded so far in this utterance (40 ms each).
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Feeds audio (16 kHz mono, any chunk size); decodes every encoder chunk it completes.
    ///
    /// A full transcript buffer is [`Error::Capacity`]: the frame being decoded is cut
    /// short, so the utterance should be [`reset`](Recogniser::reset). After
    /// [`Recogniser::finish`], pushing is an error until the next reset.
    pub fn push(&mut self, samples: &[i16]) -> Result<(), G::Error> {
        self.push_inner(samples, &mut ())
    }

    /// [`Recogniser::push`], recording into `meter` the compute time of each encoder chunk
    /// it completes: the front-end work on that chunk's audio (including earlier pushes'),
    /// the encoder run and the search over its frames. That is the latency from the
    /// chunk's last sample to its tokens on a device that computes nothing else.
    pub fn push_metered<C: Clock, const N: usize>(
        &mut self,
        samples: &[i16],
        clock: &mut C,
        meter: &mut FpsMeter<N>,
    ) -> Result<(), G::Error> {
        let mut timer = Timer::start(clock, meter, self.pending_ns);
        let result = self.push_inner(samples, &mut timer);
        timer.pause();
        self.pending_ns = timer.pending;
        result
    }

    /// Ends the utterance: audio short of a whole stacked vector is dropped (as
    /// `features.py` does), the partial chunk is zero-padded and run, and only its real
    /// frames are decoded.
    pub fn finish(&mut self) -> Result<(), G::Error> {
        self.finish_inner(&mut ())
    }

    /// [`Recogniser::finish`], recording the last chunk's time like
    /// [`Recogniser::push_metered`] (nothing when no partial chunk was pending).
    pub fn finish_metered<C: Clock, const N: usize>(
        &mut self,
        clock: &mut C,
        meter: &mut FpsMeter<N>,
    ) -> Result<(), G::Error> {
        let mut timer = Timer::start(clock, meter, self.pending_ns);
        let result = self.finish_inner(&mut timer);
        self.pending_ns = 0;
        result
    }

    fn push_inner(&mut self, mut samples: &[i16], lap: &mut impl Lap) -> Result<(), G::Error> {
        if self.finished {
            return Err(Error::Invalid("audio pushed after finish(); reset() first").into());
        }
        while !samples.is_empty() {
            let (used, vector) = self.front.push(samples);
            samples = &samples[used..];
            let Some(vector) = vector else { continue };
            let row = &mut self.chunk[self.filled * FEATURE_DIM * 4..][..FEATURE_DIM * 4];
            for (out, v) in row.chunks_exact_mut(4).zip(vector) {
                out.copy_from_slice(&v.to_le_bytes());
            }
            self.filled += 1;
            if self.filled == self.spec.chunk {
                self.run_chunk()?;
                lap.chunk_done();
            }
        }
        Ok(())
    }

    fn finish_inner(&mut self, lap: &mut impl Lap) -> Result<(), G::Error> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if self.filled > 0 {
            self.chunk[self.filled * FEATURE_DIM * 4..].fill(0);
            self.run_chunk()?;
            lap.chunk_done();
        }
        Ok(())
    }

    /// Runs the encoder on the stacked chunk and decodes its first `filled` frames.
    fn run_chunk(&mut self) -> Result<(), G::Error> {
        let frames = core::mem::replace(&mut self.filled, 0);
        let (enc_states, _) = self.states.split_at_mut(state_len(&self.spec.enc_states));
        self.encoder.set_input(self.spec.x, self.chunk)?;
        carry(&mut self.encoder, &self.spec.enc_states, enc_states)?;
        for f in 0..frames {
            self.decode_frame(f)?;
        }
        self.frames += frames;
        Ok(())
    }

    /// Greedy search on encoder frame `f` of the last encoder run.
    fn decode_frame(&mut self, f: usize) -> Result<(), G::Error> {
        let row = self.spec.joint * 4;
        for _ in 0..self.spec.max_symbols {
            let enc = self.encoder.output(self.spec.enc);
            self.joiner
                .set_input(self.spec.join_enc, &enc.bytes[f * row..(f + 1) * row])?;
            let pred = self.predictor.output(self.spec.pred);
            self.joiner.set_input(self.spec.join_pred, pred.bytes)?;
            self.joiner.run()?;
            let k = argmax(&self.joiner.output(self.spec.logits))?;
            if k == self.spec.blank {
                break;
            }
            self.tokens.push(k).map_err(|_| Error::Capacity {
                what: "transcript tokens",
                limit: T,
            })?;
            self.predict(k)?;
        }
        Ok(())
    }

    /// Runs the predictor on `token` from its carried state.
    fn predict(&mut self, token: u16) -> Result<(), G::Error> {
        let (_, pred_states) = self.states.split_at_mut(state_len(&self.spec.enc_states));
        self.predictor
            .set_input(self.spec.token, &i64::from(token).to_le_bytes())?;
        carry(&mut self.predictor, &self.spec.pred_states, pred_states)
    }
}

fn state_len(states: &States) -> usize {
    states.iter().map(|s| s.bytes).sum()
}

/// Sets `graph`'s state inputs from `saved`, runs it, and saves its state outputs.
fn carry<G: Graph>(graph: &mut G, states: &States, saved: &mut [u8]) -> Result<(), G::Error> {
    let mut at = 0;
    for s in states {
        graph.set_input(s.input, &saved[at..at + s.bytes])?;
        at += s.bytes;
    }
    graph.run()?;
    let mut at = 0;
    for s in states {
        let out = graph.output(s.output);
        if out.bytes.len() != s.bytes {
            return Err(Error::Length {
                what: "state output bytes",
                expected: s.bytes,
                actual: out.bytes.len(),
            }
            .into());
        }
        saved[at..at + s.bytes].copy_from_slice(out.bytes);
        at += s.bytes;
    }
    Ok(())
}

/// The first largest logit (NaN never wins), as `argmax` in numpy and PyTorch.
fn argmax(logits: &edgetrim_runtime::TensorRef<'_>) -> Result<u16, Error> {
    if logits.dtype != DType::F32 || logits.bytes.len() < 4 {
        return Err(Error::Invalid("joiner logits must be float32"));
    }
    let mut best = (0u16, f32::NEG_INFINITY);
    for (k, b) in logits.bytes.chunks_exact(4).enumerate() {
        let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if v > best.1 {
            best = (k as u16, v);
        }
    }
    Ok(best.0)
}

/// Marks the end of each encoder chunk's work (timing hook; `()` does nothing).
trait Lap {
    fn chunk_done(&mut self);
}

impl Lap for () {
    fn chunk_done(&mut self) {}
}

/// Charges elapsed time to the chunk being built and records it when the chunk is decoded.
struct Timer<'t, C: Clock, const N: usize> {
    clock: &'t mut C,
    meter: &'t mut FpsMeter<N>,
    /// Time spent on the current chunk so far (earlier calls included).
    pending: u64,
    since: u64,
}

impl<'t, C: Clock, const N: usize> Timer<'t, C, N> {
    fn start(clock: &'t mut C, meter: &'t mut FpsMeter<N>, pending: u64) -> Self {
        let since = clock.now_ns();
        Timer {
            clock,
            meter,
            pending,
            since,
        }
    }

    /// Adds the time since the last mark to the pending chunk.
    fn pause(&mut self) {
        let now = self.clock.now_ns();
        self.pending += now.saturating_sub(self.since);
        self.since = now;
    }
}

impl<C: Clock, const N: usize> Lap for Timer<'_, C, N> {
    fn chunk_done(&mut self) {
        self.pause();
        self.meter.record(core::mem::take(&mut self.pending));
    }
}
