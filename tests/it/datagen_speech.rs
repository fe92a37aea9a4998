//! `edgetrim datagen speech`: the data folder's shape and WAV format, byte-identical output
//! for the same flags, sentences that stay in their split, test voices training never uses,
//! the noise option, and refusals (bad flags, missing espeak-ng) that leave nothing behind.
//!
//! Every test needs espeak-ng (CI installs it with scripts/setup-speech.sh); without it they
//! print why and pass, except the missing-program refusal, which needs no synthesiser.

use edgetrim_models::datagen::speech::{corpus, voices, wav, Split};
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Whether espeak-ng runs here; prints why the calling test is skipped when it does not.
fn have_espeak() -> bool {
    let ok = Command::new("espeak-ng").arg("--version").output().is_ok();
    if !ok {
        println!("skipped: espeak-ng is not installed (bash scripts/setup-speech.sh)");
    }
    ok
}

fn generate(split: &str, seed: &str, count: &str, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "datagen",
        "speech",
        "--split",
        split,
        "--seed",
        seed,
        "--count",
        count,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    assert_ok(&edgetrim(&args))
}

/// The transcript lines as (id, voice, text).
fn transcripts(dir: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(dir.join("transcripts.tsv"))
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "{line:?}");
            (
                fields[0].to_owned(),
                fields[1].to_owned(),
                fields[2].to_owned(),
            )
        })
        .collect()
}

#[test]
fn folder_holds_one_16khz_wav_per_transcript_line_and_is_byte_identical_per_seed() {
    if !have_espeak() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let report = generate("val", "4", "6", &a, &[]);
    assert!(report.contains("wrote 6 val utterances"), "{report}");
    generate("val", "4", "6", &b, &[]);
    generate("val", "5", "6", &c, &[]);

    let lines = transcripts(&a);
    assert_eq!(lines.len(), 6);
    let train_voices: HashSet<String> = voices::voices(Split::Train, voices::Pool::Standard)
        .into_iter()
        .collect();
    let mut wavs: Vec<String> = std::fs::read_dir(a.join("wav"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    wavs.sort();
    for (i, (id, voice, text)) in lines.iter().enumerate() {
        assert_eq!(id, &format!("{i:06}"));
        assert_eq!(wavs[i], format!("{id}.wav"));
        assert!(
            train_voices.contains(voice),
            "val uses training voices: {voice}"
        );
        assert!(
            !text.is_empty()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b' ' || b == b'\'')
                && !text.starts_with(' ')
                && !text.ends_with(' ')
                && !text.contains("  "),
            "{text:?}"
        );
        let bytes = std::fs::read(a.join("wav").join(&wavs[i])).unwrap();
        // A canonical header: RIFF size, PCM, mono, 16 kHz, 16 bits, data to the end.
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(&bytes[36..40], b"data");
        let pcm = wav::read(&bytes).unwrap();
        assert_eq!(pcm.rate, 16000);
        assert_eq!(bytes.len(), 44 + 2 * pcm.samples.len());
        // At least half a second of audio that is neither silent nor clipped.
        let peak = pcm.samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(pcm.samples.len() > 8000, "{} samples", pcm.samples.len());
        assert!((3000..32767).contains(&peak), "peak {peak}");
        assert_eq!(
            bytes,
            std::fs::read(b.join("wav").join(&wavs[i])).unwrap(),
            "{id}"
        );
    }
    assert_eq!(wavs.len(), 6);
    assert_eq!(
        std::fs::read(a.join("transcripts.tsv")).unwrap(),
        std::fs::read(b.join("transcripts.tsv")).unwrap()
    );
    assert_ne!(
        transcripts(&a),
        transcripts(&c),
        "another seed, other utterances"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        3,
        "no temporary folders left"
    );
}

#[test]
fn splits_keep_their_sentences_and_test_voices_are_held_out() {
    if !have_espeak() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let train_voices: HashSet<String> = voices::voices(Split::Train, voices::Pool::Standard)
        .into_iter()
        .collect();
    let mut texts: Vec<HashSet<String>> = Vec::new();
    for split in Split::ALL {
        let dir = tmp.path().join(split.name());
        generate(split.name(), "1", "25", &dir, &[]);
        let lines = transcripts(&dir);
        for (_, voice, text) in &lines {
            assert_eq!(
                corpus::bucket(text),
                split,
                "{text:?} is not a {split:?} sentence"
            );
            assert_eq!(
                train_voices.contains(voice),
                split != Split::Test,
                "{split:?}: {voice}"
            );
        }
        texts.push(lines.into_iter().map(|(_, _, t)| t).collect());
    }
    for i in 0..3 {
        for j in i + 1..3 {
            let shared: Vec<_> = texts[i].intersection(&texts[j]).collect();
            assert!(shared.is_empty(), "splits {i} and {j} share {shared:?}");
        }
    }
}

#[test]
fn noise_fills_the_silence_and_changes_only_the_audio() {
    if !have_espeak() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (clean, noisy) = (tmp.path().join("clean"), tmp.path().join("noisy"));
    generate("train", "2", "3", &clean, &[]);
    let report = generate("train", "2", "3", &noisy, &["--noise"]);
    assert!(report.contains("with noise"), "{report}");
    assert_eq!(transcripts(&clean), transcripts(&noisy));
    for i in 0..3 {
        let read = |dir: &Path| {
            wav::read(&std::fs::read(dir.join(format!("wav/{i:06}.wav"))).unwrap()).unwrap()
        };
        let (c, n) = (read(&clean), read(&noisy));
        // The first 50 ms are silence before the speech: digital zero when clean, noise when
        // noisy.
        assert!(c.samples[..800].iter().all(|&s| s == 0));
        let filled = n.samples[..800].iter().filter(|&&s| s != 0).count();
        assert!(filled > 600, "utterance {i}: {filled} of 800 noisy samples");
    }
}

#[test]
fn more_voices_adds_named_training_speakers_and_never_a_test_voice() {
    if !have_espeak() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("train");
    let report = generate("train", "2", "12", &dir, &["--more-voices"]);
    assert!(report.contains("more voices"), "{report}");
    let standard: HashSet<String> = voices::voices(Split::Train, voices::Pool::Standard)
        .into_iter()
        .collect();
    let extended: HashSet<String> = voices::voices(Split::Train, voices::Pool::Extended)
        .into_iter()
        .collect();
    let test: HashSet<String> = voices::voices(Split::Test, voices::Pool::Extended)
        .into_iter()
        .collect();
    let lines = transcripts(&dir);
    for (_, voice, _) in &lines {
        assert!(extended.contains(voice) && !test.contains(voice), "{voice}");
    }
    // 378 of the 468 speakers are new: twelve draws all from the old 90 would be a bug.
    assert!(
        lines.iter().any(|(_, voice, _)| !standard.contains(voice)),
        "{lines:?}"
    );
}

/// An accent folder like scripts/setup-accents.sh makes, in miniature: the system's espeak-ng
/// data (linked) plus one voice `en-x-test` that speaks with the Scottish table.
fn tiny_accent_folder(dir: &Path) {
    let version = Command::new("espeak-ng").arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    let system = Path::new(version.split("Data at:").nth(1).unwrap().trim());
    let data = dir.join("espeak-ng-data");
    std::fs::create_dir_all(data.join("lang/gmw")).unwrap();
    for entry in std::fs::read_dir(system).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "lang" {
            std::os::unix::fs::symlink(entry.path(), data.join(entry.file_name())).unwrap();
        }
    }
    let voice = "name test accent\nlanguage en-x-test\nphonemes en-sc\n";
    std::fs::write(data.join("lang/gmw/en-x-test"), voice).unwrap();
    std::fs::write(dir.join("accents.txt"), "en-x-test\n").unwrap();
}

