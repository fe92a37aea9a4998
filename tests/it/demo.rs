//! `edgetrim demo`, the README's main job, on a short video: it generates its data, compresses
//! the bundled YOLO9tr to int8 and reports mAP and FPS for both models.

use crate::common::*;

#[test]
fn demo_compresses_the_bundled_model_and_reports_map_and_fps_for_both() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let work = work.to_str().unwrap();
    let args = [
        "demo", "--frames", "6", "--images", "12", "--calib", "8", "--work", work, "--json",
    ];
    let report: serde_json::Value =
        serde_json::from_str(&assert_ok(&edgetrim(&args))).expect("--json prints JSON");
    let models = report["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["name"], "f32");
    assert_eq!(models[1]["name"], "int8");
    assert_eq!(report["frames"], 6);
    for m in models {
        let map50 = m["map50"].as_f64().unwrap();
        assert!(map50 > 0.3, "{m}");
        assert!(m["fps"].as_f64().unwrap() > 0.0, "{m}");
    }
    // int8 costs little accuracy and a lot of bytes.
    let (a, b) = (models[0]["map50"].as_f64(), models[1]["map50"].as_f64());
    assert!((a.unwrap() - b.unwrap()).abs() < 0.05, "{a:?} vs {b:?}");
    let (fa, fb) = (
        models[0]["file_bytes"].as_u64(),
        models[1]["file_bytes"].as_u64(),
    );
    assert!(fa.unwrap() > 3 * fb.unwrap(), "{fa:?} vs {fb:?}");
    // The annotated video of the compressed model holds every frame.
    let annotated = std::fs::read(report["annotated"].as_str().unwrap()).unwrap();
    let frames = annotated.windows(6).filter(|w| w == b"FRAME\n").count();
    assert_eq!(frames, 6);

    // A second run reuses the generated data and prints the human table.
    let table = assert_ok(&edgetrim(&args[..args.len() - 1]));
    assert!(table.contains("f32") && table.contains("int8"), "{table}");
    assert!(table.contains("mAP50"), "{table}");
}

#[test]
fn demo_refuses_a_missing_model_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().to_str().unwrap();
    assert_refused(
        &edgetrim(&["demo", "--model", "/nonexistent/m.onnx", "--work", work]),
        "/nonexistent/m.onnx",
    );
}
