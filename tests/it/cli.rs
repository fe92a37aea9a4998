//! End-to-end tests of the `edgetrim` binary on small models built in the test.

use edgetrim_compress::build::{dt, Attr, ModelBuilder};
use npyz::WriterBuilder;
use std::path::{Path, PathBuf};

use crate::common::*;

const W: [f32; 4] = [0.5, -1.0, 2.0, 0.0];
const X: [f32; 4] = [1.0, 2.0, -3.0, 4.0];
const C: [i64; 2] = [7, -3];

/// `y = (x + w) * x` with x: float32[1, 4], and a constant int64 output `c`.
fn small_model() -> ModelBuilder {
    let mut m = ModelBuilder::new(17);
    m.input("x", dt::FLOAT, &[1, 4]);
    m.init_f32("w", &[4], &W);
    m.node("Add", &["x", "w"], &["a"], vec![]);
    m.node("Mul", &["a", "x"], &["y"], vec![]);
    let c = edgetrim_compress::build::tensor_i64("c", &[2], &C);
    m.node("Constant", &[], &["c"], vec![("value", Attr::Tensor(c))]);
    m.output("y", dt::FLOAT);
    m.output("c", dt::INT64);
    m
}

fn write_model(dir: &Path, name: &str, m: &ModelBuilder) -> String {
    let path = dir.join(name);
    std::fs::write(&path, m.build()).unwrap();
    path.to_str().unwrap().to_string()
}

fn read_npy<T: npyz::Deserialize>(path: &Path) -> (Vec<u64>, Vec<T>) {
    let npy = npyz::NpyFile::new(std::fs::File::open(path).unwrap()).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec().unwrap())
}

fn expected_y() -> Vec<f32> {
    X.iter().zip(W).map(|(x, w)| (x + w) * x).collect()
}

#[test]
fn inspect_prints_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", &small_model());
    let out = assert_ok(&edgetrim(&["inspect", &model]));
    for needle in [
        "opset    17",
        "nodes    3",
        "params   6 (32 B)",
        "MACs",
        "arena",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    assert!(out.contains("liveness lower bound"), "{out}");
    assert!(out.contains("  x  float32   1x4"), "{out}");
    for op in ["Add", "Mul", "Constant"] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(op)),
            "{op}:\n{out}"
        );
    }
    assert!(!out.contains("unsupported"), "{out}");
}

#[test]
fn inspect_json_parses() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = small_model();
    m.metadata("edgetrim.yolo.names", "D00,D10");
    let model = write_model(dir.path(), "m.onnx", &m);
    let out = assert_ok(&edgetrim(&["inspect", &model, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["metadata"]["edgetrim.yolo.names"], "D00,D10");
    assert_eq!(v["opset"], 17);
    assert_eq!(v["nodes"], 3);
    assert_eq!(v["params"], 6, "w (4 x f32) and c (2 x i64)");
    assert_eq!(v["param_bytes"], 32);
    assert!(v["macs"].as_u64().is_some_and(|m| m > 0), "{v}");
    assert_eq!(v["inputs"][0]["name"], "x");
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([1, 4]));
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([1, 4]));
    assert_eq!(v["outputs"][1]["dtype"], "int64");
    let arena = &v["arena"];
    let (total, planned, bound) = (
        arena["total"].as_u64().unwrap(),
        arena["planned"].as_u64().unwrap(),
        arena["lower_bound"].as_u64().unwrap(),
    );
    assert!(bound <= planned && planned <= total && bound > 0, "{arena}");
    assert_eq!(v["unsupported"], serde_json::json!([]));
    let ops = v["ops"].as_array().unwrap();
    assert_eq!(ops.len(), 3);
    assert!(ops.iter().all(|o| o["count"] == 1));
}

