//! Hand-computed cases for YOLO decoding and NMS.

use super::*;

const PROBS: DetectConfig = DetectConfig {
    num_classes: 2,
    score_threshold: 0.25,
    iou_threshold: 0.5,
    scores: ScoreFormat::Probabilities,
};

/// A channel-major `[1, 4 + classes, anchors]` head from per-anchor `(cx, cy, w, h)` boxes
/// and per-anchor class scores.
fn cxcywh_head<const C: usize>(anchors: &[([f32; 4], [f32; C])]) -> Vec<f32> {
    let n = anchors.len();
    let mut out = vec![0.0; (4 + C) * n];
    for (a, (bbox, scores)) in anchors.iter().enumerate() {
        for (c, v) in bbox.iter().chain(scores).enumerate() {
            out[c * n + a] = *v;
        }
    }
    out
}

fn run<const N: usize>(output: &[f32], config: &DetectConfig) -> heapless::Vec<Detection, N> {
    let mut scratch = [Candidate::EMPTY; 16];
    detect(output, &BoxFormat::CxCyWh, config, &mut scratch).unwrap()
}

fn summary(dets: &[Detection]) -> Vec<(f32, u16)> {
    dets.iter().map(|d| (d.score, d.class)).collect()
}

#[test]
fn iou_of_known_boxes() {
    // Overlap 1x1, union 4 + 4 - 1 = 7.
    assert_eq!(
        box_iou([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]),
        1.0 / 7.0
    );
    assert_eq!(box_iou([0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]), 1.0);
    // Inner 2x5 box inside 10x10: 10 / 100.
    assert_eq!(box_iou([0.0, 0.0, 10.0, 10.0], [4.0, 4.0, 6.0, 9.0]), 0.1);
    // Touching edges and disjoint boxes do not overlap; empty boxes give 0, not NaN.
    assert_eq!(box_iou([0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0]), 0.0);
    assert_eq!(box_iou([0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 6.0, 6.0]), 0.0);
    assert_eq!(box_iou([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]), 0.0);
}

#[test]
fn nms_suppresses_same_class_overlaps_only() {
    // Boxes 20x20 at cx 50 and cx 52 overlap 18x20: IoU = 360 / 440 = 0.82 > 0.5.
    let head = cxcywh_head(&[
        ([50.0, 50.0, 20.0, 20.0], [0.9, 0.1]),
        ([52.0, 50.0, 20.0, 20.0], [0.8, 0.1]), // class 0, suppressed by the first
        ([52.0, 50.0, 20.0, 20.0], [0.1, 0.7]), // class 1, survives
        ([80.0, 80.0, 10.0, 10.0], [0.6, 0.0]), // class 0, no overlap, survives
    ]);
    let dets = run::<8>(&head, &PROBS);
    assert_eq!(summary(&dets), [(0.9, 0), (0.7, 1), (0.6, 0)]);
    assert_eq!(dets[0].corners(), [40.0, 40.0, 60.0, 60.0]);
    assert_eq!(dets[1].corners(), [42.0, 40.0, 62.0, 60.0]);
    // At IoU threshold 0.9 the overlap (0.82) is no longer suppressed.
    let loose = DetectConfig {
        iou_threshold: 0.9,
        ..PROBS
    };
    assert_eq!(
        summary(&run::<8>(&head, &loose)),
        [(0.9, 0), (0.8, 0), (0.7, 1), (0.6, 0)]
    );
}

#[test]
fn score_threshold_is_strict_and_takes_the_best_class() {
    let head = cxcywh_head(&[
        ([10.0, 10.0, 4.0, 4.0], [0.25, 0.1]), // exactly at threshold: dropped
        ([30.0, 10.0, 4.0, 4.0], [0.2, 0.3]),  // best class 1
        ([50.0, 10.0, 4.0, 4.0], [0.1, 0.2]),  // below
    ]);
    assert_eq!(summary(&run::<8>(&head, &PROBS)), [(0.3, 1)]);
}

/// Five disjoint boxes scored 0.3, 0.9, 0.5, 0.9, 0.7.
fn five_disjoint() -> Vec<f32> {
    let scores = [0.3, 0.9, 0.5, 0.9, 0.7];
    let anchors: Vec<_> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| ([10.0 + 20.0 * i as f32, 10.0, 8.0, 8.0], [s, 0.0]))
        .collect();
    cxcywh_head(&anchors)
}

