//! What the speech firmware (`src/bin/rnnt/main.rs`) and its host reference
//! (`examples/rnnt_firmware` of the root package) must do identically around the recogniser:
//! stream the utterance in the same blocks, digest every encoder output, render the
//! transcript, and print the results.
//!
//! Both sides include this one file (`#[path]`), so the streaming and the printed format can
//! never disagree silently. It is `no_std`-clean and allocation-free.
//!
//! The audio is pushed one encoder chunk at a time (`C` stacked vectors of 4 frames of 10 ms:
//! what a microphone DMA buffer would deliver), so each push completes at most one chunk and
//! the instructions counted around a push are that chunk's latency: front-end, encoder and
//! greedy search from its last sample to its tokens. The [`Feed`] decides how: the firmware
//! also records each chunk's latency on its device clock (the runtime's FPS meter).

use core::fmt;
use edgetrim_models::asr::nano::NanoRecogniser;
use edgetrim_models::asr::{Graph, Models, Role, Vocab};
use edgetrim_models::audio::{HOP, STACK};
use edgetrim_models::Error;
use edgetrim_runtime::Model;

/// Tokens the transcript buffer holds (a 2 s command is ~35 characters).
pub const TOKENS: usize = 256;

/// Bytes of the rendered transcript.
pub const TEXT_BYTES: usize = 256;

/// Marked regions a transcript records (pushed blocks and the finish): 20 s of audio at 160 ms
/// a block.
pub const REGIONS: usize = 128;

/// Samples converted from the PCM bytes per [`NanoRecogniser::push`] (stack buffer).
const PIECE: usize = 512;

/// The three graphs of a model folder, read in place.
pub fn models<'a>(
    encoder: &'a [u8],
    predictor: &'a [u8],
    joiner: &'a [u8],
) -> Result<Models<'a>, Error> {
    let parse = |bytes| Model::parse(bytes).map_err(Error::Runtime);
    Ok(Models {
        encoder: parse(encoder)?,
        predictor: parse(predictor)?,
        joiner: parse(joiner)?,
    })
}

/// A running FNV-1a (64-bit) digest of every output of every encoder run, so the comparison
/// covers all encoder values (the LSTM states included), not only the tokens they lead to:
/// `encoder: N runs, B bytes, fnv1a64 0x<hash>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderDigest {
    /// Encoder runs digested.
    pub runs: usize,
    /// Bytes digested.
    pub bytes: usize,
    /// FNV-1a of those bytes, in run and output order.
    pub fnv1a: u64,
}

impl EncoderDigest {
    const fn new() -> EncoderDigest {
        EncoderDigest {
            runs: 0,
            bytes: 0,
            fnv1a: 0xcbf2_9ce4_8422_2325,
        }
    }

    /// Adds all outputs of the encoder's last run.
    fn add<const T: usize>(&mut self, rec: &NanoRecogniser<'_, T>) {
        let encoder = rec.graph(Role::Encoder);
        for i in 0..encoder.session().outputs().count() {
            let bytes = encoder.output(i).bytes;
            self.fnv1a = bytes.iter().fold(self.fnv1a, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            self.bytes += bytes.len();
        }
        self.runs += 1;
    }
}

impl fmt::Display for EncoderDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "encoder: {} runs, {} bytes, fnv1a64 0x{:016x}",
            self.runs, self.bytes, self.fnv1a
        )
    }
}

/// What one utterance gave.
pub struct Transcript {
    /// The encoder outputs.
    pub digest: EncoderDigest,
    /// Encoder frames decoded (40 ms each).
    pub frames: usize,
    /// Per marked region, whether it ran an encoder chunk. The regions are the pushed blocks
    /// ([`block_samples`] each, the last one shorter) and the finish (which runs the
    /// zero-padded last chunk, if any). The first block never completes a chunk (the first
    /// stacked vector needs the analysis window's extra samples), and whether the last block
    /// and the finish do depends on the utterance's length: this says which did, so that
    /// the instructions counted around those regions are read as chunk latencies.
    pub ran_chunk: heapless::Vec<bool, REGIONS>,
    /// The rendered tokens.
    pub text: heapless::String<TEXT_BYTES>,
}

/// Samples per pushed block: one encoder chunk of audio.
pub fn block_samples<const T: usize>(rec: &NanoRecogniser<'_, T>) -> usize {
    rec.spec().chunk * STACK * HOP
}