#[test]
fn accents_speak_half_of_the_training_utterances_through_their_own_data() {
    if !have_espeak() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let accents = tmp.path().join("accents");
    tiny_accent_folder(&accents);
    let acc = accents.to_str().unwrap();
    let dir = tmp.path().join("train");
    let report = generate(
        "train",
        "2",
        "16",
        &dir,
        &["--more-voices", "--accents", acc],
    );
    assert!(report.contains("synthetic accents"), "{report}");
    let test: HashSet<String> = voices::voices(Split::Test, voices::Pool::Extended)
        .into_iter()
        .collect();
    let lines = transcripts(&dir);
    let accented = lines
        .iter()
        .filter(|(_, voice, _)| voice.starts_with("en-x-test"))
        .count();
    assert!((3..=13).contains(&accented), "{lines:?}");
    for (id, voice, _) in &lines {
        assert!(!test.contains(voice), "{voice}");
        let pcm = wav::read(&std::fs::read(dir.join(format!("wav/{id}.wav"))).unwrap()).unwrap();
        assert!(pcm.samples.len() > 8000, "{id} {voice}");
    }
    // The generator passes the folder to espeak-ng: the accent speaks as espeak-ng does with
    // --path, not as the default voice it would fall back to without it.
    let speaker = |data: Option<&Path>| voices::Speaker {
        voice: "en-x-test".into(),
        speed: 160,
        pitch: 50,
        word_gap: 0,
        data: data.map(Path::to_owned),
    };
    let text = "the water at the old bath house";
    let accented = speaker(Some(&accents)).synthesise(text).unwrap();
    let direct = Command::new("espeak-ng")
        .arg(format!("--path={acc}"))
        .args([
            "-v",
            "en-x-test",
            "-s",
            "160",
            "-p",
            "50",
            "-g",
            "0",
            "--stdout",
            text,
        ])
        .output()
        .unwrap();
    assert_eq!(accented, direct.stdout);
    assert_ne!(accented, speaker(None).synthesise(text).unwrap());
    // Refusals: not for val or test, and a folder without accents.txt.
    let out = tmp.path().join("none");
    let out = out.to_str().unwrap();
    let unknown = tmp.path().join("unknown");
    tiny_accent_folder(&unknown);
    std::fs::write(unknown.join("accents.txt"), "en-x-test\nen-x-other\n").unwrap();
    let voice_file = unknown.join("espeak-ng-data/lang/gmw/en-x-other");
    std::fs::write(voice_file, "name typo\nlanguage en-x-otter\n").unwrap();
    for (split, folder, message) in [
        ("val", acc, "--accents adds training speakers"),
        ("train", out, "accents.txt"),
        (
            "train",
            unknown.to_str().unwrap(),
            "does not know the accent en-x-other",
        ),
    ] {
        assert_refused(
            &edgetrim(&[
                "datagen",
                "speech",
                "--split",
                split,
                "--count",
                "1",
                "--accents",
                folder,
                "--out",
                out,
            ]),
            message,
        );
    }
    assert!(!Path::new(out).exists());
}

