"""Transforms of image arrays, each working on one sample (C, H, W) or on a batch (N, C, H, W).

A batch is transformed in a few whole-array NumPy calls (random crops gather all windows with one
fancy index), so a ``TensorDataset(x, y, transform=...)`` costs a handful of calls per batch. A random
transform draws from its own generator (``seed``: int or ``numpy.random.Generator``; None uses dl's
default generator at call time). Draws are laid out so that transforming a batch gives the same result
as transforming its samples one after another with the same seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dlbasics.rng import Seed, get_generator


def _as_batch(x: Any, who: str) -> tuple[np.ndarray, bool]:
    """``x`` as (N, C, H, W) and whether it was a batch; one sample (C, H, W) becomes a batch of one."""
    x = np.asarray(x)
    if x.ndim == 4:
        return x, True
    if x.ndim == 3:
        return x[None], False
    raise ValueError(f"{who} expects an image (C, H, W) or a batch (N, C, H, W), got shape {x.shape}")


class _Random:
    """A transform with its own random stream."""

    def __init__(self, seed: Seed) -> None:
        self._generator = None if seed is None else get_generator(seed)

    def _rng(self) -> np.random.Generator:
        return get_generator(self._generator)


class Compose:
    """Apply ``transforms`` in order: ``Compose([f, g])(x) = g(f(x))``."""

    def __init__(self, transforms: Sequence[Callable[[np.ndarray], np.ndarray]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


class ToFloat:
    """Convert to float32, scaled by ``scale``; by default uint8 pixels 0..255 become [0, 1] (x / 255)."""

    def __init__(self, scale: float | None = None) -> None:
        self.scale = scale

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        out = x.astype(np.float32)
        if self.scale is not None:
            out *= np.float32(self.scale)
        elif x.dtype == np.uint8:
            out /= np.float32(255)  # divide, as torchvision's ToTensor does, for the same float32 pixels
        return out

    def __repr__(self) -> str:
        return f"ToFloat(scale={self.scale})"


class Normalize:
    """``(x - mean) / std``, per channel for images (C, H, W) / (N, C, H, W), per feature or scalar for
    flat data (D,) / (N, D).

    ``mean`` and ``std`` are scalars or sequences of length C (images) or D (flat data).
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        m, s = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
        try:
            m, s = np.broadcast_arrays(m, s)
        except ValueError:
            m = s = np.empty((0, 0))  # rejected just below
        if m.ndim > 1:
            raise ValueError(f"Normalize mean and std must be scalars or 1-D of one length, got {mean!r}, {std!r}")
        if np.any(s == 0):
            raise ValueError(f"Normalize std must be non-zero, got {s.tolist()}")
        self.mean, self.std = np.array(m), np.array(s)  # the same shape, () or (K,)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize expects floating data, got {x.dtype}; convert with ToFloat() first")
        mean, std = self.mean.astype(x.dtype), self.std.astype(x.dtype)  # float32 in, float32 out
        if mean.ndim == 1:
            if x.ndim not in (1, 2, 3, 4):
                raise ValueError(f"Normalize expects (D,), (N, D), (C, H, W) or (N, C, H, W), got shape {x.shape}")
            image = x.ndim >= 3
            axis, what = (-3, "channels") if image else (-1, "features")  # C of (N, C, H, W); D of (N, D)
            if x.shape[axis] != mean.size:
                have = f"{x.shape[axis]} {what}"
                raise ValueError(f"Normalize has statistics for {mean.size} {what}, input {x.shape} has {have}")
            if image:
                mean, std = mean.reshape(-1, 1, 1), std.reshape(-1, 1, 1)
        out = x - mean
        out /= std
        return out

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop(_Random):
    """Pad with ``padding`` zeros on every side, then cut a random ``size`` window out of each image.

    (C, H, W) -> (C, h, w) and (N, C, H, W) -> (N, C, h, w), with an independent offset per image.
    """

    def __init__(self, size: int | tuple[int, int], padding: int = 0, seed: Seed = None) -> None:
        super().__init__(seed)
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if min(self.size) < 1:
            raise ValueError(f"RandomCrop size must be positive, got {size}")
        if padding < 0:
            raise ValueError(f"RandomCrop padding must be >= 0, got {padding}")
        self.padding = int(padding)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        xb, batched = _as_batch(x, "RandomCrop")
        n, c, h_in, w_in = xb.shape
        p, (h, w) = self.padding, self.size
        hp, wp = h_in + 2 * p, w_in + 2 * p
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop size {self.size} is larger than the padded image {(hp, wp)}")
        if p:
            padded = np.zeros((n, c, hp, wp), dtype=xb.dtype)
            padded[:, :, p:p + h_in, p:p + w_in] = xb
        else:
            padded = xb
        # one uniform pair per image, row by row, so a batch and its samples one by one draw the same numbers
        u = self._rng().random((n, 2))
        top = (u[:, 0] * (hp - h + 1)).astype(np.intp)  # (N,) in [0, hp - h]
        left = (u[:, 1] * (wp - w + 1)).astype(np.intp)
        windows = sliding_window_view(padded, (h, w), axis=(2, 3))  # (N, C, hp-h+1, wp-w+1, h, w), a view
        out = windows[np.arange(n), :, top, left]  # (N, C, h, w): the advanced indices' axis comes first
        return out if batched else out[0]

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip(_Random):
    """Reverse the width axis of each image with probability ``p``; (C, H, W) or (N, C, H, W)."""

    def __init__(self, p: float = 0.5, seed: Seed = None) -> None:
        super().__init__(seed)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, x: np.ndarray) -> np.ndarray:
        xb, batched = _as_batch(x, "RandomHorizontalFlip")
        flip = self._rng().random(len(xb)) < self.p  # (N,)
        out = xb.copy()
        out[flip] = xb[flip, :, :, ::-1]
        return out if batched else out[0]

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"
