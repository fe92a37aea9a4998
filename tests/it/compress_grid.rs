//! `edgetrim compress` on one model with a metric and a grid: `--eval` scores with the
//! same code as `eval-detect`, `--sweep` measures every configuration and marks the Pareto
//! fronts, `--budget` writes the most accurate configuration that fits or names the
//! nearest miss, and bad flags are refused naming the flag.

use crate::common::{assert_ok, assert_refused, edgetrim};
use edgetrim_compress::build::{dt, Attr, ModelBuilder};
use serde_json::Value;
use std::path::Path;

/// x[1,3,8,8] → Conv(32, 3x3) → Relu → Conv(16, 3x3) → y: the first conv's channels can
/// be pruned (the second reads them), the second's cannot (they are the output). Large
/// enough for int8 weights to outweigh the QDQ scales and nodes in the file.
fn two_convs() -> Vec<u8> {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 3, 8, 8]);
    let w = |n: usize, k: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (((i * k) % 23) as f32 - 11.0) * 0.04)
            .collect()
    };
    m.init_f32("w1", &[32, 3, 3, 3], &w(864, 37));
    m.init_f32("b1", &[32], &w(32, 5));
    m.init_f32("w2", &[16, 32, 3, 3], &w(4608, 53));
    m.init_f32("b2", &[16], &w(16, 7));
    let pads = || vec![("pads", Attr::Ints(vec![1, 1, 1, 1]))];
    m.node("Conv", &["x", "w1", "b1"], &["c1"], pads());
    m.node("Relu", &["c1"], &["r1"], vec![]);
    m.node("Conv", &["r1", "w2", "b2"], &["y"], pads());
    m.output("y", dt::FLOAT);
    m.build()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

fn point<'a>(report: &'a Value, config: &str) -> &'a Value {
    report["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["config"] == config)
        .unwrap_or_else(|| panic!("{config} missing: {report}"))
}

#[test]
fn sweep_measures_the_grid_marks_the_fronts_and_plots_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &two_convs());
    let plot = dir.path().join("sweep.svg");
    let report_path = dir.path().join("sweep.json");
    let args = [
        "compress",
        &input,
        "--sweep",
        "prune=0,0.5",
        "quantize=none,int8",
        "--plot",
        plot.to_str().unwrap(),
        "--report",
        report_path.to_str().unwrap(),
    ];
    let stdout = assert_ok(&edgetrim(&args));
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["points"].as_array().unwrap().len(), 4, "{report}");
    assert_eq!(report["accuracy"], "SQNR dB", "without --eval");
    let exact = point(&report, "prune=0 quantize=none");
    let int8 = point(&report, "prune=0 quantize=int8");
    let pruned = point(&report, "prune=0.5 quantize=none");
    let both = point(&report, "prune=0.5 quantize=int8");
    // Clean and align only: the outputs are the original's, the most accurate point of all.
    assert!(exact["sqnr_db"].is_null(), "{exact}");
    assert_eq!(
        (
            exact["pareto_size"].as_bool(),
            exact["pareto_macs"].as_bool()
        ),
        (Some(true), Some(true))
    );
    let sqnr = |p: &Value| p["sqnr_db"].as_f64().unwrap();
    assert!(
        sqnr(int8) > 20.0 && sqnr(both) < sqnr(int8) + 1e-9,
        "{int8} {both}"
    );
    let macs = |p: &Value| p["macs"].as_u64().unwrap();
    let size = |p: &Value| p["file_bytes"].as_u64().unwrap();
    assert!(macs(pruned) < macs(exact) && macs(both) == macs(pruned));
    assert!(size(int8) < size(exact) && size(both) < size(pruned));
    // Same MACs, less accurate: int8 without pruning is dominated on the MACs front by
    // the exact model, but not on the size front (it is smaller).
    assert_eq!(int8["pareto_macs"], false, "{int8}");
    assert_eq!(int8["pareto_size"], true, "{int8}");
    // The smallest file is on the size front whatever its accuracy.
    let smallest = report["points"]
        .as_array()
        .unwrap()
        .iter()
        .min_by_key(|p| size(p))
        .unwrap();
    assert_eq!(smallest["pareto_size"], true);
    for line in ["prune=0.5 quantize=int8", "Pareto front"] {
        assert!(stdout.contains(line), "{line} missing:\n{stdout}");
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Pareto front") && svg.contains("MACs"));
}

