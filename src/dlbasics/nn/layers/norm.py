"""Batch normalization (Ioffe & Szegedy, 2015): normalize each channel by the batch's mean and variance,
then scale and shift by learned gamma, beta. Training uses batch statistics and updates running
averages; evaluation uses the running averages, so a single example is normalized the same way.

Layer normalization (Ba, Kiros & Hinton, 2016): normalize each example over its own features instead,
so nothing depends on the batch and training and evaluation compute the same thing."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics import dtypes
from dlbasics.nn import functional as F
from dlbasics.nn.module import Module
from dlbasics.nn.parameter import Parameter
from dlbasics.ops.norm import layer_norm
from dlbasics.tensor import Tensor


class _BatchNorm(Module):
    _ndims: tuple[int, ...] = ()
    _relu = False  # the BatchNormReLU layers: max(y, 0) in the same op

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype: Any = None) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dt = dtypes.float32 if dtype is None else dtypes.as_dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_features, dt))
            self.bias = Parameter(np.zeros(num_features, dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features), dtype=dt))
            self.register_buffer("running_var", Tensor(np.ones(num_features), dtype=dt))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int64)))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._ndims or x.shape[1] != self.num_features:
            raise RuntimeError(f"{type(self).__name__}({self.num_features}): expected input of "
                               f"{' or '.join(f'{d}-D' for d in self._ndims)} with {self.num_features} channels "
                               f"in dim 1, got {x.shape}")
        use_batch_stats = self.training or not self.track_running_stats
        if self.training and x.data.size <= self.num_features:
            raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel when training, "
                             f"got input {x.shape}")
        m = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            m = 1.0 / int(self.num_batches_tracked.data) if self.momentum is None else self.momentum
        norm = F.batch_norm_relu if self._relu else F.batch_norm
        return norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=use_batch_stats,
                    momentum=m, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L) inputs: statistics per feature C."""

    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W) inputs: statistics per channel C over N, H and W."""

    _ndims = (4,)


class BatchNormReLU1d(BatchNorm1d):
    """relu(BatchNorm1d(x)) as one op (``F.batch_norm_relu``). Its parameters, buffers and state dict are
    BatchNorm1d's, so a PyTorch BatchNorm1d's weights load into it by name."""

    _relu = True


class BatchNormReLU2d(BatchNorm2d):
    """relu(BatchNorm2d(x)) as one op (``F.batch_norm_relu``): the pair that follows most convolutions, in the
    same passes over the data. Its parameters, buffers and state dict are BatchNorm2d's, so a PyTorch
    BatchNorm2d's weights load into it by name (timm calls the same idea ``BatchNormAct2d``)."""

    _relu = True


class LayerNorm(Module):
    """Normalize each sample over its last dims ``normalized_shape``, then scale and shift elementwise.

    x (..., *normalized_shape) -> same shape.  y = weight * (x - E[x]) / sqrt(Var[x] + eps) + bias, with
    E and the biased Var over the normalized dims; ``weight`` (ones) and ``bias`` (zeros) have shape
    ``normalized_shape`` when ``elementwise_affine`` (``bias=False`` keeps the weight only).
    """

    def __init__(self, normalized_shape: int | tuple[int, ...] | list[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, dtype: Any = None) -> None:
        super().__init__()
        if isinstance(normalized_shape, int | np.integer):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        if not self.normalized_shape or any(s < 1 for s in self.normalized_shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive sizes, got {normalized_shape!r}")
        self.eps, self.elementwise_affine = eps, elementwise_affine
        dt = dtypes.float32 if dtype is None else dtypes.as_dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dt))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        k = len(self.normalized_shape)
        if x.ndim < k or tuple(x.shape[x.ndim - k:]) != self.normalized_shape:
            raise RuntimeError(f"LayerNorm({list(self.normalized_shape)}): expected input whose last dims are "
                               f"{self.normalized_shape}, got {x.shape}")
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class LocalResponseNorm(Module):
    """AlexNet's local response normalization across channels (Krizhevsky et al., 2012):
    b_c = a_c / (k + alpha / size * sum over ``size`` neighbouring channels of a^2)^beta."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: Tensor) -> Tensor:
        from dlbasics.ops.pool import local_response_norm

        return local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
