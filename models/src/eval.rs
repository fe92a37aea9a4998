//! COCO-style detection metrics (mAP50, mAP50-95) and YOLO label parsing, for the host.
//!
//! A compressed detector is judged by how much mAP it loses, so the number must be the one the
//! field reports: this follows pycocotools' `COCOeval` for boxes with area "all". Per image and
//! class, predictions in descending score order greedily take the unmatched ground truth with
//! the highest IoU if that IoU is at least the threshold (thresholds 0.50, 0.55, …, 0.95).
//! Per class, all predictions are then ranked by score (stable: image order, then score order
//! within an image), precision is made monotone from the right, and AP is the mean precision
//! at the 101 recall points 0, 0.01, …, 1. mAP averages the classes that have ground truth.
//! Differences from pycocotools: no per-image cap on detections (`maxDets`; NMS already caps
//! them) and no crowd regions (YOLO labels have none).
//!
//! Needs allocation, so it sits behind the `std` feature; devices only run [`crate::yolo`].

use crate::yolo::{box_iou, Detection};
use crate::Error;

/// The COCO IoU thresholds 0.50:0.05:0.95. Kept as f32 literals so that an IoU computed in f32
/// that equals a threshold (e.g. 60 / 100 against 0.6) counts as a match.
pub const IOU_THRESHOLDS: [f32; 10] = [0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95];

/// Number of recall points of COCO's interpolated precision.
const RECALL_POINTS: usize = 101;

/// One labelled object, in the same pixel coordinates as the predictions it is compared with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroundTruth {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge.
    pub x1: f32,
    /// Bottom edge.
    pub y1: f32,
    /// Class index.
    pub class: u16,
}

impl GroundTruth {
    fn corners(&self) -> [f32; 4] {
        [self.x0, self.y0, self.x1, self.y1]
    }
}

/// Parses a YOLO label file (`class cx cy w h` per line, coordinates normalised to `[0, 1]`)
/// into boxes in the pixels of a `width` x `height` image. Blank lines are skipped; a
/// segmentation line (`class x1 y1 x2 y2 …`, three or more points) becomes its bounding box.
pub fn parse_yolo_labels(text: &str, width: f32, height: f32) -> Result<Vec<GroundTruth>, Error> {
    let mut boxes = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let label_error = Error::Label { line: index + 1 };
        let mut fields = line.split_whitespace();
        let Some(class) = fields.next() else {
            continue;
        };
        let class: u16 = class.parse().map_err(|_| label_error)?;
        let mut values = [0.0f32; 4];
        let mut count = 0;
        let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
        for field in fields {
            let v: f32 = field.parse().map_err(|_| label_error)?;
            if !v.is_finite() {
                return Err(label_error);
            }
            if let Some(slot) = values.get_mut(count) {
                *slot = v;
            }
            lo[count % 2] = lo[count % 2].min(v);
            hi[count % 2] = hi[count % 2].max(v);
            count += 1;
        }
        let [x0, y0, x1, y1] = match count {
            4 => {
                let [cx, cy, w, h] = values;
                [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
            }
            n if n >= 6 && n % 2 == 0 => [lo[0], lo[1], hi[0], hi[1]],
            _ => return Err(label_error),
        };
        boxes.push(GroundTruth {
            x0: x0 * width,
            y0: y0 * height,
            x1: x1 * width,
            y1: y1 * height,
            class,
        });
    }
    Ok(boxes)
}

/// One prediction after matching: its score and, per IoU threshold, whether it was a true
/// positive.
#[derive(Clone, Copy, Debug)]
struct Scored {
    score: f32,
    hits: [bool; IOU_THRESHOLDS.len()],
}

/// Accumulates matched predictions image by image; [`Evaluator::summarize`] turns them into AP.
#[derive(Clone, Debug, Default)]
pub struct Evaluator {
    /// Per class, every prediction in the order images were added.
    predictions: Vec<Vec<Scored>>,
    /// Per class, the number of ground-truth boxes.
    ground_truths: Vec<usize>,
}

/// AP of one class that has ground truth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassMetrics {
    /// Class index.
    pub class: usize,
    /// Ground-truth boxes of this class.
    pub ground_truths: usize,
    /// Predictions of this class.
    pub predictions: usize,
    /// AP at each of [`IOU_THRESHOLDS`].
    pub ap: [f64; IOU_THRESHOLDS.len()],
}

