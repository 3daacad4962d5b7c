"""Normalization ops with fused backward (one pass of statistics instead of a graph of ~10 small ops)."""

from __future__ import annotations

import numpy as np

from dlbasics.autograd.function import Function
from dlbasics.tensor import Tensor


class BatchNorm(Function):
    """y = gamma * xhat + beta,  xhat = (x - mean) / sqrt(var + eps), statistics over ``axes`` (all but C).

    Training (batch statistics):
        dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),   dxhat = g * gamma
    Evaluation (running statistics are constants):  dx = g * gamma * inv_std.
    dgamma = sum(g * xhat),  dbeta = sum(g).
    """

    def forward(self, x, gamma, beta, axes, eps, mean=None, var=None, stats_out=None):
        shape = [1] * x.ndim
        shape[1] = x.shape[1]
        self.batch_stats = mean is None
        if self.batch_stats:
            mean = x.mean(axis=axes, keepdims=True)
            xc = x - mean
            var = np.mean(xc * xc, axis=axes, keepdims=True)
            if stats_out is not None:  # hand the batch statistics to the caller for the running averages
                stats_out.extend((mean.reshape(-1), var.reshape(-1)))
        else:
            xc = x - mean.reshape(shape)
            var = var.reshape(shape)
        inv_std = 1.0 / np.sqrt(var + eps)
        xhat = xc * inv_std
        self.xhat, self.inv_std, self.gamma, self.axes, self.shape = xhat, inv_std, gamma.reshape(shape), axes, shape
        return xhat * self.gamma + beta.reshape(shape)

    def backward(self, g):
        axes, xhat = self.axes, self.xhat
        gx = ggamma = gbeta = None
        if self.needs_input_grad[0]:
            dxhat = g * self.gamma
            if self.batch_stats:
                mean_d = dxhat.mean(axis=axes, keepdims=True)
                mean_dx = (dxhat * xhat).mean(axis=axes, keepdims=True)
                gx = (dxhat - mean_d - xhat * mean_dx) * self.inv_std
            else:
                gx = dxhat * self.inv_std
        if self.needs_input_grad[1]:
            ggamma = (g * xhat).sum(axis=axes)
        if self.needs_input_grad[2]:
            gbeta = g.sum(axis=axes)
        return gx, ggamma, gbeta


def batch_norm_stats_axes(ndim: int) -> tuple[int, ...]:
    """All axes but the channel axis 1: (0,) for (N, C), (0, 2) for (N, C, L), (0, 2, 3) for (N, C, H, W)."""
    return (0, *range(2, ndim))


def batch_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float, running_mean: np.ndarray | None = None,
               running_var: np.ndarray | None = None) -> tuple[Tensor, np.ndarray | None, np.ndarray | None]:
    """Normalize over all dims but 1. With ``running_mean``/``running_var`` given they are used as constants
    (evaluation); otherwise batch statistics are used and returned (mean, biased var) for the running update."""
    axes = batch_norm_stats_axes(x.ndim)
    if running_mean is None:
        stats: list[np.ndarray] = []
        out = BatchNorm.apply(x, gamma, beta, axes=axes, eps=eps, stats_out=stats)
        return out, stats[0], stats[1]
    return BatchNorm.apply(x, gamma, beta, axes=axes, eps=eps, mean=running_mean, var=running_var), None, None


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

    def backward(self, g):
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
