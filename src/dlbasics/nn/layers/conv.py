"""Convolution layers: weights shared across positions, so a feature detector is learned once and applied
everywhere in the image (LeCun et al., 1989)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dlbasics import dtypes
from dlbasics.nn import init
from dlbasics.nn.layers.linear import add_weight_and_bias
from dlbasics.nn.module import Module
from dlbasics.nn.parameter import Parameter
from dlbasics.ops.conv import IntPair, conv2d, conv_transpose2d, pair
from dlbasics.rng import Seed
from dlbasics.tensor import Tensor


class Conv2d(Module):
    """(N, C_in, H, W) -> (N, C_out, Ho, Wo) with weight (C_out, C_in / groups, kh, kw); PyTorch's init:
    weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in / groups * kh * kw."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair | str = 0, dilation: IntPair = 1, groups: int = 1, bias: bool = True,
                 dtype: Any = None) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = pair(kernel_size, "kernel_size"), pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding")
        if self.padding == "same" and self.stride != (1, 1):
            raise ValueError(f"Conv2d: padding='same' needs stride 1, got stride {self.stride}")
        if isinstance(self.padding, str) and self.padding not in ("same", "valid"):
            raise ValueError(f"Conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
        self.dilation = pair(dilation, "dilation")
        add_weight_and_bias(self, (out_channels, in_channels // groups, *self.kernel_size), bias, dtype)

    def reset_parameters(self, generator: Seed = None) -> None:
        init.default_(self.weight, self.bias, generator)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise RuntimeError(f"{self._signature()}: expected input (N, {self.in_channels}, H, W), got {x.shape}")
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def _signature(self) -> str:
        return f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})"

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class ConvTranspose2d(Module):
    """(N, C_in, H, W) -> (N, C_out, Ho, Wo), Ho = (H - 1) s - 2 p + d (kh - 1) + output_padding + 1: the adjoint
    of Conv2d(C_out, C_in) (a learned upsampling, DCGAN's generator), with weight (C_in, C_out / groups, kh, kw).
    PyTorch's init: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = weight.shape[1] * kh * kw =
    C_out / groups * kh * kw (torch's fan_in of this weight layout). ``forward(x, output_size=(Ho, Wo))`` picks
    the output_padding that gives that size, as torch does."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1, bias: bool = True,
                 dilation: IntPair = 1, padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if groups < 1:
            raise ValueError(f"ConvTranspose2d: groups must be a positive integer, got {groups}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"ConvTranspose2d: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: only padding_mode='zeros' is supported, got {padding_mode!r}")
        if device is not None and str(device) != "cpu":
            raise ValueError(f"ConvTranspose2d: only device='cpu' is supported, got {device!r}")
        if isinstance(padding, str):
            raise TypeError(f"ConvTranspose2d: padding must be an int or a pair of ints, got {padding!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = pair(kernel_size, "kernel_size"), pair(stride, "stride")
        self.padding, self.output_padding = pair(padding, "padding"), pair(output_padding, "output_padding")
        self.dilation, self.padding_mode = pair(dilation, "dilation"), padding_mode
        dt = dtypes.float32 if dtype is None else dtypes.as_dtype(dtype)
        self.weight = Parameter(np.empty((in_channels, out_channels // groups, *self.kernel_size), dt))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, generator: Seed = None) -> None:
        init.default_(self.weight, self.bias, generator)  # fan_in = weight.shape[1] * kh * kw, as torch

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        if input.ndim not in (3, 4) or input.shape[-3] != self.in_channels:
            raise RuntimeError(f"{self._signature()}: expected input (N, {self.in_channels}, H, W), got {input.shape}")
        op = self.output_padding if output_size is None else self._output_padding(input, output_size)
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, op, self.groups,
                                self.dilation)

    def _output_padding(self, x: Tensor, output_size: Sequence[int]) -> tuple[int, int]:
        """The output_padding giving ``output_size`` ((Ho, Wo), or the full output shape): from 0 to stride - 1."""
        size = [int(v) for v in output_size]
        if len(size) == x.ndim:
            size = size[-2:]
        if len(size) != 2:
            raise ValueError(f"{self._signature()}: for {x.ndim}D input, output_size must have 2 or {x.ndim} "
                             f"elements, got {tuple(output_size)}")
        smallest = [(x.shape[-2 + k] - 1) * self.stride[k] - 2 * self.padding[k]
                    + self.dilation[k] * (self.kernel_size[k] - 1) + 1 for k in range(2)]
        largest = [lo + s - 1 for lo, s in zip(smallest, self.stride)]
        if any(not lo <= v <= hi for v, lo, hi in zip(size, smallest, largest)):
            raise ValueError(f"{self._signature()}: requested an output size of {tuple(size)}, but valid sizes range "
                             f"from {tuple(smallest)} to {tuple(largest)} for an input of {x.shape}")
        return size[0] - smallest[0], size[1] - smallest[1]

    def _signature(self) -> str:
        return f"ConvTranspose2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})"

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")
