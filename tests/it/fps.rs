//! End-to-end tests of `edgetrim fps` on a generated road video and the zoo detector.

use crate::common::{assert_fails, assert_ok, edgetrim};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Frames in the test video; runs use `--limit` below it to check that it is honoured.
const FRAMES: usize = 10;
/// The test video's size (datagen makes it 3/4 as high as wide).
const W: usize = 64;
const H: usize = 48;

fn model() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/zoo/yolo9tr-s.onnx")
        .to_str()
        .unwrap()
        .to_string()
}

/// `edgetrim fps MODEL ARGS...`.
fn fps(args: &[&str]) -> Output {
    let model = model();
    let mut all = vec!["fps", model.as_str()];
    all.extend_from_slice(args);
    edgetrim(&all)
}

/// A temp folder holding `road.y4m`, a FRAMES-frame W x H generated video.
fn road() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("road.y4m");
    assert_ok(&edgetrim(&[
        "datagen",
        "pavement",
        "--video",
        &FRAMES.to_string(),
        "--size",
        &W.to_string(),
        "--out",
        path.to_str().unwrap(),
    ]));
    (tmp, path)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&assert_ok(out)).unwrap()
}

#[test]
fn summary_has_a_row_per_stage_and_the_realtime_misses() {
    let (_tmp, video) = road();
    let out = assert_ok(&fps(&[
        "--video",
        s(&video),
        "--limit",
        "3",
        "--realtime",
        "30",
    ]));
    for stage in ["decode", "pre", "infer", "post", "total"] {
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(stage))
            .unwrap_or_else(|| panic!("no {stage} row in\n{out}"));
        // mean, p50, p95, p99, max: five durations with units.
        assert_eq!(row.split_whitespace().count(), 1 + 5 * 2, "{row}");
    }
    assert!(out.contains("3 frames"), "{out}");
    assert!(out.contains("realtime 30 FPS: "), "{out}");
    assert!(
        out.contains(" of 3 frames over the 33.3 ms budget"),
        "{out}"
    );
}

#[test]
fn json_reports_every_stage_and_the_frame_count() {
    let (_tmp, video) = road();
    let r = json(&fps(&[
        "--video",
        s(&video),
        "--limit",
        "4",
        "--realtime",
        "1000000",
        "--json",
    ]));
    assert_eq!(r["frames"], 4);
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(W as u64), Some(H as u64))
    );
    assert_eq!(r["backend"], "nano");
    assert!(r["model"].as_str().unwrap().ends_with("yolo9tr-s.onnx"));
    let stages = &r["stages"];
    let mean = |k: &str| stages[k]["mean_us"].as_f64().unwrap();
    for k in ["decode", "pre", "infer", "post", "total"] {
        let st = &stages[k];
        let [p50, p95, p99, max] =
            ["p50_us", "p95_us", "p99_us", "max_us"].map(|f| st[f].as_f64().unwrap());
        assert!(p50 <= p95 && p95 <= p99 && p99 <= max, "{k}: {st}");
    }
    let parts = mean("decode") + mean("pre") + mean("infer") + mean("post");
    assert!(
        (parts - mean("total")).abs() < 0.01 * mean("total") + 1.0,
        "{stages}"
    );
    let fps = r["fps"].as_f64().unwrap();
    assert!((fps - 1e6 / mean("total")).abs() < 0.01 * fps, "{r}");
    // A budget of 1 µs per frame: every frame misses it.
    assert_eq!(r["realtime"]["misses"], 4);
}

#[test]
fn detections_have_one_line_per_frame_in_source_pixels() {
    let (tmp, video) = road();
    let dets = tmp.path().join("dets.jsonl");
    let out = fps(&[
        "--video",
        s(&video),
        "--limit",
        "6",
        "--conf",
        "0.01",
        "--detections",
        s(&dets),
        "--json",
    ]);
    let r = json(&out);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&dets)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    let mut total = 0;
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["frame"], i);
        for d in line["detections"].as_array().unwrap() {
            let b: Vec<f64> = d["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert!(
                b[0] <= b[2] && b[2] <= W as f64 && b[1] <= b[3] && b[3] <= H as f64,
                "{d}"
            );
            assert!(d["score"].as_f64().unwrap() > 0.01);
            assert!(d["name"].as_str().unwrap().starts_with(['D', 'R']), "{d}");
            total += 1;
        }
    }
    assert_eq!(r["detections"], total);
    assert!(total > 0, "a low --conf finds something");
}

