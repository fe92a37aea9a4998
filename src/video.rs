//! Video in and out: Y4M files and streams (4:2:0 only) and folders of PNG/JPEG frames.
//!
//! Y4M is what `ffmpeg -f yuv4mpegpipe` writes, so any video ffmpeg can decode reaches
//! `edgetrim fps` through a pipe without linking a codec. Frames stay in YUV: the letterbox
//! reads 4:2:0 directly, so inference never pays for an RGB conversion. Y4M means BT.601
//! limited range unless the header says `XCOLORRANGE=FULL`, which is honoured.
//!
//! A truncated last frame is an error, not a silent end: the stream is counted byte by byte,
//! so "ended between frames" and "ended inside a frame" are told apart.
//!
//! Writers are all-or-nothing: they write into a temporary sibling of the destination and
//! rename it into place in [`VideoWriter::finish`]; dropping one unfinished leaves nothing.

use anyhow::{bail, Context, Result};
use edgetrim_models::datagen::write::rgb_to_yuv420;
use edgetrim_models::letterbox::{Image, YuvRange};
use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use tempfile::{NamedTempFile, TempDir};

/// The 4:2:0 colour spaces a Y4M header may name (`C420` is the default when none is named).
const YUV420: [&str; 4] = ["420", "420jpeg", "420paldv", "420mpeg2"];

/// The frame rate of a frames folder written as Y4M (a folder has none of its own).
pub const DEFAULT_FPS: (usize, usize) = (30, 1);

/// Where frames come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoSource {
    /// A Y4M file.
    Y4m(PathBuf),
    /// A Y4M stream on standard input (`-`).
    Stdin,
    /// A folder of PNG or JPEG frames, in file-name order.
    Frames(PathBuf),
}

impl VideoSource {
    /// `-` is stdin, a folder is a frames folder, anything else a Y4M file.
    pub fn from_arg(arg: &Path) -> VideoSource {
        if arg.as_os_str() == "-" {
            VideoSource::Stdin
        } else if arg.is_dir() {
            VideoSource::Frames(arg.to_path_buf())
        } else {
            VideoSource::Y4m(arg.to_path_buf())
        }
    }
}

impl fmt::Display for VideoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoSource::Y4m(p) | VideoSource::Frames(p) => write!(f, "{}", p.display()),
            VideoSource::Stdin => f.write_str("stdin"),
        }
    }
}

/// One decoded frame; its buffers are reused from frame to frame.
#[derive(Debug)]
pub struct Frame {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    pixels: Pixels,
}

#[derive(Debug)]
enum Pixels {
    Yuv420 {
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
        range: YuvRange,
    },
    Rgb8(Vec<u8>),
}

impl Default for Frame {
    fn default() -> Frame {
        Frame {
            width: 0,
            height: 0,
            pixels: Pixels::Rgb8(Vec::new()),
        }
    }
}

impl Frame {
    /// The frame as the letterbox reads it.
    pub fn image(&self) -> Image<'_> {
        let (width, height) = (self.width, self.height);
        match &self.pixels {
            Pixels::Yuv420 { y, u, v, range } => Image::Yuv420 {
                y,
                u,
                v,
                width,
                height,
                range: *range,
            },
            Pixels::Rgb8(pixels) => Image::Rgb8 {
                pixels,
                width,
                height,
            },
        }
    }

    /// Writes the frame as interleaved RGB8 into `rgb` (resized to fit).
    pub fn to_rgb8(&self, rgb: &mut Vec<u8>) -> Result<()> {
        rgb.resize(self.width * self.height * 3, 0);
        Ok(self.image().to_rgb8(rgb)?)
    }
}

/// Bytes handed out so far, shared with the reader the Y4M decoder owns.
struct Counted<R> {
    inner: R,
    bytes: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }
}

type Y4mStream = io::Chain<io::Cursor<Vec<u8>>, BufReader<Box<dyn Read>>>;

enum Input {
    Y4m {
        decoder: Box<y4m::Decoder<Counted<Y4mStream>>>,
        read: Rc<Cell<u64>>,
        range: YuvRange,
    },
    Frames(Vec<PathBuf>),
}

