"""Object detection as a task of the one loop: boxes and classes for every object of an image.

Batches are (images (N, C, H, W), objects (N, K, 5)): rows (class 1..C, x0, y0, x1, y1), class <= 0 for padding.
The model says how its targets are made from the boxes and how its outputs are read back as boxes (``encode``,
``loss``, ``decode``: CenterNet's heatmaps); the task trains on the model's loss and validates by the VOC mean
average precision at IoU 0.5 (``map50``) and 0.75 (``map75``), and COCO's AP averaged over IoU 0.5:0.95 (``map``),
over the whole split. A run folder gets ``predictions.png``: test images with the true boxes and the detected ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.errors import ConfigError
from dlbasics.train.task import TASKS, Task, batch_size, evaluating, split_batch
from dlbasics.train.vision_metrics import detection_ap

COCO_THRESHOLDS = np.round(np.arange(0.5, 0.96, 0.05), 2)


def truths(objects: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """A batch's objects (N, K, 5) as per-image (boxes (G, 4), classes (G,) in 0..C-1)."""
    return [(o[o[:, 0] > 0, 1:], o[o[:, 0] > 0, 0].astype(np.int64) - 1) for o in objects]


@TASKS.register("detection", help="boxes and classes of every object: the model's own loss (CenterNet's); mAP")
class DetectionTask(Task):
    """Train a detector (a model with ``encode``, ``loss`` and ``decode``) on (images, objects) batches."""

    curves = ("loss", "map50", "map")
    best = ("map", "max")

    def __init__(self, model: Any, optimizer: Any) -> None:
        super().__init__(model, optimizer)

    @classmethod
    def build(cls, cfg: Any) -> DetectionTask:
        from dlbasics.train.config import build_model, build_optimizer

        cls.require_problem(cfg, "detection", "detection", "finds boxes")
        model = build_model(cfg)
        if not all(hasattr(model, f) for f in ("encode", "loss", "decode")):
            raise ConfigError(f"{cfg.spelling('task')} detection: the model {cfg.model.name!r} is not a detector; "
                              "train --model centernet")
        return cls(model, build_optimizer(cfg, model))

    def _loss(self, x: Any, objects: Any) -> tuple[Any, Any, dict[str, float]]:
        outputs = self.model(x)
        objects = objects.data if hasattr(objects, "data") else np.asarray(objects)
        loss, parts = self.model.loss(outputs, self.model.encode(objects, tuple(outputs[0].shape[2:])))
        return outputs, loss, parts

    def training_step(self, batch: Any) -> tuple[int, dict[str, float]]:
        x, objects = split_batch(batch)
        _, loss, parts = self._loss(x, objects)
        value = self.optimize(loss, self.optimizer)
        return batch_size(x), {"loss": value} | {f"loss_{k}": v for k, v in parts.items()}

    def probe(self, batch: Any) -> None:
        self._loss(*split_batch(batch))

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        return detection_eval(self.model, loader)

    @classmethod
    def evaluate_model(cls, cfg: Any, model: Any, loader: Iterable) -> dict[str, float]:
        return detection_eval(model, loader)

    def write_outputs(self, out_dir: Any, cfg: Any, splits: Any) -> None:
        """predictions.png: eight test images with the true boxes (white) and the detections scoring >= 0.3 (in their
        class's colour)."""
        x, objects = split_batch(next(iter(self.eval_loader(splits.test, 8))))
        with evaluating(self.model):
            found = self.model.decode(self.model(x))
        draw_boxes(x.data[:8], truths(objects.data[:8]), found[:8], Path(out_dir) / "predictions.png")


def detection_eval(model: Any, loader: Iterable) -> dict[str, float]:
    """The mean loss, and the mAPs of the decoded detections over the whole of ``loader``."""
    found, true, loss_sum, n = [], [], 0.0, 0
    with evaluating(model):
        for batch in loader:
            x, objects = split_batch(batch)
            objects = objects.data if hasattr(objects, "data") else np.asarray(objects)
            outputs = model(x)
            loss, _ = model.loss(outputs, model.encode(objects, tuple(outputs[0].shape[2:])))
            loss_sum, n = loss_sum + float(loss.item()) * batch_size(x), n + batch_size(x)
            found += model.decode(outputs)
            true += truths(objects)
    classes = model.num_classes
    coco = [detection_ap(found, true, classes, t, "coco")["map"] for t in COCO_THRESHOLDS]
    return {"loss": loss_sum / max(n, 1), "map50": detection_ap(found, true, classes, 0.5)["map"],
            "map75": detection_ap(found, true, classes, 0.75)["map"], "map": float(np.mean(coco))}


def draw_boxes(images: np.ndarray, true: list, found: list, path: Path, min_score: float = 0.3) -> None:
    """Images with their true boxes (white) and detections (coloured by class), one row, as a PNG."""
    from dlbasics.train.segmentation import PALETTE, rgb_pixels, save_rows

    pictures = rgb_pixels(images).copy()
    for img, (tb, _), (db, ds, dc) in zip(pictures, true, found):
        for b in tb:
            _rectangle(img, b, (255, 255, 255))
        for b, s, c in zip(db, ds, dc):
            if s >= min_score:
                _rectangle(img, b, PALETTE[1 + int(c) % (len(PALETTE) - 1)])
    save_rows([pictures], path)


def _rectangle(img: np.ndarray, box: np.ndarray, colour: Any) -> None:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    x0, x1, y0, y1 = np.clip(x0, 0, w - 1), np.clip(x1 - 1, 0, w - 1), np.clip(y0, 0, h - 1), np.clip(y1 - 1, 0, h - 1)
    img[y0, x0:x1 + 1] = img[y1, x0:x1 + 1] = colour
    img[y0:y1 + 1, x0] = img[y0:y1 + 1, x1] = colour


__all__ = ["DetectionTask", "detection_eval", "draw_boxes", "truths"]
