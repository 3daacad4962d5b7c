"""Pose estimation as a task of the one loop: where each joint of a figure is.

Batches are (images (N, C, H, W), keypoints (N, J, 2) in pixels). The model turns the keypoints into its target
heatmaps (``encode``) and its heatmaps back into keypoints (``decode``); the step is the mean squared error of the
heatmaps. Validation reports PCK@0.1 and PCK@0.05 over the split - the share of joints within 10% (5%) of the
figure's size, the larger side of its joints' box - and the mean error in pixels. A run folder gets
``predictions.png``: test images with the true skeleton (white) and the predicted one (left limbs red, right blue).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.errors import ConfigError
from dlbasics.nn import functional as F
from dlbasics.train.task import TASKS, Task, batch_size, evaluating, split_batch
from dlbasics.train.vision_metrics import pck


def _array(x: Any) -> np.ndarray:
    return x.data if hasattr(x, "data") else np.asarray(x)


@TASKS.register("pose", help="the joints of a figure: heatmap regression (MSE); PCK@0.1 and PCK@0.05")
class PoseTask(Task):
    """Train a heatmap pose model (with ``encode`` and ``decode``) on (images, keypoints) batches."""

    curves = ("loss", "pck10", "pck05")
    best = ("pck05", "max")

    @classmethod
    def build(cls, cfg: Any) -> PoseTask:
        from dlbasics.train.config import build_model, build_optimizer

        cls.require_problem(cfg, "pose", "pose", "finds the joints of a figure")
        model = build_model(cfg)
        if not all(hasattr(model, f) for f in ("encode", "decode")):
            raise ConfigError(f"{cfg.spelling('task')} pose: the model {cfg.model.name!r} does not predict heatmaps; "
                              "train --model keypoint_net")
        return cls(model, build_optimizer(cfg, model))

    def _loss(self, x: Any, keypoints: Any) -> tuple[Any, Any]:
        out = self.model(x)
        return out, F.mse_loss(out, self.model.encode(_array(keypoints), tuple(out.shape[2:])))

    def training_step(self, batch: Any) -> tuple[int, dict[str, float]]:
        x, keypoints = split_batch(batch)
        _, loss = self._loss(x, keypoints)
        return batch_size(x), {"loss": self.optimize(loss, self.optimizer)}

    def probe(self, batch: Any) -> None:
        self._loss(*split_batch(batch))

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        return pose_eval(self.model, loader)

    @classmethod
    def evaluate_model(cls, cfg: Any, model: Any, loader: Iterable) -> dict[str, float]:
        return pose_eval(model, loader)

    def write_outputs(self, out_dir: Any, cfg: Any, splits: Any) -> None:
        x, keypoints = split_batch(next(iter(self.eval_loader(splits.test, 8))))
        with evaluating(self.model):
            pred = self.model.decode(self.model(x).data)
        draw_skeletons(x.data[:8], _array(keypoints)[:8], pred[:8], Path(out_dir) / "predictions.png")


def pose_eval(model: Any, loader: Iterable) -> dict[str, float]:
    """Mean heatmap loss, PCK@0.1, PCK@0.05 and the mean joint error (pixels) of ``model`` over ``loader``."""
    preds, truths, loss_sum, n = [], [], 0.0, 0
    with evaluating(model):
        for batch in loader:
            x, keypoints = split_batch(batch)
            out = model(x)
            kp = _array(keypoints)
            loss_sum += float(F.mse_loss(out, model.encode(kp, tuple(out.shape[2:]))).item()) * batch_size(x)
            n += batch_size(x)
            preds.append(model.decode(out.data))
            truths.append(kp)
    pred, true = np.concatenate(preds), np.concatenate(truths)
    return {"loss": loss_sum / max(n, 1), "pck10": pck(pred, true, 0.1), "pck05": pck(pred, true, 0.05),
            "error_px": float(np.linalg.norm(pred - true, axis=2).mean())}


def draw_skeletons(images: np.ndarray, true: np.ndarray, pred: np.ndarray, path: Path) -> None:
    """Images with the true skeleton (white) and the predicted one (left limbs red, right blue, centre green)."""
    from dlbasics.data.datasets.shapes import LIMBS, segment_mask
    from dlbasics.train.segmentation import rgb_pixels, save_rows

    scale = 3  # drawn at 3x, so that thin lines over the figure stay visible
    pictures = rgb_pixels(images).repeat(scale, 1).repeat(scale, 2)
    size = pictures.shape[1]
    colours = {"left": (240, 60, 60), "right": (60, 120, 255), "centre": (60, 220, 90)}
    for img, t, p in zip(pictures, true, pred):
        img //= 2  # darken, so the lines stand out
        for skeleton, white in ((t, True), (p, False)):
            for a, b, side in LIMBS:
                m = segment_mask(*(skeleton[a] * scale), *(skeleton[b] * scale), 2.0, size)
                img[m] = (255, 255, 255) if white else colours[side]
    save_rows([pictures], path, scale=1)


__all__ = ["PoseTask", "draw_skeletons", "pose_eval"]
