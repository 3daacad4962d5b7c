"""ReLU: y = max(x, 0) with its mask (x > 0), and the gradient g * mask, over flat arrays; and GELU.

The NaN rules are NumPy's: a NaN input gives a NaN output (``np.maximum`` propagates it) and a False mask; a
NaN gradient stays NaN where the mask is 0 (0 * NaN), as PyTorch's ReLU passes it on.
"""

from __future__ import annotations

import math

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



# ---- GELU: x Phi(x) (exact, with erf) or Hendrycks & Gimpel's tanh form --------------------------------------
_SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327
_K = 0.7978845608028654  # sqrt(2 / pi)


def _gelu_forward_loop(x, tanh_form, out):
    """out = x Phi(x); with ``tanh_form``: 0.5 x (1 + tanh(k (x + 0.044715 x^3)))."""
    for i in range(x.size):
        v = x[i]
        if tanh_form:
            out[i] = 0.5 * v * (1 + math.tanh(_K * (v + 0.044715 * v * v * v)))
        else:
            out[i] = v * 0.5 * (1 + math.erf(v * _SQRT_HALF))
    return out


def _gelu_forward_numpy(x, tanh_form, out):
    from scipy import special

    if tanh_form:
        out[:] = 0.5 * x * (1 + np.tanh(_K * (x + 0.044715 * x**3)))
    else:
        out[:] = x * (0.5 * (1 + special.erf(x * _SQRT_HALF)))
    return out


def _gelu_backward_loop(g, x, tanh_form, out):
    """exact: g (Phi(x) + x phi(x));  tanh: g (0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 0.044715 x^2))."""
    for i in range(x.size):
        v = x[i]
        if tanh_form:
            t = math.tanh(_K * (v + 0.044715 * v * v * v))
            out[i] = g[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * (_K * (1 + 3 * 0.044715 * v * v)))
        else:
            cdf = 0.5 * (1 + math.erf(v * _SQRT_HALF))
            out[i] = g[i] * (cdf + v * math.exp(-0.5 * v * v) * _INV_SQRT_2PI)
    return out


def _gelu_backward_numpy(g, x, tanh_form, out):
    from scipy import special

    if tanh_form:
        t = np.tanh(_K * (x + 0.044715 * x**3))
        out[:] = g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * (_K * (1 + 3 * 0.044715 * x * x)))
    else:
        cdf = 0.5 * (1 + special.erf(x * _SQRT_HALF))
        out[:] = g * (cdf + x * np.exp(-0.5 * x * x) * _INV_SQRT_2PI)
    return out


gelu_forward = Kernel(_gelu_forward_loop, numpy=_gelu_forward_numpy)
gelu_backward = Kernel(_gelu_backward_loop, numpy=_gelu_backward_numpy)

__all__ = ["gelu_backward", "gelu_forward", "relu_backward", "relu_forward"]
