//! The streaming front-end against the training front-end: `features.py` wrote the fixture
//! (`python3 -m rnnt.features --fixture models/tests/data/logmel`, from models/train), and
//! [`FrontEnd`] must give the same stacked log-mel vectors for any chunking of the audio.

use edgetrim_models::audio::{FrontEnd, FEATURE_DIM, LOG_FLOOR};

/// Largest accepted |Rust - Python| on any log-mel value. Python computes in `f64`, the
/// device in `f32`; the worst case is a quiet band next to a loud one, where the FFT's `f32`
/// rounding of the loud bins leaks into the quiet band's energy near the log floor.
const TOLERANCE: f32 = 1e-3;

fn fixture() -> (Vec<i16>, Vec<f32>) {
    let pcm = include_bytes!("data/logmel/pcm.i16")
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let features = include_bytes!("data/logmel/features.f32")
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (pcm, features)
}

/// Runs the front-end over `pcm` in chunks of `chunk` samples, flattening the vectors.
fn stream(front: &mut FrontEnd, pcm: &[i16], chunk: usize) -> Vec<f32> {
    let mut out = Vec::new();
    for piece in pcm.chunks(chunk) {
        front.push_all(piece, |v| out.extend_from_slice(v));
    }
    out
}

#[test]
fn every_chunking_matches_features_py() {
    let (pcm, expected) = fixture();
    assert_eq!(expected.len() % FEATURE_DIM, 0);
    // 51,117 samples: 1 + (51117 - 400) / 160 = 317 frames, 79 vectors (one frame left over).
    assert_eq!(expected.len() / FEATURE_DIM, 79);
    let floor = libm::logf(LOG_FLOOR);
    assert!(
        expected[..FEATURE_DIM]
            .iter()
            .all(|&v| (v - floor).abs() < 1e-5),
        "the fixture opens with digital silence"
    );
    let mut front = FrontEnd::new();
    let mut reference: Option<Vec<f32>> = None;
    for chunk in [1, 7, 160, 400, 1000, 4096, pcm.len()] {
        front.reset();
        let got = stream(&mut front, &pcm, chunk);
        assert_eq!(got.len(), expected.len(), "chunk {chunk}");
        let (worst, at) = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .enumerate()
            .fold(
                (0.0f32, 0),
                |(m, at), (i, d)| if d > m { (d, i) } else { (m, at) },
            );
        assert!(
            worst < TOLERANCE,
            "chunk {chunk}: |diff| {worst} at vector {} value {}",
            at / FEATURE_DIM,
            at % FEATURE_DIM
        );
        println!("chunk {chunk}: max |diff| {worst}");
        // The chunking changes nothing, bit for bit.
        match &reference {
            None => reference = Some(got),
            Some(r) => assert!(r == &got, "chunk {chunk} differs from chunk 1"),
        }
    }
}

#[test]
fn push_returns_each_vector_the_moment_its_last_frame_completes() {
    let (pcm, expected) = fixture();
    let mut front = FrontEnd::new();
    let mut at = 0;
    for j in 0..expected.len() / FEATURE_DIM {
        // Vector j ends with frame 4j + 3, whose last sample is (4j + 3) * 160 + 399.
        let last = (4 * j + 3) * 160 + 399;
        let (used, vector) = front.push(&pcm[at..last]);
        assert_eq!((used, vector.is_none()), (last - at, true), "vector {j}");
        let (used, vector) = front.push(&pcm[last..]);
        assert_eq!(used, 1, "vector {j}");
        let vector = vector.expect("the last sample completes it");
        let want = &expected[j * FEATURE_DIM..(j + 1) * FEATURE_DIM];
        assert!(vector
            .iter()
            .zip(want)
            .all(|(a, b)| (a - b).abs() < TOLERANCE));
        at = last + 1;
    }
    // A reset starts a new stream: the same audio gives the same first vector.
    let mut first = Vec::new();
    front.reset();
    front.push_all(&pcm[..1000], |v| first.extend_from_slice(v));
    let mut fresh = Vec::new();
    FrontEnd::new().push_all(&pcm[..1000], |v| fresh.extend_from_slice(v));
    assert_eq!(first, fresh);
    assert_eq!(first.len(), FEATURE_DIM);
}
