"""Normalization ops with fused backward (one pass of statistics instead of a graph of ~10 small ops)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from dlbasics import kernels
from dlbasics.autograd.function import Function
from dlbasics.kernels.norm import (
    batch_norm_backward,
    batch_norm_forward,
    flat_rows,
    layer_norm_backward,
    layer_norm_forward,
    rows_of,
)
from dlbasics.ops._blas import gemm
from dlbasics.ops._layout import long_rows, per_channel
from dlbasics.tensor import Tensor

# Per-channel affine maps y = x * a + b on an (M, C) matrix are diagonal GEMMs. For few channels the multiplies
# by zero cost less than what BLAS brings: both cores and one fused pass. Those multiplies grow with C, so the
# gain shrinks; the bound is the largest channel count where it still paid (measured: docs/benchmarks.md,
# BatchNorm and pooling).
AFFINE_GEMM_MAX_CHANNELS = 32


def _channel_map(x: np.ndarray, a: np.ndarray, out: np.ndarray, b: np.ndarray | None = None) -> None:
    """out = x * a + b per channel for x (M, C), both C-contiguous. With GEMMs, b goes in first as the rank-1
    product ones (M, 1) @ b (1, C), which BLAS writes on both cores (measured: docs/benchmarks.md, BatchNorm and
    pooling)."""
    if a.shape[0] <= AFFINE_GEMM_MAX_CHANNELS:
        if b is not None:
            gemm(np.ones((x.shape[0], 1), x.dtype), b[None], out, beta=0.0)
        gemm(x, np.diag(a), out, beta=0.0 if b is None else 1.0)
        return
    per_channel(np.multiply, x, a, out)
    if b is not None:
        per_channel(np.add, out, b, out)


def _centre(xt: np.ndarray, mean: np.ndarray, out: np.ndarray) -> None:
    """out (M, C) = xt - mean for a channels-last xt of any strides, along rows as long as xt allows."""
    x2 = _merged(xt, (tuple(range(xt.ndim - 1)), (xt.ndim - 1,)))
    if x2 is not None and x2.flags.c_contiguous:
        per_channel(np.subtract, x2, mean, out)
        return
    x3 = _merged(xt, ((0,), (1,), (2, 3))) if xt.ndim == 4 else None
    if x3 is not None:  # a conv output with gaps between its rows: (N, H, W C) rows
        np.subtract(x3, np.tile(mean, xt.shape[2]), out=out.reshape(x3.shape))
        return
    np.subtract(xt, mean, out=out.reshape(xt.shape))


def _merged(x: np.ndarray, groups: tuple[tuple[int, ...], ...]) -> np.ndarray | None:
    """A view of x with each group of consecutive axes merged into one, or None where that needs a copy.
    (Setting ``.shape`` would tell too, but only after copying the array to find out.)"""
    for axes in groups:
        live = [a for a in axes if x.shape[a] != 1]  # a size-1 axis merges with anything
        for a, b in itertools.pairwise(live):
            if x.strides[a] != x.strides[b] * x.shape[b]:
                return None
    return x.reshape(tuple(math.prod(x.shape[a] for a in axes) for axes in groups))  # a view, as checked


def _channel_sum(xt: np.ndarray) -> np.ndarray:
    """Sum over all axes but the last of a channels-last array, by BLAS (both cores) without copying it: the
    (M, C) matrix when x has one, else (N, H, W C) rows per image - a conv output with gaps between rows."""
    lead = tuple(range(xt.ndim - 1))
    x2 = _merged(xt, (lead, (xt.ndim - 1,)))
    if x2 is not None:
        return np.ones(x2.shape[0], xt.dtype) @ x2
    if xt.ndim == 4:
        n, h, w, c = xt.shape
        x3 = _merged(xt, ((0,), (1,), (2, 3)))
        if x3 is not None:
            per_image = np.ones(h, xt.dtype) @ x3  # (N, W C)
            return (np.ones(n, xt.dtype) @ per_image).reshape(w, c).sum(0)
    return np.add.reduce(xt, axis=lead)


def _channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum over rows of a * b per channel, for C-contiguous (M, C) a and b, without an (M, C) temporary: einsum
    along long rows (``long_rows``), whose partial sums per row position are then added: einsum loops a 16-long
    axis 16 values at a time (measured: docs/benchmarks.md, BatchNorm and pooling)."""
    al, k = long_rows(a)
    return np.einsum("ij,ij->j", al, long_rows(b)[0]).reshape(k, a.shape[1]).sum(0)


