//! Writers: YOLO-format data set folders (PNG images, label text, `data.yaml`), and road
//! videos as Y4M with per-frame ground truth as JSON lines.
//!
//! Every writer is all-or-nothing: it writes into a temporary sibling and renames it into
//! place at the end, so an interrupted run never leaves a half-written data set that a
//! training run would silently accept.

use super::{generate_image, Class, Frame, Label, RoadVideo, Split};
use crate::letterbox::{rgb_to_yuv, YuvRange};
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
pub(crate) fn temp_sibling(path: &Path) -> PathBuf {
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

/// The Y4M stream header for `width`×`height` 4:2:0 frames at `fps`. `XCOLORRANGE=LIMITED`
/// says what [`rgb_to_yuv420`] writes (readers assume limited range without the tag anyway,
/// but ffmpeg and edgetrim both honour it).
pub fn y4m_header(width: usize, height: usize, fps: u32) -> String {
    format!("YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg XCOLORRANGE=LIMITED\n")
}

/// Converts RGB8 to planar YUV 4:2:0 in BT.601 limited range (Y 16..=235, Cb/Cr 16..=240,
/// what ffmpeg writes and what [`Image::Yuv420`] decodes by default); chroma is the mean
/// colour of each 2×2 block (of the pixels present, for odd sizes).
///
/// [`Image::Yuv420`]: crate::letterbox::Image::Yuv420
pub fn rgb_to_yuv420(rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let mut out = vec![0u8; width * height + 2 * cw * ch];
    let (luma, chroma) = out.split_at_mut(width * height);
    let (u_plane, v_plane) = chroma.split_at_mut(cw * ch);
    for (i, p) in rgb.chunks_exact(3).take(width * height).enumerate() {
        luma[i] = rgb_to_yuv(rgb_f32(p), YuvRange::Limited)[0];
    }
    for cy in 0..ch {
        for cx in 0..cw {
            let mut sum = [0.0f32; 3];
            let mut n = 0.0;
            for y in 2 * cy..(2 * cy + 2).min(height) {
                for x in 2 * cx..(2 * cx + 2).min(width) {
                    let p = (y * width + x) * 3;
                    for (s, c) in sum.iter_mut().zip(rgb_f32(&rgb[p..p + 3])) {
                        *s += c;
                    }
                    n += 1.0;
                }
            }
            let [_, u, v] = rgb_to_yuv(sum.map(|s| s / n), YuvRange::Limited);
            u_plane[cy * cw + cx] = u;
            v_plane[cy * cw + cx] = v;
        }
    }
    out
}

/// One RGB8 pixel as floats.
fn rgb_f32(p: &[u8]) -> [f32; 3] {
    [p[0], p[1], p[2]].map(f32::from)
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
    fn yuv_of_grey_white_and_red_matches_bt601_limited_range() {
        let mut rgb = vec![128u8; 4 * 2 * 3];
        rgb[..3].copy_from_slice(&[255, 255, 255]);
        rgb[3..6].copy_from_slice(&[0, 0, 0]);
        let yuv = rgb_to_yuv420(&rgb, 4, 2);
        assert_eq!(yuv.len(), 12);
        // White is 235 and black 16, not 255 and 0; grey 128 is 16 + 219 * 128 / 255 = 126.
        assert_eq!(&yuv[..4], &[235, 16, 126, 126]);
        assert_eq!(yuv[8], 128); // U of a grey-white-black block stays neutral.
        let red = rgb_to_yuv420(&[255, 0, 0].repeat(4), 2, 2);
        assert_eq!(red, vec![81, 81, 81, 81, 90, 240]);
        assert!(y4m_header(64, 48, 30).ends_with(" C420jpeg XCOLORRANGE=LIMITED\n"));
    }

    #[test]
    fn yuv420_round_trips_through_the_letterbox_decoder() {
        // 3x3 (odd): chroma is 2x2, the last column and row average fewer pixels.
        let rgb: Vec<u8> = (0..27).map(|i| (i * 9) as u8).collect();
        let yuv = rgb_to_yuv420(&rgb, 3, 3);
        assert_eq!(yuv.len(), 9 + 2 * 4);
        let (y, uv) = yuv.split_at(9);
        let image = crate::letterbox::Image::Yuv420 {
            y,
            u: &uv[..4],
            v: &uv[4..],
            width: 3,
            height: 3,
            range: YuvRange::Limited,
        };
        let mut back = [0u8; 27];
        image.to_rgb8(&mut back).unwrap();
        // The bottom-right pixel has a chroma sample of its own: it round-trips closely.
        for c in 24..27 {
            assert!(
                rgb[c].abs_diff(back[c]) <= 3,
                "{c}: {} vs {}",
                rgb[c],
                back[c]
            );
        }
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
