"""Semantic segmentation as a task of the one loop: a class for every pixel.

The step is the supervised one with a pixel-wise loss: cross-entropy of the logits (N, C, H, W) against the class map
(N, H, W), averaged over pixels - optionally plus the soft Dice loss (``--loss cross_entropy_dice``), which weighs
every class by its overlap rather than its pixel count, so that small objects are not drowned by the background.

Validation accumulates the confusion matrix over the whole split and reports mIoU (the mean of the per-class IoU) with
pixel accuracy beside it - never alone: a model that answers "background" everywhere already has the background's
share of pixels right (0.84 of the shapes world). A run folder gets ``predictions.png``: test images with the true and
the predicted masks.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.train.task import TASKS, SupervisedTask, batch_size, evaluating, forward, split_batch
from dlbasics.train.vision_metrics import confusion_matrix, segmentation_scores

# a colour per class for the figures: background black, then distinct hues
PALETTE = np.array([[0, 0, 0], [230, 80, 80], [80, 200, 90], [80, 120, 240], [240, 200, 60], [200, 90, 220],
                    [70, 210, 220], [250, 150, 60]], np.uint8)


@TASKS.register("segmentation", help="a class for every pixel: pixel cross-entropy (+ Dice); mIoU")
class SegmentationTask(SupervisedTask):
    """The supervised step on (images, class maps); ``evaluate`` gives the loss, mIoU, pixel accuracy and each
    class's IoU over the whole split."""

    # Dice and mIoU are not means over samples
    data_parallel = False

    curves = ("loss", "miou")
    best = ("miou", "max")

    def __init__(self, model: Any, loss_fn: Any, optimizer: Any, classes: list[str] | None = None) -> None:
        super().__init__(model, loss_fn, optimizer, metrics=())
        self.classes = classes

    @classmethod
    def build(cls, cfg: Any) -> SegmentationTask:
        from dlbasics.train.config import build_loss, build_model, build_optimizer

        cls.require_problem(cfg, "segmentation", "segmentation", "predicts a class for every pixel")
        model = build_model(cfg)
        return cls(model, build_loss(cfg), build_optimizer(cfg, model), cfg.data.classes)

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        return segmentation_eval(self.model, loader, self.loss_fn, self.classes)

    @classmethod
    def evaluate_model(cls, cfg: Any, model: Any, loader: Iterable) -> dict[str, float]:
        from dlbasics.train.config import build_loss

        return segmentation_eval(model, loader, build_loss(cfg), cfg.data.classes)

    def write_outputs(self, out_dir: Any, cfg: Any, splits: Any) -> None:
        """predictions.png: eight test images, their true masks and the predicted ones."""
        x, y = split_batch(next(iter(self.eval_loader(splits.test, 8))))
        with evaluating(self.model):
            pred = forward(self.model, x).data.argmax(1)
        save_rows([rgb_pixels(x.data[:8]), PALETTE[y.data[:8] % len(PALETTE)], PALETTE[pred[:8] % len(PALETTE)]],
                  Path(out_dir) / "predictions.png")


def segmentation_eval(model: Any, loader: Iterable, loss_fn: Any, classes: list[str] | None) -> dict[str, float]:
    """Mean loss over pixels and the confusion matrix's scores, for ``model`` over ``loader``."""
    confusion, loss_sum, n = None, 0.0, 0
    with evaluating(model):
        for batch in loader:
            x, y = split_batch(batch)
            out = forward(model, x)
            k = out.shape[1]
            loss_sum += float(loss_fn(out, y).item()) * batch_size(x)
            n += batch_size(x)
            target = y.data if hasattr(y, "data") else np.asarray(y)
            c = confusion_matrix(out.data.argmax(1), target, k)
            confusion = c if confusion is None else confusion + c
    if confusion is None:
        raise ValueError("segmentation_eval: the loader gave no batch")
    return {"loss": loss_sum / max(n, 1)} | segmentation_scores(confusion, classes)


def rgb_pixels(x: np.ndarray) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] (or standardized: rescaled per image) -> (N, H, W, 3) uint8."""
    x = np.asarray(x, np.float32)
    if x.min() < 0 or x.max() > 1:
        lo, hi = x.min(axis=(1, 2, 3), keepdims=True), x.max(axis=(1, 2, 3), keepdims=True)
        x = (x - lo) / np.maximum(hi - lo, 1e-6)
    x = x.transpose(0, 2, 3, 1)
    x = np.repeat(x, 3, axis=3) if x.shape[3] == 1 else x[..., :3]
    return np.round(x * 255).astype(np.uint8)


def save_rows(rows: list[np.ndarray], path: Path, scale: int = 3, gap: int = 2) -> None:
    """Rows of images (each (N, H, W, 3) uint8) tiled into one PNG, ``gap`` white pixels apart, each pixel ``scale``
    times; atomic."""
    import io

    from PIL import Image

    from dlbasics.io import atomic_write_bytes

    n, h, w = rows[0].shape[:3]
    grid = np.full((len(rows) * (h + gap) - gap, n * (w + gap) - gap, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for i in range(n):
            grid[r * (h + gap):r * (h + gap) + h, i * (w + gap):i * (w + gap) + w] = row[i]
    grid = grid.repeat(scale, 0).repeat(scale, 1)
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="png")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


__all__ = ["PALETTE", "SegmentationTask", "rgb_pixels", "save_rows", "segmentation_eval"]
