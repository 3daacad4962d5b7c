"""Fused neural-network ops whose hand-written backward is faster and more stable than the composite:
softmax, log-softmax, cross-entropy (log-softmax + NLL in one op), BCE with logits, dropout."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from dlbasics import kernels
from dlbasics.autograd.function import Function
from dlbasics.kernels.dropout import dropout_backward, dropout_forward
from dlbasics.ops._operands import floating, normalize_dim
from dlbasics.tensor import Tensor


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    """z - logsumexp(z): shifted by the max first, so |z| = 1e4 stays finite and exact."""
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


class Softmax(Function):
    """s = e^z / sum e^z;  dz = s * (g - sum(g * s))."""

    def forward(self, z, axis):
        e = np.exp(z - np.max(z, axis=axis, keepdims=True))
        e /= np.sum(e, axis=axis, keepdims=True)
        self.s, self.axis = e, axis
        return e

    def backward(self, g):
        s = self.s
        return s * (g - np.sum(g * s, axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """y = z - logsumexp(z);  dz = g - softmax(z) * sum(g)."""

    def forward(self, z, axis):
        out = _log_softmax(z, axis)
        self.out, self.axis = out, axis
        return out

    def backward(self, g):
        return g - np.exp(self.out) * np.sum(g, axis=self.axis, keepdims=True)


class CrossEntropy(Function):
    """Cross-entropy of logits z (N, C) against class indices or class probabilities.

    Every case is L_i = -sum_c A_ic log p_ic with p = softmax(z_i), so dL_i/dz_i = p_i sum_c A_ic - A_i.
    Indices t:  A_i = (1 - eps) w_t onehot(t_i) + (eps / C) w   (zero for ignored rows)
    Probs q:    A_i = w * ((1 - eps) q_i + eps / C)
    ``mean`` divides by sum_i w_{t_i} over kept rows (indices) or by N (probabilities), as PyTorch.
    """

    def forward(self, z, target, weight, ignore_index, label_smoothing, reduction):
        n, c = z.shape
        logp = _log_softmax(z, 1)
        eps = label_smoothing
        self.reduction, self.eps, self.weight = reduction, eps, weight
        if target.dtype.kind in "iu":
            valid = target != ignore_index
            t = np.where(valid, target, 0)
            wy = (weight[t] if weight is not None else np.ones(n, z.dtype)) * valid
            rows = np.arange(n)
            loss = -logp[rows, t] * wy
            if eps:
                wl = logp * weight if weight is not None else logp
                loss = (1 - eps) * loss - (eps / c) * np.sum(wl, axis=1) * valid
            self.t, self.wy, self.valid, self.a = t, wy, valid, None
            denom = wy.sum()
        else:
            q = target if not eps else target * (1 - eps) + eps / c
            a = q * weight if weight is not None else q
            loss = -np.sum(a * logp, axis=1)
            self.a = a
            denom = n
        self.logp, self.denom = logp, denom
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return loss.sum() / np.asarray(denom, loss.dtype)  # all rows ignored -> nan, as PyTorch

    def backward(self, g):
        p = np.exp(self.logp)
        n, c = p.shape
        if self.reduction == "none":
            scale = g
        else:
            scale = np.full(n, g / self.denom if self.reduction == "mean" else g, p.dtype)
        if self.a is not None:
            a = self.a
            return (p * a.sum(axis=1, keepdims=True) - a) * scale[:, None]
        eps, w, wy = self.eps, self.weight, self.wy
        scale = np.where(self.valid, scale, 0)  # ignored rows get 0, even when mean divides by 0 (as PyTorch)
        s = (1 - eps) * wy
        if eps:
            s = s + (eps / c) * (w.sum() if w is not None else c) * self.valid
        grad = p * (scale * s)[:, None]
        grad[np.arange(n), self.t] -= scale * (1 - eps) * wy
        if eps:
            smooth = (scale * self.valid * (eps / c))[:, None]
            grad -= smooth * w if w is not None else smooth
        return grad


class BCEWithLogits(Function):
    """l = (1 - y) x + lw softplus(-x), lw = 1 + (pos_weight - 1) y   (softplus keeps large |x| finite).

    dl/dx = (1 - y) - lw sigmoid(-x),   dl/dy = -x + (pos_weight - 1) softplus(-x).
    """

    def forward(self, x, y, pos_weight):
        sp = np.logaddexp(0, -x)
        self.x, self.y, self.sp, self.pw = x, y, sp, pos_weight
        if pos_weight is None:
            return (1 - y) * x + sp
        return (1 - y) * x + (1 + (pos_weight - 1) * y) * sp

    def backward(self, g):
        x, y, pw = self.x, self.y, self.pw
        gx = gy = None
        if self.needs_input_grad[0]:
            lw = 1 if pw is None else 1 + (pw - 1) * y
            gx = g * ((1 - y) - lw * special.expit(-x))
        if self.needs_input_grad[1]:
            gy = g * (-x if pw is None else -x + (pw - 1) * self.sp)
        return gx, gy


class Dropout(Function):
    """y = x · keep / (1 − p), keep = u ≥ p for uniform u;  dx = g · keep / (1 − p).

    One op instead of a mask, a cast, a scale and a multiply: one pass each way (kernels/dropout.py), and the
    mask kept as bytes rather than a float array of scales. ``u`` comes from the caller's generator."""

    def forward(self, x, u, p):
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        x = x.astype(dtype, copy=False)
        self.scale = dtype.type(1.0 / (1.0 - p))
        self.keep = np.empty(x.shape, bool)
        out = np.empty(x.shape, dtype)
        if kernels.use(x.size) and x.flags.c_contiguous:  # u is C-ordered: flat views then match value for value
            dropout_forward(x.reshape(-1), u.reshape(-1), u.dtype.type(p), self.scale, out.reshape(-1),
                            self.keep.reshape(-1))
            return out
        return dropout_forward.numpy(x, u, u.dtype.type(p), self.scale, out, self.keep)

    def backward(self, g):
        out = np.empty(g.shape, self.scale.dtype)
        if kernels.use(g.size) and g.flags.c_contiguous:
            dropout_backward(g.reshape(-1), self.keep.reshape(-1), self.scale, out.reshape(-1))
            return out
        return dropout_backward.numpy(g, self.keep, self.scale, out)


