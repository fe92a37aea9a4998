//! The streaming recogniser on the nano runtime against PyTorch, token for token.
//!
//! `data/rnnt-stream/` holds a real exported model folder (the `depth=2,width=0.5` slice of
//! the TODM supernet, 1.1 MB), five test utterances (`speech/`, voices unseen in training)
//! and PyTorch's greedy transcripts of them (`reference.json`, from
//! `python3 -m rnnt transcribe`; see the README there). The recogniser must reproduce those
//! ids exactly, however the audio is split into pushes.

use edgetrim_models::asr::nano::{self, NanoRecogniser};
use edgetrim_models::asr::{Graph, Models, Role, Spec};
use edgetrim_models::Error;
use edgetrim_runtime::fps::{Clock, FpsMeter};
use edgetrim_runtime::{Arena, Model, Target};
use std::path::PathBuf;

const ENCODER: &[u8] = include_bytes!("data/rnnt-stream/model/encoder.onnx");
const PREDICTOR: &[u8] = include_bytes!("data/rnnt-stream/model/predictor.onnx");
const JOINER: &[u8] = include_bytes!("data/rnnt-stream/model/joiner.onnx");

/// Enough for the fixture's three sessions and scratch (about 130 KB on a 64-bit host).
const ARENA: usize = 1 << 18;

fn models() -> Models<'static> {
    Models {
        encoder: Model::parse(ENCODER).unwrap(),
        predictor: Model::parse(PREDICTOR).unwrap(),
        joiner: Model::parse(JOINER).unwrap(),
    }
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/rnnt-stream")
}

