//! End-to-end tests of `edgetrim compress`: what it writes, what it prints, and that bad
//! flags and bad models fail with one line and leave no file behind.

use crate::common::{assert_ok, assert_refused, edgetrim, write_npy_f32};
use edgetrim_compress::build::{dt, Attr, ModelBuilder};
use std::path::Path;

/// x[1,2,5,5] → Conv → BatchNorm → Mul(constant 2) → Identity → y, plus a dead node.
fn model() -> ModelBuilder {
    let mut m = ModelBuilder::new(17);
    m.input("x", dt::FLOAT, &[1, 2, 5, 5]);
    let w: Vec<f32> = (0..54).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
    m.init_f32("w", &[3, 2, 3, 3], &w);
    m.init_f32("scale", &[3], &[1.0, 0.5, 2.0]);
    m.init_f32("bias", &[3], &[0.1, 0.2, 0.3]);
    m.init_f32("mean", &[3], &[0.0, -0.1, 0.2]);
    m.init_f32("var", &[3], &[1.0, 2.0, 0.5]);
    m.node("Conv", &["x", "w"], &["c"], vec![]);
    m.node(
        "BatchNormalization",
        &["c", "scale", "bias", "mean", "var"],
        &["n"],
        vec![],
    );
    let k = edgetrim_compress::build::tensor_f32("k", &[1], &[2.0]);
    m.node("Constant", &[], &["k"], vec![("value", Attr::Tensor(k))]);
    m.node("Mul", &["n", "k"], &["m"], vec![]);
    m.node("Identity", &["m"], &["y"], vec![]);
    m.node("Relu", &["c"], &["dead"], vec![]);
    m.metadata("edgetrim.task", "test");
    m.output("y", dt::FLOAT);
    m
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

fn ops(bytes: &[u8]) -> Vec<String> {
    let m = edgetrim_compress::passes::decode(bytes).unwrap();
    m.graph
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.clone())
        .collect()
}

#[test]
fn default_passes_clean_and_align_and_print_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &model().build());
    let out_path = dir.path().join("out.onnx");
    let out = out_path.to_str().unwrap();
    let stdout = assert_ok(&edgetrim(&["compress", &input, "-o", out]));
    let rows: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        &rows[..4],
        ["pass", "original", "clean", "layout"],
        "{stdout}"
    );
    assert!(stdout.contains("1 BatchNorm folded"), "{stdout}");
    assert!(stdout.contains("1 Mul/Add folded"), "{stdout}");
    let written = std::fs::read(&out_path).unwrap();
    assert_eq!(ops(&written), ["Conv"]);
    let offsets = edgetrim_compress::passes::layout::raw_data_offsets(&written);
    assert!(!offsets.is_empty() && offsets.iter().all(|(_, o)| o % 16 == 0));
    // Same input and flags: the same bytes.
    let again = dir.path().join("again.onnx");
    assert_ok(&edgetrim(&[
        "compress",
        &input,
        "-o",
        again.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&again).unwrap(), written);
}

#[test]
fn json_and_report_file_carry_one_row_per_pass() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &model().build());
    let out = dir.path().join("out.onnx");
    let report = dir.path().join("report.json");
    let stdout = assert_ok(&edgetrim(&[
        "compress",
        &input,
        "-o",
        out.to_str().unwrap(),
        "--quantize",
        "fp16",
        "--json",
        "--report",
        report.to_str().unwrap(),
    ]));
    let printed: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(printed, saved);
    let passes: Vec<&str> = printed["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pass"].as_str().unwrap())
        .collect();
    assert_eq!(passes, ["original", "clean", "fp16", "layout"]);
    let fp16 = &printed["rows"][2];
    assert!(fp16["cosine"].as_f64().unwrap() > 0.9999, "{fp16}");
    assert!(fp16["macs"].as_u64().unwrap() > 0);
    assert!(ops(&std::fs::read(&out).unwrap()).contains(&"Cast".to_string()));
}

