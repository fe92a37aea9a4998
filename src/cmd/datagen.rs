//! `edgetrim datagen pavement|speech`: procedurally generated road-damage images and spoken
//! inspection commands, so a detector and a speech recogniser can be trained, evaluated and
//! timed without downloading a data set.
//!
//! The generation itself lives in `edgetrim_models::datagen` (deterministic by seed); this
//! command validates flags, shows progress and reports what it wrote. Outputs appear
//! atomically: a failed or interrupted run leaves nothing behind.

use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use edgetrim_models::datagen::{speech, write, RoadVideo, Split};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `edgetrim datagen` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to generate.
    #[command(subcommand)]
    pub what: What,
}

/// The generators.
#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Pavement-damage road scenes: a YOLO-format folder (--images) or a road video (--video).
    Pavement(PavementArgs),
    /// A road inspector's spoken commands (espeak-ng voices): 16 kHz WAVs and transcripts.
    Speech(SpeechArgs),
}

/// The split to draw from; each has its own seed stream.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SplitArg {
    /// Training images.
    Train,
    /// Validation images.
    Val,
    /// Held-out test images (training style).
    Test,
    /// Held-out test images in a shifted style (lighting, palette, texture, camera).
    Shifted,
}

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Split {
        match s {
            SplitArg::Train => Split::Train,
            SplitArg::Val => Split::Val,
            SplitArg::Test => Split::Test,
            SplitArg::Shifted => Split::Shifted,
        }
    }
}

/// `edgetrim datagen pavement` options.
#[derive(clap::Args, Debug)]
#[command(
    group = clap::ArgGroup::new("kind").required(true).args(["images", "video"]),
    after_help = "\
Examples:
  edgetrim datagen pavement --split train --images 2000 --size 320 --out data/train
  edgetrim datagen pavement --split shifted --seed 7 --images 500 --out data/shifted
  edgetrim datagen pavement --video 300 --size 320 --out road.y4m   (+ road.jsonl)

Classes (id name): 0 D00 longitudinal crack, 1 D10 transverse crack, 2 D20 alligator crack,
3 D40 pothole, 4 D43 crosswalk blur, 5 D44 white-line blur, 6 D50 manhole, 7 Repair patch.
A folder holds images/NNNNNN.png, labels/NNNNNN.txt (`class cx cy w h`, normalised) and
data.yaml. A video is Y4M 4:2:0 at 30 fps, SIZE wide and 3/4 SIZE high, with one JSON line
of ground-truth boxes (pixels, [x0, y0, x1, y1)) per frame beside it. The same flags
always give byte-identical output."
)]
pub struct PavementArgs {
    /// Which split's seed stream and style to use.
    #[arg(long, value_enum, default_value_t = SplitArg::Train)]
    pub split: SplitArg,
    /// Data set seed; with --split and the image index it determines every image.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write N images as a YOLO-format folder at --out.
    #[arg(long, value_name = "N")]
    pub images: Option<usize>,
    /// Write a road video of FRAMES frames as Y4M at --out (ground truth beside it as .jsonl).
    #[arg(long, value_name = "FRAMES")]
    pub video: Option<usize>,
    /// Image width (and height for images) in pixels.
    #[arg(long, value_name = "PX", default_value_t = 320)]
    pub size: usize,
    /// The folder (--images) or .y4m file (--video) to create.
    #[arg(long, short, value_name = "PATH")]
    pub out: PathBuf,
}

/// The speech splits: disjoint sentences; test uses voices training never hears.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SpeechSplitArg {
    /// Training sentences, training voices.
    Train,
    /// Validation sentences, training voices.
    Val,
    /// Test sentences, held-out voices.
    Test,
}

impl From<SpeechSplitArg> for speech::Split {
    fn from(s: SpeechSplitArg) -> speech::Split {
        match s {
            SpeechSplitArg::Train => speech::Split::Train,
            SpeechSplitArg::Val => speech::Split::Val,
            SpeechSplitArg::Test => speech::Split::Test,
        }
    }
}