#[test]
fn inspect_target_cortex_m4_adds_the_footprint() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", &small_model());
    let host = assert_ok(&edgetrim(&["inspect", &model, "--json"]));
    let host: serde_json::Value = serde_json::from_str(&host).unwrap();
    assert!(
        host.get("footprint").is_none(),
        "host is the default: {host}"
    );
    let out = assert_ok(&edgetrim(&[
        "inspect",
        &model,
        "--target",
        "cortex-m4",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let f = &v["footprint"];
    assert_eq!(f["target"], "cortex-m4");
    assert_eq!(f["kernel_families"], serde_json::json!(["Binary"]), "{f}");
    let n = |x: &serde_json::Value| x.as_u64().unwrap();
    let (flash, ram) = (&f["flash"], &f["ram"]);
    let file = std::fs::metadata(&model).unwrap().len();
    assert_eq!(n(&flash["model"]), n(&flash["header"]) + file);
    assert!(
        n(&flash["runtime"]) > 0 && n(&flash["kernels"]) > 0,
        "{flash}"
    );
    assert_eq!(
        n(&flash["code"]),
        n(&flash["startup"]) + n(&flash["runtime"]) + n(&flash["kernels"])
    );
    assert_eq!(n(&flash["total"]), n(&flash["model"]) + n(&flash["code"]));
    assert!(n(&flash["code_all_kernels"]) > n(&flash["code"]), "{flash}");
    assert!(n(&ram["arena"]) > 0 && n(&ram["stack"]) > 0, "{ram}");
    let a = &ram["arena_parts"];
    let head = n(&a["working_tables"]).max(n(&a["tensors"]) + n(&a["activations"]));
    assert_eq!(
        n(&ram["arena"]),
        head + n(&a["plan_tables"]) + n(&a["constants"]),
        "{ram}"
    );
    assert!(
        n(&a["activations"]) > 0 && n(&a["working_tables"]) > 0,
        "{ram}"
    );
    assert_eq!(
        n(&ram["total"]),
        n(&ram["arena"]) + n(&ram["stack"]) + n(&ram["runtime_state"])
    );
    let text = assert_ok(&edgetrim(&["inspect", &model, "--target", "cortex-m4"]));
    assert!(
        text.contains("flash ") && text.contains("on cortex-m4"),
        "{text}"
    );
}

#[test]
fn inspect_refuses_an_unknown_target() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", &small_model());
    let stderr = assert_fails(&edgetrim(&["inspect", &model, "--target", "cortex-m7"]), 2);
    assert!(
        stderr.contains("cortex-m7") && stderr.contains("cortex-m4"),
        "names the bad value and the good ones: {stderr}"
    );
}

#[test]
fn inspect_lists_every_unsupported_op() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = ModelBuilder::new(17);
    m.input("x", dt::FLOAT, &[1, 4]);
    m.node("Add", &["x", "x"], &["a"], vec![]);
    m.node("FrobnicateV2", &["a"], &["b"], vec![]);
    m.node("Mul", &["b", "x"], &["c"], vec![]);
    m.node("Quuxify", &["c"], &["d"], vec![]);
    m.node("FrobnicateV2", &["d"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    let model = write_model(dir.path(), "bad.onnx", &m);

    let out = edgetrim(&["inspect", &model]);
    let stderr = assert_fails(&out, 1);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("unsupported: 3 node(s)"), "{stdout}");
    for node in ["FrobnicateV2_1", "Quuxify_3", "FrobnicateV2_4"] {
        assert!(stdout.contains(node), "{node} missing from\n{stdout}");
    }
    // Everything else is still reported.
    assert!(
        stdout.contains("nodes    5") && stdout.contains("Add"),
        "{stdout}"
    );
    assert!(stderr.contains("3 node(s)"), "{stderr}");
    assert!(
        stderr.contains("FrobnicateV2") && stderr.contains("Quuxify"),
        "{stderr}"
    );

    let out = edgetrim(&["inspect", &model, "--json"]);
    assert_fails(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let ops: Vec<&str> = v["unsupported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["FrobnicateV2", "Quuxify", "FrobnicateV2"]);
}

#[test]
fn run_writes_outputs_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", &small_model());
    let x = write_npy_f32(&dir.path().join("x.npy"), &[1, 4], &X);
    for (backend, input) in [("nano", x.clone()), ("tract", format!("x={x}"))] {
        let out_dir = dir.path().join(backend);
        let stdout = assert_ok(&edgetrim(&[
            "run",
            &model,
            "--input",
            &input,
            "--output-dir",
            out_dir.to_str().unwrap(),
            "--backend",
            backend,
        ]));
        assert!(stdout.contains("output0.npy"), "{stdout}");
        let (shape, y) = read_npy::<f32>(&out_dir.join("output0.npy"));
        assert_eq!(shape, [1, 4]);
        assert_eq!(y, expected_y(), "{backend}");
        let (shape, c) = read_npy::<i64>(&out_dir.join("output1.npy"));
        assert_eq!((shape, c), (vec![2], C.to_vec()), "{backend}");
        let files = std::fs::read_dir(&out_dir).unwrap().count();
        assert_eq!(files, 2, "{backend}: only the outputs, no temporaries");
    }
}

#[test]
fn run_rejects_a_wrong_input_shape_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", &small_model());
    let x = write_npy_f32(&dir.path().join("x.npy"), &[2, 4], &[0.0; 8]);
    let out_dir: PathBuf = dir.path().join("out");
    let out = edgetrim(&[
        "run",
        &model,
        "--input",
        &x,
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = assert_fails(&out, 1);
    assert!(stderr.contains("input x"), "{stderr}");
    assert!(stderr.contains("2x4") && stderr.contains("1x4"), "{stderr}");
    assert!(!out_dir.exists(), "nothing may be written on error");
}

#[test]
fn run_rejects_a_wrong_dtype_and_input_count() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", &small_model());
    let path = dir.path().join("x64.npy");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[1, 4])
        .writer(file)
        .begin_nd()
        .unwrap();
    w.extend([1.0f64, 2.0, 3.0, 4.0]).unwrap();
    w.finish().unwrap();
    let out_dir = dir.path().join("out");
    let out_dir = out_dir.to_str().unwrap();
    let stderr = assert_fails(
        &edgetrim(&["run", &model, "-i", path.to_str().unwrap(), "-o", out_dir]),
        1,
    );
    assert!(
        stderr.contains("float64") && stderr.contains("float32"),
        "{stderr}"
    );
    let x = write_npy_f32(&dir.path().join("x.npy"), &[1, 4], &X);
    let stderr = assert_fails(
        &edgetrim(&["run", &model, "-i", &x, "-i", &x, "-o", out_dir]),
        1,
    );
    assert!(stderr.contains("1 input(s)"), "{stderr}");
}

#[test]
fn bench_both_reports_speedup() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", &small_model());
    let out = assert_ok(&edgetrim(&[
        "bench",
        &model,
        "--backend",
        "both",
        "--runs",
        "20",
        "--warmup",
        "2",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let speedup = v["speedup_vs_tract"].as_f64().expect("a number");
    assert!(speedup > 0.0 && speedup.is_finite(), "{v}");
    for backend in ["nano", "tract"] {
        assert_eq!(v[backend]["frames"], 20, "{v}");
        let (p50, p99) = (v[backend]["p50_us"].as_f64(), v[backend]["p99_us"].as_f64());
        assert!(p50 <= p99, "{v}");
    }
    assert_eq!(v["inputs"][0]["source"], "random, seed 0");
}

#[test]
fn bench_vs_reports_the_ratio_of_two_models() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", &small_model());
    let other = write_model(dir.path(), "other.onnx", &small_model());
    let args = [
        "bench", &model, "--vs", &other, "--runs", "10", "--warmup", "1",
    ];
    let out = assert_ok(&edgetrim(&[&args[..], &["--json"]].concat()));
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let speedup = v["speedup_vs_other"].as_f64().expect("a number");
    assert!(speedup > 0.0 && speedup.is_finite(), "{v}");
    assert_eq!(v["other"]["frames"], 10, "{v}");
    assert_eq!(v["other_model"], other.as_str(), "{v}");
    assert!(
        v["tract"].is_null() && v["speedup_vs_tract"].is_null(),
        "{v}"
    );
    let text = assert_ok(&edgetrim(&args));
    assert!(
        text.contains("speedup vs") && text.contains("other.onnx"),
        "{text}"
    );

    let missing = dir.path().join("missing.onnx");
    let bad = ["bench", &model, "--vs", missing.to_str().unwrap()];
    let stderr = assert_fails(&edgetrim(&bad), 1);
    assert!(
        stderr.contains("--vs") && stderr.contains("missing.onnx"),
        "{stderr}"
    );
    let tract_only = ["bench", &model, "--vs", &other, "--backend", "tract"];
    let stderr = assert_fails(&edgetrim(&tract_only), 1);
    assert!(stderr.contains("--vs"), "{stderr}");
}

#[test]
fn bench_profile_lists_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m.onnx", &small_model());
    let out = assert_ok(&edgetrim(&["bench", &model, "--runs", "5", "--profile"]));
    assert!(out.contains("slowest nodes"), "{out}");
    assert!(out.contains("Add_0") && out.contains("Mul_1"), "{out}");
    assert!(!out.contains("tract"), "{out}");
    let tract_only = ["bench", &model, "--backend", "tract", "--profile"];
    let stderr = assert_fails(&edgetrim(&tract_only), 1);
    assert!(stderr.contains("--profile"), "{stderr}");
}

#[test]
fn usage_and_file_errors_are_one_clear_line() {
    let out = edgetrim(&["inspect", "--bogus-flag", "m.onnx"]);
    let stderr = assert_fails(&out, 2);
    assert!(stderr.contains("--bogus-flag"), "{stderr}");

    let stderr = assert_fails(&edgetrim(&["inspect", "/nonexistent/model.onnx"]), 1);
    assert!(
        stderr.contains("cannot read model /nonexistent/model.onnx"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.onnx");
    std::fs::write(&corrupt, [0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2]).unwrap();
    let stderr = assert_fails(
        &edgetrim(&["run", corrupt.to_str().unwrap(), "-i", "x.npy", "-o", "o"]),
        1,
    );
    assert!(
        stderr.contains("corrupt.onnx") && stderr.contains("malformed"),
        "{stderr}"
    );

    let help = assert_ok(&edgetrim(&["bench", "--help"]));
    assert!(
        help.contains("Examples:") && help.contains("speedup_vs_tract"),
        "{help}"
    );
}
