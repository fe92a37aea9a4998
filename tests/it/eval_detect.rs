//! `edgetrim eval-detect` end to end: the bundled YOLO9tr-s on freshly generated held-out
//! images, on both backends, and its refusals.

use crate::common::*;
use std::path::Path;

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/zoo/yolo9tr-s.onnx");

/// Generates `n` held-out test images at 224 px (the model's input size) into `dir`.
fn test_split(dir: &Path, n: usize) -> String {
    let path = dir.join("test");
    let path = path.to_str().unwrap();
    let n = n.to_string();
    assert_ok(&edgetrim(&[
        "datagen", "pavement", "--split", "test", "--seed", "11", "--images", &n, "--size", "224",
        "--out", path,
    ]));
    path.to_string()
}

fn eval_json(data: &str, backend: &str) -> serde_json::Value {
    let out = edgetrim(&[
        "eval-detect",
        MODEL,
        "--data",
        data,
        "--backend",
        backend,
        "--json",
    ]);
    serde_json::from_str(&assert_ok(&out)).expect("--json prints one JSON object")
}

#[test]
fn bundled_model_detects_damage_on_held_out_images_alike_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let data = test_split(dir.path(), 24);
    let nano = eval_json(&data, "nano");
    let tract = eval_json(&data, "tract");
    assert_eq!(nano["images"], 24);
    let boxes = nano["ground_truths"].as_u64().unwrap();
    assert!(boxes >= 24, "{boxes} boxes in 24 images");
    let map50 = nano["map50"].as_f64().unwrap();
    let map50_95 = nano["map50_95"].as_f64().unwrap();
    // Far above chance; the model card's figure is on 500 images.
    assert!(map50 > 0.5, "mAP50 {map50}");
    assert!(map50_95 < map50 && map50_95 > 0.2, "mAP50-95 {map50_95}");
    // The two runtimes differ only in float rounding.
    let diff = (map50 - tract["map50"].as_f64().unwrap()).abs();
    assert!(diff < 0.01, "nano {map50} vs tract {}", tract["map50"]);
    let names: Vec<&str> = nano["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"D40"),
        "class names come from the model: {names:?}"
    );

    let table = assert_ok(&edgetrim(&[
        "eval-detect",
        MODEL,
        "--data",
        &data,
        "--limit",
        "4",
    ]));
    assert!(table.contains("4 images"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("all ")), "{table}");
}

#[test]
fn refuses_bad_folders_labels_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("nowhere");
    assert_refused(
        &edgetrim(&["eval-detect", MODEL, "--data", missing.to_str().unwrap()]),
        "no images/ folder",
    );
    std::fs::create_dir_all(d.join("empty/images")).unwrap();
    let empty = d.join("empty");
    assert_refused(
        &edgetrim(&["eval-detect", MODEL, "--data", empty.to_str().unwrap()]),
        "holds no PNG or JPEG",
    );
    let data = test_split(d, 1);
    std::fs::write(
        Path::new(&data).join("labels/000000.txt"),
        "3 0.5 0.5 wide 0.1\n",
    )
    .unwrap();
    assert_refused(
        &edgetrim(&["eval-detect", MODEL, "--data", &data]),
        "000000.txt",
    );
    assert_refused(
        &edgetrim(&["eval-detect", MODEL, "--data", &data, "--conf", "1.5"]),
        "--conf",
    );
    let not_a_model = Path::new(&data).join("labels/000000.txt");
    assert_refused(
        &edgetrim(&[
            "eval-detect",
            not_a_model.to_str().unwrap(),
            "--data",
            &data,
        ]),
        "000000.txt",
    );
}
