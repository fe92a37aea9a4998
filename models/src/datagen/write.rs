//! Writers: YOLO-format data set folders (PNG images, label text, `data.yaml`), and road
//! videos as Y4M with per-frame ground truth as JSON lines.
//!
//! Every writer is all-or-nothing: it writes into a temporary sibling and renames it into
//! place at the end, so an interrupted run never leaves a half-written data set that a
//! training run would silently accept.

use super::{generate_image, Class, Frame, Label, RoadVideo, Split};
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The YOLO label text of a frame: one `class cx cy w h` line per label, normalised to the
/// image size.
pub fn yolo_labels(frame: &Frame) -> String {
    let (w, h) = (frame.width as f64, frame.height as f64);
    let mut text = String::new();
    for l in &frame.labels {
        let (bw, bh) = (f64::from(l.x1 - l.x0), f64::from(l.y1 - l.y0));
        let (cx, cy) = (f64::from(l.x0) + bw / 2.0, f64::from(l.y0) + bh / 2.0);
        text += &format!(
            "{} {:.6} {:.6} {:.6} {:.6}\n",
            l.class.id(),
            cx / w,
            cy / h,
            bw / w,
            bh / h
        );
    }
    text
}

/// The `data.yaml` of a data set folder: paths relative to it and the class names.
pub fn data_yaml(split: Split, seed: u64) -> String {
    let names: Vec<String> = Class::ALL
        .iter()
        .map(|c| format!("'{}'", c.name()))
        .collect();
    format!(
        "# edgetrim datagen pavement --split {} --seed {seed}\npath: .\ntrain: images\nval: images\ntest: images\nnc: {}\nnames: [{}]\n",
        split.name(),
        Class::ALL.len(),
        names.join(", ")
    )
}

