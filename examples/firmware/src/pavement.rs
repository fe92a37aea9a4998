//! What the pavement-detection firmware (`src/bin/yolo/main.rs`) and its host reference
//! (`examples/yolo_firmware` of the root package) must do identically around the session:
//! letterbox the frame into the input, decode the head (DFL boxes, sigmoid scores, NMS)
//! with the layout the model's metadata declares, and print the results.
//!
//! Both sides include this one file (`#[path]`), so the pre/post-processing and the
//! printed format can never disagree silently. It is `no_std`-clean and allocation-free:
//! the anchors and NMS candidates live in caller-provided [`Buffers`].

use core::fmt;
use edgetrim_models::letterbox::{letterbox, Image, Letterbox};
use edgetrim_models::yolo::head::HeadMeta;
use edgetrim_models::yolo::{
    self, make_anchors, Anchor, BoxFormat, Candidate, DetectConfig, Detection,
};
use edgetrim_runtime::tensor::F32View;
use edgetrim_runtime::{DType, Model, Name, Session};

/// Width and height of the committed frame (`road128.rgb`, interleaved RGB8).
pub const FRAME_SIZE: usize = 128;

/// Detections kept after NMS.
pub const MAX_DETECTIONS: usize = 16;

/// The largest anchor grid [`Buffers`] hold: a 128×128 input's over strides 8, 16, 32
/// (16² + 8² + 4²); a larger input is refused by [`postprocess`].
pub const MAX_ANCHORS: usize = 336;

/// Score threshold (the CLI's `--conf` default).
pub const SCORE_THRESHOLD: f32 = 0.25;

/// NMS IoU threshold (the CLI's `--iou` default).
pub const IOU_THRESHOLD: f32 = 0.7;

/// What can fail around the session.
#[derive(Debug)]
pub enum Error {
    /// The runtime refused the model or an input.
    Runtime(edgetrim_runtime::Error),
    /// Pre/post-processing refused a buffer or the metadata.
    Models(edgetrim_models::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Runtime(e) => write!(f, "{e}"),
            Error::Models(e) => write!(f, "{e}"),
        }
    }
}

impl From<edgetrim_runtime::Error> for Error {
    fn from(e: edgetrim_runtime::Error) -> Error {
        Error::Runtime(e)
    }
}

impl From<edgetrim_models::Error> for Error {
    fn from(e: edgetrim_models::Error) -> Error {
        Error::Models(e)
    }
}

/// The anchor grid and the NMS candidates (one per anchor, so every box passing the
/// threshold enters NMS, as on the host with its larger `max_nms`).
pub struct Buffers {
    anchors: [Anchor; MAX_ANCHORS],
    candidates: [Candidate; MAX_ANCHORS],
}

impl Buffers {
    /// Empty buffers (usable in a `static`).
    pub const fn new() -> Buffers {
        Buffers {
            anchors: [Anchor {
                x: 0.0,
                y: 0.0,
                stride: 0.0,
            }; MAX_ANCHORS],
            candidates: [Candidate::EMPTY; MAX_ANCHORS],
        }
    }
}

/// The model's head layout and input size.
pub struct Head<'m> {
    /// What the head's channels mean.
    pub meta: HeadMeta<'m>,
    /// The square input size.
    pub size: usize,
}

impl<'m> Head<'m> {
    /// Reads the layout of `model`, planned in `session`, from its metadata.
    pub fn new(model: &Model<'m>, session: &Session<'_>) -> Result<Head<'m>, Error> {
        let meta = HeadMeta::from_metadata(|key| model.metadata_value(key))?;
        match session.inputs().next() {
            Some(input) => match *input.shape.dims() {
                [1, 3, h, w] if h == w => Ok(Head { meta, size: h }),
                _ => Err(bad_input(
                    input.name,
                    "a detector needs a 1x3xSxS image input",
                )),
            },
            None => Err(bad_input("0", "a detector needs an image input")),
        }
    }

    /// The name of class `class` ("?" when the metadata has none).
    pub fn class_name(&self, class: u16) -> &'m str {
        self.meta.class_name(class).unwrap_or("?")
    }
}