#[test]
fn fragments_start_training_utterances_on_more_words_and_stay_in_the_training_bucket() {
    if !have_espeak() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (plain, mixed) = (tmp.path().join("plain"), tmp.path().join("mixed"));
    generate("train", "4", "60", &plain, &[]);
    let report = generate("train", "4", "60", &mixed, &["--fragments"]);
    assert!(report.contains("sentence fragments"), "{report}");
    let firsts = |dir: &Path| -> HashSet<String> {
        transcripts(dir)
            .iter()
            .map(|(_, _, text)| text.split(' ').next().unwrap().to_owned())
            .collect()
    };
    for (_, _, text) in transcripts(&mixed) {
        assert_eq!(corpus::bucket(&text), Split::Train, "{text}");
    }
    // A quarter are fragments, which start on words whole sentences rarely start on.
    let (plain_firsts, mixed_firsts) = (firsts(&plain), firsts(&mixed));
    assert!(
        mixed_firsts.difference(&plain_firsts).count() >= 3,
        "{plain_firsts:?} {mixed_firsts:?}"
    );
    let out = tmp.path().join("val");
    assert_refused(
        &edgetrim(&[
            "datagen",
            "speech",
            "--split",
            "val",
            "--count",
            "1",
            "--fragments",
            "--out",
            out.to_str().unwrap(),
        ]),
        "--fragments adds training sentences",
    );
    assert!(!out.exists());
}

#[test]
fn refuses_bad_flags_and_a_missing_synthesiser_leaving_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("fresh");
    let out = fresh.to_str().unwrap();
    // No espeak-ng on PATH: one clear line naming the program and the install script.
    let missing = Command::new(env!("CARGO_BIN_EXE_edgetrim"))
        .args(["datagen", "speech", "--split", "train", "--count", "2"])
        .args(["--out", out])
        .env("PATH", "")
        .output()
        .unwrap();
    assert_refused(&missing, "espeak-ng is not installed");
    assert_refused(&missing, "scripts/setup-speech.sh");
    assert_refused(
        &edgetrim(&[
            "datagen", "speech", "--split", "val", "--count", "0", "--out", out,
        ]),
        "--count 0",
    );
    assert_refused(
        &edgetrim(&[
            "datagen",
            "speech",
            "--split",
            "test",
            "--count",
            "1",
            "--more-voices",
            "--out",
            out,
        ]),
        "--more-voices adds training speakers",
    );
    let full = tmp.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x"), "").unwrap();
    assert_refused(
        &edgetrim(&[
            "datagen",
            "speech",
            "--split",
            "val",
            "--count",
            "1",
            "--out",
            full.to_str().unwrap(),
        ]),
        "not empty",
    );
    // Usage errors (clap): no split, a pavement-only split, no count.
    for args in [
        &["datagen", "speech", "--count", "1", "--out", out][..],
        &[
            "datagen", "speech", "--split", "shifted", "--count", "1", "--out", out,
        ],
        &["datagen", "speech", "--split", "test", "--out", out],
    ] {
        assert_eq!(edgetrim(args).status.code(), Some(2), "{args:?}");
    }
    assert!(!fresh.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "only `full`"
    );
    let help = assert_ok(&edgetrim(&["datagen", "speech", "--help"]));
    assert!(
        help.contains("transcripts.tsv") && help.contains("--count 12000"),
        "{help}"
    );
}