/// `edgetrim datagen speech` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  edgetrim datagen speech --split train --seed 1 --count 12000 --out data/speech/train
  edgetrim datagen speech --split test --seed 3 --count 600 --noise --out data/speech/test-noisy
  edgetrim datagen speech --split train --seed 21 --count 24000 --more-voices --out data/speech/train
  edgetrim datagen speech --split train --seed 23 --count 24000 --more-voices \
      --accents data/accents --out data/speech-accents/train

The folder holds wav/NNNNNN.wav (16 kHz mono 16-bit PCM) and transcripts.tsv, one
`id<TAB>voice<TAB>text` line per utterance (text: lowercase a-z, apostrophe, single spaces).
Sentences are split by a hash of their text, so no sentence is in two splits; test voices
(base voices en-gb-x-gbcwmd and en-us-nyc, variants +m4, +f3, +klatt3) never occur in train
or val. Needs espeak-ng (bash scripts/setup-speech.sh). The same flags always give
byte-identical output.")]
pub struct SpeechArgs {
    /// Which sentences and voices.
    #[arg(long, value_enum)]
    pub split: SpeechSplitArg,
    /// Data set seed; with --split and the utterance index it determines every utterance.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How many utterances to write.
    #[arg(long, value_name = "N")]
    pub count: usize,
    /// Add road noise (white, pink or brown at 10-30 dB SNR) and, sometimes, reverb.
    #[arg(long)]
    pub noise: bool,
    /// With --split train: also speak with espeak-ng's 63 named variants (Andy, grandma,
    /// steph2, ...) on the training base voices, 468 speakers instead of 90. Val and test
    /// never change.
    #[arg(long)]
    pub more_voices: bool,
    /// With --split train: half of the utterances speak in one of the synthetic accents in DIR
    /// (phoneme tables with re-drawn vowels, made by scripts/setup-accents.sh), with the
    /// training variants. Val and test never change.
    #[arg(long, value_name = "DIR")]
    pub accents: Option<PathBuf>,
    /// With --split train: a quarter of the utterances speak a fragment (two or more words)
    /// of a training sentence, so that utterances start and end on every word, not only on
    /// the few that begin and end whole sentences. Val and test never change.
    #[arg(long)]
    pub fragments: bool,
    /// The folder to create.
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,
}

/// espeak-ng runs as a separate process per utterance; two workers keep two cores busy.
const SPEECH_WORKERS: usize = 2;

/// Largest accepted --size; larger scenes take seconds per image.
const MAX_SIZE: usize = 4096;
/// Largest accepted --images / --video count.
const MAX_COUNT: usize = 10_000_000;

/// Runs `edgetrim datagen`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    match args.what {
        What::Pavement(args) => pavement(args, out),
        What::Speech(args) => speech(args, out),
    }
}

fn speech(args: SpeechArgs, out: &mut dyn Write) -> Result<()> {
    check_count("--count", args.count)?;
    check_dir_target(&args.out)?;
    let split = speech::Split::from(args.split);
    if args.more_voices && split != speech::Split::Train {
        bail!(
            "--more-voices adds training speakers: use it with --split train ({} keeps its voices)",
            split.name()
        );
    }
    if args.accents.is_some() && split != speech::Split::Train {
        bail!(
            "--accents adds training speakers: use it with --split train ({} keeps its voices)",
            split.name()
        );
    }
    if args.fragments && split != speech::Split::Train {
        bail!(
            "--fragments adds training sentences: use it with --split train ({} keeps its sentences)",
            split.name()
        );
    }
    let accents = match &args.accents {
        Some(dir) => {
            let accents = speech::voices::Accents::open(dir)?;
            accents.check_known()?;
            Some(accents)
        }
        None => None,
    };
    let version = speech::voices::espeak_version()?;
    let started = Instant::now();
    let mut progress = Progress::new("utterances", args.count);
    let options = speech::dataset::Options {
        split,
        seed: args.seed,
        count: args.count,
        noisy: args.noise,
        pool: if args.more_voices {
            speech::voices::Pool::Extended
        } else {
            speech::voices::Pool::Standard
        },
        accents,
        fragments: args.fragments,
        workers: SPEECH_WORKERS,
    };
    let audio = speech::dataset::write_speech(&args.out, options, |i| progress.update(i))
        .with_context(|| format!("cannot write the speech data set {}", args.out.display()))?;
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    writeln!(
        out,
        "wrote {} {} utterances ({audio:.0} s of 16 kHz audio{}{}{}{}) to {} in {secs:.1} s ({:.1} utterances/s; {version})",
        args.count,
        split.name(),
        if args.noise { ", with noise" } else { "" },
        if args.more_voices { ", more voices" } else { "" },
        if args.accents.is_some() { ", synthetic accents" } else { "" },
        if args.fragments { ", sentence fragments" } else { "" },
        args.out.display(),
        args.count as f64 / secs.max(1e-9)
    )?;
    Ok(())
}