/// A temporary sibling of `path`, unique to this process.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes images `0..count` of `split` as a YOLO folder at `dir` (`images/NNNNNN.png`,
/// `labels/NNNNNN.txt`, `data.yaml`), calling `progress(done)` after each image. `dir` must
/// not exist or be empty; it appears complete or not at all.
pub fn write_yolo(
    dir: &Path,
    split: Split,
    seed: u64,
    count: usize,
    size: usize,
    mut progress: impl FnMut(usize),
) -> io::Result<()> {
    let tmp = temp_sibling(dir);
    let result = (|| {
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(tmp.join("images"))?;
        fs::create_dir_all(tmp.join("labels"))?;
        for i in 0..count {
            let frame = generate_image(split, seed, i as u64, size);
            write_png(&tmp.join("images").join(format!("{i:06}.png")), &frame)?;
            fs::write(
                tmp.join("labels").join(format!("{i:06}.txt")),
                yolo_labels(&frame),
            )?;
            progress(i + 1);
        }
        fs::write(tmp.join("data.yaml"), data_yaml(split, seed))?;
        fs::rename(&tmp, dir)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Writes a frame as an RGB8 PNG.
pub fn write_png(path: &Path, frame: &Frame) -> io::Result<()> {
    image::save_buffer(
        path,
        &frame.rgb,
        frame.width as u32,
        frame.height as u32,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(io::Error::other)
}

/// The Y4M stream header for `width`×`height` 4:2:0 frames at `fps`.
pub fn y4m_header(width: usize, height: usize, fps: u32) -> String {
    format!("YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n")
}

/// Converts RGB8 to planar YUV 4:2:0 (full-range BT.601, as JPEG and `C420jpeg` use; chroma
/// is the average of each 2×2 block). `width` and `height` must be even.
pub fn rgb_to_yuv420(rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
    let mut out = vec![0u8; width * height * 3 / 2];
    let (luma, chroma) = out.split_at_mut(width * height);
    let (u_plane, v_plane) = chroma.split_at_mut(width * height / 4);
    for (i, p) in rgb.chunks_exact(3).enumerate() {
        let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
        luma[i] = (0.299 * r + 0.587 * g + 0.114 * b)
            .round()
            .clamp(0.0, 255.0) as u8;
    }
    for cy in 0..height / 2 {
        for cx in 0..width / 2 {
            let (mut r, mut g, mut b) = (0.0, 0.0, 0.0);
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let p = ((2 * cy + dy) * width + 2 * cx + dx) * 3;
                r += f32::from(rgb[p]) / 4.0;
                g += f32::from(rgb[p + 1]) / 4.0;
                b += f32::from(rgb[p + 2]) / 4.0;
            }
            let u = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
            let v = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
            u_plane[cy * width / 2 + cx] = u.round().clamp(0.0, 255.0) as u8;
            v_plane[cy * width / 2 + cx] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// One JSON line of per-frame ground truth: the frame index, its size and its boxes in
/// pixels (`[x0, y0, x1, y1]`, right/bottom exclusive) with class ids and names.
pub fn ground_truth_line(index: usize, frame: &Frame) -> String {
    let boxes: Vec<String> = frame
        .labels
        .iter()
        .map(
            |&Label {
                 class,
                 x0,
                 y0,
                 x1,
                 y1,
             }| {
                format!(
                    "{{\"class\":{},\"name\":\"{}\",\"box\":[{x0},{y0},{x1},{y1}]}}",
                    class.id(),
                    class.name()
                )
            },
        )
        .collect();
    format!(
        "{{\"frame\":{index},\"width\":{},\"height\":{},\"boxes\":[{}]}}\n",
        frame.width,
        frame.height,
        boxes.join(",")
    )
}

/// Writes `video` as a 30 fps Y4M file at `y4m` and its ground truth as JSON lines at
/// `jsonl`, calling `progress(done)` after each frame. Both files appear complete or not
/// at all.
pub fn write_video(
    y4m: &Path,
    jsonl: &Path,
    video: RoadVideo,
    width: usize,
    height: usize,
    mut progress: impl FnMut(usize),
) -> io::Result<()> {
    let (tmp_video, tmp_truth) = (temp_sibling(y4m), temp_sibling(jsonl));
    let result = (|| {
        let mut out = BufWriter::new(fs::File::create(&tmp_video)?);
        let mut truth = BufWriter::new(fs::File::create(&tmp_truth)?);
        out.write_all(y4m_header(width, height, 30).as_bytes())?;
        for (i, frame) in video.enumerate() {
            out.write_all(b"FRAME\n")?;
            out.write_all(&rgb_to_yuv420(&frame.rgb, width, height))?;
            truth.write_all(ground_truth_line(i, &frame).as_bytes())?;
            progress(i + 1);
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        truth.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&tmp_truth, jsonl)?;
        fs::rename(&tmp_video, y4m)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_video);
        let _ = fs::remove_file(&tmp_truth);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuv_of_grey_white_and_red_matches_bt601() {
        let mut rgb = vec![128u8; 4 * 2 * 3];
        rgb[..3].copy_from_slice(&[255, 255, 255]);
        let yuv = rgb_to_yuv420(&rgb, 4, 2);
        assert_eq!(yuv.len(), 12);
        assert_eq!(&yuv[..4], &[255, 128, 128, 128]);
        assert_eq!(yuv[8], 128); // U of a (mostly) grey block stays neutral.
        let red = rgb_to_yuv420(&[255, 0, 0].repeat(4), 2, 2);
        assert_eq!(red, vec![76, 76, 76, 76, 85, 255]);
    }

    #[test]
    fn labels_are_normalised_centre_size() {
        let frame = Frame {
            width: 100,
            height: 50,
            rgb: vec![],
            labels: vec![Label {
                class: Class::Pothole,
                x0: 10,
                y0: 10,
                x1: 30,
                y1: 20,
            }],
        };
        assert_eq!(
            yolo_labels(&frame),
            "3 0.200000 0.300000 0.200000 0.200000\n"
        );
        assert!(ground_truth_line(7, &frame).contains("\"frame\":7"));
    }
}