/// How the blocks reach the recogniser (plain pushes on the host, metered ones on a
/// device).
pub trait Feed<const T: usize> {
    /// Pushes one block of audio.
    fn push(&mut self, rec: &mut NanoRecogniser<'_, T>, samples: &[i16]) -> Result<(), Error>;
    /// Ends the utterance.
    fn finish(&mut self, rec: &mut NanoRecogniser<'_, T>) -> Result<(), Error>;
}

/// Transcribes `pcm` (16 kHz mono int16, little-endian bytes) from a reset recogniser,
/// pushing it in blocks of [`block_samples`] through `feed`; `block_start` and `block_end`
/// run around each push and around `finish` (the firmware's instruction-counter markers).
pub fn transcribe<const T: usize>(
    rec: &mut NanoRecogniser<'_, T>,
    feed: &mut impl Feed<T>,
    vocab: &Vocab<'_>,
    pcm: &[u8],
    block_start: extern "C" fn(),
    block_end: extern "C" fn(),
) -> Result<Transcript, Error> {
    if !pcm.len().is_multiple_of(2) {
        return Err(Error::Invalid("int16 PCM has an odd number of bytes"));
    }
    rec.reset()?;
    let mut marks = Marks {
        digest: EncoderDigest::new(),
        ran_chunk: heapless::Vec::new(),
        block_start,
        block_end,
    };
    for bytes in pcm.chunks(block_samples(rec) * 2) {
        marks.region(rec, |rec| {
            for piece in bytes.chunks(PIECE * 2) {
                let mut samples = [0i16; PIECE];
                for (s, b) in samples.iter_mut().zip(piece.chunks_exact(2)) {
                    *s = i16::from_le_bytes([b[0], b[1]]);
                }
                feed.push(rec, &samples[..piece.len() / 2])?;
            }
            Ok(())
        })?;
    }
    marks.region(rec, |rec| feed.finish(rec))?;
    let Marks {
        digest, ran_chunk, ..
    } = marks;
    let mut text = heapless::String::new();
    vocab
        .write(rec.tokens(), &mut text)
        .map_err(|_| Error::Capacity {
            what: "transcript text bytes",
            limit: TEXT_BYTES,
        })?;
    Ok(Transcript {
        digest,
        frames: rec.frames(),
        ran_chunk,
        text,
    })
}

/// The marked regions of one utterance and what they ran.
struct Marks {
    digest: EncoderDigest,
    ran_chunk: heapless::Vec<bool, REGIONS>,
    block_start: extern "C" fn(),
    block_end: extern "C" fn(),
}

impl Marks {
    /// Runs `work` between the markers and digests the encoder's output if it ran.
    fn region<const T: usize>(
        &mut self,
        rec: &mut NanoRecogniser<'_, T>,
        work: impl FnOnce(&mut NanoRecogniser<'_, T>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let frames = rec.frames();
        (self.block_start)();
        work(rec)?;
        (self.block_end)();
        let ran = rec.frames() != frames;
        if ran {
            self.digest.add(rec);
        }
        self.ran_chunk.push(ran).map_err(|_| Error::Capacity {
            what: "marked regions (pushed blocks and the finish)",
            limit: REGIONS,
        })
    }
}

/// The compared result lines, in order: the encoder digest, the frames, the transcript.
pub fn result_lines(t: &Transcript) -> [ResultLine<'_>; 3] {
    [
        ResultLine::Digest(&t.digest),
        ResultLine::Frames(t.frames),
        ResultLine::Text(&t.text),
    ]
}

/// One line of [`result_lines`].
pub enum ResultLine<'t> {
    /// `encoder: ...`
    Digest(&'t EncoderDigest),
    /// `frames: N`
    Frames(usize),
    /// `transcript: TEXT`
    Text(&'t str),
}

impl fmt::Display for ResultLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultLine::Digest(d) => d.fmt(f),
            ResultLine::Frames(n) => write!(f, "frames: {n}"),
            ResultLine::Text(t) => write!(f, "transcript: {t}"),
        }
    }
}

/// The reference text of a `transcripts.tsv` line (`id \t voice \t text`).
pub fn reference(tsv: &str) -> Result<&str, Error> {
    tsv.trim_end()
        .splitn(3, '\t')
        .nth(2)
        .ok_or(Error::Invalid("speech.tsv is not `id<TAB>voice<TAB>text`"))
}