/// Reads frames from a [`VideoSource`].
pub struct VideoReader {
    input: Input,
    name: String,
    next: usize,
    frames_hint: Option<usize>,
}

impl VideoReader {
    /// Opens `source` and, for Y4M, reads and checks its header.
    pub fn open(source: &VideoSource) -> Result<VideoReader> {
        let name = source.to_string();
        let (stream, file_len): (Box<dyn Read>, Option<u64>) = match source {
            VideoSource::Frames(dir) => {
                let files = image_files(dir)?;
                if files.is_empty() {
                    bail!("--video {name}: the folder holds no PNG or JPEG frames");
                }
                return Ok(VideoReader {
                    frames_hint: Some(files.len()),
                    input: Input::Frames(files),
                    name,
                    next: 0,
                });
            }
            VideoSource::Stdin => (Box::new(io::stdin()), None),
            VideoSource::Y4m(path) => {
                let file = File::open(path).with_context(|| format!("--video {name}"))?;
                let len = file.metadata().ok().map(|m| m.len());
                (Box::new(file), len)
            }
        };
        let mut stream = BufReader::new(stream);
        let mut header = Vec::new();
        stream
            .by_ref()
            .take(1024)
            .read_until(b'\n', &mut header)
            .with_context(|| format!("cannot read {name}"))?;
        let range = check_header(&name, &header)?;
        let header_len = header.len() as u64;
        let read = Rc::new(Cell::new(0));
        let counted = Counted {
            inner: io::Cursor::new(header).chain(stream),
            bytes: Rc::clone(&read),
        };
        let decoder = y4m::Decoder::new(counted)
            .map_err(|e| anyhow::anyhow!("{name}: not a valid Y4M header ({e})"))?;
        let (w, h) = (decoder.get_width(), decoder.get_height());
        let frame_bytes = (w * h + 2 * w.div_ceil(2) * h.div_ceil(2)) as u64 + 6;
        Ok(VideoReader {
            frames_hint: file_len
                .map(|len| (len.saturating_sub(header_len) / frame_bytes) as usize),
            input: Input::Y4m {
                decoder: Box::new(decoder),
                read,
                range,
            },
            name,
            next: 0,
        })
    }

    /// The frame rate as `(numerator, denominator)`: a Y4M header's, or `None` for a folder.
    pub fn frame_rate(&self) -> Option<(usize, usize)> {
        match &self.input {
            Input::Y4m { decoder, .. } => {
                let r = decoder.get_framerate();
                Some((r.num, r.den))
            }
            Input::Frames(_) => None,
        }
    }

    /// How many frames there are, when that is known without reading them (not on stdin).
    pub fn frames_hint(&self) -> Option<usize> {
        self.frames_hint
    }

    /// Decodes the next frame into `frame`; `false` at the end of the video.
    pub fn read(&mut self, frame: &mut Frame) -> Result<bool> {
        let index = self.next;
        match &mut self.input {
            Input::Y4m {
                decoder,
                read,
                range,
            } => {
                let before = read.get();
                let (width, height) = (decoder.get_width(), decoder.get_height());
                let f = match decoder.read_frame() {
                    Ok(f) => f,
                    // The y4m crate reports "no more bytes" as EOF wherever it happens.
                    Err(y4m::Error::EOF) if read.get() == before => return Ok(false),
                    Err(y4m::Error::EOF) => bail!(
                        "{}: frame {index} is truncated (the stream ends inside it)",
                        self.name
                    ),
                    Err(e) => bail!("{}: frame {index}: {e}", self.name),
                };
                let (mut y, mut u, mut v) = match std::mem::take(&mut frame.pixels) {
                    Pixels::Yuv420 { y, u, v, .. } => (y, u, v),
                    Pixels::Rgb8(_) => Default::default(),
                };
                for (dst, src) in [
                    (&mut y, f.get_y_plane()),
                    (&mut u, f.get_u_plane()),
                    (&mut v, f.get_v_plane()),
                ] {
                    dst.clear();
                    dst.extend_from_slice(src);
                }
                *frame = Frame {
                    width,
                    height,
                    pixels: Pixels::Yuv420 {
                        y,
                        u,
                        v,
                        range: *range,
                    },
                };
            }
            Input::Frames(files) => {
                let Some(path) = files.get(index) else {
                    return Ok(false);
                };
                let rgb = image::open(path)
                    .with_context(|| format!("cannot decode frame {}", path.display()))?
                    .into_rgb8();
                frame.width = rgb.width() as usize;
                frame.height = rgb.height() as usize;
                frame.pixels = Pixels::Rgb8(rgb.into_raw());
            }
        }
        self.next += 1;
        Ok(true)
    }
}