#[test]
fn capacity_overflow_keeps_the_best_with_anchor_tie_break() {
    let head = five_disjoint();
    let dets = run::<3>(&head, &PROBS);
    assert_eq!(summary(&dets), [(0.9, 0), (0.9, 0), (0.7, 0)]);
    // The tie at 0.9 goes to the lower anchor (cx 30 before cx 70).
    assert_eq!((dets[0].x0, dets[1].x0), (26.0, 66.0));
    // A candidate scratch smaller than the survivors keeps the best-ranked ones too.
    let mut scratch = [Candidate::EMPTY; 2];
    let dets: heapless::Vec<_, 8> =
        detect(&head, &BoxFormat::CxCyWh, &PROBS, &mut scratch).unwrap();
    assert_eq!((dets.len(), dets[0].x0, dets[1].x0), (2, 26.0, 66.0));
    let mut scratch = [Candidate::EMPTY; 3];
    let dets: heapless::Vec<_, 8> =
        detect(&head, &BoxFormat::CxCyWh, &PROBS, &mut scratch).unwrap();
    assert_eq!(summary(&dets), [(0.9, 0), (0.9, 0), (0.7, 0)]);
}

#[test]
fn top_candidates_heap_matches_a_full_sort() {
    // Deterministic pseudo-random scores with many ties, against sort + truncate.
    let mut state = 12345u32;
    let all: Vec<Candidate> = (0..200)
        .map(|anchor| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let mut c = Candidate::EMPTY;
            c.detection.score = ((state >> 16) % 17) as f32;
            c.anchor = anchor;
            c
        })
        .collect();
    for keep in [1, 7, 64, 200, 300] {
        let mut scratch = vec![Candidate::EMPTY; keep];
        let mut top = TopCandidates {
            items: &mut scratch,
            len: 0,
        };
        all.iter().for_each(|&c| top.offer(c));
        let len = top.len;
        scratch[..len].sort_unstable_by(rank);
        let mut expected = all.clone();
        expected.sort_unstable_by(rank);
        expected.truncate(keep);
        assert_eq!(&scratch[..len], &expected[..], "keep {keep}");
    }
}

#[test]
fn sigmoid_flag_applies_the_logistic() {
    // Class values 0.4 and -1.0 at threshold 0.45: as probabilities only nothing passes;
    // as logits sigmoid(0.4) = 0.599 passes and sigmoid(-1) = 0.269 does not.
    let head = cxcywh_head(&[
        ([10.0, 10.0, 4.0, 4.0], [0.4, -3.0]),
        ([30.0, 10.0, 4.0, 4.0], [-1.0, -2.0]),
    ]);
    let probs = DetectConfig {
        score_threshold: 0.45,
        ..PROBS
    };
    assert!(run::<4>(&head, &probs).is_empty());
    let logits = DetectConfig {
        scores: ScoreFormat::Logits,
        ..probs
    };
    let dets = run::<4>(&head, &logits);
    assert_eq!(dets.len(), 1);
    assert!((dets[0].score - 1.0 / (1.0 + (-0.4f32).exp())).abs() < 1e-6);
}

/// The anchors of a 16x16 input at strides 8 and 16: a 2x2 grid then a 1x1 grid.
fn anchors_16px() -> [Anchor; 5] {
    let mut anchors = [Anchor {
        x: 0.0,
        y: 0.0,
        stride: 0.0,
    }; 5];
    make_anchors(16, 16, &[8, 16], &mut anchors).unwrap();
    anchors
}

#[test]
fn anchors_follow_levels_then_rows() {
    // 16x16 with strides 8 and 16: a 2x2 grid then a 1x1 grid.
    assert_eq!(anchor_count(16, 16, &[8, 16]), 5);
    let mut anchors = anchors_16px();
    let got: Vec<_> = anchors.iter().map(|a| (a.x, a.y, a.stride)).collect();
    assert_eq!(
        got,
        [
            (4.0, 4.0, 8.0),
            (12.0, 4.0, 8.0),
            (4.0, 12.0, 8.0),
            (12.0, 12.0, 8.0),
            (8.0, 8.0, 16.0)
        ]
    );
    // 640x640 over P3-P5: 80² + 40² + 20² = 8400; odd sizes round the grid up.
    assert_eq!(anchor_count(640, 640, &STRIDES), 8400);
    assert_eq!(anchor_count(100, 60, &[32]), 4 * 2);
    assert!(matches!(
        make_anchors(16, 16, &[8, 16], &mut anchors[..4]),
        Err(Error::Length { .. })
    ));
}

