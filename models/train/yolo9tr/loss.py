"""The YOLOv8/v9 detection loss: task-aligned assignment, BCE on classes, CIoU + DFL on boxes.

`TaskAlignedAssigner` (TOOD) picks, for every ground-truth box, the `topk` anchors inside it
whose alignment `score^alpha * iou^beta` is highest; an anchor claimed by several boxes keeps
the one it overlaps most. Class targets are the normalised alignment, so the classifier learns
to predict localisation quality as well as the class.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import STRIDES


def make_anchors(size, device):
    """Anchor centres (in pixels) and strides for a square `size` input, level by level,
    row-major: the order of the head's output and of `edgetrim_models::yolo::make_anchors`."""
    points, strides = [], []
    for s in STRIDES:
        n = math.ceil(size / s)
        r = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) * s
        yy, xx = torch.meshgrid(r, r, indexing="ij")
        points.append(torch.stack((xx, yy), -1).reshape(-1, 2))
        strides.append(torch.full((n * n, 1), float(s), device=device))
    return torch.cat(points), torch.cat(strides)


def dfl_decode(logits, reg_max):
    """`[b, a, 4 * reg_max]` logits -> `[b, a, 4]` distances (in strides): softmax expectation."""
    b, a, _ = logits.shape
    bins = torch.arange(reg_max, device=logits.device, dtype=logits.dtype)
    return (logits.view(b, a, 4, reg_max).softmax(-1) * bins).sum(-1)