impl Default for Pixels {
    fn default() -> Pixels {
        Pixels::Rgb8(Vec::new())
    }
}

/// Checks a Y4M header line for a 4:2:0 colour space and returns its colour range, so that
/// a 4:2:2 or 4:4:4 stream is refused by name rather than misread.
fn check_header(name: &str, header: &[u8]) -> Result<YuvRange> {
    let Some(params) = header.strip_prefix(b"YUV4MPEG2 ") else {
        bail!(
            "{name}: not a Y4M stream (make one with \
             `ffmpeg -i VIDEO -pix_fmt yuv420p -f yuv4mpegpipe OUT.y4m`)"
        );
    };
    let params = String::from_utf8_lossy(params);
    let mut range = YuvRange::Limited;
    for field in params.split_ascii_whitespace() {
        if let Some(space) = field.strip_prefix('C') {
            if !YUV420.contains(&space) {
                bail!(
                    "{name}: colour space C{space} is not supported; edgetrim reads 4:2:0 \
                     (C420, C420jpeg, C420paldv, C420mpeg2): convert with -pix_fmt yuv420p"
                );
            }
        } else if field == "XCOLORRANGE=FULL" {
            range = YuvRange::Full;
        }
    }
    Ok(range)
}

/// The PNG and JPEG files in `dir`, sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A temporary file beside `path`, for writing `path` atomically; `flag` names the option
/// in errors.
pub fn temp_beside(flag: &str, path: &Path) -> Result<NamedTempFile> {
    temp_builder(flag, path, 0o644)?
        .tempfile_in(parent(path))
        .with_context(|| format!("{flag} {}: cannot create a file there", path.display()))
}

/// A temp-file builder for `path`, after checking its folder exists. On Unix the output gets
/// `mode` (tempfile's default is owner-only, which would surprise in a shared folder).
fn temp_builder<'a>(flag: &str, path: &Path, mode: u32) -> Result<tempfile::Builder<'a, 'a>> {
    let dir = parent(path);
    if !dir.is_dir() {
        bail!(
            "{flag} {}: folder {} does not exist",
            path.display(),
            dir.display()
        );
    }
    let mut builder = tempfile::Builder::new();
    builder.prefix(".edgetrim-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(builder)
}