class BatchNorm(Function):
    """y = gamma * xhat + beta,  xhat = (x - mean) / sqrt(var + eps), statistics per channel (dim 1) over
    everything else.

    Computed on the (M, C) matrix of the channels-last view - free for a conv's output, which is channels-last
    in memory - with the per-channel sums as one BLAS product ``ones(M) @ X`` (on both cores, far faster than
    NumPy's reduction over non-last axes: docs/benchmarks.md, BatchNorm and pooling). With s = gamma inv_std and
    xc = x - mean:
        training:   dx = s g - s inv_std^2 xc sum(g xc) / M - s sum(g) / M
        evaluation: dx = s g   (running statistics are constants)
        dgamma = inv_std sum(g xc),  dbeta = sum(g).
    The textbook version on NCHW arrays, which the tests hold this one to: ``ops/references.py``.
    """

    def forward(self, x, gamma, beta, eps, mean=None, var=None, stats_out=None, relu=False):
        self.relu, self.batch_stats = relu, mean is None
        xt = np.moveaxis(x, 1, -1)  # (..., C)
        x3 = rows_of(xt) if kernels.use(x.size) and x.dtype == gamma.dtype else None
        self.kernel = x3 is not None
        if self.kernel:  # compiled passes over the rows where they lie, the ReLU included (kernels/norm.py)
            return self._forward_kernel(x3, xt.shape, gamma, beta, eps, mean, var, stats_out)
        out = self._forward_numpy(x, xt, gamma, beta, eps, mean, var, stats_out)
        if relu:  # then max(y, 0) in place, keeping its mask
            self.mask = out > 0
            np.maximum(out, 0, out=out)
        return out

    def _forward_numpy(self, x, xt, gamma, beta, eps, mean, var, stats_out):
        c = x.shape[1]
        m = x.size // c if c else 0
        if self.batch_stats:
            mean = _channel_sum(xt) / m
        xc = np.empty((m, c), x.dtype)
        _centre(xt, mean, xc)  # one pass in, whatever x's layout
        ones = np.ones(m, x.dtype)
        if self.batch_stats:
            var = _channel_dot(xc, xc) / m
            if stats_out is not None:  # hand the batch statistics to the caller for the running averages
                stats_out.extend((mean, var))
        inv_std = 1.0 / np.sqrt(var + eps)
        out = np.empty((m, c), x.dtype)
        _channel_map(xc, inv_std * gamma, out, beta)
        self.xc, self.inv_std, self.gamma, self.ones, self.m = xc, inv_std, gamma, ones, m
        return np.moveaxis(out.reshape(xt.shape), -1, 1)

    def _forward_kernel(self, x3, shape, gamma, beta, eps, mean, var, stats_out):
        c, dt = shape[-1], x3.dtype
        train = mean is None
        mean = np.empty(c, dt) if train else np.asarray(mean, dt)
        var = np.empty(c, dt) if train else np.asarray(var, dt)
        out = np.empty((x3.shape[0] * x3.shape[1], x3.shape[2]), dt)  # dense rows
        batch_norm_forward(*flat_rows(x3), gamma, beta, dt.type(eps), mean, var, train, self.relu, out)
        if train and stats_out is not None:
            stats_out.extend((mean, var))
        self.x3, self.y, self.mean, self.var, self.eps, self.gamma = x3, out, mean, var, dt.type(eps), gamma
        return np.moveaxis(out.reshape(shape), -1, 1)

    def _backward_kernel(self, g):
        gt = np.moveaxis(g, 1, -1)
        g3 = rows_of(gt)
        if g3 is None or g3.shape != self.x3.shape:  # the kernel walks g, x and y row by row together
            g3 = np.ascontiguousarray(gt).reshape(self.x3.shape[0], self.x3.shape[1], -1)
        needs = self.needs_input_grad
        c = gt.shape[-1]
        gx = np.empty_like(self.y) if needs[0] else np.empty((0, self.y.shape[1]), self.y.dtype)
        sums = np.empty((2, c), self.y.dtype)
        batch_norm_backward(*flat_rows(g3), *flat_rows(self.x3), self.y, self.gamma, self.mean, self.var, self.eps,
                            self.batch_stats, self.relu, sums, gx)
        gx = np.moveaxis(gx.reshape(gt.shape), -1, 1) if needs[0] else None
        ggamma = sums[1].copy() if needs[1] else None
        gbeta = sums[0].copy() if needs[2] else None
        return gx, ggamma, gbeta

    def backward(self, g):
        if self.kernel:
            return self._backward_kernel(g)  # the ReLU's mask is applied inside, from the output
        if self.relu:
            g = g * self.mask  # a NaN gradient stays NaN where the mask is 0, as ReLU's backward
        c = g.shape[1]
        g2 = np.ascontiguousarray(np.moveaxis(g, 1, -1).reshape(-1, c))
        xc, inv_std, ones, m = self.xc, self.inv_std, self.ones, self.m
        gx = ggamma = gbeta = None
        sum_g = ones @ g2 if (self.needs_input_grad[2] or (self.needs_input_grad[0] and self.batch_stats)) else None
        sum_gxc = _channel_dot(g2, xc) if (self.needs_input_grad[1] or self.batch_stats) else None
        if self.needs_input_grad[0]:
            s = self.gamma * inv_std
            gx = np.empty((m, c), g.dtype)
            if self.batch_stats:  # dx = xc (-s inv_std^2 sum(g xc) / M) - s sum(g) / M + g s
                _channel_map(xc, -s * inv_std * inv_std * sum_gxc / m, gx, -s * sum_g / m)
                if c <= AFFINE_GEMM_MAX_CHANNELS:
                    gemm(g2, np.diag(s), gx, beta=1.0)
                else:
                    gs = np.empty_like(gx)
                    per_channel(np.multiply, g2, s, gs)
                    gx += gs
            else:
                _channel_map(g2, s, gx)
            gx = np.moveaxis(gx.reshape(np.moveaxis(g, 1, -1).shape), -1, 1)
        if self.needs_input_grad[1]:
            ggamma = inv_std * sum_gxc
        if self.needs_input_grad[2]:
            gbeta = sum_g
        return gx, ggamma, gbeta