/// (id, samples, PyTorch's token ids) of every fixture utterance.
fn utterances() -> Vec<(String, Vec<i16>, Vec<u16>)> {
    let text = std::fs::read_to_string(fixture_dir().join("reference.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let utts = doc["utterances"].as_array().unwrap();
    assert_eq!(utts.len(), 5);
    utts.iter()
        .map(|u| {
            let id = u["id"].as_str().unwrap().to_string();
            let wav = std::fs::read(fixture_dir().join(format!("speech/wav/{id}.wav"))).unwrap();
            // The data set's canonical 44-byte header: 16 kHz mono 16-bit, then the samples.
            assert_eq!((&wav[36..40], &wav[22..24]), (&b"data"[..], &[1u8, 0][..]));
            let pcm = wav[44..]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            let tokens = u["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap() as u16)
                .collect();
            (id, pcm, tokens)
        })
        .collect()
}

fn transcribe<const T: usize>(
    rec: &mut NanoRecogniser<'_, T>,
    pcm: &[i16],
    piece: usize,
) -> Result<Vec<u16>, Error> {
    rec.reset()?;
    for samples in pcm.chunks(piece) {
        rec.push(samples)?;
    }
    rec.finish()?;
    Ok(rec.tokens().to_vec())
}

#[test]
fn streams_like_pytorch_token_for_token() {
    let mut arena = vec![0u8; ARENA];
    let (mut rec, _) = nano::recogniser::<256>(&models(), &mut arena).unwrap();
    let spec = rec.spec().clone();
    assert_eq!(
        (spec.chunk, spec.joint, spec.vocab, spec.layers()),
        (4, 128, 29, 2)
    );
    assert_eq!((spec.blank, spec.max_symbols), (0, 3));
    let mut total = 0;
    for (id, pcm, expected) in utterances() {
        // One encoder chunk of audio per push (as the CLI streams), odd sizes, one sample,
        // and the whole utterance at once.
        for piece in [2560, 1000, 1, pcm.len()] {
            let got = transcribe(&mut rec, &pcm, piece).unwrap();
            assert_eq!(
                got, expected,
                "utterance {id}, pushed {piece} samples at a time"
            );
        }
        // The last partial chunk is decoded only up to the last whole stacked vector.
        assert_eq!(rec.frames(), (1 + (pcm.len() - 400) / 160) / 4, "{id}");
        total += expected.len();
    }
    assert!(
        total > 100,
        "the fixture must exercise the search: {total} tokens"
    );
}

/// A host can plan the graphs for a microcontroller's kernels and blocks (what the speech
/// firmware's host twin does to get the device's float sums bit for bit) and still
/// transcribe like PyTorch; each graph's plan is reachable for its MACs and target.
#[test]
fn plans_for_a_cortex_m_on_a_host() {
    let mut arena = vec![0u8; ARENA];
    let (mut rec, _) = nano::recogniser_for::<256>(&models(), &mut arena, Target::CortexM).unwrap();
    for role in [Role::Encoder, Role::Predictor, Role::Joiner] {
        let session = rec.graph(role).session();
        assert_eq!(session.target(), Target::CortexM, "{role}");
        assert!(session.total_macs() > 0, "{role}");
    }
    for (id, pcm, expected) in utterances() {
        assert_eq!(transcribe(&mut rec, &pcm, 2560).unwrap(), expected, "{id}");
    }
    // After a run the encoder graph holds the last chunk's outputs: `enc` is [1, C, J].
    assert_eq!(rec.graph(Role::Encoder).output(0).bytes.len(), 4 * 128 * 4);
}

/// The arena is exactly the sum of its pieces: the recogniser fits in `total()` bytes of an
/// aligned arena and is refused, with an error, one alignment step below.
#[test]
fn arena_is_exactly_the_reported_pieces() {
    let m = models();
    let mut big = vec![0u8; ARENA];
    let (_, sizes) = nano::recogniser::<16>(&m, &mut big).unwrap();
    let spec = Spec::new(&m).unwrap();
    // A chunk of 4 x 160 floats; h and c of 2 encoder layers (96 wide) and of the predictor.
    assert_eq!(sizes.scratch, 4 * 160 * 4 + (2 * 2 * 96 + 2 * 96) * 4);
    assert_eq!(sizes.scratch, spec.scratch_bytes());
    #[cfg(feature = "alloc")]
    assert_eq!(nano::ArenaSizes::of(&m).unwrap(), sizes);
    println!("arena pieces: {sizes:?}, total {}", sizes.total());

    let mut exact = Box::new(Arena::<ARENA>::new());
    let fits = &mut exact.0[..sizes.total()];
    let (mut rec, again) = nano::recogniser::<256>(&m, fits).unwrap();
    assert_eq!(again, sizes);
    let (_, pcm, expected) = utterances().swap_remove(0);
    assert_eq!(transcribe(&mut rec, &pcm, 2560).unwrap(), expected);

    let mut small = Box::new(Arena::<ARENA>::new());
    let short = &mut small.0[..sizes.total() - 16];
    assert!(nano::recogniser::<16>(&m, short).is_err());
}

#[test]
fn a_full_transcript_is_a_capacity_error_and_reset_recovers() {
    let mut arena = vec![0u8; ARENA];
    // One encoder chunk emits at most max_symbols x chunk = 12 tokens.
    let (mut rec, _) = nano::recogniser::<12>(&models(), &mut arena).unwrap();
    let (_, pcm, expected) = utterances().swap_remove(0);
    assert!(expected.len() > 12);
    assert_eq!(
        transcribe(&mut rec, &pcm, 2560),
        Err(Error::Capacity {
            what: "transcript tokens",
            limit: 12
        })
    );
    // Draining after every push streams any length through the small buffer.
    rec.reset().unwrap();
    let mut all = Vec::new();
    for samples in pcm.chunks(640) {
        rec.push(samples).unwrap();
        all.extend_from_slice(rec.tokens());
        rec.clear_tokens();
    }
    rec.finish().unwrap();
    all.extend_from_slice(rec.tokens());
    assert_eq!(all, expected);
}

#[test]
fn finish_ends_the_utterance() {
    let mut arena = vec![0u8; ARENA];
    let (mut rec, _) = nano::recogniser::<256>(&models(), &mut arena).unwrap();
    let (_, pcm, expected) = utterances().swap_remove(0);
    rec.push(&pcm).unwrap();
    rec.finish().unwrap();
    rec.finish().unwrap(); // a second finish decodes nothing more
    assert_eq!(rec.tokens(), expected);
    assert!(matches!(rec.push(&pcm[..10]), Err(Error::Invalid(_))));
    // Audio shorter than one stacked vector (2 of its 4 frames) gives no frame, no token.
    rec.reset().unwrap();
    rec.push(&pcm[..600]).unwrap();
    rec.finish().unwrap();
    assert_eq!((rec.frames(), rec.tokens()), (0, &[][..]));
}

/// A clock that advances 1 µs per read.
struct Ticks(u64);

impl Clock for Ticks {
    fn now_ns(&mut self) -> u64 {
        self.0 += 1000;
        self.0
    }
}

#[test]
fn metered_pushes_record_one_latency_per_encoder_chunk() {
    let mut arena = vec![0u8; ARENA];
    let (mut rec, _) = nano::recogniser::<256>(&models(), &mut arena).unwrap();
    let (_, pcm, expected) = utterances().swap_remove(1);
    let (mut clock, mut meter) = (Ticks(0), FpsMeter::<64>::new(0));
    for samples in pcm.chunks(700) {
        rec.push_metered(samples, &mut clock, &mut meter).unwrap();
    }
    rec.finish_metered(&mut clock, &mut meter).unwrap();
    assert_eq!(rec.tokens(), expected);
    let vectors = (1 + (pcm.len() - 400) / 160) / 4;
    assert_eq!(meter.frames(), vectors.div_ceil(4));
    let stats = meter.stats().unwrap();
    // Every chunk spans at least one push's two clock reads.
    assert!(stats.min_ns >= 1000, "{stats:?}");
}

#[test]
fn refuses_graphs_in_the_wrong_roles() {
    let m = models();
    let swapped = Models {
        encoder: m.predictor,
        predictor: m.encoder,
        joiner: m.joiner,
    };
    assert_eq!(
        Spec::new(&swapped).unwrap_err(),
        Error::Metadata {
            key: "edgetrim.asr.component"
        }
    );
    let mut arena = vec![0u8; 64];
    assert!(nano::recogniser::<16>(&m, &mut arena).is_err());
}