/// The folder `path` is in (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Moves the finished `tmp` to `path`.
pub fn persist(tmp: NamedTempFile, path: &Path) -> Result<()> {
    tmp.as_file()
        .sync_all()
        .and_then(|()| tmp.persist(path).map(drop).map_err(|e| e.error))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Encodes an RGB8 image as PNG into `w`.
pub fn write_png(mut w: impl Write, rgb: &[u8], width: usize, height: usize) -> Result<()> {
    use image::ImageEncoder;
    image::codecs::png::PngEncoder::new(&mut w)
        .write_image(
            rgb,
            width as u32,
            height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .context("cannot encode PNG")?;
    Ok(w.flush()?)
}

/// Writes annotated frames: a Y4M file or a folder of PNG frames (`000000.png`, ...).
pub struct VideoWriter {
    path: PathBuf,
    sink: Sink,
}

enum Sink {
    Y4m {
        tmp: NamedTempFile,
        rate: (usize, usize),
        /// Created with the first frame, which fixes the size.
        encoder: Option<(y4m::Encoder<File>, usize, usize)>,
    },
    Frames {
        tmp: TempDir,
        next: usize,
    },
}

impl VideoWriter {
    /// A writer of `path`: Y4M at `rate` when it ends in `.y4m`, else a folder of PNG frames
    /// (which must not exist, or be empty).
    pub fn create(path: &Path, rate: (usize, usize)) -> Result<VideoWriter> {
        let shown = path.display();
        let is_y4m = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("y4m"));
        let sink = if is_y4m {
            Sink::Y4m {
                tmp: temp_beside("--out", path)?,
                rate,
                encoder: None,
            }
        } else {
            if path.is_file() || path.read_dir().is_ok_and(|mut d| d.next().is_some()) {
                bail!("--out {shown}: exists and is not an empty folder (give a new folder or a .y4m file)");
            }
            let tmp = temp_builder("--out", path, 0o755)?
                .tempdir_in(parent(path))
                .with_context(|| format!("--out {shown}: cannot create a folder there"))?;
            Sink::Frames { tmp, next: 0 }
        };
        Ok(VideoWriter {
            path: path.to_path_buf(),
            sink,
        })
    }

    /// Appends one RGB8 frame.
    pub fn write(&mut self, rgb: &[u8], width: usize, height: usize) -> Result<()> {
        let shown = self.path.display();
        match &mut self.sink {
            Sink::Y4m { tmp, rate, encoder } => {
                if encoder.is_none() {
                    let file = tmp
                        .reopen()
                        .with_context(|| format!("cannot write {shown}"))?;
                    let range = y4m::VendorExtensionString::new(b"COLORRANGE=LIMITED".to_vec())
                        .expect("a valid Y4M extension");
                    let e = y4m::encode(width, height, y4m::Ratio::new(rate.0, rate.1))
                        .with_colorspace(y4m::Colorspace::C420jpeg)
                        .append_vendor_extension(range)
                        .write_header(file)
                        .with_context(|| format!("cannot write {shown}"))?;
                    *encoder = Some((e, width, height));
                }
                let Some((e, w, h)) = encoder else {
                    unreachable!("created above")
                };
                if (width, height) != (*w, *h) {
                    bail!("--out {shown}: a Y4M video needs frames of one size; this one is {width}x{height}, the first was {w}x{h}");
                }
                let yuv = rgb_to_yuv420(rgb, width, height);
                let (y, uv) = yuv.split_at(width * height);
                let (u, v) = uv.split_at(uv.len() / 2);
                e.write_frame(&y4m::Frame::new([y, u, v], None))
                    .with_context(|| format!("cannot write {shown}"))
            }
            Sink::Frames { tmp, next } => {
                let file = tmp.path().join(format!("{next:06}.png"));
                let f = File::create(&file).with_context(|| format!("cannot write {shown}"))?;
                write_png(io::BufWriter::new(f), rgb, width, height)?;
                *next += 1;
                Ok(())
            }
        }
    }

    /// Moves the finished video into place.
    pub fn finish(self) -> Result<()> {
        match self.sink {
            Sink::Y4m { tmp, encoder, .. } => {
                drop(encoder);
                persist(tmp, &self.path)
            }
            Sink::Frames { tmp, .. } => {
                let dir = tmp.keep();
                std::fs::rename(&dir, &self.path).or_else(|e| {
                    let _ = std::fs::remove_dir_all(&dir);
                    Err(e).with_context(|| format!("cannot write {}", self.path.display()))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_names_the_colour_space_and_reads_the_range() {
        let ok = check_header("v", b"YUV4MPEG2 W4 H2 F30:1 C420jpeg\n").unwrap();
        assert_eq!(ok, YuvRange::Limited);
        let full = check_header("v", b"YUV4MPEG2 W4 H2 XCOLORRANGE=FULL\n").unwrap();
        assert_eq!(full, YuvRange::Full);
        let err = check_header("v", b"YUV4MPEG2 W4 H2 C422\n").unwrap_err();
        assert!(err.to_string().contains("C422"), "{err}");
        assert!(check_header("v", b"RIFF....").is_err());
    }
}
