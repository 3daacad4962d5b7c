"""ReLU: y = max(x, 0) with its mask (x > 0), and the gradient g * mask, over flat arrays.

The NaN rules are NumPy's: a NaN input gives a NaN output (``np.maximum`` propagates it) and a False mask; a
NaN gradient stays NaN where the mask is 0 (0 * NaN), as PyTorch's ReLU passes it on.
"""

from __future__ import annotations

import numpy as np

from dlbasics.kernels import Kernel


def _relu_forward_loop(x, out, mask):  # x, out, mask (n,): one pass
    for i in range(x.size):
        v = x[i]
        positive = v > 0
        mask[i] = positive
        out[i] = v if positive or v != v else 0  # v != v: a NaN, kept
    return out


def _relu_forward_numpy(x, out, mask):
    np.greater(x, 0, out=mask)
    np.maximum(x, 0, out=out)
    return out


def _relu_backward_loop(g, mask, out):  # out = g * mask
    for i in range(g.size):
        out[i] = g[i] * mask[i]
    return out


def _relu_backward_numpy(g, mask, out):
    np.multiply(g, mask, out=out)
    return out


relu_forward = Kernel(_relu_forward_loop, numpy=_relu_forward_numpy)
relu_backward = Kernel(_relu_backward_loop, numpy=_relu_backward_numpy)

__all__ = ["relu_backward", "relu_forward"]
