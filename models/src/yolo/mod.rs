//! Decoding of anchor-free YOLO heads (YOLOv8 / v9 / v10 / YOLO9tr, YOLOX) into detections.
//!
//! The exported head is one f32 tensor. Ultralytics-style heads are `[1, channels,
//! num_anchors]`, channel-major: value `(c, a)` sits at `c * num_anchors + a`, with the box
//! either already decoded to `(cx, cy, w, h)` in input pixels (Ultralytics' export, with the
//! DFL and anchor grid inside the graph) or as raw distribution-focal-loss bins, decoded here
//! against the anchor grid from [`make_anchors`]. YOLOX heads are `[1, num_anchors, channels]`,
//! anchor-major, with grid offsets, log sizes and an objectness before the classes. The
//! [`BoxFormat`] says which; the class scores follow the box channels.
//!
//! [`detect`] keeps, per anchor, the best class if its score passes the threshold, then runs
//! greedy class-aware NMS in score order into a fixed-capacity [`heapless::Vec`]. Everything is
//! deterministic — equal scores are ordered by anchor index — and allocation-free: the caller
//! lends a slice of [`Candidate`]s that bounds how many boxes enter NMS (Ultralytics'
//! `max_nms`); when more pass the threshold, the best-ranked ones are kept.

use core::cmp::Ordering;

use crate::letterbox::Letterbox;
use crate::{check_len, Error};

pub mod head;

/// The strides of the P3/P4/P5 detection levels of YOLOv8/v9/v10 and YOLO9tr.
pub const STRIDES: [usize; 3] = [8, 16, 32];

/// One detected object: a box in input pixels (or source pixels after
/// [`Detection::to_source`]), its confidence and its class index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge.
    pub x1: f32,
    /// Bottom edge.
    pub y1: f32,
    /// Confidence in `[0, 1]` (or the raw value when the head's scores are not probabilities).
    pub score: f32,
    /// Class index.
    pub class: u16,
}

impl Detection {
    /// The box as `[x0, y0, x1, y1]`.
    pub fn corners(&self) -> [f32; 4] {
        [self.x0, self.y0, self.x1, self.y1]
    }

    /// Intersection over union with `other`'s box (classes are ignored).
    pub fn iou(&self, other: &Detection) -> f32 {
        box_iou(self.corners(), other.corners())
    }

    /// The same detection with its box mapped from network-input pixels to source pixels.
    pub fn to_source(&self, letterbox: &Letterbox) -> Detection {
        let (x0, y0) = letterbox.to_source(self.x0, self.y0);
        let (x1, y1) = letterbox.to_source(self.x1, self.y1);
        Detection {
            x0,
            y0,
            x1,
            y1,
            ..*self
        }
    }

    /// The same detection with its box clamped to a `width` x `height` image.
    pub fn clipped(&self, width: f32, height: f32) -> Detection {
        Detection {
            x0: self.x0.clamp(0.0, width),
            y0: self.y0.clamp(0.0, height),
            x1: self.x1.clamp(0.0, width),
            y1: self.y1.clamp(0.0, height),
            ..*self
        }
    }
}

/// Intersection over union of two `[x0, y0, x1, y1]` boxes; 0 when the union is empty.
pub fn box_iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let area = |r: [f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let inter = area([
        a[0].max(b[0]),
        a[1].max(b[1]),
        a[2].min(b[2]),
        a[3].min(b[3]),
    ]);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// The centre of one head cell in input pixels and the stride of its level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Anchor {
    /// Centre x, `(column + 0.5) * stride`.
    pub x: f32,
    /// Centre y, `(row + 0.5) * stride`.
    pub y: f32,
    /// The level's stride in input pixels.
    pub stride: f32,
}

/// How many anchors a `width` x `height` input has over `strides`: each level is a
/// `ceil(height / s)` x `ceil(width / s)` grid (what stride-2 convolutions with padding give).
pub fn anchor_count(width: usize, height: usize, strides: &[usize]) -> usize {
    strides
        .iter()
        .map(|&s| width.div_ceil(s) * height.div_ceil(s))
        .sum()
}

/// Fills `out` with the anchor grid in the head's order: level by level, row-major within a
/// level (Ultralytics' `make_anchors`). `out` must hold exactly [`anchor_count`] anchors.
pub fn make_anchors(
    width: usize,
    height: usize,
    strides: &[usize],
    out: &mut [Anchor],
) -> Result<(), Error> {
    if strides.contains(&0) {
        return Err(Error::Invalid("anchor strides must be non-zero"));
    }
    check_len("anchors", anchor_count(width, height, strides), out.len())?;
    let mut cells = out.iter_mut();
    for &s in strides {
        for row in 0..height.div_ceil(s) {
            for col in 0..width.div_ceil(s) {
                // The length check above guarantees one slot per cell.
                if let Some(cell) = cells.next() {
                    *cell = Anchor {
                        x: (col as f32 + 0.5) * s as f32,
                        y: (row as f32 + 0.5) * s as f32,
                        stride: s as f32,
                    };
                }
            }
        }
    }
    Ok(())
}

