"""dtype names and the dtype policy shared by every way of making a tensor.

Policy: floating data becomes float32 unless a dtype is asked for; float64 is kept when asked for and
then propagates; integer and bool data keep their kind (labels, indices, masks); Python scalars never
upcast a tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)
float = float32
double = float64
long = int64

_NAMED = {"float": float32, "double": float64, "long": int64, "bool": bool_, "half": float16}


def as_dtype(dtype: Any) -> np.dtype:
    """Turn ``dl.float64``, ``np.float64``, ``"float64"`` or ``"double"`` into a ``numpy.dtype``."""
    if isinstance(dtype, str) and dtype in _NAMED:
        return _NAMED[dtype]
    try:
        return np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"unknown dtype {dtype!r}; use e.g. dl.float32, dl.float64, dl.int64, dl.bool_") from e


def is_floating(dtype: np.dtype) -> bool:
    return dtype.kind == "f"


def policy_array(data: Any, dtype: Any = None, copy: bool = False) -> np.ndarray:
    """``data`` as an ndarray following the dtype policy (floats -> float32 unless ``dtype`` is given)."""
    if dtype is not None:
        return np.array(data, dtype=as_dtype(dtype), copy=copy or None)
    arr = np.array(data, copy=copy or None)
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype != float32:
        return arr.astype(float32)
    if kind in "fiub":
        return arr
    if kind == "c":
        raise TypeError("complex tensors are not supported")
    raise TypeError(f"cannot make a tensor from {type(data).__name__} data of dtype {arr.dtype}")
