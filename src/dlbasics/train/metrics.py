"""Metrics computed on a batch from the model's output and the target; the loop averages them over an
epoch weighted by batch size (exact for metrics that are means over examples, as all of these are)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dlbasics.tensor import Tensor


def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def accuracy(output: Any, target: Any) -> float:
    """Fraction of rows whose largest logit is the target class (soft targets: their largest entry)."""
    out, t = _array(output), _array(target)
    if t.ndim == out.ndim and t.dtype.kind == "f":  # class probabilities (MixUp, label smoothing)
        t = t.argmax(axis=1)
    return float(np.mean(out.argmax(axis=1) == t))


def mae(output: Any, target: Any) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(_array(output) - _array(target))))


def mse(output: Any, target: Any) -> float:
    """Mean squared error."""
    d = _array(output) - _array(target)
    return float(np.mean(d * d))


METRICS: dict[str, Callable[[Any, Any], float]] = {"accuracy": accuracy, "mae": mae, "mse": mse}


def get_metric(name: str) -> Callable[[Any, Any], float]:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    return METRICS[name]