#[test]
fn budget_writes_the_most_accurate_fit_or_names_the_nearest_miss() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &two_convs());
    let fit = dir.path().join("fit.onnx");
    let grid = ["--sweep", "prune=0,0.5", "quantize=none,int8"];
    let run = |budget: &str, out: &Path| {
        let mut args = vec![
            "compress",
            &input,
            "-o",
            out.to_str().unwrap(),
            "--budget",
            budget,
        ];
        args.extend(grid);
        edgetrim(&args)
    };
    // Room for everything: the exact configuration, byte for byte what plain compress writes.
    let stdout = assert_ok(&run("flash=1MiB,ram=1MiB", &fit));
    assert!(stdout.contains("prune=0 quantize=none fits"), "{stdout}");
    let plain = dir.path().join("plain.onnx");
    assert_ok(&edgetrim(&[
        "compress",
        &input,
        "-o",
        plain.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&fit).unwrap(), std::fs::read(&plain).unwrap());

    // Room only for int8: the exact model's file is too large, int8 without pruning is the
    // most accurate that fits.
    let json = |args: &[&str]| -> Value {
        let mut a = vec!["compress", &input, "--json"];
        a.extend(args);
        a.extend(grid);
        serde_json::from_str(&assert_ok(&edgetrim(&a))).unwrap()
    };
    let sizes = json(&[]);
    let size = |c: &str| point(&sizes, c)["file_bytes"].as_u64().unwrap();
    let limit = size("prune=0 quantize=int8").to_string();
    let small = dir.path().join("small.onnx");
    let budget = format!("flash={limit}");
    let chosen = json(&["-o", small.to_str().unwrap(), "--budget", &budget]);
    assert_eq!(chosen["chosen"], "prune=0 quantize=int8", "{chosen}");
    assert_eq!(
        std::fs::metadata(&small).unwrap().len(),
        size("prune=0 quantize=int8")
    );

    // Nothing fits: one line naming the nearest configuration and the limit missed.
    let none = dir.path().join("none.onnx");
    assert_refused(
        &run("flash=100,ram=1MiB", &none),
        "--budget flash=100,ram=1MiB: none of the 4 configurations fits; nearest: prune=0.5 quantize=int8, flash ",
    );
    assert!(!none.exists(), "a failed budget wrote a file");
}

#[test]
fn grid_and_metric_flags_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &two_convs());
    let out = dir.path().join("out.onnx");
    let out = out.to_str().unwrap();
    let cases: [(&[&str], &str); 10] = [
        (
            &["--sweep", "depth=1"],
            "--sweep depth=1: unknown key \"depth\"",
        ),
        (
            &["--sweep", "prune=2"],
            "--sweep prune=2: \"2\" is not a ratio",
        ),
        (
            &["--sweep", "quantize=int8", "--quantize", "fp16"],
            "--quantize applies to one configuration",
        ),
        (
            &["--sweep", "quantize=none", "-o", out],
            "-o needs --budget",
        ),
        (
            &["--sweep", "quantize=fp16", "--keep-float", "c"],
            "--keep-float, --calib-method, --reduce-range, --act-tables, --pow2-scales and --int8-joins need quantize=int8",
        ),
        (
            &["-o", out, "--budget", "flash=lots"],
            "--budget: budget \"flash=lots\"",
        ),
        (
            &["-o", out, "--quantize", "int8", "--max-drop", "1"],
            "--max-drop and --eval-limit need --eval",
        ),
        (
            &["-o", out, "--eval", "asr:x"],
            "--eval \"asr:x\": expected detect:DIR",
        ),
        (
            &["-o", out, "--eval", "detect:x", "--max-drop", "1"],
            "--max-drop only applies to --quantize int8",
        ),
        (&["-o", out, "--plot", "p.svg"], "--plot charts a grid"),
    ];
    for (flags, want) in cases {
        let mut args = vec!["compress", &input];
        args.extend(flags);
        assert_refused(&edgetrim(&args), want);
    }
    assert!(!Path::new(out).exists());
}

const YOLO_N: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/zoo/yolo9tr-n.onnx");

/// `n` generated test images with labels, at the 128 px YOLO9tr-n takes.
fn detect_folder(dir: &Path, n: usize) -> String {
    let path = dir.join("test");
    let path = path.to_str().unwrap().to_string();
    let n = n.to_string();
    assert_ok(&edgetrim(&[
        "datagen", "pavement", "--split", "test", "--seed", "5", "--images", &n, "--size", "128",
        "--out", &path,
    ]));
    path
}

fn map50(json: &Value) -> f64 {
    json["map50"].as_f64().unwrap()
}

#[test]
fn eval_scores_original_and_int8_model_as_eval_detect_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = detect_folder(dir.path(), 3);
    let out = dir.path().join("n8.onnx");
    let report = dir.path().join("r.json");
    let eval = format!("detect:{data}");
    let stdout = assert_ok(&edgetrim(&[
        "compress",
        YOLO_N,
        "-o",
        out.to_str().unwrap(),
        "--quantize",
        "int8",
        "--eval",
        &eval,
        "--report",
        report.to_str().unwrap(),
    ]));
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let rows = r["rows"].as_array().unwrap();
    let task = |row: &Value| row["task"]["values"]["mAP50"].as_f64().unwrap();
    let eval_detect = |model: &str| -> Value {
        let json = assert_ok(&edgetrim(&[
            "eval-detect",
            model,
            "--data",
            &data,
            "--json",
        ]));
        serde_json::from_str(&json).unwrap()
    };
    assert_eq!(task(&rows[0]), map50(&eval_detect(YOLO_N)));
    assert_eq!(
        task(rows.last().unwrap()),
        map50(&eval_detect(out.to_str().unwrap()))
    );
    assert!(
        rows[1]["task"].is_null(),
        "only the original and the result are scored"
    );
    assert!(stdout.contains("mAP50") && stdout.contains("int8 layers adding the most noise"));
    // Every quantized conv has a per-layer row, named as --keep-float matches them.
    let layers = r["layers"].as_array().unwrap();
    assert!(layers.len() > 20, "{} layers", layers.len());
    let ops = ["Conv", "Gemm", "MatMul"];
    assert!(layers
        .iter()
        .all(|l| ops.contains(&l["op"].as_str().unwrap())));
    assert!(
        layers.iter().any(|l| l["node"] == "/b0/conv/Conv"),
        "the stem conv"
    );
    assert!(layers.iter().any(|l| l["added_sqnr_db"].as_f64().is_some()));
}