/// Letterboxes the interleaved RGB8 `frame` (`FRAME_SIZE` square) into input 0.
pub fn preprocess(
    session: &mut Session<'_>,
    head: &Head<'_>,
    frame: &[u8],
) -> Result<Letterbox, Error> {
    let image = Image::Rgb8 {
        pixels: frame,
        width: FRAME_SIZE,
        height: FRAME_SIZE,
    };
    let mut input = session.input_mut(0)?;
    if input.dtype != DType::F32 {
        return Err(bad_input("0", "a detector takes a float32 image"));
    }
    Ok(letterbox(&image, head.size, input.f32_mut())?)
}

/// Decodes output 0 into detections in frame pixels, best first.
pub fn postprocess(
    session: &Session<'_>,
    head: &Head<'_>,
    lb: &Letterbox,
    buffers: &mut Buffers,
) -> Result<heapless::Vec<Detection, MAX_DETECTIONS>, Error> {
    let out = session.output(0);
    let (DType::F32, F32View::Slice(values)) = (out.dtype, out.f32()) else {
        return Err(invalid("the head output is not a float32 tensor"));
    };
    let strides = &head.meta.strides;
    let count = yolo::anchor_count(head.size, head.size, strides);
    if count > MAX_ANCHORS {
        return Err(invalid("the input has more anchors than MAX_ANCHORS"));
    }
    let anchors = &mut buffers.anchors[..count];
    make_anchors(head.size, head.size, strides, anchors)?;
    let format = match head.meta.reg_max {
        Some(reg_max) => BoxFormat::Dfl { reg_max, anchors },
        None => BoxFormat::CxCyWh,
    };
    let config = DetectConfig {
        num_classes: (values.len() / count.max(1)).saturating_sub(head.meta.box_channels()),
        score_threshold: SCORE_THRESHOLD,
        iou_threshold: IOU_THRESHOLD,
        scores: head.meta.scores,
    };
    let scratch = &mut buffers.candidates[..count];
    let mut found = yolo::detect::<MAX_DETECTIONS>(values, &format, &config, scratch)?;
    let size = FRAME_SIZE as f32;
    for d in found.iter_mut() {
        *d = d.to_source(lb).clipped(size, size);
    }
    Ok(found)
}

fn bad_input(input: &str, reason: &'static str) -> Error {
    Error::Runtime(edgetrim_runtime::Error::BadInput {
        input: Name::new(input),
        reason,
    })
}

fn invalid(why: &'static str) -> Error {
    Error::Models(edgetrim_models::Error::Invalid(why))
}

/// One printed detection: `det[i] = NAME score 0x<bits> box 0x<x0> 0x<y0> 0x<x1> 0x<y1>
/// (values)`. The bit patterns are what gets compared; the values are for people.
pub struct DetectionLine<'m> {
    /// Rank after NMS.
    pub index: usize,
    /// The detection, in frame pixels.
    pub detection: Detection,
    /// Its class name.
    pub name: &'m str,
}

impl fmt::Display for DetectionLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.detection;
        write!(
            f,
            "det[{}] = {} score 0x{:08x} box 0x{:08x} 0x{:08x} 0x{:08x} 0x{:08x} ({:.3} at {:.1} {:.1} {:.1} {:.1})",
            self.index,
            self.name,
            d.score.to_bits(),
            d.x0.to_bits(),
            d.y0.to_bits(),
            d.x1.to_bits(),
            d.y1.to_bits(),
            d.score,
            d.x0,
            d.y0,
            d.x1,
            d.y1
        )
    }
}

/// The printed lines of `detections`.
pub fn detection_lines<'a, 'm>(
    detections: &'a [Detection],
    head: &'a Head<'m>,
) -> impl Iterator<Item = DetectionLine<'m>> + 'a {
    detections
        .iter()
        .enumerate()
        .map(|(index, &detection)| DetectionLine {
            index,
            detection,
            name: head.class_name(detection.class),
        })
}

/// A digest of the whole head output, so the comparison covers every value and not only
/// those that survive NMS: `head: N bytes, fnv1a64 0x<hash>`.
pub struct OutputDigest {
    /// Bytes of output 0.
    pub bytes: usize,
    /// FNV-1a (64-bit) of those bytes.
    pub fnv1a: u64,
}

impl OutputDigest {
    /// The digest of output 0 of `session`.
    pub fn of(session: &Session<'_>) -> OutputDigest {
        let bytes = session.output(0).bytes;
        let fnv1a = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        OutputDigest {
            bytes: bytes.len(),
            fnv1a,
        }
    }
}

impl fmt::Display for OutputDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "head: {} bytes, fnv1a64 0x{:016x}",
            self.bytes, self.fnv1a
        )
    }
}