/// `--target cortex-m4` adds the compressed model's footprint to the report — the same
/// figures `inspect --target cortex-m4` gives for the written file — and refuses grids.
#[test]
fn target_adds_the_output_footprint_as_inspect_computes_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &model().build());
    let out = dir.path().join("out.onnx");
    let out = out.to_str().unwrap();
    let compress = |json: bool| {
        let mut args = vec!["compress", &input, "-o", out, "--quantize", "fp16"];
        args.extend(["--target", "cortex-m4"]);
        if json {
            args.push("--json");
        }
        assert_ok(&edgetrim(&args))
    };
    let printed: serde_json::Value = serde_json::from_str(&compress(true)).unwrap();
    let inspected = assert_ok(&edgetrim(&[
        "inspect",
        out,
        "--target",
        "cortex-m4",
        "--json",
    ]));
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(printed["footprint"], inspected["footprint"]);
    assert!(printed["footprint"]["flash"]["total"].as_u64().unwrap() > 0);
    assert_eq!(printed["rows"].as_array().unwrap().len(), 4, "{printed}");
    let text = compress(false);
    assert!(
        text.contains("flash ") && text.contains("on cortex-m4"),
        "{text}"
    );
    let grid = ["compress", &input, "--sweep", "quantize=none,fp16"];
    assert_refused(
        &edgetrim(&[&grid[..], &["--target", "cortex-m4"]].concat()),
        "--target",
    );
}

#[test]
fn bad_flags_and_models_fail_in_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "in.onnx", &model().build());
    let corrupt = write(dir.path(), "corrupt.onnx", b"\x0a\xff\xff\xff\x0fnot onnx");
    let mut broken = model();
    broken.node("Add", &["y", "nowhere"], &["z"], vec![]);
    let broken = write(dir.path(), "broken.onnx", &broken.build());
    let out = dir.path().join("out.onnx");
    let out_s = out.to_str().unwrap();
    let missing = dir.path().join("missing.onnx");

    let cases: [(&[&str], &str); 5] = [
        (
            &["compress", &good, "-o", out_s, "--quantize", "int4"],
            "--quantize int4",
        ),
        (&["compress", &corrupt, "-o", out_s], "corrupt.onnx"),
        (
            &["compress", missing.to_str().unwrap(), "-o", out_s],
            "missing.onnx",
        ),
        (
            &["compress", &broken, "-o", out_s],
            "node Add_6 (Add): reads nowhere",
        ),
        (
            &["compress", &good, "-o", out_s, "--input-shape", "nope=1x2"],
            "--input-shape nope",
        ),
    ];
    for (args, expected) in cases {
        assert_refused(&edgetrim(args), expected);
        assert!(!out.exists(), "{args:?} left a file behind");
    }
    // An existing output survives a failed run untouched.
    std::fs::write(&out, b"keep me").unwrap();
    assert_refused(
        &edgetrim(&["compress", &corrupt, "-o", out_s]),
        "not an ONNX model",
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 4, "temporary files left behind");
}

#[test]
fn metadata_survives_compression() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &model().build());
    let out = dir.path().join("out.onnx");
    assert_ok(&edgetrim(&[
        "compress",
        &input,
        "-o",
        out.to_str().unwrap(),
        "--quantize",
        "fp16",
    ]));
    let bytes = std::fs::read(&out).unwrap();
    let m = edgetrim_runtime::Model::parse(&bytes).unwrap();
    assert_eq!(m.metadata_value("edgetrim.task"), Some("test"));
}

