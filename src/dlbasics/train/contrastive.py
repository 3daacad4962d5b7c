"""Contrastive pre-training (SimCLR's step) as a task of the one loop: two augmented views of each image, NT-Xent.

For a batch of images x (N, C, H, W) - labels, if any, are ignored - the step draws two random views of every image
(``data.augment.simclr_augment``), runs the model once on both (2N images: batch norm sees both views, as in the
paper's implementation) and minimizes

    loss = NT-Xent(z1, z2, tau) = mean over the 2N views i of -log softmax_j(cos(z_i, z_j) / tau)[partner(i)]

(``F.nt_xent_loss``; ln(2N - 1) for projections that know nothing). The augmentations draw from the task's own
generators, seeded from the run's seed and saved in its state, so a resumed run draws the views an unbroken one
would have.

Evaluation reports the NT-Xent of the split under fixed views (a generator re-seeded at every evaluation) and a
linear probe: a logistic regression on the frozen features (``model.features``) of the split's first half, scored
on its second half. A finished run folder adds ``probe.json``: the probe trained on the training images' features
(all labels, and 100 labels per class) and scored on the test split.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.errors import ConfigError, DataError
from dlbasics.nn import functional as F
from dlbasics.nn.module import Module
from dlbasics.rng import set_generator_states
from dlbasics.tensor import Tensor
from dlbasics.train.task import TASKS, Averages, Task, evaluating

AUGMENT_STREAM = 3  # the augmentations' own stream of the run seed
EVAL_VIEWS_SEED = 0
PROBE_LABELS_PER_CLASS = 100


def images_and_labels(batch: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(images (N, C, H, W), labels (N,) or None) of a batch of (x, y) or x, as arrays."""
    x, y = (batch[0], batch[1]) if isinstance(batch, tuple | list) and len(batch) == 2 else (batch, None)
    x = np.asarray(x.data if isinstance(x, Tensor) else x)
    if x.ndim != 4:
        raise DataError(f"a contrastive step expects batches of images (N, C, H, W), got shape {x.shape}")
    if y is not None:
        y = np.asarray(y.data if isinstance(y, Tensor) else y)
    return x, y


@TASKS.register("contrastive", help="SimCLR: NT-Xent between two augmented views of each image; a linear probe "
                "of the frozen features")
