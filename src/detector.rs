//! A YOLO detector on either backend: the pipeline `eval-detect`, `fps` and `demo` share.
//!
//! The three stages are separate calls — [`Detector::preprocess`] (letterbox into the input
//! tensor), [`Detector::infer`] and [`Detector::postprocess`] (decode + NMS, boxes mapped back
//! to the source frame) — so `fps` can time each one. What the head's channels mean is read
//! from the model's own metadata (`edgetrim.yolo.*`, written by `models/train/yolo9tr`, or
//! Ultralytics' `names`/`imgsz`), or, for a YOLOX export, which writes none, from its output
//! shape; so any such model evaluates without extra flags.

use crate::backend::{Backend, BackendKind};
use anyhow::{anyhow, bail, Context, Result};
use edgetrim_models::letterbox::{letterbox_as, Image, Letterbox, Pixels};
use edgetrim_models::yolo::head::HeadMeta;
use edgetrim_models::yolo::{
    self, make_anchors, Anchor, BoxFormat, Candidate, DetectConfig, Detection, ScoreFormat,
};
use edgetrim_runtime::onnx::Dim;
use edgetrim_runtime::tensor::{F32Source, F32View};
use edgetrim_runtime::{DType, Model};

/// At most this many detections per image (COCO's `maxDets`).
pub const MAX_DETECTIONS: usize = 300;

/// At most this many boxes enter NMS (Ultralytics' `max_nms`).
const MAX_NMS: usize = 30_000;

/// How a detection head encodes its boxes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadBoxes {
    /// `[1, 4 + classes, anchors]`, boxes decoded to `cx, cy, w, h` (Ultralytics exports).
    Decoded,
    /// `[1, 4 * reg_max + classes, anchors]`, distribution-focal-loss bins (YOLO9tr).
    Dfl {
        /// Bins per box side.
        reg_max: usize,
    },
    /// `[1, anchors, 5 + classes]`: grid offsets, log sizes, objectness (YOLOX), which reads
    /// BGR pixels in 0..=255.
    Yolox,
}

impl HeadBoxes {
    /// Box channels before the class channels.
    fn channels(self) -> usize {
        match self {
            HeadBoxes::Decoded => 4,
            HeadBoxes::Dfl { reg_max } => 4 * reg_max,
            HeadBoxes::Yolox => 5,
        }
    }
}

/// How the detection head is laid out, from the model's metadata and output shape.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadSpec {
    /// The square input size in pixels.
    pub size: usize,
    /// The box encoding.
    pub boxes: HeadBoxes,
    /// The input's channel order and scale.
    pub pixels: Pixels,
    /// Strides of the output levels.
    pub strides: Vec<usize>,
    /// Whether class channels are logits or probabilities.
    pub scores: ScoreFormat,
    /// Class names by index (may be empty: classes are then named by number).
    pub names: Vec<String>,
}

impl HeadSpec {
    /// Reads the head layout from `model`: its input shape and its metadata
    /// ([`HeadMeta::from_metadata`]: `edgetrim.yolo.*`, or an Ultralytics export's); without
    /// `edgetrim.yolo.*`, an output of fixed shape `[1, anchors, 6 or more]` is a YOLOX head.
    pub fn from_model(model: &Model<'_>) -> Result<HeadSpec> {
        let size = input_size(model)?;
        let meta =
            HeadMeta::from_metadata(|key| model.metadata_value(key)).map_err(|e| match e {
                edgetrim_models::Error::Metadata { key } => anyhow!(
                    "metadata {key} = {:?}",
                    model.metadata_value(key).unwrap_or_default()
                ),
                e => e.into(),
            })?;
        let boxes = match meta.reg_max {
            Some(reg_max) => HeadBoxes::Dfl { reg_max },
            None if yolox_shaped(model, size, &meta.strides) => HeadBoxes::Yolox,
            None => HeadBoxes::Decoded,
        };
        Ok(HeadSpec {
            size,
            boxes,
            pixels: match boxes {
                HeadBoxes::Yolox => Pixels::Bgr255,
                _ => Pixels::Rgb01,
            },
            strides: meta.strides.to_vec(),
            scores: meta.scores,
            names: meta.names().map(str::to_string).collect(),
        })
    }

    /// The name of class `class`.
    pub fn class_name(&self, class: u16) -> String {
        self.names
            .get(usize::from(class))
            .cloned()
            .unwrap_or_else(|| format!("class {class}"))
    }
}

/// Whether `model`'s first output has the fixed shape `[1, anchors, 5 + classes]` of a YOLOX
/// head for a `size` x `size` input over `strides`.
fn yolox_shaped(model: &Model<'_>, size: usize, strides: &[usize]) -> bool {
    let anchors = yolo::anchor_count(size, size, strides);
    let dims: Option<Vec<usize>> = model.outputs().next().and_then(|output| {
        output.dims().and_then(|d| {
            d.map(|d| match d {
                Dim::Fixed(v) => Some(v),
                _ => None,
            })
            .collect()
        })
    });
    matches!(dims.as_deref(), Some(&[1, a, k]) if a == anchors && k >= 6)
}

/// The input values `model` expects when it is an image detector (see [`HeadSpec`]); RGB in
/// `[0, 1]` for any other model.
pub fn input_pixels(model: &Model<'_>) -> Pixels {
    HeadSpec::from_model(model).map_or(Pixels::Rgb01, |spec| spec.pixels)
}

