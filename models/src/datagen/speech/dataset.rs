//! The speech data folder: `wav/NNNNNN.wav` (16 kHz mono 16-bit) and `transcripts.tsv`
//! (`id<TAB>voice<TAB>text`, one line per utterance in id order, no header).
//!
//! Synthesis is mostly waiting for espeak-ng processes, so a few worker threads pull
//! utterance indices from a shared counter; since each utterance depends only on its index,
//! the files are the same whatever thread made them. Like every datagen writer, the folder is
//! built as a temporary sibling and renamed into place at the end: a failed or interrupted run
//! leaves nothing a training run could mistake for a data set.

use super::voices::{Accents, Pool};
use super::{espeak_resampler, generate, wav, Split, Variety, SAMPLE_RATE};
use crate::datagen::write::temp_sibling;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Which sentences and voices.
    pub split: Split,
    /// The data set seed.
    pub seed: u64,
    /// How many utterances.
    pub count: usize,
    /// Add noise and reverb.
    pub noisy: bool,
    /// Which speakers training draws from.
    pub pool: Pool,
    /// Synthetic accents half of the training utterances speak in.
    pub accents: Option<Accents>,
    /// A quarter of the training utterances speak a fragment of a training sentence.
    pub fragments: bool,
    /// Worker threads (at least one is used).
    pub workers: usize,
}

/// The transcript line of utterance `index` (with its newline).
pub fn transcript_line(index: usize, voice: &str, text: &str) -> String {
    format!("{index:06}\t{voice}\t{text}\n")
}

/// Writes the data folder at `dir` (which must not exist or be empty), calling
/// `progress(done)` as utterances finish. Returns the total seconds of audio written.
pub fn write_speech(
    dir: &Path,
    options: Options,
    mut progress: impl FnMut(usize),
) -> io::Result<f64> {
    let tmp = temp_sibling(dir);
    let result = (|| {
        let _ = fs::remove_dir_all(&tmp);
        let wav_dir = tmp.join("wav");
        fs::create_dir_all(&wav_dir)?;
        let resampler = espeak_resampler();
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let mut lines = vec![String::new(); options.count];
        let mut samples = 0usize;
        let (send, receive) = mpsc::channel();
        let options = &options;
        std::thread::scope(|scope| {
            for _ in 0..options.workers.max(1) {
                let send = send.clone();
                let (next, stop, resampler, wav_dir) = (&next, &stop, &resampler, &wav_dir);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= options.count || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let made = generate(
                        options.split,
                        options.seed,
                        i as u64,
                        Variety {
                            noisy: options.noisy,
                            pool: options.pool,
                            accents: options.accents.as_ref(),
                            fragments: options.fragments,
                        },
                        resampler,
                    )
                    .and_then(|u| {
                        let pcm = wav::Pcm {
                            rate: SAMPLE_RATE,
                            samples: u.samples,
                        };
                        fs::write(wav_dir.join(format!("{i:06}.wav")), wav::write(&pcm))?;
                        Ok((
                            transcript_line(i, &u.speaker.voice, &u.text),
                            pcm.samples.len(),
                        ))
                    });
                    if send.send((i, made)).is_err() {
                        break;
                    }
                });
            }
            drop(send);
            let mut done = 0;
            for (i, made) in receive {
                match made {
                    Ok((line, n)) => {
                        lines[i] = line;
                        samples += n;
                        done += 1;
                        progress(done);
                    }
                    Err(err) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err(io::Error::new(
                            err.kind(),
                            format!("utterance {i:06}: {err}"),
                        ));
                    }
                }
            }
            Ok(())
        })?;
        fs::write(tmp.join("transcripts.tsv"), lines.concat())?;
        fs::rename(&tmp, dir)?;
        Ok(samples as f64 / f64::from(SAMPLE_RATE))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}
