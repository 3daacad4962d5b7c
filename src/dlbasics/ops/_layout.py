"""New arrays in the memory layout of an existing one.

A conv's output is channels-last in memory behind an NCHW view (ops/conv/shifted.py, ops/conv/channels_last.py).
An op that builds a new array of a different shape from such an input (padding, pooling, a gradient buffer) must
keep that axis order: a C-ordered result would make every later elementwise op mix layouts (slower than matching
strides: docs/benchmarks.md, BatchNorm and pooling) and the next conv transpose its input back.

Also: per-channel broadcasts over a channels-last matrix along long rows (``per_channel``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def axis_order(ref: np.ndarray) -> tuple[int, ...]:
    """The axes of ``ref`` from outermost to innermost in memory; axes of size 0 or 1 (whose stride means
    nothing) go outermost, ties keep C order."""
    return tuple(sorted(range(ref.ndim), key=lambda a: (-abs(ref.strides[a]) if ref.shape[a] > 1 else -np.inf, a)))


def empty_in_order(shape: Sequence[int], order: Sequence[int], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised array of ``shape`` whose axes lie in memory outermost-first as ``order`` says."""
    if len(order) != len(shape) or tuple(order) == tuple(range(len(shape))):
        return np.empty(tuple(shape), dtype)
    return np.empty(tuple(shape[a] for a in order), dtype).transpose(np.argsort(order))


def full_in_order(shape: Sequence[int], value: float, order: Sequence[int], dtype: np.dtype | type) -> np.ndarray:
    out = empty_in_order(shape, order, dtype)
    out.fill(value)
    return out


def zeros_like_layout(shape: Sequence[int], ref: np.ndarray, dtype: np.dtype | type | None = None) -> np.ndarray:
    """Zeros of ``shape`` laid out in memory like ``ref`` (same rank)."""
    return full_in_order(shape, 0, axis_order(ref), ref.dtype if dtype is None else dtype)


def long_rows(a: np.ndarray) -> tuple[np.ndarray, int]:
    """(view, k): a C-contiguous (M, C) array as (M / k, k C) rows, k the largest power of two that divides M
    with k C <= 4096. A per-channel vector tiled k times then broadcasts along long rows: NumPy loops a
    broadcast over a 16-long last axis 16 values at a time, over 4096 it vectorizes (measured: docs/benchmarks.md,
    BatchNorm and pooling)."""
    m, c = a.shape
    k = m & -m if m else 1
    while k > 1 and k * c > 4096:
        k //= 2
    return a.reshape(m // k, k * c), k


def per_channel(op: np.ufunc, x: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    """out = op(x, v) for x and out C-contiguous (M, C) and v (C,), along long rows (``long_rows``)."""
    xr, k = long_rows(x)
    op(xr, np.tile(v, k), out=long_rows(out)[0])
