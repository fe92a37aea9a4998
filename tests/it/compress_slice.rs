//! `edgetrim compress MODEL_DIR`: slicing a supernet folder into a model folder, on the tiny
//! fixture of compress/tests/data/rnnt-tiny (an untrained supernet and the Python export of
//! its depth=2,width=0.5 subnet), with the speech of models/tests/data/rnnt-stream for int8.

use edgetrim_compress::passes;
use edgetrim_compress::pb::ModelProto;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;

const GRAPHS: [&str; 3] = ["encoder", "predictor", "joiner"];

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("compress/tests/data/rnnt-tiny")
        .join(name)
        .display()
        .to_string()
}

fn speech() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/tests/data/rnnt-stream/speech")
        .display()
        .to_string()
}

fn graph(dir: &Path, name: &str) -> ModelProto {
    let bytes = std::fs::read(dir.join(format!("{name}.onnx"))).expect("graph file");
    passes::decode(&bytes).expect("decode")
}

/// What must survive the passes after slicing: nodes, declared inputs/outputs, initializer
/// values by name (layout reorders them), metadata with the rules as parsed JSON.
fn essence(m: &ModelProto) -> impl PartialEq + std::fmt::Debug {
    let g = m.graph.as_ref().unwrap();
    let nodes: Vec<_> = g
        .node
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                n.op_type.clone(),
                n.input.clone(),
                n.output.clone(),
            )
        })
        .collect();
    let inits: BTreeMap<String, (Vec<i64>, Vec<u8>)> = g
        .initializer
        .iter()
        .map(|t| {
            let mut t = t.clone();
            edgetrim_compress::graph::to_raw(&mut t).unwrap();
            (t.name.clone(), (t.dims.clone(), t.raw_data.clone()))
        })
        .collect();
    let meta: Vec<(String, Value)> = m
        .metadata_props
        .iter()
        .map(|p| {
            let v = serde_json::from_str(&p.value).unwrap_or(Value::String(p.value.clone()));
            (p.key.clone(), v)
        })
        .collect();
    (nodes, g.input.clone(), g.output.clone(), inits, meta)
}

