"""Reductions over dims (``dim=None``: all of them), with PyTorch's ``keepdim``."""

from __future__ import annotations

import builtins
from typing import Any, NamedTuple

import numpy as np

from dlbasics import dtypes
from dlbasics.autograd.function import Function
from dlbasics.ops._operands import Dim, normalize_dim, normalize_dims
from dlbasics.ops.indexing import gather
from dlbasics.tensor import Tensor


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class Sum(Function):
    def forward(self, x, axes, keepdim):
        self.shape, self.axes = x.shape, axes
        return np.sum(x, axis=axes, keepdims=keepdim)

    def backward(self, g):
        return np.broadcast_to(g.reshape(_kept_shape(self.shape, self.axes)), self.shape)


class Mean(Function):
    def forward(self, x, axes, keepdim):
        self.shape, self.axes = x.shape, axes
        out = np.mean(x, axis=axes, keepdims=keepdim)
        self.n = x.size // builtins.max(out.size, 1) if x.size else 0
        return out

    def backward(self, g):
        g = g.reshape(_kept_shape(self.shape, self.axes)) / self.n
        return np.broadcast_to(g, self.shape)


class Amax(Function):
    """Max over dims; the gradient is shared evenly among tied maxima (as PyTorch's amax)."""

    reduce = staticmethod(np.amax)

    def forward(self, x, axes, keepdim):
        out = self.reduce(x, axis=axes, keepdims=True)
        self.mask = x == out
        self.axes = axes
        self.kept = out.shape
        if keepdim:
            return out
        return out.reshape(() if axes is None else tuple(s for i, s in enumerate(out.shape) if i not in axes))

    def backward(self, g):
        mask = self.mask
        count = np.sum(mask, axis=self.axes, keepdims=True)
        return np.where(mask, g.reshape(self.kept) / count, 0)


class Amin(Amax):
    reduce = staticmethod(np.amin)


class MaxResult(NamedTuple):
    """``(values, indices)`` of ``max``/``min`` along a dim, as ``torch.return_types.max``."""

    values: Tensor
    indices: Tensor


def sum(x: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    """Sum over ``dim`` (all dims if None)."""
    return Sum.apply(x, axes=normalize_dims(dim, x.ndim, "sum"), keepdim=keepdim)


def mean(x: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    """Mean over ``dim`` (all dims if None)."""
    if x.data.dtype.kind != "f":
        raise TypeError(f"mean: expected a floating tensor, got {x.data.dtype}; use .float() first")
    return Mean.apply(x, axes=normalize_dims(dim, x.ndim, "mean"), keepdim=keepdim)


def var(x: Tensor, dim: Dim = None, keepdim: bool = False, *, correction: int = 1,
        unbiased: bool | None = None) -> Tensor:
    """sum((x - mean)^2) / (N - correction); ``correction=1`` (default) is the unbiased estimate."""
    if unbiased is not None:
        correction = int(unbiased)
    axes = normalize_dims(dim, x.ndim, "var")
    n = x.data.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
    d = x - mean(x, axes, keepdim=True)
    return sum(d * d, axes, keepdim) / builtins.max(n - correction, 0)


def std(x: Tensor, dim: Dim = None, keepdim: bool = False, *, correction: int = 1,
        unbiased: bool | None = None) -> Tensor:
    return var(x, dim, keepdim, correction=correction, unbiased=unbiased).sqrt()


def amax(x: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    return Amax.apply(x, axes=normalize_dims(dim, x.ndim, "amax"), keepdim=keepdim)


def amin(x: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    return Amin.apply(x, axes=normalize_dims(dim, x.ndim, "amin"), keepdim=keepdim)


def _extreme(x: Tensor, dim: int | None, keepdim: bool, find: Any, whole: Any, name: str) -> Any:
    if dim is None:
        return whole(x)
    axis = normalize_dim(dim, x.ndim, name)
    idx = find(x.data, axis=axis, keepdims=True)
    values = gather(x, axis, Tensor._make(idx, False, None))
    indices = Tensor._make(idx, False, None)
    if not keepdim:
        values = values.squeeze(axis)
        indices = Tensor._make(np.squeeze(idx, axis), False, None)
    return MaxResult(values, indices)


def max(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:
    """The largest element, or ``(values, indices)`` along ``dim`` (gradient to the returned index)."""
    return _extreme(x, dim, keepdim, np.argmax, amax, "max")


def min(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:
    return _extreme(x, dim, keepdim, np.argmin, amin, "min")


def _arg(x: Tensor, dim: int | None, keepdim: bool, find: Any, name: str) -> Tensor:
    if dim is None:
        out = np.asarray(find(x.data), dtype=dtypes.int64)
        if keepdim:
            out = out.reshape((1,) * x.ndim)
    else:
        out = find(x.data, axis=normalize_dim(dim, x.ndim, name), keepdims=keepdim).astype(dtypes.int64)
    return Tensor._make(out, False, None)


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _arg(x, dim, keepdim, np.argmax, "argmax")


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _arg(x, dim, keepdim, np.argmin, "argmin")
