"""ReLU: y = max(x, 0) with its mask (x > 0), and the gradient g * mask, over flat arrays; LeakyReLU; and GELU.

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


# ---- LeakyReLU: x if x > 0 else slope x, the mask (x > 0), and the gradient g if x > 0 else slope g -----------
# ``slope`` comes in the arrays' own dtype, so float32 inputs are multiplied in float32, as PyTorch and NumPy do
def _leaky_relu_forward_loop(x, slope, out, mask):
    for i in range(x.size):
        v = x[i]
        positive = v > 0
        mask[i] = positive
        out[i] = v if positive else v * slope  # a NaN: NaN * slope, NaN
    return out


def _leaky_relu_forward_numpy(x, slope, out, mask):
    np.greater(x, 0, out=mask)
    np.multiply(x, slope, out=out)
    np.copyto(out, x, where=mask)
    return out


def _leaky_relu_backward_loop(g, mask, slope, out):
    for i in range(g.size):
        out[i] = g[i] if mask[i] else g[i] * slope
    return out


def _leaky_relu_backward_numpy(g, mask, slope, out):
    np.multiply(g, slope, out=out)
    np.copyto(out, g, where=mask)
    return out


leaky_relu_forward = Kernel(_leaky_relu_forward_loop, numpy=_leaky_relu_forward_numpy)
leaky_relu_backward = Kernel(_leaky_relu_backward_loop, numpy=_leaky_relu_backward_numpy)



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


# ---- exact GELU in float32: erf by Abramowitz & Stegun 7.1.26 --------------------------------------------------
# erf(z) = 1 - (a1 t + a2 t^2 + a3 t^3 + a4 t^4 + a5 t^5) exp(-z^2),  t = 1 / (1 + p z),  z >= 0 (odd for z < 0),
# |error| <= 1.5e-7: float32's own resolution near 1, and the formula PyTorch's vectorized float erf uses. SciPy's
# erf works in float64 and took 7.1 ms on 768 x 512 values, this loop 1.15 ms; float64 keeps SciPy's erf.
# With z = |x| / sqrt(2), exp(-z^2) = exp(-x^2 / 2) is also the normal density's, so backward needs one exp too.
_F32 = np.float32
_P, _A1, _A2, _A3, _A4, _A5 = (_F32(0.3275911), _F32(0.254829592), _F32(-0.284496736), _F32(1.421413741),
                               _F32(-1.453152027), _F32(1.061405429))
_HALF, _ONE, _SQRT_HALF32, _INV_SQRT_2PI32 = _F32(0.5), _F32(1.0), _F32(_SQRT_HALF), _F32(_INV_SQRT_2PI)


def _gelu32_forward_loop(x, out, cdf):
    """out = x Phi(x), cdf = Phi(x) = (1 + erf(x / sqrt 2)) / 2 (kept for backward); float32, flat."""
    for i in range(x.size):
        v = x[i]
        z = abs(v) * _SQRT_HALF32
        t = _ONE / (_ONE + _P * z)
        erf = _ONE - ((((_A5 * t + _A4) * t + _A3) * t + _A2) * t + _A1) * t * np.exp(-z * z)
        c = _HALF * (_ONE + erf) if v >= 0 else _HALF * (_ONE - erf)  # a NaN takes the second: NaN either way
        cdf[i] = c
        out[i] = v * c
    return out


def _gelu32_forward_numpy(x, out, cdf):
    z = np.abs(x) * _SQRT_HALF32
    t = _ONE / (_ONE + _P * z)
    erf = _ONE - ((((_A5 * t + _A4) * t + _A3) * t + _A2) * t + _A1) * t * np.exp(-z * z)
    np.multiply(_HALF, np.where(x >= 0, _ONE + erf, _ONE - erf), out=cdf)
    np.multiply(x, cdf, out=out)
    return out


def _gelu32_backward_loop(g, x, cdf, out):
    """out = g (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)."""
    for i in range(x.size):
        v = x[i]
        out[i] = g[i] * (cdf[i] + v * (np.exp(-_HALF * v * v) * _INV_SQRT_2PI32))
    return out


def _gelu32_backward_numpy(g, x, cdf, out):
    np.multiply(g, cdf + x * (np.exp(-_HALF * x * x) * _INV_SQRT_2PI32), out=out)
    return out


gelu32_forward = Kernel(_gelu32_forward_loop, numpy=_gelu32_forward_numpy)
gelu32_backward = Kernel(_gelu32_backward_loop, numpy=_gelu32_backward_numpy)

__all__ = ["gelu32_backward", "gelu32_forward", "gelu_backward", "gelu_forward", "relu_backward", "relu_forward"]
