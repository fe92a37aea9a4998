//! `edgetrim datagen pavement` and the generator behind it: determinism, split separation,
//! label validity, pothole boxes that hold the darkened pixels, Y4M structure, and speed.

use edgetrim_models::datagen::{generate_image, Class, Frame, RoadVideo, Split};
use std::path::Path;
use std::time::Instant;

use crate::common::*;

const SPLITS: [Split; 4] = [Split::Train, Split::Val, Split::Test, Split::Shifted];

fn luma(frame: &Frame, x: u32, y: u32) -> f32 {
    let i = (y as usize * frame.width + x as usize) * 3;
    let p = &frame.rgb[i..i + 3];
    0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
}

fn percentile(mut v: Vec<f32>, q: f32) -> f32 {
    v.sort_by(f32::total_cmp);
    v[((v.len() - 1) as f32 * q) as usize]
}

#[test]
fn same_arguments_give_identical_images_and_splits_differ() {
    let a = generate_image(Split::Train, 5, 3, 128);
    assert_eq!(a, generate_image(Split::Train, 5, 3, 128));
    for split in &SPLITS[1..] {
        assert_ne!(a.rgb, generate_image(*split, 5, 3, 128).rgb, "{split:?}");
    }
    assert_ne!(a.rgb, generate_image(Split::Train, 6, 3, 128).rgb);
    assert_ne!(a.rgb, generate_image(Split::Train, 5, 4, 128).rgb);
}

#[test]
fn every_label_is_a_non_empty_box_inside_the_image_and_all_classes_occur() {
    let mut seen = [0usize; 8];
    for split in SPLITS {
        for i in 0..40 {
            let f = generate_image(split, 1, i, 160);
            assert_eq!(f.rgb.len(), 160 * 160 * 3);
            for l in &f.labels {
                assert!(l.x0 < l.x1 && l.y0 < l.y1, "{split:?} {i}: {l:?}");
                assert!(l.x1 <= 160 && l.y1 <= 160, "{split:?} {i}: {l:?}");
                seen[l.class.id()] += 1;
            }
        }
    }
    for class in Class::ALL {
        assert!(seen[class.id()] >= 3, "{}: {seen:?}", class.name());
    }
}

