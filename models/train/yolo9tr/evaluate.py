"""Decoding, NMS and COCO-style mAP in PyTorch, for picking the best checkpoint during training.

The figures the model cards quote come from `edgetrim eval-detect` on the exported ONNX (the
Rust decoder in `edgetrim-models`); this twin only has to rank checkpoints.
"""

import torch

from .loss import box_iou_pairwise, dfl_decode, make_anchors


def decode(out, nc, reg_max, size, score_threshold=0.001, iou_threshold=0.7, max_det=300):
    """`[b, 4*reg_max + nc, a]` head output -> per image `[n, 6]` (x0 y0 x1 y1 score class)."""
    out = out.transpose(1, 2)
    dist_logits, cls_logits = out.split((4 * reg_max, nc), -1)
    points, strides = make_anchors(size, out.device)
    dist = dfl_decode(dist_logits, reg_max) * strides
    boxes = torch.cat((points - dist[..., :2], points + dist[..., 2:]), -1)
    scores, classes = cls_logits.sigmoid().max(-1)
    results = []
    for bx, sc, cl in zip(boxes, scores, classes):
        keep = sc > score_threshold
        bx, sc, cl = bx[keep], sc[keep], cl[keep]
        order = sc.argsort(descending=True)[:3000]
        bx, sc, cl = bx[order], sc[order], cl[order]
        # Class-aware NMS: offset boxes by class so different classes never overlap.
        shifted = bx + cl.unsqueeze(1).float() * (4 * size)
        iou = box_iou_pairwise(shifted.unsqueeze(0), shifted.unsqueeze(0))[0]
        suppressed = torch.zeros(len(sc), dtype=torch.bool)
        kept = []
        for i in range(len(sc)):
            if suppressed[i]:
                continue
            kept.append(i)
            if len(kept) == max_det:
                break
            suppressed |= iou[i] > iou_threshold
        kept = torch.tensor(kept, dtype=torch.long)
        results.append(torch.cat((bx[kept], sc[kept, None], cl[kept, None].float()), 1))
    return results


def average_precision(tp, scores, n_gt):
    """COCO's 101-point interpolated AP of one class at one IoU threshold."""
    if n_gt == 0:
        return None
    if len(scores) == 0:
        return 0.0
    order = scores.argsort(descending=True)
    tp = tp[order].float()
    ctp = tp.cumsum(0)
    recall = ctp / n_gt
    precision = ctp / torch.arange(1, len(tp) + 1)
    precision = torch.flip(torch.cummax(torch.flip(precision, [0]), 0).values, [0])
    ap = 0.0
    for r in torch.linspace(0, 1, 101):
        idx = torch.searchsorted(recall, r.item())
        ap += precision[idx].item() if idx < len(precision) else 0.0
    return ap / 101


def mean_ap(predictions, targets, nc):
    """(mAP50, mAP50-95) over classes that have ground truth."""
    thresholds = torch.linspace(0.5, 0.95, 10)
    per_class = []
    for c in range(nc):
        scores, tps, n_gt = [], [], 0
        for pred, gt in zip(predictions, targets):
            p = pred[pred[:, 5] == c]
            g = gt[gt[:, 0] == c][:, 1:]
            n_gt += len(g)
            tp = torch.zeros(len(p), len(thresholds), dtype=torch.bool)
            if len(p) and len(g):
                iou = box_iou_pairwise(p[None, :, :4], g[None])[0]  # [p, g]
                for t, thr in enumerate(thresholds):
                    taken = torch.zeros(len(g), dtype=torch.bool)
                    for i in range(len(p)):  # predictions are in score order
                        cand = iou[i].clone()
                        cand[taken] = -1
                        j = int(cand.argmax())
                        if cand[j] >= thr:
                            taken[j] = True
                            tp[i, t] = True
            scores.append(p[:, 4])
            tps.append(tp)
        if n_gt == 0:
            continue
        s = torch.cat(scores)
        t = torch.cat(tps)
        per_class.append([average_precision(t[:, k], s, n_gt) for k in range(len(thresholds))])
    if not per_class:
        return 0.0, 0.0
    table = torch.tensor(per_class)
    return table[:, 0].mean().item(), table.mean().item()


@torch.no_grad()
def evaluate(model, data, nc, reg_max, batch=32):
    model.eval()
    preds, gts = [], []
    for start in range(0, len(data), batch):
        idx = torch.arange(start, min(start + batch, len(data)))
        x, targets = data.batch(idx)
        preds += decode(model(x), nc, reg_max, data.size)
        gts += targets
    return mean_ap(preds, gts, nc)