def dropout(x: Tensor, u: np.ndarray, p: float) -> Tensor:
    """Inverted dropout of ``x`` with the uniform draws ``u`` (x's shape): see ``Dropout``."""
    return Dropout.apply(x, u=u, p=p)


def softmax(x: Tensor, dim: int) -> Tensor:
    """softmax along ``dim``: e^x / sum e^x (shifted by the max, exact for any magnitude)."""
    return Softmax.apply(floating(x), axis=normalize_dim(dim, x.ndim, "softmax"))


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """log softmax along ``dim`` = x - logsumexp(x)."""
    return LogSoftmax.apply(floating(x), axis=normalize_dim(dim, x.ndim, "log_softmax"))


def cross_entropy_2d(logits: Tensor, target: np.ndarray, weight: np.ndarray | None, ignore_index: int,
                     label_smoothing: float, reduction: str) -> Tensor:
    """The fused op on (N, C) logits; ``nn.functional.cross_entropy`` handles the other layouts."""
    return CrossEntropy.apply(logits, target=target, weight=weight, ignore_index=ignore_index,
                              label_smoothing=label_smoothing, reduction=reduction)


def bce_with_logits(x: Tensor, y: Tensor, pos_weight: Any = None) -> Tensor:
    """Elementwise binary cross-entropy of logits ``x`` against targets ``y`` in [0, 1]."""
    return BCEWithLogits.apply(x, y, pos_weight=pos_weight)
