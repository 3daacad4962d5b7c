"""Activation functions: the nonlinearities between linear layers."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from dlbasics import kernels
from dlbasics.autograd.function import Function
from dlbasics.kernels.activation import (
    gelu32_backward,
    gelu32_forward,
    gelu_backward,
    gelu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
)
from dlbasics.ops._layout import axis_order
from dlbasics.ops._operands import floating
from dlbasics.tensor import Tensor


class ReLU(Function):
    """max(x, 0); the gradient at 0 is 0."""

    def forward(self, x):
        # keep the mask, not the output: a quarter of the memory, and backward is one pass (0.18 vs 0.32 ms
        # on 2 MB; the compare here costs 0.08)
        out, self.mask = _masked_map(x, relu_forward)
        return np.maximum(x, 0) if out is None else out

    def backward(self, g):
        # a multiply by the mask, 8x faster than np.where (which zeroes even a NaN gradient; this passes it on)
        out = _masked_grad(g, self.mask, relu_backward)
        return g * self.mask if out is None else out


class LeakyReLU(Function):
    """x if x > 0 else slope * x;  d/dx = 1 if x > 0 else slope."""

    def forward(self, x, negative_slope):
        self.slope = x.dtype.type(negative_slope) if x.dtype.kind == "f" else negative_slope
        out, self.mask = _masked_map(x, leaky_relu_forward, self.slope)
        return np.where(self.mask, x, x * self.slope) if out is None else out

    def backward(self, g):
        out = _masked_grad(g, self.mask, leaky_relu_backward, self.slope)
        return np.where(self.mask, g, g * self.slope) if out is None else out


def _masked_map(x: np.ndarray, kernel, *args) -> tuple[np.ndarray | None, np.ndarray]:
    """(out, mask = x > 0) from ``kernel(flat x, *args, flat out, flat mask)`` in x's own memory order (a
    channels-last conv output stays channels-last); (None, mask) where the kernel does not apply."""
    flat = _flat_view(x) if kernels.use(x.size) else None
    if flat is None:
        return None, x > 0
    out, mask = np.empty_like(x), np.empty_like(x, dtype=bool)  # x's memory order: flat views agree
    kernel(flat, *args, out.ravel(order="K"), mask.ravel(order="K"))
    return out, mask


def _masked_grad(g: np.ndarray, mask: np.ndarray, kernel, *args) -> np.ndarray | None:
    """``kernel(flat g, flat mask, *args, flat out)`` in g's memory order; None where the kernel does not apply.
    A mask laid out otherwise (the gradient of a flatten, or of a conv that wants another layout) is copied to
    g's layout first: a pass over bytes, where mixing the layouts in the arithmetic costs several (DCGAN's
    discriminator: 3 ms a LeakyReLU gradient mixed, 0.6 ms with the mask copied)."""
    flat = _flat_view(g) if kernels.use(g.size) and g.shape == mask.shape else None
    if flat is None:
        return None
    if axis_order(g) != axis_order(mask):
        relaid = np.empty_like(g, dtype=bool)  # g's memory order
        np.copyto(relaid, mask)
        mask = relaid
    out = np.empty_like(g)
    kernel(flat, mask.ravel(order="K"), *args, out.ravel(order="K"))
    return out


def _like(ref: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``a``'s values in an array laid out as ``ref`` (same shape)."""
    out = np.empty_like(ref)
    np.copyto(out, a)
    return out


def _flat_view(x: np.ndarray) -> np.ndarray | None:
    """x as one flat array in memory order, without a copy, or None (a view with gaps, or not a float). A dense
    array's ``ravel(order="K")`` is a view, in the order of its memory."""
    return x.ravel(order="K") if x.dtype.kind == "f" and _dense(x) else None


def _dense(x: np.ndarray) -> bool:
    """Whether x fills its memory without gaps in some axis order (a channels-last conv output behind NCHW)."""
    order = sorted(range(x.ndim), key=lambda a: x.strides[a])
    expected = x.itemsize
    for a in order:
        if x.shape[a] > 1 and x.strides[a] != expected:
            return False
        expected *= x.shape[a]
    return True


class Sigmoid(Function):
    """1 / (1 + e^-x);  d/dx = s (1 - s)."""

    def forward(self, x):
        self.out = special.expit(x)
        return self.out

    def backward(self, g):
        s = self.out
        return g * s * (1 - s)


class Tanh(Function):
    """d/dx tanh x = 1 - tanh^2 x."""

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, g):
        t = self.out
        return g * (1 - t * t)


_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_K = math.sqrt(2.0 / math.pi)


class GELU(Function):
    """x Phi(x), Phi the standard normal CDF (``approximate="tanh"``: Hendrycks & Gimpel's tanh form).

    exact:  d/dx = Phi(x) + x phi(x)
    tanh:   0.5 x (1 + tanh u), u = k (x + 0.044715 x^3), k = sqrt(2/pi)
    """

    def forward(self, x, approximate):
        self.x, self.approximate = x, approximate
        # the tanh form as one compiled pass (kernels/activation.py); the exact form in float32 too, with erf by
        # Abramowitz & Stegun's formula (PyTorch's float erf; SciPy's works in float64: 7.1 vs 1.15 ms on 768 x
        # 512); in float64 the exact form keeps SciPy's erf
        exact32 = approximate != "tanh" and x.dtype == np.float32
        self.flat = _flat_view(x) if approximate == "tanh" or exact32 else None
        self.cdf = None
        if exact32 and self.flat is not None:  # the twin below MIN_SIZE: the same formula either way
            out, self.cdf = np.empty_like(x), np.empty_like(x)
            kernel = gelu32_forward if kernels.use(x.size) else gelu32_forward.numpy
            kernel(self.flat, out.ravel(order="K"), self.cdf.ravel(order="K"))
            return out
        if self.flat is not None and not kernels.use(x.size):
            self.flat = None
        if self.flat is not None:
            out = np.empty_like(x)
            gelu_forward(self.flat, True, out.ravel(order="K"))
            return out
        if approximate == "tanh":
            self.t = np.tanh(_K * (x + 0.044715 * x**3))
            return 0.5 * x * (1 + self.t)
        self.cdf = 0.5 * (1 + special.erf(x / _SQRT_2))
        return x * self.cdf

    def backward(self, g):
        x = self.x
        if self.flat is not None:  # forward ran a kernel: the gradient too, from x
            same = g.shape == x.shape and axis_order(g) == axis_order(x) and _flat_view(g) is not None
            if not same or g.dtype != x.dtype:  # bring g into x's memory order, so that the flat views line up
                g = _like(x, g)
            out = np.empty_like(x)
            if self.cdf is not None:
                kernel = gelu32_backward if kernels.use(x.size) else gelu32_backward.numpy
                kernel(g.ravel(order="K"), self.flat, self.cdf.ravel(order="K"), out.ravel(order="K"))
            else:
                gelu_backward(g.ravel(order="K"), self.flat, True, out.ravel(order="K"))
            return out
        if self.approximate == "tanh":
            t = self.t
            du = _K * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
        pdf = np.exp(-0.5 * x * x) * _INV_SQRT_2PI
        return g * (self.cdf + x * pdf)


def relu(x: Tensor) -> Tensor:
    return ReLU.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU.apply(floating(x), negative_slope=negative_slope)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(floating(x))


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(floating(x))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(floating(x), approximate=approximate)
