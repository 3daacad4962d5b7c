"""MixUp.

Paper: "mixup: Beyond Empirical Risk Minimization", H. Zhang, M. Cisse, Y. N. Dauphin and D. Lopez-Paz,
ICLR 2018.
Idea: train on convex combinations of pairs of examples and of their one-hot labels, x' = λx_i + (1 - λ)x_j,
y' = λy_i + (1 - λ)y_j with λ ~ Beta(α, α), so the network learns to behave linearly between examples.

As in the paper's implementation, one λ is drawn per batch and each example is paired with the example a
random permutation of the batch puts in its place. The mixed targets are class probabilities, which
``nn.CrossEntropyLoss`` takes as they are (the matching cross-entropy -Σ_c y'_c log softmax(out)_c).

    train_loader = DataLoader(train, batch_size=64, shuffle=True, seed=0, collate_fn=MixUp(0.2, 10, seed=0))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dlbasics.data.dataloader import default_collate
from dlbasics.rng import Seed, get_generator
from dlbasics.tensor import Tensor


def _check_alpha(alpha: float, who: str) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.number) or not math.isfinite(alpha) \
            or alpha <= 0:
        raise ValueError(f"{who}: alpha must be a finite number > 0 (λ ~ Beta(alpha, alpha)), got {alpha!r}")
    return float(alpha)


def _check_num_classes(num_classes: int, who: str) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise ValueError(f"{who}: num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def _soft_targets(y: np.ndarray, num_classes: int, n: int, dtype: np.dtype) -> np.ndarray:
    """(N,) class indices -> (N, C) one-hot rows; (N, C) class probabilities pass through (e.g. smoothed)."""
    if y.dtype.kind in "iu" and y.shape == (n,):
        if n and (y.min() < 0 or y.max() >= num_classes):
            raise IndexError(f"mixup: class labels must lie in [0, {num_classes}), got range [{y.min()}, {y.max()}]")
        return np.eye(num_classes, dtype=dtype)[y]
    if y.dtype.kind == "f" and y.shape == (n, num_classes):
        return y.astype(dtype, copy=False)
    raise ValueError(f"mixup: targets must be class indices of shape ({n},) or class probabilities of shape "
                     f"({n}, {num_classes}), got {y.dtype} {y.shape}")


def mixup(x: Any, y: Any, alpha: float, num_classes: int,
          rng: Seed = None) -> tuple[Tensor, Tensor, float, np.ndarray]:
    """Mix a batch with a shuffled copy of itself.

    Args:
        x: inputs (N, ...) of a float dtype (Tensor or array); the mix keeps that dtype.
        y: class indices (N,) int, or class probabilities (N, C) float.
        alpha: the Beta(α, α) parameter, > 0; small α (0.1-0.4) keeps λ near 0 or 1, α = 1 is uniform.
        num_classes: C.
        rng: int seed or ``numpy.random.Generator`` for λ and the permutation; None: dl's default generator.

    Returns:
        ``(x_mixed (N, ...), y_soft (N, C) float32, lam, perm (N,))`` where, with λ ~ Beta(α, α) and perm
        a random permutation of the batch: x' = λx + (1 - λ)x[perm],  y' = λ onehot(y) + (1 - λ) onehot(y[perm]).
    """
    alpha = _check_alpha(alpha, "mixup")
    num_classes = _check_num_classes(num_classes, "mixup")
    xa = x.data if isinstance(x, Tensor) else np.asarray(x)
    ya = y.data if isinstance(y, Tensor) else np.asarray(y)
    if xa.ndim == 0 or xa.dtype.kind != "f":
        raise TypeError(f"mixup: inputs must be a float array with a batch dim, got {xa.dtype} {xa.shape} "
                        "(convert images to float first, e.g. with a transform)")
    n = xa.shape[0]
    q = _soft_targets(ya, num_classes, n, np.dtype(np.float32))
    g = get_generator(rng)
    lam = float(g.beta(alpha, alpha))
    perm = g.permutation(n)
    # in the inputs' own dtype: a Python float times a float32 array stays float32
    x_mixed = lam * xa + (1.0 - lam) * xa[perm]
    y_soft = lam * q + (1.0 - lam) * q[perm]
    return Tensor._make(x_mixed, False, None), Tensor._make(y_soft, False, None), lam, perm


class MixUp:
    """A ``collate_fn`` that collates a batch (``default_collate`` unless given another) and mixes it.

    ``MixUp(alpha, num_classes, seed)(samples) -> (x_mixed (B, ...), y_soft (B, C) float32)``. An int
    ``seed`` makes one generator for the object's life (each batch is its next draw), so a run is
    reproducible; None draws from dl's default generator (set by ``dl.manual_seed``) at every batch.
    The λ and permutation of the last batch are kept in ``last_lam`` and ``last_perm``.
    """

    def __init__(self, alpha: float, num_classes: int, seed: Seed = None,
                 collate_fn: Callable[[Sequence[Any]], Any] = default_collate) -> None:
        self.alpha = _check_alpha(alpha, "MixUp")
        self.num_classes = _check_num_classes(num_classes, "MixUp")
        self.collate_fn = collate_fn
        self._generator = None if seed is None else get_generator(seed)
        self.last_lam: float | None = None
        self.last_perm: np.ndarray | None = None

    def __call__(self, batch: Sequence[Any]) -> tuple[Tensor, Tensor]:
        collated = self.collate_fn(batch)
        if not isinstance(collated, tuple | list) or len(collated) != 2:
            raise ValueError(f"MixUp: expected batches of (inputs, targets), got {type(collated).__name__}"
                             + (f" of length {len(collated)}" if isinstance(collated, tuple | list) else ""))
        # get_generator(None) is looked up per batch so that a later dl.manual_seed takes effect
        x, y, lam, perm = mixup(collated[0], collated[1], self.alpha, self.num_classes,
                                get_generator(self._generator))
        self.last_lam, self.last_perm = lam, perm
        return x, y

    def __repr__(self) -> str:
        return f"MixUp(alpha={self.alpha}, num_classes={self.num_classes})"