#[test]
fn pothole_boxes_hold_darker_pixels_than_their_surroundings() {
    let mut checked = 0;
    for i in 0..60 {
        let f = generate_image(Split::Train, 2, i, 192);
        for l in f.labels.iter().filter(|l| l.class == Class::Pothole) {
            let (w, h) = (f.width as u32, f.height as u32);
            if l.x1 - l.x0 < 8
                || l.y1 - l.y0 < 4
                || l.x0 < 4
                || l.y0 < 4
                || l.x1 + 4 > w
                || l.y1 + 4 > h
            {
                continue;
            }
            let overlaps = f.labels.iter().any(|o| {
                o != l && o.x0 < l.x1 + 4 && l.x0 < o.x1 + 4 && o.y0 < l.y1 + 4 && l.y0 < o.y1 + 4
            });
            if overlaps {
                continue;
            }
            let inside: Vec<f32> = (l.y0..l.y1)
                .flat_map(|y| (l.x0..l.x1).map(move |x| (x, y)))
                .map(|(x, y)| luma(&f, x, y))
                .collect();
            // A 4-pixel ring around the box.
            let ring: Vec<f32> = (l.y0 - 4..l.y1 + 4)
                .flat_map(|y| (l.x0 - 4..l.x1 + 4).map(move |x| (x, y)))
                .filter(|&(x, y)| x < l.x0 || x >= l.x1 || y < l.y0 || y >= l.y1)
                .map(|(x, y)| luma(&f, x, y))
                .collect();
            let (dark_in, dark_out) = (percentile(inside, 0.2), percentile(ring, 0.2));
            assert!(
                dark_in < 0.8 * dark_out,
                "image {i} {l:?}: {dark_in} vs {dark_out}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} potholes checked");
}

#[test]
fn cli_writes_a_yolo_folder_byte_identically_and_refuses_bad_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = [tmp.path().join("a"), tmp.path().join("b")];
    for dir in &dirs {
        let out = edgetrim(&[
            "datagen",
            "pavement",
            "--split",
            "val",
            "--seed",
            "9",
            "--images",
            "4",
            "--size",
            "96",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(assert_ok(&out).contains("wrote 4 val images"));
    }
    for rel in [
        "images/000000.png",
        "images/000003.png",
        "labels/000002.txt",
        "data.yaml",
    ] {
        let (a, b) = (
            std::fs::read(dirs[0].join(rel)).unwrap(),
            std::fs::read(dirs[1].join(rel)).unwrap(),
        );
        assert_eq!(a, b, "{rel}");
    }
    let yaml = std::fs::read_to_string(dirs[0].join("data.yaml")).unwrap();
    assert!(
        yaml.contains("nc: 8") && yaml.contains("'D00'") && yaml.contains("'Repair'"),
        "{yaml}"
    );
    for i in 0..4 {
        let text = std::fs::read_to_string(dirs[0].join(format!("labels/{i:06}.txt"))).unwrap();
        for line in text.lines() {
            let v: Vec<f64> = line.split(' ').map(|t| t.parse().unwrap()).collect();
            assert_eq!(v.len(), 5, "{line}");
            assert!(
                v[0] < 8.0 && v[1..].iter().all(|c| (0.0..=1.0).contains(c)),
                "{line}"
            );
            assert!(v[3] > 0.0 && v[4] > 0.0, "{line}");
        }
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        2,
        "no temporary folders left"
    );

    let a = dirs[0].to_str().unwrap();
    assert_refused(
        &edgetrim(&["datagen", "pavement", "--images", "2", "--out", a]),
        "not empty",
    );
    let fresh = tmp.path().join("c");
    let fresh = fresh.to_str().unwrap();
    assert_refused(
        &edgetrim(&[
            "datagen", "pavement", "--images", "2", "--size", "8", "--out", fresh,
        ]),
        "--size 8",
    );
    assert_refused(
        &edgetrim(&["datagen", "pavement", "--images", "0", "--out", fresh]),
        "--images 0",
    );
    assert_refused(
        &edgetrim(&["datagen", "pavement", "--video", "2", "--out", "road.mp4"]),
        ".y4m",
    );
    assert_refused(
        &edgetrim(&[
            "datagen", "pavement", "--video", "2", "--size", "97", "--out", "r.y4m",
        ]),
        "even",
    );
    // Usage errors (clap): neither or both of --images / --video, unknown split.
    for args in [
        &["datagen", "pavement", "--out", fresh][..],
        &[
            "datagen", "pavement", "--images", "1", "--video", "1", "--out", fresh,
        ],
        &[
            "datagen", "pavement", "--split", "holdout", "--images", "1", "--out", fresh,
        ],
    ] {
        assert_eq!(edgetrim(args).status.code(), Some(2), "{args:?}");
    }
    assert!(!Path::new(fresh).exists());
    let help = assert_ok(&edgetrim(&["datagen", "pavement", "--help"]));
    assert!(
        help.contains("Examples:") && help.contains("--video 300"),
        "{help}"
    );
}

#[test]
fn cli_video_is_valid_y4m_with_one_ground_truth_line_per_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("road.y4m");
    let out = edgetrim(&[
        "datagen",
        "pavement",
        "--video",
        "12",
        "--size",
        "64",
        "--seed",
        "3",
        "--out",
        path.to_str().unwrap(),
    ]);
    assert!(assert_ok(&out).contains("wrote 12 frames (64x48"));
    let bytes = std::fs::read(&path).unwrap();
    let header_end = bytes.iter().position(|&b| b == b'\n').unwrap();
    let header = std::str::from_utf8(&bytes[..header_end]).unwrap();
    let fields: Vec<&str> = header.split(' ').collect();
    assert_eq!(fields[0], "YUV4MPEG2");
    let field = |tag: char| fields.iter().find_map(|f| f.strip_prefix(tag)).unwrap();
    let (w, h): (usize, usize) = (field('W').parse().unwrap(), field('H').parse().unwrap());
    assert_eq!((w, h), (64, 48));
    assert!(field('C').starts_with("420"), "{header}");
    let frame_size = w * h * 3 / 2 + 6;
    let body = &bytes[header_end + 1..];
    assert_eq!(body.len(), 12 * frame_size);
    for frame in body.chunks(frame_size) {
        assert_eq!(&frame[..6], b"FRAME\n");
    }
    let truth = std::fs::read_to_string(tmp.path().join("road.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = truth
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["frame"], i);
        for b in line["boxes"].as_array().unwrap() {
            let xyxy: Vec<u64> = b["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert!(
                xyxy[0] < xyxy[2] && xyxy[2] <= 64 && xyxy[1] < xyxy[3] && xyxy[3] <= 48,
                "{b}"
            );
            assert!(b["class"].as_u64().unwrap() < 8);
        }
    }
}

#[test]
fn video_frames_scroll_the_same_road_and_are_deterministic() {
    let a: Vec<Frame> = RoadVideo::new(Split::Test, 4, 30, 96, 72).collect();
    let b: Vec<Frame> = RoadVideo::new(Split::Test, 4, 30, 96, 72).collect();
    assert_eq!(a, b);
    assert_eq!(a.len(), 30);
    assert_ne!(a[0].rgb, a[1].rgb, "the camera moves");
    let boxes: usize = a.iter().map(|f| f.labels.len()).sum();
    assert!(boxes > 0, "a 12 m drive passes some damage");
}

#[test]
fn generation_speed_at_320_px() {
    let n = 10;
    let started = Instant::now();
    let boxes: usize = (0..n)
        .map(|i| generate_image(Split::Train, 0, i, 320).labels.len())
        .sum();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "datagen: {:.1} images/s at 320 px ({boxes} boxes in {n} images)",
        n as f64 / secs
    );
    assert!(boxes > 0);
}