def box_ciou(b1, b2, eps=1e-7):
    """Complete IoU of `[..., 4]` corner boxes."""
    (x1, y1, x2, y2), (u1, v1, u2, v2) = b1.unbind(-1), b2.unbind(-1)
    w1, h1 = x2 - x1, (y2 - y1).clamp(eps)
    w2, h2 = u2 - u1, (v2 - v1).clamp(eps)
    inter = (torch.min(x2, u2) - torch.max(x1, u1)).clamp(0) * (torch.min(y2, v2) - torch.max(y1, v1)).clamp(0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.max(x2, u2) - torch.min(x1, u1)
    ch = torch.max(y2, v2) - torch.min(y1, v1)
    c2 = cw**2 + ch**2 + eps
    rho2 = ((u1 + u2 - x1 - x2) ** 2 + (v1 + v2 - y1 - y2) ** 2) / 4
    v = (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


def box_iou_pairwise(gt, pred, eps=1e-9):
    """IoU of `[b, g, 4]` against `[b, a, 4]` -> `[b, g, a]`."""
    g, p = gt.unsqueeze(2), pred.unsqueeze(1)
    lt = torch.max(g[..., :2], p[..., :2])
    rb = torch.min(g[..., 2:], p[..., 2:])
    inter = (rb - lt).clamp(0).prod(-1)
    area = lambda t: (t[..., 2:] - t[..., :2]).clamp(0).prod(-1)  # noqa: E731
    return inter / (area(g) + area(p) - inter + eps)


class TaskAlignedAssigner(nn.Module):
    def __init__(self, topk=10, alpha=0.5, beta=6.0, eps=1e-9):
        super().__init__()
        self.topk, self.alpha, self.beta, self.eps = topk, alpha, beta, eps

    @torch.no_grad()
    def forward(self, scores, boxes, points, gt_labels, gt_boxes, gt_mask):
        """scores `[b, a, c]` (sigmoid), boxes `[b, a, 4]` pixels, points `[a, 2]`,
        gt_labels `[b, g]` long, gt_boxes `[b, g, 4]`, gt_mask `[b, g]` bool.
        Returns target boxes `[b, a, 4]`, target scores `[b, a, c]`, foreground `[b, a]`."""
        b, a, c = scores.shape
        g = gt_boxes.shape[1]
        if g == 0:
            return boxes.new_zeros(b, a, 4), scores.new_zeros(b, a, c), torch.zeros(b, a, dtype=torch.bool, device=scores.device)
        # Anchors whose centre lies inside the box.
        lt = points.view(1, 1, a, 2) - gt_boxes[..., :2].unsqueeze(2)
        rb = gt_boxes[..., 2:].unsqueeze(2) - points.view(1, 1, a, 2)
        inside = torch.cat((lt, rb), -1).amin(-1) > self.eps
        valid = inside & gt_mask.unsqueeze(-1)
        iou = box_iou_pairwise(gt_boxes, boxes).clamp(0) * valid
        cls_score = scores.gather(2, gt_labels.unsqueeze(1).expand(b, a, g)).transpose(1, 2) * valid
        align = cls_score.pow(self.alpha) * iou.pow(self.beta)
        # Top-k anchors per ground truth.
        topk = torch.topk(align, min(self.topk, a), dim=-1).indices
        chosen = torch.zeros_like(align, dtype=torch.bool).scatter_(-1, topk, True) & valid
        # An anchor claimed by several boxes keeps the one with the highest IoU.
        claims = chosen.sum(1)
        multi = claims > 1
        if multi.any():
            best = iou.argmax(1)
            only_best = torch.zeros_like(chosen).scatter_(1, best.unsqueeze(1), True)
            chosen = torch.where(multi.unsqueeze(1), only_best & chosen.any(1, keepdim=True), chosen)
        fg = chosen.any(1)
        owner = chosen.float().argmax(1)  # [b, a]
        batch = torch.arange(b, device=scores.device).unsqueeze(1)
        target_boxes = gt_boxes[batch, owner]
        target_labels = gt_labels[batch, owner]
        target_scores = F.one_hot(target_labels, c).float() * fg.unsqueeze(-1)
        # Normalise the alignment per box so its best anchor's target equals its best IoU.
        align = align * chosen
        norm = align.amax(-1, keepdim=True)
        iou_max = (iou * chosen).amax(-1, keepdim=True)
        norm_align = (align * iou_max / (norm + self.eps)).amax(1)  # [b, a]
        return target_boxes, target_scores * norm_align.unsqueeze(-1), fg


class DetectionLoss:
    """Sum of box (CIoU), class (BCE) and DFL losses with YOLOv8's gains."""

    def __init__(self, nc, reg_max, size, device, box=7.5, cls=0.5, dfl=1.5):
        self.nc, self.reg_max = nc, reg_max
        self.gains = (box, cls, dfl)
        self.assigner = TaskAlignedAssigner()
        self.points, self.strides = make_anchors(size, device)

    def __call__(self, out, targets):
        """out `[b, 4*reg_max + nc, a]`; targets: list of `[n, 5]` (class, x0, y0, x1, y1 px)."""
        out = out.transpose(1, 2)
        b = out.shape[0]
        dist_logits, cls_logits = out.split((4 * self.reg_max, self.nc), -1)
        dist = dfl_decode(dist_logits, self.reg_max)  # strides
        pts = self.points / self.strides
        boxes_s = torch.cat((pts - dist[..., :2], pts + dist[..., 2:]), -1)  # in strides
        boxes_px = boxes_s * self.strides

        g = max((len(t) for t in targets), default=0)
        gt_labels = torch.zeros(b, g, dtype=torch.long, device=out.device)
        gt_boxes = torch.zeros(b, g, 4, device=out.device)
        gt_mask = torch.zeros(b, g, dtype=torch.bool, device=out.device)
        for i, t in enumerate(targets):
            if len(t):
                gt_labels[i, : len(t)] = t[:, 0].long()
                gt_boxes[i, : len(t)] = t[:, 1:]
                gt_mask[i, : len(t)] = True

        t_boxes, t_scores, fg = self.assigner(
            cls_logits.detach().sigmoid(), boxes_px.detach(), self.points, gt_labels, gt_boxes, gt_mask
        )
        score_sum = t_scores.sum().clamp(min=1.0)
        loss_cls = F.binary_cross_entropy_with_logits(cls_logits, t_scores, reduction="sum") / score_sum
        if fg.any():
            weight = t_scores.sum(-1)[fg]
            t_boxes_s = t_boxes / self.strides
            ciou = box_ciou(boxes_s[fg], t_boxes_s[fg])
            loss_box = ((1.0 - ciou) * weight).sum() / score_sum
            # DFL: the target distance splits between its two neighbouring bins.
            p = pts.expand(b, -1, -1)[fg]
            tb = t_boxes_s[fg]
            target = torch.cat((p - tb[:, :2], tb[:, 2:] - p), -1).clamp(0, self.reg_max - 1 - 0.01)
            left = target.long()
            wl = left + 1 - target
            logits = dist_logits[fg].view(-1, self.reg_max)
            ce = lambda idx: F.cross_entropy(logits, idx.view(-1), reduction="none").view(left.shape)  # noqa: E731
            dfl = (ce(left) * wl + ce(left + 1) * (1 - wl)).mean(-1, keepdim=True)
            loss_dfl = (dfl.squeeze(-1) * weight).sum() / score_sum
        else:
            loss_box = loss_dfl = out.sum() * 0.0
        gb, gc, gd = self.gains
        parts = torch.stack((loss_box * gb, loss_cls * gc, loss_dfl * gd))
        return parts.sum() * b, parts.detach()