/// The square input size of a `1 x 3 x S x S` image model.
fn input_size(model: &Model<'_>) -> Result<usize> {
    let input = model.inputs().next().context("the model has no input")?;
    let dims: Option<Vec<usize>> = input.dims().and_then(|d| {
        d.map(|d| match d {
            Dim::Fixed(v) => Some(v),
            _ => None,
        })
        .collect()
    });
    match dims.as_deref() {
        Some([1, 3, h, w]) if h == w && *h > 0 => Ok(*h),
        _ => bail!(
            "input {}: a detector needs a fixed 1x3xSxS image input",
            input.name()
        ),
    }
}

/// Score and IoU thresholds for decoding.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// A box is kept when its class score is above this.
    pub score: f32,
    /// NMS suppresses same-class boxes overlapping a kept one by more than this.
    pub iou: f32,
}

impl Thresholds {
    /// What mAP is measured with (`eval-detect`'s defaults): a low score threshold, as
    /// AP needs the whole ranking, and NMS at IoU 0.7.
    pub const EVAL: Thresholds = Thresholds {
        score: 0.001,
        iou: 0.7,
    };
}

/// A model planned on one backend, with its input buffer and decoding state.
pub struct Detector<'a> {
    backend: Backend<'a>,
    /// The head layout.
    pub spec: HeadSpec,
    input: Vec<f32>,
    anchors: Vec<Anchor>,
    scratch: Vec<Candidate>,
    thresholds: Thresholds,
}

impl<'a> Detector<'a> {
    /// Plans `model` (whose bytes are `bytes`) on `kind`; the nano arena lives in `arena`.
    pub fn new(
        model: &Model<'a>,
        bytes: &'a [u8],
        kind: BackendKind,
        arena: &'a mut Vec<u8>,
        thresholds: Thresholds,
    ) -> Result<Detector<'a>> {
        let spec = HeadSpec::from_model(model)?;
        let shape = [1, 3, spec.size, spec.size];
        let backend = match kind {
            BackendKind::Nano => Backend::nano(model, &[&shape], arena)?,
            BackendKind::Tract => Backend::tract(bytes, &[&shape])?,
        };
        let mut anchors = Vec::new();
        if spec.boxes != HeadBoxes::Decoded {
            let count = yolo::anchor_count(spec.size, spec.size, &spec.strides);
            anchors = vec![
                Anchor {
                    x: 0.0,
                    y: 0.0,
                    stride: 0.0
                };
                count
            ];
            make_anchors(spec.size, spec.size, &spec.strides, &mut anchors)?;
        }
        Ok(Detector {
            backend,
            input: vec![0.0; 3 * spec.size * spec.size],
            spec,
            anchors,
            scratch: vec![Candidate::EMPTY; MAX_NMS],
            thresholds,
        })
    }

    /// Letterboxes `image` into the model input.
    pub fn preprocess(&mut self, image: &Image<'_>) -> Result<Letterbox> {
        let lb = letterbox_as(image, self.spec.size, self.spec.pixels, &mut self.input)?;
        let bytes: &[u8] = bytemuck::cast_slice(&self.input);
        self.backend.set_input(0, bytes)?;
        Ok(lb)
    }

    /// Runs the model on the last preprocessed input.
    pub fn infer(&mut self) -> Result<()> {
        self.backend.run()
    }

    /// Decodes the last output into detections in source pixels, clipped to the
    /// `width` x `height` source frame, best first.
    pub fn postprocess(
        &mut self,
        lb: &Letterbox,
        width: usize,
        height: usize,
    ) -> Result<Vec<Detection>> {
        let out = self.backend.output(0);
        if out.dtype != DType::F32 {
            bail!("the head output is {}, expected float32", out.dtype.name());
        }
        let owned;
        let values: &[f32] = match out.f32() {
            F32View::Slice(s) => s,
            F32View::Bytes(b) => {
                owned = (0..b.len()).map(|i| b.at(i)).collect::<Vec<f32>>();
                &owned
            }
        };
        let anchors = yolo::anchor_count(self.spec.size, self.spec.size, &self.spec.strides);
        let channels = values.len() / anchors.max(1);
        let box_channels = self.spec.boxes.channels();
        if channels <= box_channels || channels * anchors != values.len() {
            let shape = match self.spec.boxes {
                HeadBoxes::Yolox => format!("[1, {anchors}, {box_channels} + classes]"),
                _ => format!("[1, {box_channels} + classes, {anchors}]"),
            };
            bail!(
                "the head output has {} values; expected {shape} for a {}x{} input with \
                 strides {:?}",
                values.len(),
                self.spec.size,
                self.spec.size,
                self.spec.strides
            );
        }
        let format = match self.spec.boxes {
            HeadBoxes::Dfl { reg_max } => BoxFormat::Dfl {
                reg_max,
                anchors: &self.anchors,
            },
            HeadBoxes::Yolox => BoxFormat::Yolox {
                anchors: &self.anchors,
            },
            HeadBoxes::Decoded => BoxFormat::CxCyWh,
        };
        let config = DetectConfig {
            num_classes: channels - box_channels,
            score_threshold: self.thresholds.score,
            iou_threshold: self.thresholds.iou,
            scores: self.spec.scores,
        };
        let found = yolo::detect::<MAX_DETECTIONS>(values, &format, &config, &mut self.scratch)?;
        Ok(found
            .iter()
            .map(|d| d.to_source(lb).clipped(width as f32, height as f32))
            .collect())
    }

    /// All three stages on one image.
    pub fn detect(&mut self, image: &Image<'_>) -> Result<Vec<Detection>> {
        let lb = self.preprocess(image)?;
        self.infer()?;
        self.postprocess(&lb, image.width(), image.height())
    }
}
