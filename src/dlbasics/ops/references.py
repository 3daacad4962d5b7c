"""Textbook BatchNorm and max-pooling, forward and backward side by side: read these first.

The ops in ``ops/norm.py`` and ``ops/pool.py`` compute the same numbers faster. They work on whatever memory
layout a convolution left (channels-last views, rows with gaps), fold per-channel scalings into BLAS calls, and
hand large arrays to compiled kernels (``kernels/``). These are the plain NCHW versions of the same math; the
tests hold the fast paths equal to them (tests/ops/test_references.py). The convolution's reference is
``ops/conv/reference.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


# ---- BatchNorm -------------------------------------------------------------------------------------------------
class BatchNormCache(NamedTuple):
    xhat: np.ndarray  # (N, C, ...) the normalised input
    inv_std: np.ndarray  # (C,) 1 / sqrt(var + eps)
    gamma: np.ndarray  # (C,)
    batch_stats: bool  # normalised with the batch's own statistics (training), or with constants (evaluation)


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """(C,) -> (1, C, 1, ...): broadcasts against (N, C, ...)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def batch_norm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
                       mean: np.ndarray | None = None, var: np.ndarray | None = None
                       ) -> tuple[np.ndarray, BatchNormCache]:
    """y = gamma xhat + beta, xhat = (x - mean) / sqrt(var + eps), per channel (dim 1) over all other dims.

    Without ``mean``/``var`` (training) they are the batch's: mean and biased variance over the M = x.size / C
    values of each channel; with them (evaluation) they are constants."""
    axes = (0, *range(2, x.ndim))
    batch_stats = mean is None
    if batch_stats:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - _per_channel(mean, x.ndim)) * _per_channel(inv_std, x.ndim)
    y = _per_channel(gamma, x.ndim) * xhat + _per_channel(beta, x.ndim)
    return y, BatchNormCache(xhat, inv_std, gamma, batch_stats)


def batch_norm_backward(g: np.ndarray, cache: BatchNormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) for dy = g.

    dbeta = sum g,  dgamma = sum g xhat  (sums over all dims but the channel's). With constant statistics
    dx = gamma inv_std g. With the batch's, the mean and the variance depend on x too, and the chain rule
    through both gives
        dx = gamma inv_std (g - mean(g) - xhat mean(g xhat))
    (means over the channel's M values): the gradient loses its component along 1 and along xhat."""
    xhat, inv_std, gamma, batch_stats = cache
    axes = (0, *range(2, g.ndim))
    dbeta = g.sum(axis=axes)
    dgamma = (g * xhat).sum(axis=axes)
    scale = _per_channel(gamma * inv_std, g.ndim)
    if not batch_stats:
        return scale * g, dgamma, dbeta
    m = g.size // g.shape[1]
    dx = scale * (g - _per_channel(dbeta / m, g.ndim) - xhat * _per_channel(dgamma / m, g.ndim))
    return dx, dgamma, dbeta


# ---- max-pooling -----------------------------------------------------------------------------------------------
class Pool(NamedTuple):
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out: tuple[int, int]  # (Ho, Wo), as the op computes them (ceil_mode included)


def _taps(pool: Pool) -> list[tuple[int, int, slice, slice]]:
    """(i, j, rows, columns) for each window offset: the padded input's values it reads, one per output."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = pool.kernel, pool.stride, pool.dilation, pool.out
    return [(i, j, slice(dh * i, dh * i + sh * (ho - 1) + 1, sh), slice(dw * j, dw * j + sw * (wo - 1) + 1, sw))
            for i in range(kh) for j in range(kw)]


def _padded_size(size: int, k: int, s: int, p: int, d: int, out: int) -> int:
    """Padding p on top, and below as much as the last window reaches (ceil_mode's may reach past p)."""
    return max(size + 2 * p, (out - 1) * s + d * (k - 1) + 1)


def max_pool_forward(x: np.ndarray, pool: Pool) -> tuple[np.ndarray, np.ndarray]:
    """(y, which): y[n, c, u, v] = max over the window's kh kw taps of the input padded with -inf, and ``which``
    the index of the tap that holds it (the first, if several do): the only one the gradient goes to."""
    (kh, kw), (ph, pw) = pool.kernel, pool.padding
    n, c, h, w = x.shape
    hp = _padded_size(h, kh, pool.stride[0], ph, pool.dilation[0], pool.out[0])
    wp = _padded_size(w, kw, pool.stride[1], pw, pool.dilation[1], pool.out[1])
    xp = np.full((n, c, hp, wp), -np.inf, x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    windows = np.stack([xp[:, :, rows, cols] for _, _, rows, cols in _taps(pool)])  # (kh kw, N, C, Ho, Wo)
    which = windows.argmax(axis=0)
    return np.take_along_axis(windows, which[None], axis=0)[0], which


def max_pool_backward(g: np.ndarray, which: np.ndarray, x_shape: tuple[int, ...], pool: Pool) -> np.ndarray:
    """dx: each output's gradient added to the input value its window took (one strided add per tap: windows
    that overlap may add several to one value), then the padding cut off."""
    (kh, kw), (ph, pw) = pool.kernel, pool.padding
    n, c, h, w = x_shape
    hp = _padded_size(h, kh, pool.stride[0], ph, pool.dilation[0], pool.out[0])
    wp = _padded_size(w, kw, pool.stride[1], pw, pool.dilation[1], pool.out[1])
    dxp = np.zeros((n, c, hp, wp), g.dtype)
    for i, j, rows, cols in _taps(pool):
        dxp[:, :, rows, cols] += np.where(which == i * kw + j, g, 0)
    return dxp[:, :, ph:ph + h, pw:pw + w]


__all__ = ["BatchNormCache", "Pool", "batch_norm_backward", "batch_norm_forward", "max_pool_backward",
           "max_pool_forward"]
