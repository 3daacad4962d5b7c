"""Matrix products: ``matmul`` (NumPy/PyTorch broadcasting rules) and the fused ``linear``."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics.autograd.function import Function
from dlbasics.ops._operands import operands
from dlbasics.tensor import Tensor


def _swap(a: np.ndarray) -> np.ndarray:
    return a.swapaxes(-1, -2)


class MatMul(Function):
    """out = a @ b;  da = g @ b^T,  db = a^T @ g  (1-D operands promoted and squeezed as in NumPy)."""

    def forward(self, a, b):
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if self.needs_input_grad[0] else None
        self.a_ndim, self.b_ndim = a.ndim, b.ndim
        if a.ndim > 2 and b.ndim == 2:  # (..., m, k) @ (k, n): one large GEMM instead of a batch of small ones
            return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])
        return a @ b

    def backward(self, g):
        a, b = self.a, self.b
        ga = gb = None
        if self.a_ndim == 1 and self.b_ndim == 1:
            return (g * b if b is not None else None), (g * a if a is not None else None)
        if self.a_ndim == 1:  # (k) @ (..., k, n) -> (..., n)
            if self.needs_input_grad[0]:
                ga = (g[..., None, :] @ _swap(b))[..., 0, :]
            if self.needs_input_grad[1]:
                gb = a[:, None] * g[..., None, :]
            return ga, gb
        if self.b_ndim == 1:  # (..., m, k) @ (k) -> (..., m)
            if self.needs_input_grad[0]:
                ga = g[..., None] * b
            if self.needs_input_grad[1]:
                gb = (_swap(a) @ g[..., None])[..., 0]
            return ga, gb
        if self.needs_input_grad[0]:
            ga = g @ _swap(b)
        if self.needs_input_grad[1]:
            if self.b_ndim == 2 and self.a_ndim > 2:  # sum over the batch inside one GEMM
                gb = a.reshape(-1, a.shape[-1]).T @ g.reshape(-1, g.shape[-1])
            else:
                gb = _swap(a) @ g
        return ga, gb


class Linear(Function):
    """y = x W^T + b for x (..., in), W (out, in), b (out):
    dx = g W,  dW = g^T x,  db = sum_rows g   (rows = all leading dims, one GEMM each)."""

    def forward(self, x, w, b=None):
        x2 = x.reshape(-1, x.shape[-1])
        self.x2 = x2 if self.needs_input_grad[1] else None
        self.w = w if self.needs_input_grad[0] else None
        self.x_shape = x.shape
        out = x2 @ w.T
        if b is not None:
            out += b
        return out.reshape(*x.shape[:-1], w.shape[0])

    def backward(self, g):
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g2 @ self.w).reshape(self.x_shape) if self.needs_input_grad[0] else None
        gw = g2.T @ self.x2 if self.needs_input_grad[1] else None
        if len(self.needs_input_grad) == 3 and self.needs_input_grad[2]:
            return gx, gw, g2.sum(axis=0)
        return gx, gw


def _shape_error(a: Tensor, b: Tensor) -> None:
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both operands need at least 1 dim, got {a.shape} @ {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise RuntimeError(f"matmul: {a.shape} @ {b.shape}: inner sizes {k_a} != {k_b}")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise RuntimeError(
            f"matmul: {a.shape} @ {b.shape}: batch dims {a.shape[:-2]} and {b.shape[:-2]} do not broadcast"
        ) from None


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands are vectors, leading dims broadcast."""
    a, b = operands(a, b)
    _shape_error(a, b)
    return MatMul.apply(a, b)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b;  x (..., in_features), W (out_features, in_features), b (out_features)."""
    if weight.ndim != 2:
        raise RuntimeError(f"linear: weight must be 2-D (out_features, in_features), got {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise RuntimeError(
            f"linear: input {x.shape} has {x.shape[-1] if x.ndim else 0} features "
            f"but weight {weight.shape} expects {weight.shape[1]}"
        )
    if bias is None:
        return Linear.apply(x, weight)
    if bias.shape != (weight.shape[0],):
        raise RuntimeError(f"linear: bias {bias.shape} does not match weight {weight.shape}")
    return Linear.apply(x, weight, bias)