/// How the first channels of the head encode each anchor's box.
#[derive(Clone, Copy, Debug)]
pub enum BoxFormat<'a> {
    /// Four channels `cx, cy, w, h` in input pixels.
    CxCyWh,
    /// `4 * reg_max` channels: for each side (left, top, right, bottom, in that order) the
    /// logits of `reg_max` distance bins. The distance is the softmax expectation of the bin
    /// index, in units of the anchor's stride, measured from the anchor centre.
    Dfl {
        /// Bins per side (16 in YOLOv8/v9).
        reg_max: usize,
        /// One anchor per head column, from [`make_anchors`].
        anchors: &'a [Anchor],
    },
    /// YOLOX's head (Megvii's export, `decode_in_inference=False`): anchor-major,
    /// `[1, num_anchors, 5 + classes]`. Per anchor `dx, dy` (the centre, in strides from the
    /// cell's top-left corner), `ln w, ln h` (in strides), the objectness, then the classes;
    /// the score is objectness × class probability.
    Yolox {
        /// One anchor per head row, from [`make_anchors`] (YOLOX orders its cells the same way).
        anchors: &'a [Anchor],
    },
}

impl BoxFormat<'_> {
    fn channels(&self) -> usize {
        match *self {
            BoxFormat::CxCyWh => 4,
            BoxFormat::Dfl { reg_max, .. } => 4 * reg_max,
            BoxFormat::Yolox { .. } => 5,
        }
    }

    /// The anchors the head is decoded against, if it needs them.
    fn anchors(&self) -> Option<&[Anchor]> {
        match *self {
            BoxFormat::CxCyWh => None,
            BoxFormat::Dfl { anchors, .. } | BoxFormat::Yolox { anchors } => Some(anchors),
        }
    }
}

/// What the class channels hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreFormat {
    /// Probabilities (the sigmoid is inside the graph, as in Ultralytics exports).
    Probabilities,
    /// Logits; the sigmoid is applied here.
    Logits,
}

/// Thresholds and head layout for [`detect`].
#[derive(Clone, Copy, Debug)]
pub struct DetectConfig {
    /// Number of class channels after the box channels.
    pub num_classes: usize,
    /// A box is kept when its best class probability is strictly above this.
    pub score_threshold: f32,
    /// NMS suppresses a box whose IoU with a kept box of the same class is strictly above this.
    pub iou_threshold: f32,
    /// Whether the class channels are probabilities or logits.
    pub scores: ScoreFormat,
}

/// A detection waiting for NMS, with the anchor it came from (the deterministic tie-break).
/// Callers only provide storage: `[Candidate::EMPTY; MAX_NMS]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    detection: Detection,
    anchor: u32,
}

impl Candidate {
    /// A placeholder for scratch arrays.
    pub const EMPTY: Candidate = Candidate {
        detection: Detection {
            x0: 0.0,
            y0: 0.0,
            x1: 0.0,
            y1: 0.0,
            score: 0.0,
            class: 0,
        },
        anchor: 0,
    };
}

/// NMS order: higher score first, then lower anchor index.
fn rank(a: &Candidate, b: &Candidate) -> Ordering {
    b.detection
        .score
        .total_cmp(&a.detection.score)
        .then(a.anchor.cmp(&b.anchor))
}

/// The best-ranked candidates seen so far, as a binary heap in the caller's scratch whose root
/// is the worst one kept, so that a better newcomer replaces it in `O(log n)`.
struct TopCandidates<'s> {
    items: &'s mut [Candidate],
    len: usize,
}

impl TopCandidates<'_> {
    fn offer(&mut self, candidate: Candidate) {
        if self.len < self.items.len() {
            let mut i = self.len;
            self.items[i] = candidate;
            self.len += 1;
            while i > 0 {
                let parent = (i - 1) / 2;
                if rank(&self.items[i], &self.items[parent]) != Ordering::Greater {
                    break;
                }
                self.items.swap(i, parent);
                i = parent;
            }
        } else if rank(&candidate, &self.items[0]) == Ordering::Less {
            self.items[0] = candidate;
            self.sift_down();
        }
    }

    fn sift_down(&mut self) {
        let mut i = 0;
        loop {
            let mut worst = i;
            for child in [2 * i + 1, 2 * i + 2] {
                if child < self.len
                    && rank(&self.items[child], &self.items[worst]) == Ordering::Greater
                {
                    worst = child;
                }
            }
            if worst == i {
                return;
            }
            self.items.swap(i, worst);
            i = worst;
        }
    }
}

/// Logistic sigmoid.
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

/// The softmax expectation of `reg_max` bins read with `bin(i)`.
fn dfl_expectation(reg_max: usize, bin: impl Fn(usize) -> f32) -> f32 {
    let max = (0..reg_max).map(&bin).fold(f32::NEG_INFINITY, f32::max);
    let (mut total, mut weighted) = (0.0, 0.0);
    for i in 0..reg_max {
        let e = libm::expf(bin(i) - max);
        total += e;
        weighted += i as f32 * e;
    }
    weighted / total
}