/// x[1,3,8,8] → Conv(4 out, 3x3) → Relu → y: an image model small enough to calibrate.
fn image_model() -> ModelBuilder {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 3, 8, 8]);
    let w: Vec<f32> = (0..108)
        .map(|i| ((i * 37) % 19) as f32 * 0.05 - 0.45)
        .collect();
    m.init_f32("w", &[4, 3, 3, 3], &w);
    m.init_f32("b", &[4], &[0.1, -0.2, 0.0, 0.3]);
    m.node("Conv", &["x", "w", "b"], &["c"], vec![]);
    m.node("Relu", &["c"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    m
}

/// `dir/npy` with `files` 1x3x8x8 calibration inputs: file `k`, element `i` holds
/// `(i · (k + step)) mod period`, scaled into [0, 1].
fn calibration_npy(dir: &Path, files: usize, step: usize, period: usize) -> std::path::PathBuf {
    let npy = dir.join("npy");
    std::fs::create_dir(&npy).unwrap();
    for k in 0..files {
        let data: Vec<f32> = (0..192)
            .map(|i| ((i * (k + step)) % period) as f32 / (period - 1) as f32)
            .collect();
        write_npy_f32(&npy.join(format!("{k}.npy")), &[1, 3, 8, 8], &data);
    }
    npy
}

#[test]
fn int8_calibrates_on_npy_files_and_images() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &image_model().build());
    let npy = calibration_npy(dir.path(), 3, 3, 11);
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    for k in 0..2u8 {
        let img = image::RgbImage::from_fn(12, 9, |x, y| {
            image::Rgb([x as u8 * 20, y as u8 * 25, 40 * k])
        });
        img.save(images.join(format!("{k}.png"))).unwrap();
    }
    let out = dir.path().join("out.onnx");
    let out_s = out.to_str().unwrap();
    for (calib, samples) in [
        (npy.to_str().unwrap().to_string(), 3),
        (format!("images:{}", dir.path().display()), 2),
    ] {
        let stdout = assert_ok(&edgetrim(&[
            "compress",
            &input,
            "-o",
            out_s,
            "--quantize",
            "int8",
            "--calib",
            &calib,
            "--calib-method",
            "percentile",
        ]));
        assert!(
            stdout.contains(&format!("by percentile on {samples} given inputs")),
            "{stdout}"
        );
        assert!(!stdout.contains("RANDOM"), "{stdout}");
        let written = std::fs::read(&out).unwrap();
        let ops = ops(&written);
        assert_eq!(ops.iter().filter(|o| *o == "QuantizeLinear").count(), 1);
        assert!(ops.contains(&"Conv".to_string()));
    }
    // Without --calib: random calibration, said loudly.
    let stdout = assert_ok(&edgetrim(&[
        "compress",
        &input,
        "-o",
        out_s,
        "--quantize",
        "int8",
    ]));
    assert!(
        stdout.contains("warning: int8 calibrated on 16 random inputs"),
        "{stdout}"
    );
}

/// `--reduce-range` writes int8 weights within ±64 (the narrowest channel reaching 64),
/// where the default uses all of ±127.
#[test]
fn reduce_range_keeps_int8_weights_within_64() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &image_model().build());
    let npy = calibration_npy(dir.path(), 3, 3, 11);
    let out = dir.path().join("out.onnx");
    let largest_weight = |extra: &[&str]| -> i32 {
        let mut args = vec![
            "compress",
            &input,
            "-o",
            out.to_str().unwrap(),
            "--quantize",
            "int8",
            "--calib",
            npy.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        assert_ok(&edgetrim(&args));
        let m = edgetrim_compress::passes::decode(&std::fs::read(&out).unwrap()).unwrap();
        let g = m.graph.unwrap();
        // The weights: the int8 initializer of more than one value (not a zero point).
        let w = g
            .initializer
            .iter()
            .find(|t| t.data_type == dt::INT8 && t.raw_data.len() > 1)
            .unwrap();
        w.raw_data
            .iter()
            .map(|&v| i32::from(v as i8).abs())
            .max()
            .unwrap()
    };
    assert_eq!(largest_weight(&[]), 127);
    assert_eq!(largest_weight(&["--reduce-range"]), 64);
}

/// Small deterministic conv weights (in ±0.45) for the int8 tests.
fn weights(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 37 + seed) % 19) as f32 * 0.05 - 0.45)
        .collect()
}

/// The op of every step the nano runtime runs for `model`, in order (`bench --profile`).
fn profiled_ops(model: &str) -> Vec<String> {
    let args = [
        "bench",
        model,
        "--runs",
        "1",
        "--warmup",
        "0",
        "--profile",
        "--json",
    ];
    let profile: serde_json::Value = serde_json::from_str(&assert_ok(&edgetrim(&args))).unwrap();
    profile["profile"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["op"].as_str().unwrap().to_string())
        .collect()
}