class ContrastiveTask(Task):
    """One model (``model(images)`` -> projections, ``model.features(images)`` -> features), one optimizer,
    NT-Xent at ``temperature``; the views come from ``augment(seed)`` (default ``simclr_augment``)."""

    curves = ("loss", "probe_accuracy")

    def __init__(self, model: Module, optimizer: Any, *, temperature: float = 0.5, seed: int = 0,
                 augment: Any = None) -> None:
        from dlbasics.data.augment import simclr_augment

        super().__init__(model, optimizer)
        if not temperature > 0:
            raise ValueError(f"contrastive: temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.make_augment = augment or simclr_augment
        self.augment = self.make_augment(np.random.default_rng([seed, AUGMENT_STREAM]))

    @classmethod
    def build(cls, cfg: Any) -> ContrastiveTask:
        from dlbasics.train.config import build_model, build_optimizer

        if len(cfg.data.input_shape) != 3:
            raise ConfigError(f"{cfg.spelling('task')} contrastive: learns from images; the data set "
                              f"{cfg.data.name!r} has samples of shape {tuple(cfg.data.input_shape)}, not (C, H, W)")
        model = build_model(cfg)
        if not callable(getattr(model, "features", None)):
            raise ConfigError(f"{cfg.spelling('task')} contrastive: the model {cfg.model.name!r} has no features() "
                              "for the linear probe; train --model simclr")
        return cls(model, build_optimizer(cfg, model), seed=cfg.seed)

    def views_loss(self, model: Module, x: np.ndarray, augment: Any) -> Tensor:
        """NT-Xent of ``model`` on two views of the images x drawn by ``augment``; one forward pass over both."""
        v1, v2 = augment(x), augment(x)
        n = len(x)
        views = np.concatenate([v1, v2])
        if views.dtype.kind != "f":
            views = views.astype(np.float32)
        z = model(Tensor._make(views, False, None))  # (2N, D)
        return F.nt_xent_loss(z[:n], z[n:], self.temperature)

    def training_step(self, batch: Any) -> tuple[int, dict[str, float]]:
        x, _ = images_and_labels(batch)
        if len(x) < 2:
            raise DataError("a contrastive batch needs at least 2 images (each view's negatives are the others)")
        return len(x), {"loss": self.optimize(self.views_loss(self.model, x, self.augment), self.optimizer)}

    def probe(self, batch: Any) -> None:
        x, _ = images_and_labels(batch)
        self.model(x)
        self.model.features(x)

    # ---- evaluation ----
    def evaluate(self, loader: Iterable) -> dict[str, float]:
        """NT-Xent under fixed views, and a linear probe fit on the first half of the split, scored on the second."""
        from dlbasics.train.probe import linear_probe

        augment = self.make_augment(np.random.default_rng(EVAL_VIEWS_SEED))
        avg = Averages()
        features, labels = [], []
        with evaluating(self.model):
            for batch in loader:
                x, y = images_and_labels(batch)
                if len(x) >= 2:
                    avg.add(len(x), {"loss": float(self.views_loss(self.model, x, augment).item())})
                features.append(self.model.features(x).data)
                labels.append(y)
        result = {"loss": avg.means().get("loss", float("nan"))}
        if labels and all(y is not None for y in labels):
            h, y = np.concatenate(features), np.concatenate(labels)
            half = len(h) // 2
            if half >= 2 and len(np.unique(y[:half])) >= 2:
                result["probe_accuracy"] = linear_probe(h[:half], y[:half], h[half:], y[half:])
        return result

    @classmethod
    def evaluate_model(cls, cfg: Any, model: Module, loader: Iterable) -> dict[str, float]:
        return cls(model, None, seed=cfg.seed).evaluate(loader)

    def write_outputs(self, out_dir: Any, cfg: Any, splits: Any) -> None:
        """probe.json: linear probes on the frozen features of the training images (all labels, and
        ``PROBE_LABELS_PER_CLASS`` per class), scored on the test split."""
        from dlbasics.train.rundir import write_json

        if splits.test is None:
            return
        write_json(Path(out_dir) / "probe.json", probe_report(self.model.features, splits.train, splits.test,
                                                              seed=cfg.seed))

    # ---- state: the modules', the optimizer's, and the augmentations' generators ----
    def _generators(self) -> dict[str, np.random.Generator]:
        return {f"augment{i}": t._generator for i, t in enumerate(self.augment.transforms)
                if getattr(t, "_generator", None) is not None}

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"augment": {k: g.bit_generator.state for k, g in self._generators().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        set_generator_states(self._generators(), state["augment"])


def probe_report(features: Any, train: Any, test: Any, per_class: int = PROBE_LABELS_PER_CLASS,
                 seed: int = 0) -> dict[str, Any]:
    """Linear-probe accuracy on ``test`` of ``features`` (a function of an image batch) trained on all of ``train``'s
    labels and on ``per_class`` labels per class (fewer if a class of ``train`` has fewer; the key says how many)."""
    from dlbasics.train.kfold import targets_of
    from dlbasics.train.probe import encode, labels_per_class_subset, linear_probe

    h_train, h_test = encode(features, train), encode(features, test)
    y_train, y_test = np.asarray(targets_of(train)), np.asarray(targets_of(test))
    per_class = min(per_class, int(np.bincount(y_train).min()))  # a small training set: as many as every class has
    subset = labels_per_class_subset(y_train, per_class, seed)
    return {"all_labels": linear_probe(h_train, y_train, h_test, y_test),
            f"{per_class}_per_class": linear_probe(h_train[subset], y_train[subset], h_test, y_test),
            "train_images": len(y_train), "test_images": len(y_test)}


__all__ = ["ContrastiveTask", "images_and_labels", "probe_report"]
