"""Inverted dropout's mask and scale, forward and backward, over flat arrays in one pass each.

    keep = u >= p  (u uniform in [0, 1), drawn by the op's generator),   y = x · (keep ? 1/(1 − p) : 0)
    dx = g · (keep ? 1/(1 − p) : 0)
A multiply, not a select: a NaN or inf that is dropped gives NaN (0 · NaN), as PyTorch's x · mask does.
"""

from __future__ import annotations

import numpy as np

from dlbasics.kernels import Kernel


def _dropout_forward_loop(x, u, p, scale, out, keep):  # x, u, out, keep (n,); p, scale in x's dtype
    zero = scale * 0
    for i in range(x.size):
        k = u[i] >= p
        keep[i] = k
        out[i] = x[i] * (scale if k else zero)
    return out


def _dropout_forward_numpy(x, u, p, scale, out, keep):
    np.greater_equal(u, p, out=keep)
    np.multiply(keep, scale, out=out)
    out *= x
    return out


def _dropout_backward_loop(g, keep, scale, out):
    zero = scale * 0
    for i in range(g.size):
        out[i] = g[i] * (scale if keep[i] else zero)
    return out


def _dropout_backward_numpy(g, keep, scale, out):
    np.multiply(keep, scale, out=out)
    out *= g
    return out


dropout_forward = Kernel(_dropout_forward_loop, numpy=_dropout_forward_numpy)
dropout_backward = Kernel(_dropout_backward_loop, numpy=_dropout_backward_numpy)

__all__ = ["dropout_backward", "dropout_forward"]
