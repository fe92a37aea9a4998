//! `edgetrim asr` and `edgetrim eval-asr` on the committed RNN-T fixture
//! (models/tests/data/rnnt-stream: a real exported slice, five test utterances and PyTorch's
//! greedy transcripts of them): both backends must reproduce PyTorch token for token, the
//! streamed text must equal the file's, and bad input is refused with one line.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tests/data/rnnt-stream")
}

fn model() -> String {
    fixture().join("model").display().to_string()
}

fn speech() -> String {
    fixture().join("speech").display().to_string()
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture().join("reference.json")).unwrap())
        .unwrap()
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn eval_asr_equals_pytorch_token_for_token_on_both_backends() {
    let reference = reference();
    let expected = reference["utterances"].as_array().unwrap();
    for backend in ["nano", "tract"] {
        let out = assert_ok(&edgetrim(&[
            "eval-asr",
            &model(),
            "--data",
            &speech(),
            "--backend",
            backend,
            "--json",
        ]));
        let report = json(&out);
        let got = report["hypotheses"].as_array().unwrap();
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(expected) {
            assert_eq!(g["id"], e["id"]);
            assert_eq!(g["tokens"], e["tokens"], "{backend}, utterance {}", e["id"]);
            assert_eq!(g["text"], e["text"]);
        }
        // The same corpus-level rates as decode.py's.
        for key in ["wer", "cer"] {
            let (g, e) = (
                report[key].as_f64().unwrap(),
                reference[key].as_f64().unwrap(),
            );
            assert!((g - e).abs() < 1e-12, "{backend} {key}: {g} vs {e}");
        }
        assert!(report["rtf"].as_f64().unwrap() > 0.0);
        assert_eq!(report["arena"].is_object(), backend == "nano");
        assert_eq!(report["utterances"], 5);
    }
    // The summary names the figures.
    let text = assert_ok(&edgetrim(&[
        "eval-asr",
        &model(),
        "--data",
        &speech(),
        "--limit",
        "2",
    ]));
    assert!(
        text.contains("2 utterances") && text.contains("WER") && text.contains("RTF"),
        "{text}"
    );
}

#[test]
fn asr_streams_a_file_and_stdin_to_the_same_transcript() {
    let first = &reference()["utterances"][0];
    let expected = first["text"].as_str().unwrap();
    let wav = fixture().join(format!("speech/wav/{}.wav", first["id"].as_str().unwrap()));
    let wav = wav.to_str().unwrap();

    let text = assert_ok(&edgetrim(&["asr", &model(), "--wav", wav]));
    assert_eq!(text.lines().next(), Some(expected), "{text}");
    assert!(text.contains("RTF") && text.contains("p99"), "{text}");

    let report = json(&assert_ok(&edgetrim(&[
        "asr",
        &model(),
        "--wav",
        wav,
        "--json",
    ])));
    assert_eq!(report["text"], expected);
    assert_eq!(report["tokens"], first["tokens"]);
    // 16 kHz samples -> 4-frame vectors -> chunks of 4 vectors, the last one partial.
    let samples = (std::fs::metadata(wav).unwrap().len() - 44) / 2;
    let vectors = (1 + (samples - 400) / 160) / 4;
    assert_eq!(report["chunk_latency"]["frames"], vectors.div_ceil(4));
    assert_eq!(report["chunk_ms"], 160.0);

    let mut child = Command::new(env!("CARGO_BIN_EXE_edgetrim"))
        .args(["asr", &model(), "--wav", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(wav).unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let piped = json(&assert_ok(&child.wait_with_output().unwrap()));
    assert_eq!(piped["tokens"], first["tokens"]);
    assert_eq!(piped["wav"], "-");
}

#[test]
fn bad_folders_and_audio_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let wav = fixture().join("speech/wav/000000.wav");
    let wav = wav.to_str().unwrap();

    let missing = dir.join("nothing");
    assert_refused(
        &edgetrim(&["asr", missing.to_str().unwrap(), "--wav", wav]),
        "not a model folder",
    );
    // A folder without its joiner.
    let partial = dir.join("partial");
    std::fs::create_dir(&partial).unwrap();
    for f in ["encoder.onnx", "predictor.onnx", "tokens.txt"] {
        std::fs::copy(fixture().join("model").join(f), partial.join(f)).unwrap();
    }
    assert_refused(
        &edgetrim(&["asr", partial.to_str().unwrap(), "--wav", wav]),
        "joiner.onnx",
    );
    // The encoder in the predictor's place.
    std::fs::copy(
        fixture().join("model/encoder.onnx"),
        partial.join("joiner.onnx"),
    )
    .unwrap();
    assert_refused(
        &edgetrim(&["asr", partial.to_str().unwrap(), "--wav", wav]),
        "edgetrim.asr.component",
    );
    // tokens.txt that does not match the joiner.
    let short_vocab = dir.join("vocab");
    std::fs::create_dir(&short_vocab).unwrap();
    for f in ["encoder.onnx", "predictor.onnx", "joiner.onnx"] {
        std::fs::copy(fixture().join("model").join(f), short_vocab.join(f)).unwrap();
    }
    std::fs::write(short_vocab.join("tokens.txt"), "<blank>\n<space>\na\n").unwrap();
    assert_refused(
        &edgetrim(&["asr", short_vocab.to_str().unwrap(), "--wav", wav]),
        "3 tokens, but the joiner has 29 logits",
    );

    // 8 kHz audio, and bytes that are no WAV.
    let mut slow = std::fs::read(wav).unwrap();
    slow[24..28].copy_from_slice(&8000u32.to_le_bytes());
    let slow_path = dir.join("slow.wav");
    std::fs::write(&slow_path, slow).unwrap();
    assert_refused(
        &edgetrim(&["asr", &model(), "--wav", slow_path.to_str().unwrap()]),
        "8000 Hz",
    );
    let junk = dir.join("junk.wav");
    std::fs::write(&junk, b"not a wav at all").unwrap();
    assert_refused(
        &edgetrim(&["asr", &model(), "--wav", junk.to_str().unwrap()]),
        "not a usable WAV",
    );

    // A speech folder with a malformed transcript line, and --limit 0.
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("transcripts.tsv"), "000000\tonly two fields\n").unwrap();
    let data = data.to_str().unwrap();
    assert_refused(
        &edgetrim(&["eval-asr", &model(), "--data", data]),
        "line 1: expected id<TAB>voice<TAB>text",
    );
    assert_refused(
        &edgetrim(&["eval-asr", &model(), "--data", &speech(), "--limit", "0"]),
        "--limit 0",
    );
    assert_refused(
        &edgetrim(&["eval-asr", &model(), "--data", dir.to_str().unwrap()]),
        "transcripts.tsv",
    );
}

