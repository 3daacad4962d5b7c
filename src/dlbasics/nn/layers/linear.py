"""Affine layers and the shape helpers that sit between them."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics import dtypes
from dlbasics.nn import init
from dlbasics.nn.module import Module
from dlbasics.nn.parameter import Parameter
from dlbasics.ops import linear
from dlbasics.rng import Seed
from dlbasics.tensor import Tensor


def add_weight_and_bias(module: Module, weight_shape: tuple[int, ...], bias: bool, dtype: Any) -> None:
    """Register ``weight`` (``weight_shape``) and ``bias`` (``weight_shape[0]``, or None) on a Linear or Conv
    layer and give them PyTorch's default init (``nn.init.default_``)."""
    dt = dtypes.float32 if dtype is None else dtypes.as_dtype(dtype)
    module.weight = Parameter(np.empty(weight_shape, dt))
    if bias:
        module.bias = Parameter(np.empty(weight_shape[0], dt))
    else:
        module.register_parameter("bias", None)
    module.reset_parameters()


class Linear(Module):
    """y = x W^T + b.   x (..., in_features) -> y (..., out_features); W (out_features, in_features).

    Init as PyTorch: W and b ~ U(-1/sqrt(in_features), 1/sqrt(in_features)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = None) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: sizes must be positive, got in_features={in_features}, "
                             f"out_features={out_features}")
        self.in_features, self.out_features = in_features, out_features
        add_weight_and_bias(self, (out_features, in_features), bias, dtype)

    def reset_parameters(self, generator: Seed = None) -> None:
        init.default_(self.weight, self.bias, generator)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise RuntimeError(f"Linear({self.in_features}, {self.out_features}): input {x.shape} has "
                               f"{x.shape[-1] if x.ndim else 0} features, expected {self.in_features}")
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input; a placeholder where an architecture has an optional layer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Merge dims start_dim..end_dim: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
