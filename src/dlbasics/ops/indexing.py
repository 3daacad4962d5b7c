"""Indexing: ``x[...]`` (basic and advanced) and ``gather``. Repeated indices accumulate gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics.autograd.function import Function
from dlbasics.ops._layout import axis_order, full_in_order
from dlbasics.ops._operands import normalize_dim
from dlbasics.tensor import Tensor

_BASIC = (int, slice, type(None), type(Ellipsis))


class GetItem(Function):
    def forward(self, x, index):
        self.shape, self.dtype, self.index, self.order = x.shape, x.dtype, index, axis_order(x)
        return x[index]

    def backward(self, g):
        grad = full_in_order(self.shape, 0, self.order, self.dtype)  # the input's layout: it meets its other grads
        index = self.index
        if _is_basic(index) or _is_single_bool(index):
            grad[index] = g  # each input element is picked at most once
        else:
            np.add.at(grad, index, g)  # an integer array may pick one element many times
        return grad


class Gather(Function):
    """out[i][j] = x[i][index[i][j]] along ``dim`` (torch.gather); backward scatters with accumulation."""

    def forward(self, x, index, axis):
        self.shape, self.dtype, self.index, self.axis = x.shape, x.dtype, index, axis
        return np.take_along_axis(x, index, axis)

    def backward(self, g):
        grad = np.zeros(self.shape, self.dtype)
        idx = list(np.indices(self.index.shape, sparse=True))
        idx[self.axis] = self.index
        np.add.at(grad, tuple(idx), g)
        return grad


def _is_basic(index: Any) -> bool:
    if isinstance(index, tuple):
        return all(isinstance(i, _BASIC) and not isinstance(i, bool) for i in index)
    return isinstance(index, _BASIC) and not isinstance(index, bool)


def _is_single_bool(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [p for p in parts if isinstance(p, np.ndarray)]
    return len(arrays) == 1 and arrays[0].dtype == np.bool_ and all(
        isinstance(p, _BASIC) or p is arrays[0] for p in parts
    )


def _plain(i: Any) -> Any:
    if isinstance(i, Tensor):
        return i.data
    if isinstance(i, list):
        return np.asarray(i)
    if isinstance(i, np.integer):
        return int(i)
    return i


def getitem(x: Tensor, index: Any) -> Tensor:
    """``x[index]`` with NumPy/PyTorch semantics: ints, slices, None, ..., integer and boolean arrays."""
    index = tuple(_plain(i) for i in index) if isinstance(index, tuple) else _plain(index)
    try:
        return GetItem.apply(x, index=index)
    except IndexError as e:
        raise IndexError(f"index {index!r} into tensor of shape {x.shape}: {e}") from None


def gather(x: Tensor, dim: int, index: Any) -> Tensor:
    """Pick ``x`` values along ``dim`` at ``index`` (int tensor of the same ndim as ``x``)."""
    idx = _plain(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"gather: index must be an integer tensor, got {idx.dtype}")
    if idx.ndim != x.ndim:
        raise ValueError(f"gather: index has {idx.ndim} dims but the tensor has {x.ndim}")
    return Gather.apply(x, index=idx, axis=normalize_dim(dim, x.ndim, "gather"))