#[test]
fn a_sliced_folder_equals_the_python_export_and_reports_each_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d2");
    let o = out.display().to_string();
    let stdout = assert_ok(&edgetrim(&[
        "compress",
        &fixture("full"),
        "--slice",
        "depth=2,width=0.5",
        "-o",
        &o,
    ]));
    let python = PathBuf::from(fixture("d2-w0.5"));
    for name in GRAPHS {
        assert_eq!(
            essence(&graph(&out, name)),
            essence(&graph(&python, name)),
            "{name}"
        );
        assert!(stdout.contains(&format!("== {name}.onnx ==")), "{stdout}");
    }
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "README.md",
            "encoder.onnx",
            "joiner.onnx",
            "predictor.onnx",
            "tokens.txt"
        ]
    );
    assert_eq!(
        std::fs::read(out.join("tokens.txt")).unwrap(),
        std::fs::read(Path::new(&fixture("full")).join("tokens.txt")).unwrap()
    );
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(
        card.contains("slice depth=2,width=0.5") && card.contains("rnnt-tiny/full"),
        "{card}"
    );
    assert!(
        card.contains("layers = 2, hidden = 4, pred_hidden = 3"),
        "{card}"
    );
    assert!(stdout.contains("layers 3 -> 2, enc 8 -> 4"), "{stdout}");
    assert!(stdout.contains("recogniser arena"), "{stdout}");

    // The JSON report: three graphs (original, slice, passes) and totals that add up.
    let json: Value = serde_json::from_str(&assert_ok(&edgetrim(&[
        "compress",
        &fixture("full"),
        "--slice",
        "depth=2,width=0.5",
        "-o",
        &o,
        "--json",
    ])))
    .unwrap();
    let graphs = json["graphs"].as_array().unwrap();
    assert_eq!(graphs.len(), 3);
    let passes: Vec<&str> = graphs[0]["report"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pass"].as_str().unwrap())
        .collect();
    assert_eq!(passes, ["original", "slice", "clean", "layout"]);
    let flash: u64 = GRAPHS
        .iter()
        .map(|g| {
            std::fs::metadata(out.join(format!("{g}.onnx")))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(json["totals"]["flash_bytes"].as_u64(), Some(flash));
    // MACs per second: encoder per 4-frame chunk (6.25/s), predictor per symbol (12/s),
    // joiner per frame and symbol (37/s).
    let macs = |i: usize| {
        graphs[i]["report"]["rows"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["macs"]
            .as_f64()
            .unwrap()
    };
    let want = macs(0) * 6.25 + macs(1) * 12.0 + macs(2) * 37.0;
    assert_eq!(
        json["totals"]["macs_per_second"].as_f64(),
        Some(want.round())
    );
    assert!(json["totals"]["arena_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn a_slice_sliced_again_equals_one_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let run = |from: &str, spec: &str, to: &Path| {
        assert_ok(&edgetrim(&[
            "compress",
            from,
            "--slice",
            spec,
            "-o",
            &to.display().to_string(),
        ]));
    };
    run(&fixture("full"), "depth=2,width=0.5", &a);
    run(&a.display().to_string(), "depth=1,width=0.5", &b);
    run(&fixture("full"), "depth=1,width=0.25", &c);
    for g in GRAPHS {
        let file = format!("{g}.onnx");
        assert_eq!(
            std::fs::read(b.join(&file)).unwrap(),
            std::fs::read(c.join(&file)).unwrap(),
            "{g}"
        );
    }
}

#[test]
fn int8_calibrates_every_graph_on_the_recognisers_own_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("q").display().to_string();
    let calib = format!("speech:{}", speech());
    let stdout = assert_ok(&edgetrim(&[
        "compress",
        &fixture("full"),
        "--slice",
        "depth=2,width=0.5",
        "--quantize",
        "int8",
        "--calib",
        &calib,
        "-o",
        &o,
    ]));
    // Each graph has one MatMul/Gemm to quantize, calibrated on recorded inputs.
    assert_eq!(
        stdout.matches("activations by minmax on").count(),
        3,
        "{stdout}"
    );
    assert_eq!(stdout.matches("given inputs").count(), 3, "{stdout}");
    assert!(!stdout.contains("random inputs"), "{stdout}");
    let card = std::fs::read_to_string(Path::new(&o).join("README.md")).unwrap();
    assert!(
        card.contains("int8 calibration: the recogniser's own inputs on 5 recordings"),
        "{card}"
    );
    // Quantized weights are not what the rules name: the rules go, and re-slicing says why.
    let again = tmp.path().join("again").display().to_string();
    assert_refused(
        &edgetrim(&["compress", &o, "--slice", "depth=1", "-o", &again]),
        "metadata edgetrim.slice: missing: the model was not exported with slicing rules (or was quantized)",
    );
    // Without --calib: the placeholder, and the warning says so.
    let stdout = assert_ok(&edgetrim(&[
        "compress",
        &fixture("full"),
        "--quantize",
        "int8",
        "-o",
        &o,
    ]));
    assert!(
        stdout.contains("random inputs per graph, a placeholder"),
        "{stdout}"
    );
}

#[test]
fn auto_picks_the_largest_slice_within_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("auto").display().to_string();
    let json: Value = serde_json::from_str(&assert_ok(&edgetrim(&[
        "compress",
        &fixture("full"),
        "--slice",
        "auto",
        "--budget",
        "flash=14KiB,macs=40k",
        "-o",
        &o,
        "--json",
    ])))
    .unwrap();
    let tried = json["candidates"].as_array().unwrap();
    let (last, before) = tried.split_last().unwrap();
    assert_eq!(last["fits"], true);
    assert!(before.iter().all(|c| c["fits"] == false));
    let params: Vec<u64> = tried
        .iter()
        .map(|c| c["params"].as_u64().unwrap())
        .collect();
    assert!(
        params.windows(2).all(|w| w[0] >= w[1]),
        "largest first: {params:?}"
    );
    assert!(last["flash_bytes"].as_u64().unwrap() <= 14 * 1024);
    assert!(last["macs_per_second"].as_u64().unwrap() <= 40_000);
    assert!(before
        .iter()
        .all(|c| c["flash_bytes"].as_u64().unwrap() > 14 * 1024
            || c["macs_per_second"].as_u64().unwrap() > 40_000));
    assert_eq!(json["slice"], last["slice"]);
    let card = std::fs::read_to_string(Path::new(&o).join("README.md")).unwrap();
    assert!(
        card.contains(&format!("slice {}", last["slice"].as_str().unwrap())),
        "{card}"
    );

    // Nothing fits: one line naming the nearest miss, no folder.
    let none = tmp.path().join("none");
    let out = edgetrim(&[
        "compress",
        &fixture("full"),
        "--slice",
        "auto",
        "--budget",
        "flash=1KiB",
        "-o",
        &none.display().to_string(),
    ]);
    assert_refused(&out, "no slice fits; the nearest is depth=1,width=0.25");
    assert!(!none.exists());
}

#[test]
fn auto_only_picks_subnets_the_supernet_was_trained_as() {
    use prost::Message;
    let tmp = tempfile::tempdir().unwrap();
    let supernet = tmp.path().join("supernet");
    std::fs::create_dir(&supernet).unwrap();
    for name in GRAPHS {
        let mut m = graph(Path::new(&fixture("full")), name);
        for (key, value) in [
            ("edgetrim.train.widths", "0.5,1"),
            ("edgetrim.train.min_depth", "2"),
        ] {
            m.metadata_props
                .push(edgetrim_compress::pb::StringStringEntryProto {
                    key: key.into(),
                    value: value.into(),
                });
        }
        std::fs::write(supernet.join(format!("{name}.onnx")), m.encode_to_vec()).unwrap();
    }
    std::fs::copy(
        Path::new(&fixture("full")).join("tokens.txt"),
        supernet.join("tokens.txt"),
    )
    .unwrap();
    let o = tmp.path().join("out").display().to_string();
    let run = |dir: &str| -> Value {
        let args = [
            "compress",
            dir,
            "--slice",
            "auto",
            "--budget",
            "flash=15KiB",
            "-o",
            &o,
            "--json",
        ];
        serde_json::from_str(&assert_ok(&edgetrim(&args))).unwrap()
    };
    // The whole grid offers a larger but untrained slice (depth 1, width 0.625) ...
    let untrained = run(&fixture("full"));
    assert_eq!(untrained["slice"], "depth=1,width=0.625");
    // ... which the trained subnets (depth >= 2, widths 0.5 and 1) exclude.
    let json = run(&supernet.display().to_string());
    let tried: Vec<&str> = json["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["slice"].as_str().unwrap())
        .collect();
    assert_eq!(
        tried,
        [
            "depth=3,width=1",
            "depth=2,width=1",
            "depth=3,width=0.5",
            "depth=2,width=0.5"
        ]
    );
    assert_eq!(json["slice"], "depth=2,width=0.5");
}

#[test]
fn bad_slice_flags_and_folders_fail_in_one_line_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("out").display().to_string();
    let full = fixture("full");
    let onnx = Path::new(&full).join("encoder.onnx").display().to_string();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let npy = tmp.path().join("npy");
    std::fs::create_dir_all(npy.join("encoder")).unwrap();
    let (empty, npy) = (empty.display().to_string(), npy.display().to_string());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![&onnx, "--slice", "depth=2"],
            "--slice applies to a model folder",
        ),
        (vec![&full, "--slice", "depth=4"], "depth=4 outside 1..=3"),
        (
            vec![&full, "--slice", "depth=2,width=0"],
            "width=0 outside (0, 1]",
        ),
        (vec![&full, "--slice", "deep=2"], "unknown key \"deep\""),
        (
            vec![&full, "--slice", "auto"],
            "--slice auto needs --budget",
        ),
        (
            vec![&full, "--slice", "depth=2", "--budget", "flash=1MiB"],
            "--budget only applies to --slice auto",
        ),
        (
            vec![&full, "--slice", "auto", "--budget", "flash=1 parsec"],
            "unknown unit",
        ),
        (
            vec![&full, "--slice", "auto", "--budget", "disk=1MiB"],
            "unknown key \"disk\"",
        ),
        (
            vec![&full, "--input-shape", "x=1x4x160"],
            "--input-shape does not apply to a model folder",
        ),
        (
            vec![&full, "--prune", "weights=0.5"],
            "--prune does not apply to a model folder",
        ),
        (
            vec![&full, "--quantize", "int8", "--calib", "images:x"],
            "calibrates on speech:DIR",
        ),
        (
            vec![&full, "--quantize", "int8", "--calib", &npy],
            "no predictor/ in it",
        ),
        (
            vec![
                &full,
                "--quantize",
                "int8",
                "--calib",
                "speech:/nonexistent",
            ],
            "cannot read transcripts.tsv",
        ),
        (vec![&empty], "must be a model folder"),
    ];
    for (args, want) in cases {
        let mut all = vec!["compress"];
        all.extend(&args);
        all.extend(["-o", &o]);
        assert_refused(&edgetrim(&all), want);
        assert!(!Path::new(&o).exists(), "{args:?} wrote {o}");
    }
}

#[test]
fn an_existing_output_folder_is_replaced_only_when_it_holds_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    let out: PathBuf = tmp.path().join("m");
    let o = out.display().to_string();
    let slice = |spec: &str| edgetrim(&["compress", &fixture("full"), "--slice", spec, "-o", &o]);
    assert_ok(&slice("depth=2,width=0.5"));
    let first = std::fs::read(out.join("encoder.onnx")).unwrap();
    assert_ok(&slice("depth=1,width=0.5"));
    assert_ne!(
        std::fs::read(out.join("encoder.onnx")).unwrap(),
        first,
        "replaced"
    );
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let kept = std::fs::read(out.join("encoder.onnx")).unwrap();
    assert_refused(&slice("depth=2,width=0.5"), "holds other files (notes.txt)");
    assert_eq!(
        std::fs::read(out.join("encoder.onnx")).unwrap(),
        kept,
        "left alone"
    );
    // No temporary folders are left behind.
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["m"]);
}