/// The fixture is itself a slice that carries its slicing rules, so it can be cut again:
/// 2 depths x 7 widths, the largest being the fixture itself.
#[test]
fn slices_lists_measures_evaluates_and_plots_every_slice() {
    let tmp = tempfile::tempdir().unwrap();
    let svg = tmp.path().join("slices.svg");
    let out = assert_ok(&edgetrim(&[
        "slices",
        &model(),
        "--eval",
        &format!("asr:{}", speech()),
        "--limit",
        "2",
        "--plot",
        svg.to_str().unwrap(),
        "--json",
    ]));
    let report = json(&out);
    let rows = report["slices"].as_array().unwrap();
    assert_eq!(rows.len(), 14);
    assert_eq!(rows[0]["slice"], "depth=2,width=1");
    let params: Vec<u64> = rows.iter().map(|r| r["params"].as_u64().unwrap()).collect();
    assert!(params.windows(2).all(|w| w[0] >= w[1]), "{params:?}");
    for r in rows {
        for key in ["flash_bytes", "macs_per_second", "arena_bytes"] {
            assert!(r[key].as_u64().unwrap() > 0, "{key}: {r}");
        }
        assert!((0.0..=1.5).contains(&r["wer"].as_f64().unwrap()), "{r}");
    }
    // The largest slice is the fixture: the same WER as eval-asr on the same utterances.
    let whole = json(&assert_ok(&edgetrim(&[
        "eval-asr",
        &model(),
        "--data",
        &speech(),
        "--limit",
        "2",
        "--json",
    ])));
    assert_eq!(rows[0]["wer"], whole["wer"]);
    assert_eq!(rows[0]["arena_bytes"], whole["arena"]["total"]);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg"), "{}", &chart[..60]);
    assert!(chart.contains("depth 1") && chart.contains("WER (%)"));

    // Without --eval there is nothing to plot; --eval takes asr:DIR only.
    assert_refused(
        &edgetrim(&["slices", &model(), "--plot", svg.to_str().unwrap()]),
        "need --eval",
    );
    assert_refused(
        &edgetrim(&["slices", &model(), "--eval", &speech()]),
        "expected asr:DIR",
    );
}