impl ClassMetrics {
    /// AP at IoU 0.50.
    pub fn ap50(&self) -> f64 {
        self.ap[0]
    }

    /// AP averaged over IoU 0.50:0.05:0.95.
    pub fn ap50_95(&self) -> f64 {
        self.ap.iter().sum::<f64>() / self.ap.len() as f64
    }
}

/// The result of an evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    /// Every class with at least one ground-truth box, by class index. Classes that only have
    /// predictions have no defined AP (as in COCO) and are left out.
    pub per_class: Vec<ClassMetrics>,
    /// Mean over `per_class` of AP at IoU 0.50; 0 when there is no ground truth at all.
    pub map50: f64,
    /// Mean over `per_class` of AP averaged over IoU 0.50:0.05:0.95; 0 without ground truth.
    pub map50_95: f64,
}

impl Evaluator {
    /// An empty evaluator; classes are discovered from the data.
    pub fn new() -> Evaluator {
        Evaluator::default()
    }

    /// Matches one image's predictions against its ground truth, class by class.
    pub fn add_image(&mut self, predictions: &[Detection], ground_truth: &[GroundTruth]) {
        let classes = predictions
            .iter()
            .map(|d| d.class)
            .chain(ground_truth.iter().map(|g| g.class))
            .map(|c| usize::from(c) + 1)
            .max()
            .unwrap_or(0);
        if self.ground_truths.len() < classes {
            self.ground_truths.resize(classes, 0);
            self.predictions.resize(classes, Vec::new());
        }
        for class in 0..classes {
            let truths: Vec<[f32; 4]> = ground_truth
                .iter()
                .filter(|g| usize::from(g.class) == class)
                .map(GroundTruth::corners)
                .collect();
            let mut preds: Vec<&Detection> = predictions
                .iter()
                .filter(|d| usize::from(d.class) == class)
                .collect();
            // Stable, like pycocotools' mergesort: equal scores keep their input order.
            preds.sort_by(|a, b| b.score.total_cmp(&a.score));
            self.ground_truths[class] += truths.len();
            let mut taken = vec![[false; IOU_THRESHOLDS.len()]; truths.len()];
            for pred in preds {
                let ious: Vec<f32> = truths.iter().map(|&t| box_iou(pred.corners(), t)).collect();
                let mut hits = [false; IOU_THRESHOLDS.len()];
                for (t, &threshold) in IOU_THRESHOLDS.iter().enumerate() {
                    let mut best: Option<(usize, f32)> = None;
                    for (g, &iou) in ious.iter().enumerate() {
                        if !taken[g][t] && iou >= threshold && best.is_none_or(|(_, b)| iou > b) {
                            best = Some((g, iou));
                        }
                    }
                    if let Some((g, _)) = best {
                        taken[g][t] = true;
                        hits[t] = true;
                    }
                }
                self.predictions[class].push(Scored {
                    score: pred.score,
                    hits,
                });
            }
        }
    }

    /// Per-class AP and the mAPs over everything added so far.
    pub fn summarize(&self) -> Metrics {
        let mut per_class = Vec::new();
        for (class, &ground_truths) in self.ground_truths.iter().enumerate() {
            if ground_truths == 0 {
                continue;
            }
            let mut ranked = self.predictions[class].clone();
            ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
            let mut ap = [0.0; IOU_THRESHOLDS.len()];
            for (t, slot) in ap.iter_mut().enumerate() {
                let hits: Vec<bool> = ranked.iter().map(|p| p.hits[t]).collect();
                *slot = average_precision(&hits, ground_truths);
            }
            per_class.push(ClassMetrics {
                class,
                ground_truths,
                predictions: ranked.len(),
                ap,
            });
        }
        let mean = |f: fn(&ClassMetrics) -> f64| {
            if per_class.is_empty() {
                0.0
            } else {
                per_class.iter().map(f).sum::<f64>() / per_class.len() as f64
            }
        };
        Metrics {
            map50: mean(ClassMetrics::ap50),
            map50_95: mean(ClassMetrics::ap50_95),
            per_class,
        }
    }
}

