//! Who speaks: espeak-ng voices (a regional base voice plus a variant) with a random speed,
//! pitch and word gap, and the call that synthesises one utterance.
//!
//! The test split must measure how a recogniser copes with a speaker it never heard, so two
//! base voices and one variant of each family (male, female, Klatt) are held out: train and
//! val use only the other combinations, and every test voice has at least one held-out part
//! (a held-out base, a held-out variant, or both), so no test voice string ever occurs in
//! training.
//!
//! With [`Pool::Extended`] training also hears the named variants of espeak-ng (`Andy`,
//! `grandma`, `steph2`, ...) on its base voices: each is one more speaker (its own formants,
//! pitch range, breath and roughness). Validation and test never change, so their figures stay
//! comparable across recipes, and the standard pool keeps older data sets reproducible.
//!
//! With [`Accents`] half of the training utterances speak in a synthetic accent: a phoneme table
//! whose vowels `scripts/espeak-accents.py` re-drew from espeak-ng's vowel library. The
//! held-out accents differ from the training ones in exactly that (which recorded vowel each
//! phoneme sounds like), which no voice variant changes.
//!
//! espeak-ng 1.51 ignores a variant on `en-gb` (it resolves to the same output as plain
//! `en-gb`), so the British base voice is written `en`, which is the same voice and honours
//! variants. `+klatt6` is left out because it synthesises exactly what `+klatt` does.

use super::Split;
use crate::datagen::rng::Rng;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The synthesiser's program name, looked up on `PATH`.
pub const ESPEAK: &str = "espeak-ng";

/// Regional English base voices (espeak-ng names).
pub const BASES: [&str; 8] = [
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
];

/// Base voices only the test split uses.
pub const TEST_BASES: [&str; 2] = ["en-gb-x-gbcwmd", "en-us-nyc"];

/// Voice variants (`""` is the base voice's own); each changes formants, pitch range and
/// breathiness, the Klatt ones also the synthesis model.
pub const VARIANTS: [&str; 18] = [
    "", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
    "klatt3", "klatt4", "klatt5",
];

/// Variants only the test split uses: one male, one female, one Klatt.
pub const TEST_VARIANTS: [&str; 3] = ["m4", "f3", "klatt3"];

/// Named variants only training hears, with [`Pool::Extended`] (besides every [`VARIANTS`]
/// entry not held out). Left out: the robotic, whispering and effect voices (`robosoft*`,
/// `UniRobot`, `whisper*`, `Demonic`, `croak`, ...), `fast` (a speed, not a speaker) and
/// `klatt6` (see above); no entry synthesises with `klatt 3`, the held-out Klatt model.
pub const TRAIN_ONLY_VARIANTS: [&str; 63] = [
    "Alex",
    "Alicia",
    "Andrea",
    "Andy",
    "Annie",
    "AnxiousAndy",
    "Denis",
    "Diogo",
    "Gene",
    "Gene2",
    "Henrique",
    "Hugo",
    "Jacky",
    "Lee",
    "Marco",
    "Mario",
    "Michael",
    "Mike",
    "Nguyen",
    "Storm",
    "adam",
    "anika",
    "announcer",
    "antonio",
    "aunty",
    "belinda",
    "benjamin",
    "boris",
    "caleb",
    "david",
    "ed",
    "edward",
    "edward2",
    "grandma",
    "grandpa",
    "gustave",
    "iven",
    "iven2",
    "iven3",
    "iven4",
    "john",
    "kaukovalta",
    "linda",
    "m8",
    "marcelo",
    "max",
    "michel",
    "miguel",
    "norbert",
    "pablo",
    "paul",
    "pedro",
    "quincy",
    "rob",
    "robert",
    "sandro",
    "shelby",
    "steph",
    "steph2",
    "steph3",
    "travis",
    "victor",
    "zac",
];

/// The espeak-ng voice string of a base and a variant: `en-gb-scotland+f3`, or just the base.
pub fn voice_name(base: &str, variant: &str) -> String {
    if variant.is_empty() {
        base.to_owned()
    } else {
        format!("{base}+{variant}")
    }
}

