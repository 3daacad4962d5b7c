"""Datasets that need no download: scikit-learn's 8x8 digits and generated 2-D / function data.

Each loader returns ``Splits(train, val, test, info)`` of ``TensorDataset``s with a fixed split
(60 / 20 / 20, stratified by class for classification), so the same ``seed`` gives the same data and
the same split on every machine. Inputs are float32, class labels int64 (N,), regression targets
float32 (N, 1).

scikit-learn is imported inside the loaders that need it, so ``import dlbasics`` stays fast.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from dlbasics.data.dataset import DatasetInfo, Splits, TensorDataset
from dlbasics.errors import ConfigError

FUNCTIONS = ("sin", "step", "abs", "sawtooth", "2d")


def split_indices(n: int, labels: np.ndarray | None = None, val: float | int = 0.2, test: float | int = 0.2,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, val, test) of a fixed random split of ``n`` samples, stratified by ``labels`` if given.

    ``val`` and ``test`` are fractions of ``n`` or sample counts; ``test`` is cut first, then ``val`` from
    the rest (sklearn's ``train_test_split`` twice), so each class keeps its share in every split.
    """
    from sklearn.model_selection import train_test_split

    def cut(idx: np.ndarray, size: float | int) -> tuple[np.ndarray, np.ndarray]:
        if size == 0:
            return idx, idx[:0]
        strat = None if labels is None else labels[idx]
        return tuple(train_test_split(idx, test_size=size, stratify=strat, random_state=seed))

    n_test = test if isinstance(test, int) else round(test * n)
    n_val = val if isinstance(val, int) else round(val * n)
    if n_test + n_val >= n:
        raise ConfigError(f"val ({n_val}) and test ({n_test}) leave no training samples out of {n}")
    rest, test_idx = cut(np.arange(n), n_test)
    train_idx, val_idx = cut(rest, n_val)
    return train_idx, val_idx, test_idx


def make_splits(x: np.ndarray, y: np.ndarray, info: DatasetInfo, seed: int = 0, stratify: bool = True,
                val: float | int = 0.2, test: float | int = 0.2) -> Splits:
    """Cut arrays ``x`` (N, ...) and ``y`` (N, ...) into train / val / test ``TensorDataset``s."""
    parts = split_indices(len(x), y if stratify else None, val=val, test=test, seed=seed)
    train, val_ds, test_ds = (TensorDataset(x[idx], y[idx]) for idx in parts)
    return Splits(train, val_ds, test_ds, info)


def _classification(name: str, x: np.ndarray, y: np.ndarray, seed: int,
                    classes: tuple[str, ...] | None = None) -> Splits:
    num_classes = int(y.max()) + 1
    info = DatasetInfo(name, "classification", tuple(x.shape[1:]), num_classes=num_classes, classes=classes)
    return make_splits(x.astype(np.float32), y.astype(np.int64), info, seed=seed, stratify=True)


def digits(flatten: bool = True, seed: int = 0) -> Splits:
    """scikit-learn's handwritten digits: 1,797 8x8 images of 0-9, pixels scaled to [0, 1].

    Inputs (N, 64) when ``flatten`` else (N, 1, 8, 8); labels (N,) int64. Split 1077 / 360 / 360,
    stratified, fixed by ``seed``.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32) / np.float32(16)  # pixel counts are 0..16
    x = x.reshape(len(x), 64) if flatten else x[:, None]  # (N, 64) or (N, 1, 8, 8)
    return _classification("digits", x, d.target, seed, classes=tuple(str(i) for i in range(10)))


def moons(n_samples: int = 1000, noise: float = 0.1, seed: int = 0) -> Splits:
    """Two interleaving half circles (sklearn's ``make_moons``): inputs (N, 2), 2 classes."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return _classification("moons", x, y, seed)


def circles(n_samples: int = 1000, noise: float = 0.05, factor: float = 0.5, seed: int = 0) -> Splits:
    """A small circle inside a large one (sklearn's ``make_circles``): inputs (N, 2), 2 classes."""
    from sklearn.datasets import make_circles

    x, y = make_circles(n_samples=n_samples, noise=noise, factor=factor, random_state=seed)
    return _classification("circles", x, y, seed)


def spirals(n_samples: int = 1000, n_classes: int = 3, noise: float = 0.2, seed: int = 0) -> Splits:
    """``n_classes`` interleaved spiral arms in the plane: inputs (N, 2), one class per arm.

    Arm k at position t in [0, 1]: radius t, angle 2πk/K + 4t + noise * ε with ε ~ N(0, 1), so no line
    separates two arms and a linear model stays near chance.
    """
    if n_classes < 2 or n_samples < 5 * n_classes:
        raise ConfigError(f"spirals needs n_classes >= 2 and n_samples >= 5 * n_classes, got {n_samples}, {n_classes}")
    rng = np.random.default_rng(seed)
    counts = np.full(n_classes, n_samples // n_classes)
    counts[: n_samples % n_classes] += 1
    y = np.repeat(np.arange(n_classes), counts)
    t = np.concatenate([np.linspace(0.0, 1.0, c) for c in counts])  # (N,) position along the arm
    angle = 2 * np.pi * y / n_classes + 4.0 * t + noise * rng.standard_normal(n_samples)
    x = np.stack([t * np.sin(angle), t * np.cos(angle)], axis=1)  # (N, 2)
    perm = rng.permutation(n_samples)  # arms interleaved, not one class after another
    return _classification("spirals", x[perm], y[perm], seed)


def _target(fn: str, x: np.ndarray) -> np.ndarray:
    if fn == "sin":
        return np.sin(x[:, 0])
    if fn == "step":
        return (x[:, 0] > 0).astype(np.float64)  # Heaviside: 0 left of 0, 1 right of it
    if fn == "abs":
        return np.abs(x[:, 0])
    if fn == "sawtooth":
        return 2.0 * np.mod(3.0 * (x[:, 0] + np.pi) / (2 * np.pi), 1.0) - 1.0  # 3 teeth rising -1 -> 1
    return np.sin(x[:, 0]) * np.cos(x[:, 1])  # "2d"


def function_regression(fn: Literal["sin", "step", "abs", "sawtooth", "2d"] = "sin", n_samples: int = 512,
                        noise: float = 0.0, seed: int = 0) -> Splits:
    """Samples of a function to approximate: y = f(x) + noise * ε, ε ~ N(0, 1).

    1-D functions ("sin", "step", "abs", "sawtooth") take x uniform in [-π, π], inputs (N, 1);
    "2d" is f(x1, x2) = sin(x1) cos(x2) on [-π, π]², inputs (N, 2). Targets (N, 1) float32.
    """
    if fn not in FUNCTIONS:
        raise ConfigError(f"unknown function {fn!r}; choose one of {', '.join(FUNCTIONS)}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi, np.pi, size=(n_samples, 2 if fn == "2d" else 1))
    y = _target(fn, x) + noise * rng.standard_normal(n_samples)
    info = DatasetInfo(fn, "regression", (x.shape[1],), target_shape=(1,))
    return make_splits(x.astype(np.float32), y.astype(np.float32)[:, None], info, seed=seed, stratify=False)