fn pavement(args: PavementArgs, out: &mut dyn Write) -> Result<()> {
    if !(32..=MAX_SIZE).contains(&args.size) {
        bail!(
            "--size {} is out of range: use 32 to {MAX_SIZE} pixels",
            args.size
        );
    }
    let split = Split::from(args.split);
    let started = Instant::now();
    if let Some(n) = args.images {
        check_count("--images", n)?;
        check_dir_target(&args.out)?;
        let mut progress = Progress::new("images", n);
        write::write_yolo(&args.out, split, args.seed, n, args.size, |i| {
            progress.update(i)
        })
        .with_context(|| format!("cannot write the data set {}", args.out.display()))?;
        progress.finish();
        let secs = started.elapsed().as_secs_f64();
        writeln!(
            out,
            "wrote {n} {} images ({}x{}) to {} in {secs:.1} s ({:.1} images/s)",
            split.name(),
            args.size,
            args.size,
            args.out.display(),
            n as f64 / secs.max(1e-9)
        )?;
    } else if let Some(frames) = args.video {
        check_count("--video", frames)?;
        if !args.size.is_multiple_of(2) {
            bail!("--size {} must be even for a 4:2:0 video", args.size);
        }
        if args.out.extension().and_then(|e| e.to_str()) != Some("y4m") {
            bail!("--out {} must end in .y4m for --video", args.out.display());
        }
        if args.out.is_dir() {
            bail!("--out {} is a directory", args.out.display());
        }
        let truth = args.out.with_extension("jsonl");
        let (width, height) = (args.size, args.size * 3 / 4 / 2 * 2);
        let video = RoadVideo::new(split, args.seed, frames, width, height);
        let mut progress = Progress::new("frames", frames);
        write::write_video(&args.out, &truth, video, width, height, |i| {
            progress.update(i)
        })
        .with_context(|| format!("cannot write the video {}", args.out.display()))?;
        progress.finish();
        let secs = started.elapsed().as_secs_f64();
        writeln!(
            out,
            "wrote {frames} frames ({width}x{height}, 30 fps) to {} and ground truth to {} in {secs:.1} s ({:.1} frames/s)",
            args.out.display(),
            truth.display(),
            frames as f64 / secs.max(1e-9)
        )?;
    }
    Ok(())
}

fn check_count(flag: &str, n: usize) -> Result<()> {
    if !(1..=MAX_COUNT).contains(&n) {
        bail!("{flag} {n} is out of range: use 1 to {MAX_COUNT}");
    }
    Ok(())
}

/// A data set folder may be created or fill an empty folder, never mix with old files.
fn check_dir_target(dir: &Path) -> Result<()> {
    if dir.is_file() {
        bail!("--out {} is a file; give a folder to create", dir.display());
    }
    if dir.is_dir() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "--out {} already exists and is not empty; remove it or choose another folder",
                dir.display()
            );
        }
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_class_in_id_order() {
        use clap::Args as _;
        let mut cmd = PavementArgs::augment_args(clap::Command::new("pavement"));
        let help = cmd.render_long_help().to_string();
        let mut at = 0;
        for (id, class) in edgetrim_models::datagen::Class::ALL.iter().enumerate() {
            let needle = format!("{id} {}", class.name());
            at = help[at..]
                .find(&needle)
                .map(|i| at + i)
                .unwrap_or_else(|| panic!("{needle} missing"));
        }
    }
}
