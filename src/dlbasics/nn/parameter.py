"""``Parameter``: a tensor that a ``Module`` registers as learnable when it is assigned as an attribute."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics.tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor with ``requires_grad=True`` that ``Module.parameters()`` yields.

    An ndarray or Tensor keeps its dtype (a module that builds a float64 array means float64); other data
    follows the dtype policy (floats become float32).
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(data, dtype=data.dtype if isinstance(data, np.ndarray) else None)
        self.requires_grad_(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
