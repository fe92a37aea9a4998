//! `edgetrim pack` and `edgetrim verify` end to end on the firmware check's tiny CNN: each
//! output format verifies, a corrupt image of each kind is refused, bad flags are usage
//! errors, and output is all-or-nothing. The `rs` format is compiled into this test (the
//! committed `tests/data/tiny_cnn_image.rs`, which must be what `pack` writes today) and run.

use crate::common::*;
use edgetrim_compress::build::{dt, ModelBuilder};
use edgetrim_runtime::{Arena, Image, Model, Session, Target};
use std::path::Path;

/// The firmware check's model.
const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/firmware/tiny_cnn.onnx"
);
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny_cnn_image.rs");

/// `edgetrim pack --format rs` of [`MODEL`], compiled here as firmware would include it.
mod packed {
    include!("../data/tiny_cnn_image.rs");
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

fn pack(dir: &Path, name: &str, extra: &[&str]) -> String {
    let out = path(dir, name);
    let mut args = vec!["pack", MODEL, "--target", "cortex-m4", "-o", &out];
    args.extend_from_slice(extra);
    assert_ok(&edgetrim(&args));
    out
}

fn verify_json(file: &str) -> serde_json::Value {
    let out = edgetrim(&["verify", file, "--json"]);
    serde_json::from_str(&assert_ok(&out)).expect("valid JSON")
}

#[test]
fn every_format_verifies_and_holds_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    let bin = pack(dir.path(), "m.bin", &["--format", "bin"]);
    let hex = pack(dir.path(), "m.hex", &["--base-address", "0x0804_0000"]);
    let rs = pack(dir.path(), "m.rs", &[]);

    let image = std::fs::read(&bin).unwrap();
    let parsed = Image::parse(&image).unwrap();
    assert_eq!(parsed.payload(), std::fs::read(MODEL).unwrap());
    assert_eq!(parsed.header().name(), "tiny_cnn"); // the model's file stem
    let stdout = assert_ok(&edgetrim(&["verify", &bin]));
    assert!(
        stdout.contains("valid") && stdout.contains("1x1x28x28"),
        "{stdout}"
    );

    let text = std::fs::read_to_string(&hex).unwrap();
    // extended linear address 0x0804, then the magic "ETIM" at offset 0
    assert!(
        text.starts_with(":020000040804EE\n:10000000455449"),
        "{text:.60}"
    );
    let (b, h) = (verify_json(&bin), verify_json(&hex));
    assert_eq!(b["crc32"], h["crc32"]);
    assert_eq!(b["image_bytes"], image.len());
    assert_eq!(h["outputs"][0]["shape"], serde_json::json!([1, 10]));

    // The Rust module embeds the same bytes.
    let module = std::fs::read_to_string(&rs).unwrap();
    assert!(module.contains(&format!("pub static MODEL: Aligned<[u8; {}]>", image.len())));
    assert!(packed::MODEL.0 == image[..]);
}

#[test]
fn the_format_follows_the_output_extension() {
    let dir = tempfile::tempdir().unwrap();
    let hex = pack(dir.path(), "m.ihex", &[]);
    assert!(std::fs::read_to_string(hex)
        .unwrap()
        .starts_with(":02000004"));
    let rs = pack(dir.path(), "m.rs", &[]);
    assert!(std::fs::read_to_string(rs)
        .unwrap()
        .starts_with("// Model image \"tiny_cnn\""));
    let bin = pack(dir.path(), "m.img", &[]);
    assert_eq!(&std::fs::read(bin).unwrap()[..4], b"ETIM");
}

