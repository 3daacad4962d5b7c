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
    arr = dtypes.policy_array(x)
    if like is not None and arr.dtype.kind == "f" and like.data.dtype.kind == "f" and arr.dtype != like.data.dtype:
        # float array data meeting a float tensor takes its dtype directly: a float64 tensor must not see
        # its float64 NumPy operand rounded through the float32 policy default first
        arr = np.asarray(x, dtype=like.data.dtype)
    return Tensor._make(arr, False, None)


def operands(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Both arguments of a binary op as tensors of a common dtype (PyTorch's promotion for float/int)."""
    if not isinstance(a, Tensor):
        a = constant(a, b if isinstance(b, Tensor) else None)  # two scalars: the first takes the policy dtype
    if not isinstance(b, Tensor):
        b = constant(b, a)
    da, db = a.data.dtype, b.data.dtype
    if da != db:
        if da.kind == "f" and db.kind != "f":
            b = Tensor._make(b.data.astype(da), False, None)
        elif db.kind == "f" and da.kind != "f":
            a = Tensor._make(a.data.astype(db), False, None)
    return a, b


def floating(x: Tensor) -> Tensor:
    """``x`` itself if floating, else a float32 constant copy: integer and bool data entering a float-valued
    op (exp, sigmoid, softmax, ...) become float32 as in PyTorch, never float64 by NumPy's promotion."""
    if x.data.dtype.kind == "f":
        return x
    return Tensor._make(x.data.astype(dtypes.float32), False, None)


def normalize_dim(dim: int, ndim: int, op: str) -> int:
    """A dim in [-ndim, ndim) as a non-negative axis (a 0-d tensor accepts dim 0 and -1)."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dims")
    return dim % n if ndim else 0


def normalize_dims(dim: Dim, ndim: int, op: str) -> tuple[int, ...] | None:
    """Reduction dims as non-negative axes; None (every dim) for None or an empty tuple, as PyTorch
    (``x.sum(dim=())`` reduces all dims)."""
    if dim is None:
        return None
    if isinstance(dim, int | np.integer):
        dim = (int(dim),)
    if len(dim) == 0:
        return None
    axes = tuple(normalize_dim(int(d), ndim, op) for d in dim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: dim {tuple(dim)} names a dim twice")
    return axes if ndim else ()
