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

/// A YOLOX-shaped detector for 64 px inputs (84 anchors, one class) that finds one 16 px box
/// at (4, 4)-(20, 20) with objectness = the largest value of input plane 0 / 255: 1 when that
/// plane holds the blue bytes of a blue image (YOLOX's BGR 0..=255), 0 if it were read as RGB.
fn yolox_model(dir: &Path) -> String {
    use edgetrim_compress::build::{dt, value_info, Attr, ModelBuilder};
    use prost::Message;
    const ANCHORS: usize = 8 * 8 + 4 * 4 + 2 * 2;
    // Anchor 9: stride 8, column 1, row 1, whose cell starts at (8, 8): centre (8 + 0.5 * 8,
    // 8 + 0.5 * 8), size e^ln2 * 8.
    let (mut base, mut gate) = (vec![0.0f32; ANCHORS * 6], vec![0.0f32; ANCHORS * 6]);
    base[9 * 6..9 * 6 + 6].copy_from_slice(&[0.5, 0.5, 2f32.ln(), 2f32.ln(), 0.0, 1.0]);
    gate[9 * 6 + 4] = 1.0 / 255.0;
    let mut m = ModelBuilder::new(13);
    m.input("images", dt::FLOAT, &[1, 3, 64, 64])
        .init_f32("base", &[1, ANCHORS, 6], &base)
        .init_f32("gate", &[1, ANCHORS, 6], &gate)
        .init_i64("zero", &[1], &[0])
        .init_i64("one", &[1], &[1])
        .init_i64("flat", &[3], &[1, 1, 1])
        .node(
            "Slice",
            &["images", "zero", "one", "one"],
            &["plane0"],
            vec![],
        )
        .node(
            "ReduceMax",
            &["plane0"],
            &["peak"],
            vec![("axes", Attr::Ints(vec![1, 2, 3]))],
        )
        .node("Reshape", &["peak", "flat"], &["peak3"], vec![])
        .node("Mul", &["peak3", "gate"], &["objectness"], vec![])
        .node("Add", &["base", "objectness"], &["head"], vec![]);
    let mut proto = m.proto();
    let graph = proto.graph.as_mut().unwrap();
    graph
        .output
        .push(value_info("head", dt::FLOAT, Some(&[1, ANCHORS, 6])));
    let path = dir.join("yolox.onnx");
    std::fs::write(&path, proto.encode_to_vec()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn reads_a_yolox_head_from_its_output_shape_and_feeds_it_bgr_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let model = yolox_model(dir.path());
    let data = dir.path().join("blue");
    std::fs::create_dir_all(data.join("images")).unwrap();
    std::fs::create_dir_all(data.join("labels")).unwrap();
    image::RgbImage::from_pixel(64, 64, image::Rgb([0, 0, 255]))
        .save(data.join("images/0.png"))
        .unwrap();
    std::fs::write(data.join("labels/0.txt"), "0 0.1875 0.1875 0.25 0.25\n").unwrap();
    for backend in ["nano", "tract"] {
        let out = edgetrim(&[
            "eval-detect",
            &model,
            "--data",
            data.to_str().unwrap(),
            "--backend",
            backend,
            "--json",
        ]);
        let report: serde_json::Value = serde_json::from_str(&assert_ok(&out)).unwrap();
        // One prediction, exactly on the box: found only if plane 0 held the blue bytes.
        assert_eq!(
            report["per_class"][0]["predictions"], 1,
            "{backend}: {report}"
        );
        assert_eq!(report["map50_95"], 1.0, "{backend}: {report}");
    }
}