/// COCO's 101-point interpolated AP of predictions ranked best first (`hits[i]`: true
/// positive) against `ground_truths > 0` boxes.
fn average_precision(hits: &[bool], ground_truths: usize) -> f64 {
    let mut recall = Vec::with_capacity(hits.len());
    let mut precision = Vec::with_capacity(hits.len());
    let mut true_positives = 0usize;
    for (i, &hit) in hits.iter().enumerate() {
        true_positives += usize::from(hit);
        recall.push(true_positives as f64 / ground_truths as f64);
        precision.push(true_positives as f64 / (i + 1) as f64);
    }
    // Precision envelope: the best precision at this recall or any higher one.
    for i in (1..precision.len()).rev() {
        precision[i - 1] = precision[i - 1].max(precision[i]);
    }
    let total: f64 = (0..RECALL_POINTS)
        .map(|r| {
            // numpy's linspace(0, 1, 101) computes the points as r * 0.01.
            let target = r as f64 * 0.01;
            let first = recall.partition_point(|&rc| rc < target);
            precision.get(first).copied().unwrap_or(0.0)
        })
        .sum();
    total / RECALL_POINTS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(class: u16, [x0, y0, x1, y1]: [f32; 4]) -> GroundTruth {
        GroundTruth {
            x0,
            y0,
            x1,
            y1,
            class,
        }
    }

    fn pred(class: u16, score: f32, [x0, y0, x1, y1]: [f32; 4]) -> Detection {
        Detection {
            x0,
            y0,
            x1,
            y1,
            score,
            class,
        }
    }

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn perfect_predictions_score_one() {
        let images = [
            vec![
                truth(0, [0.0, 0.0, 10.0, 10.0]),
                truth(2, [20.0, 20.0, 40.0, 30.0]),
            ],
            vec![
                truth(0, [5.0, 5.0, 15.0, 25.0]),
                truth(1, [50.0, 0.0, 60.0, 8.0]),
            ],
        ];
        let mut eval = Evaluator::new();
        for (i, gts) in images.iter().enumerate() {
            let preds: Vec<_> = gts
                .iter()
                .map(|g| pred(g.class, 0.3 + 0.2 * i as f32, g.corners()))
                .collect();
            eval.add_image(&preds, gts);
        }
        let metrics = eval.summarize();
        assert_eq!((metrics.map50, metrics.map50_95), (1.0, 1.0));
        assert_eq!(metrics.per_class.len(), 3);
        assert_eq!(metrics.per_class[0].ground_truths, 2);
    }

    #[test]
    fn false_positive_ranked_in_the_middle() {
        // Two ground truths; predictions scored 0.9 (hit), 0.8 (miss), 0.7 (hit):
        //   recall    0.5, 0.5, 1.0
        //   precision 1.0, 0.5, 2/3 → envelope 1.0, 2/3, 2/3
        // Recall points 0.00..=0.50 (51 of them) find precision 1.0, points 0.51..=1.00
        // (50) find 2/3: AP = (51 * 1 + 50 * 2/3) / 101 = 0.834983..., at every threshold
        // because the hits are exact.
        let gts = [
            truth(0, [0.0, 0.0, 10.0, 10.0]),
            truth(0, [20.0, 0.0, 30.0, 10.0]),
        ];
        let preds = [
            pred(0, 0.9, [0.0, 0.0, 10.0, 10.0]),
            pred(0, 0.8, [50.0, 50.0, 60.0, 60.0]),
            pred(0, 0.7, [20.0, 0.0, 30.0, 10.0]),
        ];
        let mut eval = Evaluator::new();
        eval.add_image(&preds, &gts);
        let metrics = eval.summarize();
        let expected = (51.0 + 50.0 * 2.0 / 3.0) / 101.0;
        assert_close(metrics.map50, expected);
        assert_close(metrics.map50_95, expected);
        assert_eq!(metrics.per_class[0].predictions, 3);
    }

    #[test]
    fn iou_threshold_boundaries() {
        // Prediction [0, 0, 10, 6] on truth [0, 0, 10, 10]: IoU = 60 / 100 = 0.6 exactly,
        // a hit at 0.50, 0.55 and 0.60 (COCO matches IoU >= threshold) and a miss above.
        let gt = [truth(0, [0.0, 0.0, 10.0, 10.0])];
        let mut eval = Evaluator::new();
        eval.add_image(&[pred(0, 0.5, [0.0, 0.0, 10.0, 6.0])], &gt);
        let class = eval.summarize().per_class[0];
        assert_eq!(class.ap, [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_close(class.ap50_95(), 0.3);
        // IoU 0.58: a hit at 0.50 and 0.55 only.
        let mut eval = Evaluator::new();
        eval.add_image(&[pred(0, 0.5, [0.0, 0.0, 10.0, 5.8])], &gt);
        let class = eval.summarize().per_class[0];
        assert_eq!(&class.ap[..3], [1.0, 1.0, 0.0]);
        assert_close(class.ap50_95(), 0.2);
    }

    #[test]
    fn classes_are_matched_separately_and_duplicates_are_false_positives() {
        let gts = [
            truth(0, [0.0, 0.0, 10.0, 10.0]),
            truth(1, [20.0, 0.0, 30.0, 10.0]),
        ];
        // Class 0: two identical boxes, listed worst first. Matching goes by score, so the
        // 0.9 box hits and the 0.8 duplicate is a false positive after full recall: AP 1.
        // Class 1: the only prediction has the wrong class (2) → AP 0. Class 2 has no truth
        // and is left out of the mean: mAP = (1 + 0) / 2.
        let preds = [
            pred(0, 0.8, [0.0, 0.0, 10.0, 10.0]),
            pred(0, 0.9, [0.0, 0.0, 10.0, 10.0]),
            pred(2, 0.9, [20.0, 0.0, 30.0, 10.0]),
        ];
        let mut eval = Evaluator::new();
        eval.add_image(&preds, &gts);
        let metrics = eval.summarize();
        let classes: Vec<_> = metrics.per_class.iter().map(|c| c.class).collect();
        assert_eq!(classes, [0, 1]);
        assert_eq!(metrics.per_class[0].ap50(), 1.0);
        assert_eq!(metrics.per_class[1].ap50(), 0.0);
        assert_close(metrics.map50, 0.5);
        assert_eq!(Evaluator::new().summarize().map50, 0.0);
    }

    #[test]
    fn precision_envelope_over_images() {
        // Image 1: truth A, prediction 0.6 misses. Image 2: truth B, prediction 0.9 hits.
        // Ranked: 0.9 hit (recall 0.5, precision 1), 0.6 miss (recall 0.5, precision 0.5).
        // Recall points 0..=0.5 get 1.0, the rest 0: AP = 51 / 101.
        let mut eval = Evaluator::new();
        eval.add_image(
            &[pred(0, 0.6, [50.0, 50.0, 60.0, 60.0])],
            &[truth(0, [0.0, 0.0, 10.0, 10.0])],
        );
        eval.add_image(
            &[pred(0, 0.9, [0.0, 0.0, 10.0, 10.0])],
            &[truth(0, [0.0, 0.0, 10.0, 10.0])],
        );
        assert_close(eval.summarize().map50, 51.0 / 101.0);
    }

    #[test]
    fn parses_yolo_labels() {
        let text = "0 0.5 0.5 0.2 0.4\n\n  3 0.1 0.2 0.2 0.2  \n1 0.1 0.1 0.3 0.1 0.2 0.4\n";
        let boxes = parse_yolo_labels(text, 200.0, 100.0).unwrap();
        let close = |a: [f32; 4], b: [f32; 4]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
        assert_eq!(boxes.len(), 3);
        assert_eq!(boxes[0].class, 0);
        assert!(close(boxes[0].corners(), [80.0, 30.0, 120.0, 70.0]));
        assert_eq!(boxes[1].class, 3);
        assert!(close(boxes[1].corners(), [0.0, 10.0, 40.0, 30.0]));
        // The polygon (0.1,0.1) (0.3,0.1) (0.2,0.4) becomes its bounding box.
        assert!(close(boxes[2].corners(), [20.0, 10.0, 60.0, 40.0]));
        assert_eq!(
            parse_yolo_labels("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n", 1.0, 1.0),
            Err(Error::Label { line: 2 })
        );
        assert_eq!(
            parse_yolo_labels("x 0.5 0.5 0.2 0.2", 1.0, 1.0),
            Err(Error::Label { line: 1 })
        );
        assert_eq!(
            parse_yolo_labels("0 0.5 nan 0.2 0.2", 1.0, 1.0),
            Err(Error::Label { line: 1 })
        );
        assert_eq!(parse_yolo_labels("", 1.0, 1.0), Ok(vec![]));
    }
}
