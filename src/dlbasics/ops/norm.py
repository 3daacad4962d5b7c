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