/// Which speakers the training split draws from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pool {
    /// The combinations of [`BASES`] and [`VARIANTS`] without a held-out part (what val uses).
    #[default]
    Standard,
    /// Those plus [`TRAIN_ONLY_VARIANTS`] on the training bases: 468 speakers instead of 90.
    Extended,
}

/// The voices a split draws from, in a fixed order: train and val use every combination of
/// [`BASES`] and [`VARIANTS`] without a held-out part, test every combination with one; with
/// [`Pool::Extended`] train adds [`TRAIN_ONLY_VARIANTS`] on the training bases.
pub fn voices(split: Split, pool: Pool) -> Vec<String> {
    let mut out = Vec::new();
    for base in BASES {
        for variant in VARIANTS {
            let held_out = TEST_BASES.contains(&base) || TEST_VARIANTS.contains(&variant);
            if held_out == (split == Split::Test) {
                out.push(voice_name(base, variant));
            }
        }
    }
    if split == Split::Train && pool == Pool::Extended {
        for base in BASES.iter().filter(|b| !TEST_BASES.contains(b)) {
            out.extend(TRAIN_ONLY_VARIANTS.iter().map(|v| voice_name(base, v)));
        }
    }
    out
}

/// The voice variants training uses: [`VARIANTS`] without the held-out ones, and with
/// [`Pool::Extended`] also [`TRAIN_ONLY_VARIANTS`].
fn training_variants(pool: Pool) -> impl Iterator<Item = &'static str> {
    let named: &[&str] = match pool {
        Pool::Standard => &[],
        Pool::Extended => &TRAIN_ONLY_VARIANTS,
    };
    VARIANTS
        .iter()
        .filter(|v| !TEST_VARIANTS.contains(v))
        .chain(named)
        .copied()
}

/// Synthetic English accents: a private espeak-ng data folder (`DIR/espeak-ng-data`, made by
/// `scripts/espeak-accents.py`) whose extra phoneme tables re-draw the training accents'
/// vowels, and the voice names it lists in `DIR/accents.txt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accents {
    dir: PathBuf,
    names: Vec<String>,
}

impl Accents {
    /// Reads the accent folder `dir`; an error names the file that is missing or wrong.
    pub fn open(dir: &Path) -> io::Result<Accents> {
        let list = dir.join("accents.txt");
        let text = std::fs::read_to_string(&list).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot read {}: {e} (make the folder with scripts/setup-accents.sh)",
                    list.display()
                ),
            )
        })?;
        let names: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        if names.is_empty() {
            return Err(io::Error::other(format!(
                "{} lists no accent",
                list.display()
            )));
        }
        for name in &names {
            let voice = dir.join("espeak-ng-data/lang/gmw").join(name);
            if BASES.contains(&name.as_str()) || !voice.is_file() {
                return Err(io::Error::other(format!(
                    "{} names {name}, but {} is not a synthetic accent's voice file",
                    list.display(),
                    voice.display()
                )));
            }
        }
        Ok(Accents {
            dir: dir.to_owned(),
            names,
        })
    }

    /// Checks with espeak-ng that it knows every accent through this folder. espeak-ng speaks
    /// an unknown voice with its default one and exits 0, so a wrong folder would otherwise
    /// make a data set of default voices labelled as accents.
    pub fn check_known(&self) -> io::Result<()> {
        let output = Command::new(ESPEAK)
            .arg(format!("--path={}", self.dir.display()))
            .arg("--voices")
            .stdin(Stdio::null())
            .output()
            .map_err(not_installed)?;
        let text = String::from_utf8_lossy(&output.stdout);
        let listed: Vec<&str> = text
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1))
            .collect();
        match self.names.iter().find(|n| !listed.contains(&n.as_str())) {
            None => Ok(()),
            Some(name) => Err(io::Error::other(format!(
                "espeak-ng does not know the accent {name}: `{ESPEAK} --path={} --voices` does not list it",
                self.dir.display()
            ))),
        }
    }

    /// The accents' voice names, as `accents.txt` lists them.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Every accent with every training variant of `pool`, in a fixed order.
    pub fn voices(&self, pool: Pool) -> Vec<String> {
        self.names
            .iter()
            .flat_map(|a| training_variants(pool).map(move |v| voice_name(a, v)))
            .collect()
    }
}