/// `--act-tables` puts a Q/DQ pair between a conv and its SiLU (or hard-swish, as Paddle
/// writes it) when only int8 convs read the activation's output, and the runtime then runs
/// that chain as a table in the conv ("QConv+Q+Table+Q"); a SiLU whose output the graph
/// returns stays as it was.
#[test]
fn act_tables_quantize_a_conv_output_before_its_activation() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 3, 8, 8]);
    m.init_f32("w1", &[4, 3, 3, 3], &weights(108, 0));
    m.init_f32("w2", &[4, 4, 1, 1], &weights(16, 5));
    m.init_f32("w3", &[4, 4, 1, 1], &weights(16, 9));
    for (name, v) in [("three", 3.0), ("zero", 0.0), ("six", 6.0)] {
        m.init_f32(name, &[], &[v]);
    }
    let pads = vec![("pads", Attr::Ints(vec![1; 4]))];
    m.node("Conv", &["x", "w1"], &["c1"], pads);
    m.node("Sigmoid", &["c1"], &["s1"], vec![]);
    m.node("Mul", &["c1", "s1"], &["a1"], vec![]);
    m.node("Conv", &["a1", "w2"], &["c2"], vec![]);
    m.node("Add", &["c2", "three"], &["h0"], vec![]);
    m.node("Clip", &["h0", "zero", "six"], &["h1"], vec![]);
    m.node("Mul", &["c2", "h1"], &["h2"], vec![]);
    m.node("Div", &["h2", "six"], &["a2"], vec![]);
    m.node("Conv", &["a2", "w3"], &["c3"], vec![]);
    m.node("Sigmoid", &["c3"], &["s3"], vec![]);
    m.node("Mul", &["c3", "s3"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    let input = write(dir.path(), "in.onnx", &m.build());
    let npy = calibration_npy(dir.path(), 3, 3, 11);
    let out = dir.path().join("out.onnx");
    let out_s = out.to_str().unwrap();
    let compress = |extra: &[&str]| -> (String, Vec<tract_onnx::pb::NodeProto>) {
        let mut args = vec!["compress", &input, "-o", out_s, "--quantize", "int8"];
        args.extend_from_slice(&["--calib", npy.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let stdout = assert_ok(&edgetrim(&args));
        let m = edgetrim_compress::passes::decode(&std::fs::read(&out).unwrap()).unwrap();
        (stdout, m.graph.unwrap().node)
    };
    // Who writes what each Sigmoid and Add reads.
    let sources = |nodes: &[tract_onnx::pb::NodeProto]| -> Vec<String> {
        let producer = |t: &str| {
            let n = nodes
                .iter()
                .find(|n| n.output.iter().any(|o| o == t))
                .unwrap();
            (n.op_type.clone(), n.input[0].clone())
        };
        nodes
            .iter()
            .filter(|n| n.op_type == "Sigmoid" || n.op_type == "Add")
            .map(|n| match producer(&n.input[0]) {
                (dq, q) if dq == "DequantizeLinear" => {
                    let (q_op, c) = producer(&q);
                    format!("{dq}<{q_op}<{}", producer(&c).0)
                }
                (op, _) => op,
            })
            .collect()
    };
    let (stdout, plain) = compress(&[]);
    assert!(!stdout.contains("for tables"), "{stdout}");
    assert_eq!(sources(&plain), ["Conv", "Conv", "Conv"]);
    let (stdout, tabled) = compress(&["--act-tables"]);
    assert!(
        stdout.contains("2 activations quantized for tables"),
        "{stdout}"
    );
    let dq = "DequantizeLinear<QuantizeLinear<Conv";
    assert_eq!(sources(&tabled), [dq, dq, "Conv"]);
    // The Muls read the same dequantized tensors as the Sigmoid and the Add.
    let muls: Vec<_> = tabled.iter().filter(|n| n.op_type == "Mul").collect();
    for first in ["Sigmoid", "Add"] {
        let n = tabled.iter().find(|n| n.op_type == first).unwrap();
        assert!(
            muls.iter().any(|m| m.input.contains(&n.input[0])),
            "{first}"
        );
    }
    let ops = profiled_ops(out_s);
    let tables = ops.iter().filter(|o| *o == "QConv+Q+Table+Q").count();
    assert_eq!(tables, 2, "{ops:?}");
    assert!(ops.iter().any(|o| o == "QConv+SiLU"), "{ops:?}");
}

/// `--int8-joins` quantizes a CSP-style block's Split and Concat on one grid and its
/// residual Add (with `--act-tables`, the SiLUs feeding them become tables), and the
/// runtime then moves int8 through the block: apart from the input's quantization, no
/// QuantizeLinear or DequantizeLinear step is left, where without the flag the SiLUs run
/// in f32 and the Concat quantizes.
#[test]
fn int8_joins_put_a_csp_block_on_one_grid_and_run_it_on_int8() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 3, 8, 8]);
    m.init_f32("w1", &[4, 3, 3, 3], &weights(108, 0));
    m.init_f32("w2", &[2, 2, 1, 1], &weights(4, 5));
    m.init_f32("w3", &[4, 6, 1, 1], &weights(24, 9));
    let sizes: Vec<u8> = [2i64, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    m.init(edgetrim_compress::build::tensor(
        "sizes",
        dt::INT64,
        &[2],
        sizes,
    ));
    let silu = |m: &mut ModelBuilder, c: &str, y: &str| {
        let s = format!("{c}_sigmoid");
        m.node("Sigmoid", &[c], &[&s], vec![]);
        m.node("Mul", &[c, &s], &[y], vec![]);
    };
    m.node(
        "Conv",
        &["x", "w1"],
        &["c1"],
        vec![("pads", Attr::Ints(vec![1; 4]))],
    );
    silu(&mut m, "c1", "a1");
    m.node(
        "Split",
        &["a1", "sizes"],
        &["p0", "p1"],
        vec![("axis", Attr::Int(1))],
    );
    m.node("Conv", &["p1", "w2"], &["c2"], vec![]);
    silu(&mut m, "c2", "a2");
    m.node("Add", &["p1", "a2"], &["r"], vec![]);
    m.node(
        "Concat",
        &["p0", "r", "a2"],
        &["cat"],
        vec![("axis", Attr::Int(1))],
    );
    m.node("Conv", &["cat", "w3"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    let input = write(dir.path(), "in.onnx", &m.build());
    let npy = calibration_npy(dir.path(), 3, 3, 11);
    let out = dir.path().join("out.onnx");
    let out_s = out.to_str().unwrap();
    let compress = |extra: &[&str]| -> (String, Vec<String>, tract_onnx::pb::GraphProto) {
        let mut args = vec!["compress", &input, "-o", out_s, "--quantize", "int8"];
        args.extend_from_slice(&["--calib", npy.to_str().unwrap(), "--act-tables"]);
        args.extend_from_slice(extra);
        let stdout = assert_ok(&edgetrim(&args));
        let ops = profiled_ops(out_s);
        let m = edgetrim_compress::passes::decode(&std::fs::read(&out).unwrap()).unwrap();
        (stdout, ops, m.graph.unwrap())
    };
    let (stdout, ops, _) = compress(&[]);
    assert!(!stdout.contains("one int8 grid"), "{stdout}");
    assert!(ops.iter().any(|o| o == "Concat+Q"), "{ops:?}");
    assert!(ops.iter().any(|o| o == "QConv+SiLU"), "{ops:?}");

    let (stdout, mut ops, g) = compress(&["--int8-joins"]);
    assert!(
        stdout.contains("2 Concat/Split/MaxPool on one int8 grid, 1 Add/AveragePool nodes on int8"),
        "{stdout}"
    );
    // Every QuantizeLinear of a tensor the Split or the Concat touches names one grid.
    let joined = ["a1", "p0", "p1", "a2", "r", "cat"];
    let grids: std::collections::BTreeSet<(String, String)> = g
        .node
        .iter()
        .filter(|n| n.op_type == "QuantizeLinear" && joined.contains(&n.input[0].as_str()))
        .map(|n| (n.input[1].clone(), n.input[2].clone()))
        .collect();
    let quantized = g
        .node
        .iter()
        .filter(|n| n.op_type == "QuantizeLinear")
        .count();
    assert_eq!(grids.len(), 1, "{grids:?}");
    // (and the input, and both conv outputs before their SiLU tables)
    assert_eq!(quantized, 3 + joined.len());
    ops.sort();
    let want = [
        "Concat",
        "QAdd",
        "QConv",
        "QConv+Q+Table+Q",
        "QConv+Q+Table+Q",
        "QuantizeLinear",
        "Split",
    ];
    assert_eq!(ops, want);
}

/// `--pow2-scales` rounds every activation scale up to a power of two (the weights keep
/// theirs); without it the calibrated scales are not.
#[test]
fn pow2_scales_round_activation_scales_to_powers_of_two() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &image_model().build());
    let npy = calibration_npy(dir.path(), 3, 3, 11);
    let out = dir.path().join("out.onnx");
    let activation_scales = |extra: &[&str]| -> Vec<f32> {
        let mut args = vec!["compress", &input, "-o", out.to_str().unwrap()];
        args.extend_from_slice(&["--quantize", "int8", "--calib", npy.to_str().unwrap()]);
        args.extend_from_slice(extra);
        assert_ok(&edgetrim(&args));
        let m = edgetrim_compress::passes::decode(&std::fs::read(&out).unwrap()).unwrap();
        let g = m.graph.unwrap();
        // The scales of QuantizeLinear nodes: activations only.
        g.node
            .iter()
            .filter(|n| n.op_type == "QuantizeLinear")
            .map(|n| {
                let t = g.initializer.iter().find(|t| t.name == n.input[1]).unwrap();
                f32::from_le_bytes(t.raw_data[..4].try_into().unwrap())
            })
            .collect()
    };
    let pow2 = |s: &f32| s.log2().fract() == 0.0;
    let calibrated = activation_scales(&[]);
    assert!(
        !calibrated.is_empty() && !calibrated.iter().all(pow2),
        "{calibrated:?}"
    );
    let rounded = activation_scales(&["--pow2-scales"]);
    assert_eq!(rounded.len(), calibrated.len());
    for (r, c) in rounded.iter().zip(&calibrated) {
        assert!(pow2(r) && *r >= *c && *r < 2.0 * c, "{r} from {c}");
    }
}

#[test]
fn bad_int8_flags_fail_in_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &image_model().build());
    let flat = write(dir.path(), "flat.onnx", &model().build());
    let out = dir.path().join("out.onnx");
    let out_s = out.to_str().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let empty_s = empty.to_str().unwrap();
    let images_empty = format!("images:{empty_s}");
    let cases: [(&[&str], &str); 9] = [
        (
            &["--quantize", "int8", "--calib-method", "kl"],
            "--calib-method: unknown calibration method \"kl\"",
        ),
        (
            &["--calib", empty_s],
            "--calib only applies to --quantize int8",
        ),
        (
            &["--quantize", "fp16", "--keep-float", "head"],
            "--keep-float only applies",
        ),
        (
            &["--quantize", "fp16", "--reduce-range"],
            "--reduce-range only applies to --quantize int8",
        ),
        (
            &["--act-tables"],
            "--act-tables only applies to --quantize int8",
        ),
        (
            &["--pow2-scales"],
            "--pow2-scales only applies to --quantize int8",
        ),
        (
            &["--quantize", "int8", "--calib", "/no/such/dir"],
            "--calib /no/such/dir",
        ),
        (&["--quantize", "int8", "--calib", empty_s], "no .npy files"),
        (
            &["--quantize", "int8", "--calib", &images_empty],
            "no PNG or JPEG",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["compress", &input, "-o", out_s];
        args.extend_from_slice(flags);
        assert_refused(&edgetrim(&args), expected);
        assert!(!out.exists(), "{flags:?} left a file behind");
    }
    assert_refused(
        &edgetrim(&[
            "compress",
            &flat,
            "-o",
            out_s,
            "--quantize",
            "int8",
            "--calib",
            &images_empty,
        ]),
        "images need a model with one 1x3xSxS input",
    );
}