#[test]
fn the_rust_module_is_the_committed_one_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let rs = pack(dir.path(), "tiny_cnn.rs", &["--name", "tiny_cnn"]);
    assert!(
        std::fs::read_to_string(rs).unwrap() == std::fs::read_to_string(FIXTURE).unwrap(),
        "{FIXTURE} is stale (the planner or the format changed): run `cargo run -- pack \
         examples/firmware/tiny_cnn.onnx --target cortex-m4 --name tiny_cnn -o tests/data/tiny_cnn_image.rs`"
    );

    // What a firmware does with it.
    assert_eq!(packed::MODEL.0.as_ptr() as usize % 16, 0);
    let image = Image::parse(&packed::MODEL.0).unwrap();
    assert_eq!(image.header().name(), packed::MODEL_NAME);
    assert_eq!(
        image.header().inputs()[0].shape.dims(),
        packed::INPUT_SHAPES[0]
    );
    assert_eq!(image.header().inputs()[0].dtype, packed::INPUT_DTYPES[0]);
    assert_eq!(
        image.header().outputs()[0].shape.dims(),
        packed::OUTPUT_SHAPES[0]
    );
    assert_eq!(image.header().outputs()[0].dtype, packed::OUTPUT_DTYPES[0]);
    let model = Model::parse(image.payload()).unwrap();
    let plan = Session::arena_report_for(&model, &[], Target::CortexM).unwrap();
    assert_eq!(packed::ARENA_BYTES, plan.total); // exact on this machine
    let mut arena = Box::new(Arena::<{ packed::ARENA_BYTES }>::new());
    let mut session = image.session(&mut arena.0).unwrap();
    let input: Vec<f32> = (0..28 * 28).map(|i| (i % 13) as f32 / 13.0 - 0.5).collect();
    session.set_input_f32(0, &input).unwrap();
    session.run().unwrap();
    let y: Vec<f32> = session
        .output(0)
        .bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(y.len(), 10);
    assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-5, "softmax: {y:?}");
}

#[test]
fn corrupt_images_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bin = pack(dir.path(), "m.bin", &[]);
    let image = std::fs::read(&bin).unwrap();
    let refused = |name: &str, bytes: &[u8], needle: &str| {
        let file = path(dir.path(), name);
        std::fs::write(&file, bytes).unwrap();
        assert_refused(&edgetrim(&["verify", &file]), needle);
    };
    let mut flipped = image.clone();
    flipped[image.len() / 2] ^= 0x10; // a weight bit
    refused("flipped.bin", &flipped, "CRC mismatch");
    refused("cut.bin", &image[..image.len() - 1], "truncated");
    let mut longer = image.clone();
    longer.push(0);
    refused("longer.bin", &longer, "length mismatch");
    refused(
        "model.onnx",
        &std::fs::read(MODEL).unwrap(),
        "not an edgetrim model image",
    );

    let hex = std::fs::read_to_string(pack(dir.path(), "m.hex", &[])).unwrap();
    let lines: Vec<&str> = hex.lines().collect();
    refused(
        "cut.hex",
        lines[..lines.len() - 1].join("\n").as_bytes(),
        "end-of-file",
    );
    let bad_digit = hex.replacen(":10000000455449", ":10000000455448", 1);
    refused(
        "digit.hex",
        bad_digit.as_bytes(),
        "line 2: checksum mismatch",
    );
}

#[test]
fn bad_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = path(dir.path(), "m.bin");
    let run = |extra: &[&str]| {
        let mut args = vec!["pack", MODEL, "-o", &out];
        args.extend_from_slice(extra);
        edgetrim(&args)
    };
    for usage in [
        &["--format", "elf"][..],
        &["--target", "cortex-m7"],
        &["--format", "hex", "--base-address", "0x08000004"],
        &["--format", "hex", "--base-address", "flash"],
    ] {
        assert_fails(&run(usage), 2);
    }
    assert_refused(
        &run(&["--target", "host", "--base-address", "0x10"]),
        "applies to --format hex only",
    );
    assert_refused(
        &run(&["--name", &"n".repeat(33)]),
        "image model name bytes exceeds this build's limit of 32",
    );
    assert!(!Path::new(&out).exists());
    let out = edgetrim(&[
        "pack",
        MODEL,
        "--target",
        "host",
        "-o",
        &path(dir.path(), "h.bin"),
    ]);
    assert!(assert_ok(&out).contains("target   host"));
}

#[test]
fn a_failed_pack_leaves_the_old_file_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = ModelBuilder::new(17);
    m.input("x", dt::FLOAT, &[1, 4]);
    m.node("FrobnicateV2", &["x"], &["a"], vec![]);
    m.node("Relu", &["a"], &["b"], vec![]);
    m.node("Quuxify", &["b"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    let bad = path(dir.path(), "bad.onnx");
    std::fs::write(&bad, m.build()).unwrap();
    let out = path(dir.path(), "m.bin");
    std::fs::write(&out, b"old image").unwrap();

    let result = edgetrim(&["pack", &bad, "-o", &out]);
    assert_refused(
        &result,
        "2 node(s) use ops the nano runtime does not support: FrobnicateV2, Quuxify",
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"old image");

    // Success replaces the file whole.
    let json = edgetrim(&["pack", MODEL, "-o", &out, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&assert_ok(&json)).unwrap();
    assert_eq!(v["format"], "bin");
    assert_eq!(v["file_bytes"], std::fs::read(&out).unwrap().len());
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["bad.onnx", "m.bin"]);
}
