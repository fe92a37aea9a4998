//! `edgetrim compress --eval classify:DIR`: top-1 accuracy on a folder of input tensors
//! and labels drives the report, `--max-drop` and `--sweep` as mAP does for a detector,
//! and a malformed folder is refused naming the file and line.
//!
//! The classifier is built here so that its failure is known in advance: eight logits that
//! are the input itself (Gemm with identity weights), on inputs whose winning element beats
//! the others by 1e-4 — far below int8's step over [-1, 0.3], so int8 ties them and the
//! first maximum wins, wrong for most classes, while float is always right.

use crate::common::{assert_ok, assert_refused, edgetrim, write_npy_f32};
use edgetrim_compress::build::{dt, Attr, ModelBuilder};
use serde_json::Value;
use std::path::Path;

const CLASSES: usize = 8;

/// x[1,8] → Gemm(identity) → y[1,8].
fn identity_classifier() -> Vec<u8> {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, CLASSES]);
    let eye: Vec<f32> = (0..CLASSES * CLASSES)
        .map(|i| f32::from(u8::from(i % (CLASSES + 1) == 0)))
        .collect();
    m.init_f32("w", &[CLASSES, CLASSES], &eye);
    m.init_f32("b", &[CLASSES], &[0.0; CLASSES]);
    m.node(
        "Gemm",
        &["x", "w", "b"],
        &["y"],
        vec![("transB", Attr::Int(1))],
    );
    m.output("y", dt::FLOAT);
    m.build()
}

/// `n` inputs in DIR/npy, input `i` of class `i % 8`: every element 0.3 but one at -1 (so
/// that int8's step is about 1/200) and the class's at 0.3 + 1e-4, away from a rounding
/// boundary of either the symmetric or the asymmetric step. Returns DIR.
fn classify_folder(dir: &Path, n: usize) -> String {
    let npy = dir.join("npy");
    std::fs::create_dir_all(&npy).unwrap();
    let mut labels = String::new();
    for i in 0..n {
        let class = i % CLASSES;
        let mut x = [0.3f32; CLASSES];
        x[(class + CLASSES / 2) % CLASSES] = -1.0;
        x[class] = 0.3 + 1e-4;
        write_npy_f32(&npy.join(format!("{i:04}.npy")), &[1, CLASSES as u64], &x);
        labels += &format!("{class}\n");
    }
    std::fs::write(dir.join("labels.txt"), labels).unwrap();
    dir.to_str().unwrap().to_string()
}

/// The top-1 accuracy of `model` on the first `n` inputs of `data`, one `edgetrim run` per
/// input: what the report's figure must equal.
fn top1_by_run(model: &str, data: &str, n: usize) -> f64 {
    let out = tempfile::tempdir().unwrap();
    let labels = std::fs::read_to_string(Path::new(data).join("labels.txt")).unwrap();
    let correct = labels
        .lines()
        .take(n)
        .enumerate()
        .filter(|(i, label)| {
            let input = format!("{data}/npy/{i:04}.npy");
            let dir = out.path().to_str().unwrap();
            assert_ok(&edgetrim(&[
                "run",
                model,
                "--input",
                &input,
                "--output-dir",
                dir,
            ]));
            let y: Vec<f32> =
                npyz::NpyFile::new(std::fs::File::open(out.path().join("output0.npy")).unwrap())
                    .unwrap()
                    .into_vec()
                    .unwrap();
            let first_max = (0..y.len()).fold(0, |best, k| if y[k] > y[best] { k } else { best });
            first_max.to_string() == *label
        })
        .count();
    correct as f64 / n as f64
}

fn top1(row: &Value) -> f64 {
    row["task"]["values"]["top-1"].as_f64().unwrap()
}

