"""Turning op arguments into tensors: scalars take the tensor's dtype (never upcast it), integer and
bool tensors meeting a float tensor take its dtype, and dims are normalised with a clear error."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics import dtypes
from dlbasics.tensor import Tensor

Dim = int | tuple[int, ...] | list[int] | None


def constant(x: Any, like: Tensor | None = None) -> Tensor:
    """A non-differentiable tensor for ``x``; a Python scalar takes the dtype of ``like``."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, bool | int | float) and like is not None:
        dt = like.data.dtype
        if isinstance(x, float) and dt.kind != "f":
            dt = dtypes.float32
        elif isinstance(x, int) and not isinstance(x, bool) and dt.kind == "b":
            dt = dtypes.int64
        return Tensor._make(np.asarray(x, dtype=dt), False, None)
    return Tensor._make(dtypes.policy_array(x), False, None)


def operands(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Both arguments of a binary op as tensors of a common dtype (PyTorch's promotion for float/int)."""
    if not isinstance(a, Tensor):
        a = constant(a, b)
    if not isinstance(b, Tensor):
        b = constant(b, a)
    da, db = a.data.dtype, b.data.dtype
    if da != db:
        if da.kind == "f" and db.kind != "f":
            b = Tensor._make(b.data.astype(da), False, None)
        elif db.kind == "f" and da.kind != "f":
            a = Tensor._make(a.data.astype(db), False, None)
    return a, b


def normalize_dim(dim: int, ndim: int, op: str) -> int:
    """A dim in [-ndim, ndim) as a non-negative axis (a 0-d tensor accepts dim 0 and -1)."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dims")
    return dim % n if ndim else 0


def normalize_dims(dim: Dim, ndim: int, op: str) -> tuple[int, ...] | None:
    if dim is None:
        return None
    if isinstance(dim, int | np.integer):
        dim = (int(dim),)
    axes = tuple(normalize_dim(int(d), ndim, op) for d in dim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: dim {tuple(dim)} names a dim twice")
    return axes if ndim else ()