/// x[1,3,8,8] → Conv(3→8) → Relu → Conv(8→4) → z: the smallest model with a prunable layer.
fn two_convs() -> ModelBuilder {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 3, 8, 8]);
    let w: Vec<f32> = (0..216)
        .map(|i| ((i * 29) % 23) as f32 * 0.04 - 0.45)
        .collect();
    m.init_f32("w", &[8, 3, 3, 3], &w);
    m.init_f32("b", &[8], &[0.1, -0.2, 0.0, 0.3, 0.2, -0.1, 0.05, 0.0]);
    let w2: Vec<f32> = (0..32)
        .map(|i| ((i * 13) % 7) as f32 * 0.1 - 0.35)
        .collect();
    m.init_f32("w2", &[4, 8, 1, 1], &w2);
    m.node("Conv", &["x", "w", "b"], &["c"], vec![]);
    m.node("Relu", &["c"], &["y"], vec![]);
    m.node("Conv", &["y", "w2"], &["z"], vec![]);
    m.output("z", dt::FLOAT);
    m
}

#[test]
fn prune_channels_and_weights_report_what_they_removed() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &two_convs().build());
    let npy = calibration_npy(dir.path(), 4, 5, 13);
    let out = dir.path().join("out.onnx");
    let out_s = out.to_str().unwrap();
    let report = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["compress", &input, "-o", out_s, "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&assert_ok(&edgetrim(&args))).expect("JSON report")
    };
    let npy_s = npy.to_str().unwrap();
    let r = report(&["--prune", "channels=0.5", "--calib", npy_s]);
    let rows = r["rows"].as_array().unwrap();
    let passes: Vec<&str> = rows.iter().map(|r| r["pass"].as_str().unwrap()).collect();
    assert_eq!(passes, ["original", "clean", "prune-channels", "layout"]);
    let (clean, pruned) = (&rows[1], &rows[2]);
    assert_eq!(pruned["params"], 4 * 27 + 4 + 4 * 4 + 4, "{pruned}");
    assert!(pruned["macs"].as_u64() < clean["macs"].as_u64(), "{pruned}");
    assert!(pruned["cosine"].as_f64().unwrap() > 0.5, "{pruned}");
    let summary = pruned["summary"].as_str().unwrap();
    assert!(summary.starts_with("4 of 12 channels removed"), "{summary}");
    assert!(
        summary.contains("of 1 layers refit by least squares on 4 calibration inputs"),
        "{summary}"
    );
    // Weight pruning: half of each layer's weights are zero, reported per layer.
    let r = report(&["--prune", "weights=0.5"]);
    let sparsity = &r["rows"][2]["sparsity"];
    assert_eq!(r["rows"][2]["pass"], "prune-weights");
    assert_eq!(
        sparsity["zeros"].as_u64().unwrap() * 2,
        sparsity["weights"].as_u64().unwrap()
    );
    assert_eq!(sparsity["layers"].as_array().unwrap().len(), 2);
    assert!(
        r["rows"][0].get("sparsity").is_none(),
        "dense models carry no sparsity"
    );
    let table = assert_ok(&edgetrim(&[
        "compress",
        &input,
        "-o",
        out_s,
        "--prune",
        "weights=0.5",
    ]));
    assert!(table.contains("50.0% of 248 weights are zero"), "{table}");
    assert!(table.contains(" 50.0% of       216  Conv_"), "{table}");
}

#[test]
fn bad_prune_flags_fail_in_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.onnx", &two_convs().build());
    let out = dir.path().join("out.onnx");
    let out_s = out.to_str().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["--prune", "channels=1.5"],
            "--prune channels=1.5: the ratio must be a number in [0, 1)",
        ),
        (
            &["--prune", "channels"],
            "--prune channels: expected channels=R or weights=R",
        ),
        (
            &["--prune", "filters=0.3"],
            "--prune filters=0.3: unknown kind \"filters\"",
        ),
        (
            &["--prune", "channels=0.3,importance=l3"],
            "--prune channels=0.3,importance=l3: channels: importance=l3 not supported",
        ),
        (
            &["--prune", "channels=0.2", "--prune", "channels=0.3"],
            "--prune channels=0.3: channels=R is given twice",
        ),
        (
            &["--no-reconstruct"],
            "--no-reconstruct only applies to --prune channels=R",
        ),
        (
            &["--prune", "weights=0.5", "--calib", "/tmp"],
            "--calib only applies to --quantize int8 and --prune channels=R",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["compress", &input, "-o", out_s];
        args.extend_from_slice(flags);
        assert_refused(&edgetrim(&args), expected);
        assert!(!out.exists(), "{flags:?} left a file behind");
    }
}