#[test]
fn out_y4m_has_one_frame_per_input_frame_and_the_input_header() {
    let (tmp, video) = road();
    let ann = tmp.path().join("ann.y4m");
    assert_ok(&fps(&[
        "--video",
        s(&video),
        "--limit",
        "5",
        "--out",
        s(&ann),
    ]));
    let bytes = std::fs::read(&ann).unwrap();
    let end = bytes.iter().position(|&b| b == b'\n').unwrap();
    let header = std::str::from_utf8(&bytes[..end]).unwrap();
    let fields: Vec<&str> = header.split(' ').collect();
    assert_eq!(fields[0], "YUV4MPEG2");
    for f in [
        &format!("W{W}") as &str,
        &format!("H{H}"),
        "F30:1",
        "C420jpeg",
        "XCOLORRANGE=LIMITED",
    ] {
        assert!(fields.contains(&f), "{f} missing in {header}");
    }
    let frame = W * H * 3 / 2 + 6;
    let body = &bytes[end + 1..];
    assert_eq!(body.len(), 5 * frame);
    assert!(body.chunks(frame).all(|f| f.starts_with(b"FRAME\n")));
    // The banner's black background is drawn at the top-left: limited-range black, Y = 16.
    assert_eq!(body[6 + 2 * W + 2], 16);
}

#[test]
fn snapshot_is_the_annotated_frame_as_png() {
    let (tmp, video) = road();
    let png = tmp.path().join("snap.png");
    let frames = tmp.path().join("frames");
    let spec = format!("2={}", s(&png));
    assert_ok(&fps(&[
        "--video",
        s(&video),
        "--limit",
        "3",
        "--snapshot",
        &spec,
        "--out",
        s(&frames),
    ]));
    let snap = image::open(&png).unwrap().into_rgb8();
    assert_eq!((snap.width() as usize, snap.height() as usize), (W, H));
    // The PNG folder holds the same annotated frames.
    let names: Vec<String> = std::fs::read_dir(&frames)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    let same = image::open(frames.join("000002.png")).unwrap().into_rgb8();
    assert_eq!(snap.as_raw(), same.as_raw());
    // The banner ("nano ... FPS", white on black) sits at the top-left.
    assert_eq!(snap.get_pixel(2, 2).0, [0, 0, 0]);
    assert!(snap.pixels().take(W * 10).any(|p| p.0 == [255, 255, 255]));
    // A frames folder is a valid --video too.
    let r = json(&fps(&["--video", s(&frames), "--json"]));
    assert_eq!(r["frames"], 3);
}

#[test]
fn reads_y4m_from_stdin() {
    let (_tmp, video) = road();
    let model = model();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgetrim"))
        .args(["fps", &model, "--video", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&video).unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let r = json(&child.wait_with_output().unwrap());
    assert_eq!(r["frames"], FRAMES);
    assert_eq!(r["video"], "stdin");
}

#[test]
fn bad_inputs_give_one_line_errors_and_write_nothing() {
    let (tmp, video) = road();
    let dir = tmp.path();
    let bytes = std::fs::read(&video).unwrap();
    std::fs::write(dir.join("c422.y4m"), b"YUV4MPEG2 W4 H4 F30:1 C422\nFRAME\n").unwrap();
    std::fs::write(dir.join("trunc.y4m"), &bytes[..bytes.len() - 100]).unwrap();
    std::fs::create_dir(dir.join("empty")).unwrap();
    let before = std::fs::read_dir(dir).unwrap().count();
    let v = s(&video).to_string();
    let at = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (missing, c422, trunc, empty) = (
        at("missing.y4m"),
        at("c422.y4m"),
        at("trunc.y4m"),
        at("empty"),
    );
    let snapshot = format!("5={}", at("s.png"));
    let truncated = format!("frame {} is truncated", FRAMES - 1);
    let cases: [(&[&str], &str); 9] = [
        (&["--video", &missing], "missing.y4m: no such file"),
        (&["--video", &c422], "colour space C422 is not supported"),
        (&["--video", &trunc], &truncated),
        (&["--video", &empty], "holds no PNG or JPEG frames"),
        (
            &["--video", &v, "--realtime", "0"],
            "--realtime 0 must be a positive frame rate",
        ),
        (
            &["--video", &v, "--snapshot", "3"],
            "--snapshot 3: expected N=PATH.png",
        ),
        (
            &["--video", &v, "--snapshot", "3=x.jpg"],
            "expected N=PATH.png",
        ),
        (
            &["--video", &v, "--limit", "2", "--snapshot", &snapshot],
            "the video has only 2 frames",
        ),
        (&["--video", &v, "--limit", "0"], "--limit 0"),
    ];
    let out_y4m = dir.join("ann.y4m");
    let dets = dir.join("d.jsonl");
    for (args, expected) in cases {
        let mut all = args.to_vec();
        all.extend(["--out", s(&out_y4m), "--detections", s(&dets)]);
        let err = assert_fails(&fps(&all), 1);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(
            std::fs::read_dir(dir).unwrap().count(),
            before,
            "{args:?} left files behind"
        );
    }
}