/// Decodes a `[1, box_channels + num_classes, num_anchors]` head output (`[1, num_anchors,
/// 5 + num_classes]` for [`BoxFormat::Yolox`]) into at most `N` detections in input pixels,
/// best first.
///
/// Per anchor the highest class (the first on ties) is taken; anchors whose score is not above
/// `config.score_threshold` are dropped; the best `scratch.len()` of the rest go through greedy
/// class-aware NMS, which stops once `N` boxes are kept. Errors when `output`'s length does not
/// match the layout, the anchors do not match the head, or a parameter is out of range.
pub fn detect<const N: usize>(
    output: &[f32],
    boxes: &BoxFormat<'_>,
    config: &DetectConfig,
    scratch: &mut [Candidate],
) -> Result<heapless::Vec<Detection, N>, Error> {
    let box_channels = boxes.channels();
    if config.num_classes == 0 || config.num_classes > usize::from(u16::MAX) + 1 {
        return Err(Error::Invalid("num_classes must be in 1..=65536"));
    }
    if box_channels == 0 {
        return Err(Error::Invalid("DFL reg_max must be non-zero"));
    }
    if !(0.0..=1.0).contains(&config.iou_threshold) || config.score_threshold.is_nan() {
        return Err(Error::Invalid(
            "iou_threshold must be in [0, 1] and score_threshold a number",
        ));
    }
    if scratch.is_empty() {
        return Err(Error::Invalid(
            "the NMS candidate scratch must be non-empty",
        ));
    }
    let channels = box_channels + config.num_classes;
    let num_anchors = output.len() / channels;
    check_len("head output", channels * num_anchors, output.len())?;
    if let Some(anchors) = boxes.anchors() {
        check_len("head anchors", num_anchors, anchors.len())?;
    }
    if u32::try_from(num_anchors).is_err() {
        return Err(Error::Invalid("more than u32::MAX anchors"));
    }

    let anchor_major = matches!(boxes, BoxFormat::Yolox { .. });
    let at = |channel: usize, anchor: usize| {
        if anchor_major {
            output[anchor * channels + channel]
        } else {
            output[channel * num_anchors + anchor]
        }
    };
    let probability = |v: f32| match config.scores {
        ScoreFormat::Probabilities => v,
        ScoreFormat::Logits => sigmoid(v),
    };
    let mut top = TopCandidates {
        items: scratch,
        len: 0,
    };
    for anchor in 0..num_anchors {
        let (mut class, mut best) = (0, at(box_channels, anchor));
        for c in 1..config.num_classes {
            let v = at(box_channels + c, anchor);
            if v > best {
                (class, best) = (c, v);
            }
        }
        let mut score = probability(best);
        if anchor_major {
            score *= probability(at(4, anchor));
        }
        // Written so that a NaN score is dropped too.
        if score.partial_cmp(&config.score_threshold) != Some(Ordering::Greater) {
            continue;
        }
        let [x0, y0, x1, y1] = match *boxes {
            BoxFormat::CxCyWh => {
                let (cx, cy) = (at(0, anchor), at(1, anchor));
                let (half_w, half_h) = (at(2, anchor) / 2.0, at(3, anchor) / 2.0);
                [cx - half_w, cy - half_h, cx + half_w, cy + half_h]
            }
            BoxFormat::Dfl { reg_max, anchors } => {
                let a = anchors[anchor];
                let side =
                    |s: usize| a.stride * dfl_expectation(reg_max, |i| at(s * reg_max + i, anchor));
                [a.x - side(0), a.y - side(1), a.x + side(2), a.y + side(3)]
            }
            BoxFormat::Yolox { anchors } => {
                let a = anchors[anchor];
                // make_anchors gives cell centres; YOLOX counts from the cell's corner.
                let cx = a.x + (at(0, anchor) - 0.5) * a.stride;
                let cy = a.y + (at(1, anchor) - 0.5) * a.stride;
                let half_w = libm::expf(at(2, anchor)) * a.stride / 2.0;
                let half_h = libm::expf(at(3, anchor)) * a.stride / 2.0;
                [cx - half_w, cy - half_h, cx + half_w, cy + half_h]
            }
        };
        top.offer(Candidate {
            detection: Detection {
                x0,
                y0,
                x1,
                y1,
                score,
                class: class as u16,
            },
            anchor: anchor as u32,
        });
    }

    let candidates = &mut top.items[..top.len];
    candidates.sort_unstable_by(rank);
    let mut kept = heapless::Vec::new();
    for candidate in candidates.iter().map(|c| c.detection) {
        if kept.is_full() {
            break;
        }
        let suppressed = kept.iter().any(|k: &Detection| {
            k.class == candidate.class && k.iou(&candidate) > config.iou_threshold
        });
        if !suppressed {
            // Cannot fail: `kept` is not full.
            let _ = kept.push(candidate);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests;