def batch_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float, running_mean: np.ndarray | None = None,
               running_var: np.ndarray | None = None,
               relu: bool = False) -> tuple[Tensor, np.ndarray | None, np.ndarray | None]:
    """Normalize over all dims but 1. With ``running_mean``/``running_var`` given they are used as constants
    (evaluation); otherwise batch statistics are used and returned (mean, biased var) for the running update.
    ``relu``: max(y, 0) of the result, in the same passes (the BatchNorm-ReLU pair of most CNNs)."""
    if running_mean is None:
        stats: list[np.ndarray] = []
        out = BatchNorm.apply(x, gamma, beta, eps=eps, stats_out=stats, relu=relu)
        return out, stats[0], stats[1]
    return BatchNorm.apply(x, gamma, beta, eps=eps, mean=running_mean, var=running_var, relu=relu), None, None


class LayerNorm(Function):
    """y = weight * xhat + bias,  xhat = (x - mean) / sqrt(var + eps), statistics over the last ``k`` dims of
    each sample (the ``normalized_shape``), so every example is normalized on its own: no batch statistics,
    no running averages, the same computation in training and evaluation.

    Inputs: x (..., *normalized_shape), then weight and bias (normalized_shape) when ``has_weight`` /
    ``has_bias``. With dxhat = g * weight (g without an affine weight), over the normalized dims:
        dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    dweight = sum over the leading dims of g * xhat,  dbias = sum over the leading dims of g.
    """

    def forward(self, x, *affine, k, eps, has_weight, has_bias):
        d = math.prod(x.shape[x.ndim - k:])
        self.kernel = kernels.use(x.size) and x.flags.c_contiguous and d > 0 and all(a.dtype == x.dtype
                                                                                     for a in affine)
        if self.kernel:  # one compiled pass per row (kernels/norm.py)
            self.affine_shape = x.shape[x.ndim - k:]
            return self._forward_kernel(x, affine, d, eps, has_weight, has_bias)
        axes = tuple(range(x.ndim - k, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        xc = x - mean
        var = np.mean(xc * xc, axis=axes, keepdims=True)
        inv_std = 1.0 / np.sqrt(var + eps)  # (..., 1, ..., 1)
        xhat = xc * inv_std
        weight = affine[0] if has_weight else None
        bias = affine[-1] if has_bias else None
        self.axes, self.inv_std, self.weight = axes, inv_std, weight
        self.has_weight, self.has_bias = has_weight, has_bias
        self.lead = tuple(range(x.ndim - k))  # the dims the affine parameters' gradients sum over
        # xhat is needed for dx and dweight; keep it only if either is wanted
        self.xhat = xhat if self.needs_input_grad[0] or (has_weight and self.needs_input_grad[1]) else None
        if has_weight:
            out = xhat * weight
            if has_bias:
                out += bias  # out is a fresh array, never the saved xhat
            return out
        # no weight: xhat may be the output itself; recorded outputs refuse in-place writes, so it stays intact
        return xhat + bias if has_bias else xhat

    def _forward_kernel(self, x, affine, d, eps, has_weight, has_bias):
        x2 = x.reshape(-1, d)
        dt = x.dtype
        w = affine[0].reshape(-1) if has_weight else np.ones(d, dt)
        b = affine[-1].reshape(-1) if has_bias else np.zeros(d, dt)
        out, xhat, inv_std = np.empty_like(x2), np.empty_like(x2), np.empty(len(x2), dt)
        layer_norm_forward(x2, w, b, dt.type(eps), out, xhat, inv_std)
        self.x_shape, self.w, self.xhat, self.inv_std = x.shape, w, xhat, inv_std
        self.has_weight, self.has_bias = has_weight, has_bias
        return out.reshape(x.shape)

    def _backward_kernel(self, g):
        needs = self.needs_input_grad
        g2 = np.ascontiguousarray(g).reshape(self.xhat.shape)
        d = g2.shape[1]
        gx = np.empty_like(g2) if needs[0] else np.empty((0, d), g2.dtype)
        dw, db = np.zeros(d, np.float64), np.zeros(d, np.float64)
        layer_norm_backward(g2, self.xhat, self.inv_std, self.w, gx, dw, db)
        grads = [gx.reshape(self.x_shape) if needs[0] else None]
        norm_shape = self.affine_shape
        if self.has_weight:
            grads.append(dw.astype(g2.dtype).reshape(norm_shape) if needs[1] else None)
        if self.has_bias:
            grads.append(db.astype(g2.dtype).reshape(norm_shape) if needs[-1] else None)
        return tuple(grads)

    def backward(self, g):
        if self.kernel:
            return self._backward_kernel(g)
        xhat, axes = self.xhat, self.axes
        needs = self.needs_input_grad
        gx = None
        if needs[0]:
            dxhat = g * self.weight if self.has_weight else g
            mean_d = dxhat.mean(axis=axes, keepdims=True)
            mean_dx = (dxhat * xhat).mean(axis=axes, keepdims=True)
            gx = (dxhat - mean_d - xhat * mean_dx) * self.inv_std
        grads = [gx]
        if self.has_weight:
            grads.append((g * xhat).sum(axis=self.lead) if needs[1] else None)
        if self.has_bias:
            grads.append(g.sum(axis=self.lead) if needs[-1] else None)
        return tuple(grads)


def layer_norm(x: Tensor, normalized_shape: int | tuple[int, ...] | list[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize each sample over its last ``len(normalized_shape)`` dims, then scale and shift.

    x (..., *normalized_shape) -> same shape; ``weight``, ``bias`` (normalized_shape) or None.
    y = weight * (x - mean) / sqrt(var + eps) + bias, mean and biased var over the normalized dims.
    """
    shape = (int(normalized_shape),) if isinstance(normalized_shape, int | np.integer) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise RuntimeError(f"layer_norm: normalized_shape {list(shape)} must match the last dims of the input, "
                           f"got input {x.shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != shape:
            raise RuntimeError(f"layer_norm: {name} must have shape {shape} (normalized_shape), got {p.shape}")
    affine = [p for p in (weight, bias) if p is not None]
    return LayerNorm.apply(x, *affine, k=k, eps=float(eps), has_weight=weight is not None,
                           has_bias=bias is not None)
