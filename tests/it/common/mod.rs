//! Running the `edgetrim` binary and checking how it exits, for the CLI tests.

use npyz::WriterBuilder;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `edgetrim ARGS` to completion.
pub fn edgetrim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgetrim"))
        .args(args)
        .output()
        .expect("the edgetrim binary runs")
}

/// Lossy UTF-8.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success and returns stdout.
pub fn assert_ok(out: &Output) -> String {
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Asserts failure with exit code `code`, no panic, and (for code 1) exactly one
/// `edgetrim: ...` line on stderr, which is returned.
pub fn assert_fails(out: &Output, code: i32) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if code == 1 {
        assert!(stderr.starts_with("edgetrim: "), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    stderr
}

/// Asserts a one-line refusal (exit code 1) that mentions `needle`.
pub fn assert_refused(out: &Output, needle: &str) {
    let stderr = assert_fails(out, 1);
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

/// Writes `data` as a float32 .npy file of `shape` and returns its path as a string (for
/// command lines).
pub fn write_npy_f32(path: &Path, shape: &[u64], data: &[f32]) -> String {
    let file = std::fs::File::create(path).unwrap();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(file)
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
    path.to_str().unwrap().to_string()
}