/// How one utterance is spoken.
#[derive(Clone, Debug, PartialEq)]
pub struct Speaker {
    /// espeak-ng voice string (`-v`).
    pub voice: String,
    /// Words per minute (`-s`).
    pub speed: u32,
    /// Pitch, 0 to 99 (`-p`).
    pub pitch: u32,
    /// Extra pause between words in units of 10 ms (`-g`); 0 most of the time.
    pub word_gap: u32,
    /// The folder holding the espeak-ng data to speak with (`--path`), for a synthetic accent;
    /// `None` is the system's.
    pub data: Option<PathBuf>,
}

impl Speaker {
    /// Draws a voice of `split` (from `pool`) and its prosody. With `accents` a training
    /// utterance takes a synthetic accent half of the time; without, the draws are exactly
    /// those of older data sets.
    pub fn draw(split: Split, pool: Pool, accents: Option<&Accents>, rng: &mut Rng) -> Speaker {
        let (choices, data) = match accents {
            Some(a) if split == Split::Train && rng.chance(0.5) => {
                (a.voices(pool), Some(a.dir.clone()))
            }
            _ => (voices(split, pool), None),
        };
        let voice = choices[rng.below(choices.len())].clone();
        let speed = 130 + rng.below(71) as u32;
        let pitch = 30 + rng.below(41) as u32;
        let word_gap = if rng.chance(0.3) {
            1 + rng.below(5) as u32
        } else {
            0
        };
        Speaker {
            voice,
            speed,
            pitch,
            word_gap,
            data,
        }
    }