#[test]
fn classify_eval_scores_top1_and_max_drop_gives_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("cls.onnx");
    std::fs::write(&model, identity_classifier()).unwrap();
    let model = model.to_str().unwrap();
    let data = classify_folder(&dir.path().join("data"), 16);
    let calib = format!("{data}/npy");
    let eval = format!("classify:{data}");
    let out = dir.path().join("int8.onnx");
    let report = dir.path().join("r.json");
    let int8 = [
        "compress",
        model,
        "-o",
        out.to_str().unwrap(),
        "--quantize",
        "int8",
        "--calib",
        &calib,
        "--eval",
        &eval,
        "--report",
        report.to_str().unwrap(),
    ];
    let stdout = assert_ok(&edgetrim(&int8));
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows[0]["task"]["primary"], "top-1", "{r}");
    assert_eq!(
        top1(&rows[0]),
        1.0,
        "the float model gets every input right"
    );
    let got = top1(rows.last().unwrap());
    assert!(got < 0.5, "int8 ties the logits: {got}\n{stdout}");
    assert_eq!(got, top1_by_run(out.to_str().unwrap(), &data, 16));
    assert!(
        stdout.contains(&format!("top-1 1.000 on {eval}")),
        "{stdout}"
    );

    // Giving the one int8 layer back to float restores every answer.
    let kept = dir.path().join("kept.onnx");
    let mut within = int8.to_vec();
    within[3] = kept.to_str().unwrap();
    within.extend(["--max-drop", "0"]);
    assert_ok(&edgetrim(&within));
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["fallback"], serde_json::json!(["Gemm_0"]), "{r}");
    assert_eq!(top1(r["rows"].as_array().unwrap().last().unwrap()), 1.0);

    // The sweep ranks by the metric; --eval-limit scores the first inputs only.
    let sweep: Value = serde_json::from_str(&assert_ok(&edgetrim(&[
        "compress",
        model,
        "--sweep",
        "quantize=none,int8",
        "--calib",
        &calib,
        "--eval",
        &eval,
        "--eval-limit",
        "4",
        "--json",
    ])))
    .unwrap();
    assert_eq!(sweep["accuracy"], "top-1", "{sweep}");
    assert_eq!(sweep["original"]["values"]["top-1"], 1.0);
    let points = sweep["points"].as_array().unwrap();
    let value = |k: usize| points[k]["task"]["values"]["top-1"].as_f64().unwrap();
    assert_eq!(value(0), 1.0);
    assert_eq!(value(1), top1_by_run(out.to_str().unwrap(), &data, 4));
    assert_eq!(points[1]["pareto_macs"], false, "same MACs, less accurate");
}

#[test]
fn bad_classify_folders_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("cls.onnx");
    std::fs::write(&model, identity_classifier()).unwrap();
    let model = model.to_str().unwrap();
    let out = dir.path().join("out.onnx");
    let refuse = |data: &str, want: &str| {
        let eval = format!("classify:{data}");
        let args = [
            "compress",
            model,
            "-o",
            out.to_str().unwrap(),
            "--eval",
            &eval,
        ];
        assert_refused(&edgetrim(&args), want);
        assert!(!out.exists(), "a refused --eval wrote {}", out.display());
    };
    let folder = |name: &str| classify_folder(&dir.path().join(name), 3);

    let data = folder("no-labels");
    std::fs::remove_file(format!("{data}/labels.txt")).unwrap();
    refuse(&data, &format!("cannot read {data}/labels.txt"));

    let data = folder("short");
    std::fs::write(format!("{data}/labels.txt"), "0\n1\n").unwrap();
    refuse(
        &data,
        &format!("{data}/labels.txt has 2 labels, but {data}/npy holds 3 .npy files"),
    );

    let data = folder("words");
    std::fs::write(format!("{data}/labels.txt"), "0\n1\nup\n").unwrap();
    refuse(
        &data,
        &format!("{data}/labels.txt:3: \"up\" is not a class index"),
    );

    let data = folder("range");
    std::fs::write(format!("{data}/labels.txt"), "0\n9\n2\n").unwrap();
    refuse(
        &data,
        &format!("{data}/labels.txt:2: class 9, but the model has 8 classes"),
    );

    let data = folder("shape");
    write_npy_f32(
        Path::new(&format!("{data}/npy/0001.npy")),
        &[1, 4],
        &[0.0; 4],
    );
    refuse(
        &data,
        &format!("{data}/npy/0001.npy has shape 1x4, but the model declares 1x8"),
    );
}