#[test]
fn dfl_decodes_a_hand_built_distribution() {
    // reg_max 4, one class, the anchors of a 16x16 input at strides 8 and 16.
    let anchors = anchors_16px();
    let (reg_max, n) = (4, anchors.len());
    let mut head = vec![0.0f32; (4 * reg_max + 1) * n];
    let target = 1; // anchor (12, 4), stride 8
    let ln = |p: f32| p.ln();
    // Left: probabilities 0.1, 0.2, 0.3, 0.4 → expectation 0.2 + 0.6 + 1.2 = 2.0 cells.
    // Top, right, bottom: (near) one-hot at bins 1, 3, 0 → 1, 3, 0 cells.
    let sides = [
        [ln(0.1), ln(0.2), ln(0.3), ln(0.4)],
        [0.0, 30.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 30.0],
        [30.0, 0.0, 0.0, 0.0],
    ];
    for (side, bins) in sides.iter().enumerate() {
        for (i, &v) in bins.iter().enumerate() {
            head[(side * reg_max + i) * n + target] = v;
        }
    }
    head[4 * reg_max * n + target] = 0.8; // the class score
    let boxes = BoxFormat::Dfl {
        reg_max,
        anchors: &anchors,
    };
    let config = DetectConfig {
        num_classes: 1,
        ..PROBS
    };
    let mut scratch = [Candidate::EMPTY; 8];
    let dets: heapless::Vec<_, 4> = detect(&head, &boxes, &config, &mut scratch).unwrap();
    assert_eq!(dets.len(), 1);
    // x0 = 12 - 2*8, y0 = 4 - 1*8, x1 = 12 + 3*8, y1 = 4 + 0*8.
    let expected = [-4.0, -4.0, 36.0, 4.0];
    for (got, want) in dets[0].corners().iter().zip(expected) {
        assert!((got - want).abs() < 1e-4, "{:?}", dets[0]);
    }
    // Anchors that do not match the head are an error, not a panic.
    assert!(matches!(
        detect::<4>(
            &head,
            &BoxFormat::Dfl {
                reg_max,
                anchors: &anchors[..4]
            },
            &config,
            &mut scratch
        ),
        Err(Error::Length { .. })
    ));
}

#[test]
fn yolox_decodes_grid_offsets_log_sizes_and_objectness() {
    // Two classes, the anchors of a 16x16 input at strides 8 and 16, anchor-major rows of
    // dx, dy, ln w, ln h, objectness, class 0, class 1.
    let anchors = anchors_16px();
    let mut head = vec![0.0f32; 7 * anchors.len()];
    // Anchor 1: cell (col 1, row 0) of stride 8, corner (8, 0). Centre (8 + 0.5 * 8,
    // 0 + 0.25 * 8) = (12, 2), size (e^0 * 8, e^ln2 * 8) = (8, 16); score 0.5 * 0.8 = 0.4.
    head[7..14].copy_from_slice(&[0.5, 0.25, 0.0, 2f32.ln(), 0.5, 0.1, 0.8]);
    // Anchor 4 (stride 16): class 0 at 0.9 but objectness 0.2, so 0.18, under the threshold.
    head[28..35].copy_from_slice(&[0.0, 0.0, 0.0, 0.0, 0.2, 0.9, 0.0]);
    let boxes = BoxFormat::Yolox { anchors: &anchors };
    let mut scratch = [Candidate::EMPTY; 8];
    let dets: heapless::Vec<_, 4> = detect(&head, &boxes, &PROBS, &mut scratch).unwrap();
    assert_eq!(summary(&dets), [(0.4, 1)]);
    for (got, want) in dets[0].corners().iter().zip([8.0, -6.0, 16.0, 10.0]) {
        assert!((got - want).abs() < 1e-5, "{:?}", dets[0]);
    }
    // With logits, both the objectness and the class pass through the sigmoid.
    let logits = DetectConfig {
        score_threshold: 0.0,
        scores: ScoreFormat::Logits,
        ..PROBS
    };
    let dets: heapless::Vec<_, 8> = detect(&head, &boxes, &logits, &mut scratch).unwrap();
    let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
    assert!((dets[0].score - sigmoid(0.8) * sigmoid(0.5)).abs() < 1e-6);
    // Anchors that do not match the head are an error, not a panic.
    assert!(matches!(
        detect::<4>(
            &head,
            &BoxFormat::Yolox {
                anchors: &anchors[..4]
            },
            &PROBS,
            &mut scratch
        ),
        Err(Error::Length { .. })
    ));
}

#[test]
fn maps_detections_back_through_the_letterbox() {
    let letterbox = Letterbox::fit(640, 480, 320); // scale 0.5, pad_y 40
    let det = Detection {
        x0: 10.0,
        y0: 30.0,
        x1: 110.0,
        y1: 290.0,
        score: 0.5,
        class: 3,
    };
    let src = det.to_source(&letterbox);
    assert_eq!(src.corners(), [20.0, -20.0, 220.0, 500.0]);
    assert_eq!((src.score, src.class), (0.5, 3));
    assert_eq!(
        src.clipped(640.0, 480.0).corners(),
        [20.0, 0.0, 220.0, 480.0]
    );
}

#[test]
fn rejects_bad_layouts_and_parameters() {
    let mut scratch = [Candidate::EMPTY; 4];
    // 6 channels do not divide 13 values.
    assert!(matches!(
        detect::<4>(&[0.0; 13], &BoxFormat::CxCyWh, &PROBS, &mut scratch),
        Err(Error::Length { .. })
    ));
    let bad_iou = DetectConfig {
        iou_threshold: 1.5,
        ..PROBS
    };
    assert!(matches!(
        detect::<4>(&[0.0; 12], &BoxFormat::CxCyWh, &bad_iou, &mut scratch),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        detect::<4>(&[0.0; 12], &BoxFormat::CxCyWh, &PROBS, &mut []),
        Err(Error::Invalid(_))
    ));
}