    /// Synthesises `text` with espeak-ng and returns its WAV bytes (22,050 Hz mono 16-bit).
    /// A missing program is an error that says how to install it.
    pub fn synthesise(&self, text: &str) -> io::Result<Vec<u8>> {
        let mut command = Command::new(ESPEAK);
        if let Some(data) = &self.data {
            command.arg(format!("--path={}", data.display()));
        }
        let output = command
            .args(["-v", &self.voice])
            .args(["-s", &self.speed.to_string()])
            .args(["-p", &self.pitch.to_string()])
            .args(["-g", &self.word_gap.to_string()])
            .arg("--stdout")
            .arg(text)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(not_installed)?;
        if !output.status.success() || output.stdout.is_empty() {
            return Err(io::Error::other(format!(
                "{ESPEAK} -v {} failed on {text:?} ({}): {}",
                self.voice,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(output.stdout)
    }
}

/// Checks that espeak-ng runs and returns its version line.
pub fn espeak_version() -> io::Result<String> {
    let output = Command::new(ESPEAK)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(not_installed)?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/...": keep the name and version.
    Ok(text
        .split("  Data at")
        .next()
        .unwrap_or("")
        .trim()
        .to_owned())
}

/// Turns "program not found" into an error naming the program and the install script.
fn not_installed(err: io::Error) -> io::Error {
    if err.kind() == io::ErrorKind::NotFound {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{ESPEAK} is not installed (it synthesises the speech): run `bash scripts/setup-speech.sh` (or `apt-get install espeak-ng`)"
            ),
        )
    } else {
        io::Error::new(err.kind(), format!("cannot run {ESPEAK}: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn test_voices_are_never_used_in_training_and_every_one_has_a_held_out_part() {
        let train: HashSet<String> = voices(Split::Train, Pool::Extended).into_iter().collect();
        let standard = voices(Split::Train, Pool::Standard);
        assert_eq!(standard.len(), 6 * 15);
        assert!(standard.iter().all(|v| train.contains(v)));
        assert_eq!(train.len(), 6 * (15 + TRAIN_ONLY_VARIANTS.len()));
        for pool in [Pool::Standard, Pool::Extended] {
            assert_eq!(voices(Split::Val, pool), standard);
            assert_eq!(
                voices(Split::Test, pool),
                voices(Split::Test, Pool::Standard)
            );
        }
        let test = voices(Split::Test, Pool::Standard);
        assert_eq!(test.len(), 8 * 18 - 6 * 15);
        for voice in &test {
            assert!(!train.contains(voice), "{voice}");
            let (base, variant) = voice.split_once('+').unwrap_or((voice, ""));
            assert!(
                TEST_BASES.contains(&base) || TEST_VARIANTS.contains(&variant),
                "{voice}"
            );
        }
        for voice in &train {
            assert!(TEST_BASES.iter().all(|b| !voice.starts_with(b)), "{voice}");
            assert!(
                TEST_VARIANTS
                    .iter()
                    .all(|v| !voice.ends_with(&format!("+{v}"))),
                "{voice}"
            );
        }
    }

    /// An accent folder whose `accents.txt` lists `names`, with a voice file for `with_files`.
    fn accent_folder(names: &[&str], with_files: &[&str]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let gmw = tmp.path().join("espeak-ng-data/lang/gmw");
        std::fs::create_dir_all(&gmw).unwrap();
        for name in with_files {
            std::fs::write(gmw.join(name), format!("language {name}\n")).unwrap();
        }
        std::fs::write(tmp.path().join("accents.txt"), names.join("\n")).unwrap();
        tmp
    }

    #[test]
    fn accents_speak_with_every_training_variant_and_no_test_one() {
        let dir = accent_folder(&["en-x-a", "en-x-b"], &["en-x-a", "en-x-b"]);
        let accents = Accents::open(dir.path()).unwrap();
        assert_eq!(accents.names(), ["en-x-a", "en-x-b"]);
        let test: HashSet<String> = voices(Split::Test, Pool::Standard).into_iter().collect();
        for (pool, per_accent) in [(Pool::Standard, 15), (Pool::Extended, 78)] {
            let all = accents.voices(pool);
            assert_eq!(all.len(), 2 * per_accent);
            assert!(all.contains(&"en-x-b".to_owned()) && all.contains(&"en-x-a+m1".to_owned()));
            for voice in &all {
                assert!(!test.contains(voice), "{voice}");
                let variant = voice.split_once('+').map_or("", |(_, v)| v);
                assert!(!TEST_VARIANTS.contains(&variant), "{voice}");
            }
        }
        assert!(accents
            .voices(Pool::Extended)
            .contains(&"en-x-a+grandma".to_owned()));
    }

    #[test]
    fn half_of_the_training_utterances_take_an_accent_and_only_in_training() {
        let dir = accent_folder(&["en-x-a"], &["en-x-a"]);
        let accents = Accents::open(dir.path()).unwrap();
        let mut rng = Rng::new(9);
        let draws: Vec<Speaker> = (0..400)
            .map(|_| Speaker::draw(Split::Train, Pool::Extended, Some(&accents), &mut rng))
            .collect();
        let accented = draws.iter().filter(|s| s.data.is_some()).count();
        assert!((150..=250).contains(&accented), "{accented} of 400");
        for s in &draws {
            assert_eq!(
                s.data.as_deref() == Some(dir.path()),
                s.voice.starts_with("en-x-a"),
                "{s:?}"
            );
        }
        for split in [Split::Val, Split::Test] {
            for _ in 0..50 {
                let s = Speaker::draw(split, Pool::Standard, Some(&accents), &mut rng);
                assert!(s.data.is_none() && !s.voice.starts_with("en-x-a"), "{s:?}");
            }
        }
    }

    #[test]
    fn an_accent_folder_is_refused_with_the_file_named() {
        let err = |dir: &tempfile::TempDir| Accents::open(dir.path()).unwrap_err().to_string();
        let missing = tempfile::tempdir().unwrap();
        let msg = err(&missing);
        assert!(
            msg.contains("accents.txt") && msg.contains("setup-accents.sh"),
            "{msg}"
        );
        let msg = err(&accent_folder(&[], &[]));
        assert!(msg.contains("lists no accent"), "{msg}");
        let msg = err(&accent_folder(&["en-x-a", "en-x-b"], &["en-x-a"]));
        assert!(msg.contains("names en-x-b"), "{msg}");
        // A standard base is not an accent: a test voice must never come in this way.
        let msg = err(&accent_folder(&["en-us-nyc"], &["en-us-nyc"]));
        assert!(msg.contains("names en-us-nyc"), "{msg}");
    }

    #[test]
    fn prosody_stays_in_range() {
        let mut rng = Rng::new(5);
        for _ in 0..500 {
            let s = Speaker::draw(Split::Train, Pool::Extended, None, &mut rng);
            assert!((130..=200).contains(&s.speed) && (30..=70).contains(&s.pitch));
            assert!(s.word_gap <= 5);
        }
    }
}
