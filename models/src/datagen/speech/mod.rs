//! Synthetic speech for training and testing a small streaming recogniser: a road
//! inspector's commands and remarks ([`corpus`]), spoken by espeak-ng voices with random
//! prosody ([`voices`]), resampled to 16 kHz ([`resample`]) and recorded with optional noise
//! and reverb ([`augment`]), written as WAV files and a transcript list ([`dataset`]).
//!
//! Why synthetic: the task (a closed vocabulary of ~250 words) is realistic for a
//! microcontroller, nothing has to be downloaded, and the held-out voices make the test split
//! a real generalisation test: train and val share voices, test uses base voices and variants
//! training never heard, and no sentence is in more than one split.
//!
//! Utterance `i` is a pure function of `(split, seed, i, variety)` and the installed
//! espeak-ng: the same arguments give byte-identical WAV files, however many threads write
//! them.

pub mod augment;
pub mod corpus;
pub mod dataset;
pub mod resample;
pub mod voices;
pub mod wav;

use crate::datagen::rng::{combine, Rng};
use resample::Resampler;
use std::io;
use voices::{Accents, Pool, Speaker};

/// The data set's sample rate.
pub const SAMPLE_RATE: u32 = 16000;

/// The rate espeak-ng synthesises at.
pub const ESPEAK_RATE: u32 = 22050;

/// Which part of the data an utterance belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// Training: training sentences and voices.
    Train,
    /// Validation: its own sentences, training voices.
    Val,
    /// Test: its own sentences, held-out voices.
    Test,
}

impl Split {
    /// All splits.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        ["train", "val", "test"][self as usize]
    }
}

/// How utterances vary beyond their split: noise for any split, and for training which
/// speakers ([`Pool`], synthetic [`Accents`]) and whether sentence fragments
/// ([`corpus::training_fragment`], a quarter of the utterances). The default adds nothing,
/// and each option leaves the draws of the others as they were without it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Variety<'a> {
    /// Add noise and reverb.
    pub noisy: bool,
    /// Which speakers training draws from.
    pub pool: Pool,
    /// Synthetic accents half of the training utterances speak in.
    pub accents: Option<&'a Accents>,
    /// A quarter of the training utterances speak a fragment of a training sentence.
    pub fragments: bool,
}

/// One generated utterance.
#[derive(Clone, Debug, PartialEq)]
pub struct Utterance {
    /// The normalised transcript: lowercase `a`-`z`, `'` and single spaces.
    pub text: String,
    /// Who said it, and how.
    pub speaker: Speaker,
    /// 16 kHz mono samples.
    pub samples: Vec<i16>,
}

/// The resampler from espeak-ng's rate to [`SAMPLE_RATE`]: pass band to ~7.1 kHz (beyond the
/// front-end's 7.6 kHz top mel edge it is inaudible to the model anyway), stop band from
/// ~7.95 kHz, so no alias lands below 8 kHz.
pub fn espeak_resampler() -> Resampler {
    Resampler::new(ESPEAK_RATE, SAMPLE_RATE, 7500.0, 64)
}

/// Generates utterance `index` of `split`: its sentence, its speaker, the synthesised and
/// resampled speech and what `variety` adds. `resampler` is [`espeak_resampler`], built once
/// by the caller.
pub fn generate(
    split: Split,
    seed: u64,
    index: u64,
    variety: Variety,
    resampler: &Resampler,
) -> io::Result<Utterance> {
    let mut rng = Rng::new(combine(&[0x5bee_c400 + split as u64, seed, index]));
    let text = if variety.fragments && split == Split::Train && rng.chance(0.25) {
        corpus::training_fragment(&mut rng)
    } else {
        corpus::sentence_for(split, &mut rng)
    };
    let speaker = Speaker::draw(split, variety.pool, variety.accents, &mut rng);
    let pcm = wav::read(&speaker.synthesise(&text)?)?;
    if pcm.rate != ESPEAK_RATE {
        return Err(io::Error::other(format!(
            "{} wrote {} Hz audio; this generator expects {ESPEAK_RATE} Hz (espeak-ng 1.51)",
            voices::ESPEAK,
            pcm.rate
        )));
    }
    let speech: Vec<f32> = pcm
        .samples
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    let samples = augment::augment(&resampler.run(&speech), variety.noisy, &mut rng);
    Ok(Utterance {
        text,
        speaker,
        samples,
    })
}
