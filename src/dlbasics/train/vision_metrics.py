"""Metrics of the dense and structured vision problems, on NumPy arrays: what a segmentation, detection or pose model
is judged by. Each takes whole-split predictions (or accumulates them), because none of them is a mean over batches:
an IoU is a ratio of sums, an AP ranks every detection of the split.

- segmentation: the confusion matrix; IoU per class = TP / (TP + FP + FN), their mean (mIoU), pixel accuracy;
- detection: box IoU; AP per class from the precision-recall curve of the detections ranked by score, a detection
  counting as true when it overlaps a not-yet-matched ground-truth box of its class by IoU >= the threshold
  (PASCAL VOC's all-point interpolation, or COCO's 101 recall points); mAP, their mean;
- pose: PCK@alpha, the share of joints predicted within alpha times the figure's size of the truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


# ---- segmentation --------------------------------------------------------------------------------------
def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts: row = the true class, column = the predicted one, over all pixels."""
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"confusion_matrix: {pred.size} predictions for {target.size} targets")
    return np.bincount(target.astype(np.int64) * num_classes + pred, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def segmentation_scores(confusion: np.ndarray, classes: Sequence[str] | None = None) -> dict[str, float]:
    """mIoU (the mean over classes that occur in the truth or the predictions), pixel accuracy, and each class's IoU
    (``iou_<name>``; NaN for a class that occurs in neither)."""
    confusion = np.asarray(confusion, np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / union
    names = classes or [str(i) for i in range(len(tp))]
    out = {"miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0,
           "pixel_accuracy": float(tp.sum() / max(confusion.sum(), 1))}
    return out | {f"iou_{n}": float(v) for n, v in zip(names, iou)}


# ---- detection -----------------------------------------------------------------------------------------
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU (N, M) of boxes a (N, 4) and b (M, 4), each (x0, y0, x1, y1) with x1 > x0, y1 > y0."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def average_precision(recall: np.ndarray, precision: np.ndarray, interpolation: str = "all") -> float:
    """The area under a precision-recall curve (recall ascending), with precision made monotone (each point takes the
    best precision at any higher recall). "all": VOC 2010+'s all-point sum over the recall steps; "coco": the mean of
    the interpolated precision at the 101 recalls 0, 0.01, ..., 1 (pycocotools)."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]  # the envelope
    if interpolation == "all":
        steps = np.flatnonzero(r[1:] != r[:-1])
        return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))
    if interpolation == "coco":
        at = np.linspace(0, 1, 101)
        idx = np.searchsorted(recall, at, side="left")  # the first point with recall >= each level
        env = p[1:-1]
        return float(np.mean(np.where(idx < len(recall), env[np.minimum(idx, len(recall) - 1)], 0.0)))
    raise ValueError(f"average_precision: interpolation must be 'all' or 'coco', got {interpolation!r}")


def detection_ap(detections: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                 truths: Sequence[tuple[np.ndarray, np.ndarray]], num_classes: int, iou_threshold: float = 0.5,
                 interpolation: str = "all") -> dict[str, float]:
    """AP per class and their mean over the classes that have ground truth.

    detections: per image (boxes (K, 4), scores (K,), labels (K,) in 0..num_classes - 1); truths: per image (boxes
    (G, 4), labels (G,)). Detections of all images are ranked by score; each takes the unmatched ground-truth box of
    its class and image it overlaps most, if that IoU >= ``iou_threshold`` (a true positive), else it is a false
    positive (a duplicate of a matched box too). -> {"map": mAP, "ap_0": ..., "ap_1": ...}."""
    if len(detections) != len(truths):
        raise ValueError(f"detection_ap: detections for {len(detections)} images, ground truth for {len(truths)}")
    aps: dict[str, float] = {}
    for c in range(num_classes):
        gts = [np.asarray(b, np.float64).reshape(-1, 4)[np.asarray(lab) == c] for b, lab in truths]
        n_gt = sum(len(g) for g in gts)
        image, score, box = [], [], []
        for i, (b, s, lab) in enumerate(detections):
            keep = np.asarray(lab) == c
            image += [i] * int(keep.sum())
            score.append(np.asarray(s, np.float64)[keep])
            box.append(np.asarray(b, np.float64).reshape(-1, 4)[keep])
        if n_gt == 0:
            aps[f"ap_{c}"] = float("nan")
            continue
        scores = np.concatenate(score) if score else np.zeros(0)
        boxes = np.concatenate(box) if box else np.zeros((0, 4))
        order = np.argsort(-scores, kind="stable")
        matched = [np.zeros(len(g), bool) for g in gts]
        tp = np.zeros(len(order))
        for rank, d in enumerate(order):  # a loop over detections: each match depends on the earlier ones
            g = gts[image[d]]
            if len(g) == 0:
                continue
            ious = box_iou(boxes[d], g)[0]
            ious[matched[image[d]]] = -1.0
            j = int(np.argmax(ious))
            if ious[j] >= iou_threshold:
                tp[rank], matched[image[d]][j] = 1.0, True
        ctp = np.cumsum(tp)
        recall = ctp / n_gt
        precision = ctp / np.arange(1, len(tp) + 1)
        aps[f"ap_{c}"] = average_precision(recall, precision, interpolation) if len(tp) else 0.0
    valid = [v for v in aps.values() if not np.isnan(v)]
    return {"map": float(np.mean(valid)) if valid else 0.0} | aps


# ---- pose ----------------------------------------------------------------------------------------------
def pck(pred: np.ndarray, target: np.ndarray, alpha: float = 0.1, size: np.ndarray | None = None) -> float:
    """PCK@alpha: the share of joints whose predicted position (N, J, 2) lies within alpha * size of the true one;
    ``size`` (N,) is each figure's size, by default the larger side of its joints' bounding box."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if pred.shape != target.shape or pred.ndim != 3 or pred.shape[2] != 2:
        raise ValueError(f"pck: expected predictions and targets (N, J, 2) of one shape, got {pred.shape} and "
                         f"{target.shape}")
    if size is None:
        size = np.max(target.max(1) - target.min(1), axis=1)
    dist = np.linalg.norm(pred - target, axis=2)
    return float(np.mean(dist <= alpha * np.asarray(size, np.float64)[:, None]))


__all__ = ["average_precision", "box_iou", "confusion_matrix", "detection_ap", "pck", "segmentation_scores"]
