"""Convolution, transposed convolution, pooling, padding and local response norm against PyTorch: the functional
API through the one case table's harness (``tests/cases.py``: parity in float32 and, for the cases declared
``float64=True``, in float64 and, where smooth, the finite-difference check, each under every fast lowering), the
modules with torch's state_dict copied in, default init and the shape errors; then the convolutions that compute
only the gradients asked for, and the blocks their gathers run in. Each fast lowering also equals the reference
convolution (``tests/ops/test_conv_lowerings.py``).

Tolerances. Pooling, padding and LRN do a handful of float operations per output, so they keep the harness's
default (rtol 1e-5, atol 1e-6). A conv output sums C/groups * kh * kw products, and its weight and bias gradients
sum over N * H_out * W_out positions (up to a few hundred terms here), in a different order from torch's GEMM; the
float32 rounding of such sums is ~sqrt(n) ulps of the largest partial sum, and values that cancel to near zero
have no relative accuracy at all. Hence ``CONV`` = rtol 1e-4, atol 1e-5 for every case that contains a conv.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import dlbasics as dl
import dlbasics.nn.functional as F
import dlbasics.nn.functional as dl_F
from dlbasics import nn
from dlbasics.ops import conv as conv_ops
from tests.cases import (
    Case,
    _double,
    _float_inputs,
    case,
    check,
    check_float64,
    check_gradcheck,
    exact,
    f64,
    gradcheckable,
    pos,
    r,
)
from tests.nn.test_layers import copy_weights

CONV = {"rtol": 1e-4, "atol": 1e-5}
_rng = np.random.default_rng(20240917)


def ints(*shape: int, low: int = -2, high: int = 2) -> np.ndarray:
    """Integer-valued float32 in [low, high]: many exact ties inside every pooling window."""
    return _rng.integers(low, high + 1, shape).astype(np.float32)


def nhwc(n: int, c: int, h: int, w: int) -> np.ndarray:
    """An (n, c, h, w) array that is the NCHW view of a C-contiguous NHWC array (not contiguous)."""
    return r(n, h, w, c).transpose(0, 3, 1, 2)


def conv(id: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, const: tuple[int, ...] = (),
         float64: bool = False, **kw) -> Case:
    """A conv2d case: ``F.conv2d(x, w, b, **kw)`` in both libraries, with the conv tolerances (``float64``: in
    float64 too)."""
    if b is None:
        return case("conv2d_" + id, lambda m, F, x, w: F.conv2d(x, w, **kw), x, w, const=const, float64=float64,
                    **CONV)
    return case("conv2d_" + id, lambda m, F, x, w, b: F.conv2d(x, w, b, **kw), x, w, b, const=const,
                float64=float64, **CONV)


# ---- conv2d ----------------------------------------------------------------------------------------------------
CONV_CASES = [
    # kernel sizes
    conv("k1_1x1", r(2, 3, 5, 6), r(4, 3, 1, 1), r(4)),
    conv("k3", r(2, 3, 7, 6), r(4, 3, 3, 3), r(4), float64=True),
    conv("k3_no_bias", r(2, 3, 7, 6), r(4, 3, 3, 3)),
    case("conv2d_k3_bias_kw_none", lambda m, F, x, w: F.conv2d(x, w, bias=None), r(2, 3, 6, 6), r(4, 3, 3, 3), **CONV),
    conv("k5_pad2", r(2, 2, 9, 8), r(3, 2, 5, 5), r(3), padding=2, float64=True),
    conv("k3x1_rect", r(2, 3, 6, 5), r(4, 3, 3, 1), r(4), padding=(1, 0)),
    conv("k2x3_rect_pad12", r(1, 3, 6, 7), r(2, 3, 2, 3), r(2), padding=(1, 2), float64=True),
    # strides, including last windows that do not fit exactly and input pixels no window reads
    conv("stride2_pad1", r(2, 3, 8, 8), r(4, 3, 3, 3), r(4), stride=2, padding=1),
    conv("stride2_last_window_short", r(2, 3, 8, 7), r(4, 3, 3, 3), r(4), stride=2),
    conv("stride21_pad1", r(2, 3, 7, 6), r(4, 3, 3, 3), r(4), stride=(2, 1), padding=1, float64=True),
    conv("stride3_k2_gaps", r(1, 2, 7, 8), r(3, 2, 2, 2), r(3), stride=3),
    conv("stride_tuple_22", r(2, 2, 6, 6), r(3, 2, 3, 3), stride=(2, 2), padding=(1, 1)),
    # padding: int, tuple, "same" (odd, even and dilated kernels: torch pads the extra one on the right), "valid"
    conv("pad0", r(2, 3, 6, 6), r(4, 3, 3, 3), r(4), padding=0),
    conv("pad1", r(2, 3, 6, 6), r(4, 3, 3, 3), r(4), padding=1),
    conv("pad2", r(2, 3, 6, 6), r(4, 3, 3, 3), r(4), padding=2),
    conv("pad12", r(2, 3, 5, 6), r(4, 3, 3, 3), r(4), padding=(1, 2)),
    conv("same_k3", r(2, 3, 6, 7), r(4, 3, 3, 3), r(4), padding="same"),
    conv("same_k5", r(2, 2, 6, 5), r(3, 2, 5, 5), r(3), padding="same"),
    conv("same_even_k2x4", r(2, 3, 6, 7), r(4, 3, 2, 4), r(4), padding="same", float64=True),
    conv("same_dilated", r(2, 3, 7, 7), r(4, 3, 3, 2), r(4), padding="same", dilation=(2, 3)),
    conv("valid", r(2, 3, 6, 7), r(4, 3, 3, 3), r(4), padding="valid"),
    # dilation
    conv("dil2", r(2, 3, 9, 9), r(4, 3, 3, 3), r(4), dilation=2),
    conv("dil21_pad21", r(2, 3, 7, 6), r(4, 3, 3, 3), r(4), dilation=(2, 1), padding=(2, 1)),
    conv("dil2_stride2_pad1", r(2, 3, 9, 8), r(4, 3, 3, 3), r(4), dilation=2, stride=2, padding=1, float64=True),
    # groups
    conv("groups2", r(2, 4, 6, 6), r(6, 2, 3, 3), r(6), groups=2),
    conv("groups2_stride2_pad1", r(2, 4, 7, 6), r(4, 2, 3, 3), r(4), groups=2, stride=2, padding=1, float64=True),
    conv("groups3_dil2_no_bias", r(1, 6, 8, 8), r(3, 2, 3, 3), groups=3, dilation=2, padding=1),
    conv("depthwise", r(2, 4, 6, 6), r(4, 1, 3, 3), r(4), groups=4, padding=1),
    conv("depthwise_mult2", r(2, 3, 6, 6), r(6, 1, 3, 3), r(6), groups=3, float64=True),
    conv("depthwise_mult2_stride2_same_shape", r(2, 3, 7, 7), r(6, 1, 3, 3), r(6), groups=3, stride=2, padding=1),
    # batch and channel extremes, non-square inputs, output of spatial size 1
    conv("batch1", r(1, 3, 6, 6), r(4, 3, 3, 3), r(4), padding=1),
    conv("one_channel", r(3, 1, 6, 6), r(2, 1, 3, 3), r(2)),
    conv("one_in_one_out", r(2, 1, 5, 5), r(1, 1, 3, 3), r(1), padding=1),
    conv("non_square_5x9", r(2, 3, 5, 9), r(4, 3, 3, 3), r(4), stride=(1, 2)),
    conv("out_1x1", r(2, 3, 5, 5), r(4, 3, 5, 5), r(4)),
    conv("out_1x1_strided", r(2, 3, 4, 4), r(4, 3, 3, 3), r(4), stride=3),
    conv("kernel_bigger_than_input_padded", r(1, 2, 2, 2), r(3, 2, 3, 3), r(3), padding=1),
    conv("many_channels", r(2, 16, 8, 8), r(32, 16, 3, 3), r(32), padding=1, float64=True),
    # layouts: non-contiguous input (NHWC storage) and weight (HWIO storage), Fortran order
    conv("input_nhwc_view", nhwc(2, 6, 5, 4), r(4, 6, 3, 3), r(4), padding=1, float64=True),
    conv("weight_hwio_view", r(2, 3, 6, 6), r(3, 3, 3, 4).transpose(3, 2, 0, 1), r(4), float64=True),
    conv("fortran_input_and_weight", np.asfortranarray(r(2, 3, 6, 5)), np.asfortranarray(r(4, 3, 3, 3)), r(4),
         stride=(1, 2)),
    case("conv2d_input_permuted_in_graph", lambda m, F, x, w, b: F.conv2d(x.permute(0, 3, 1, 2), w, b, padding=1),
         r(2, 5, 6, 3), r(4, 3, 3, 3), r(4), **CONV),
    case("conv2d_weight_transposed_in_graph", lambda m, F, x, w: F.conv2d(x, w.transpose(0, 1), groups=1),
         r(2, 3, 5, 5), r(3, 4, 2, 2), **CONV),
    # which inputs require grad
    conv("const_weight", r(2, 3, 6, 6), r(4, 3, 3, 3), r(4), const=(1, 2), padding=1),
    conv("const_input_first_layer", r(2, 3, 6, 6), r(4, 3, 3, 3), r(4), const=(0,), stride=2, float64=True),
    # unbatched (C, H, W) input, as torch allows
    conv("unbatched", r(3, 6, 5), r(4, 3, 3, 3), r(4), padding=1),
    case("conv2d_kwargs", lambda m, F, x, w, b: F.conv2d(input=x, weight=w, bias=b, stride=1, padding=(0, 1),
                                                         dilation=1, groups=1), r(2, 3, 5, 5), r(4, 3, 3, 3), r(4),
         **CONV),
    # the output feeds shape ops: its memory layout must not leak into the values
    case("conv2d_then_flatten_linear", lambda m, F, x, w, wl: F.linear(F.conv2d(x, w, stride=2).flatten(1), wl),
         r(2, 3, 7, 6), r(4, 3, 3, 3), r(5, 24), **CONV),
    case("conv2d_then_reshape_transpose",
         lambda m, F, x, w: F.conv2d(x, w, padding=1).reshape(2, 4, -1).transpose(1, 2),
         r(2, 3, 4, 5), r(4, 3, 3, 3), **CONV),
    # a channels-last conv output through LeakyReLU: the kernel keeps its layout (DCGAN's discriminator)
    case("conv2d_then_leaky_relu_then_conv2d",
         lambda m, F, x, w, w2: F.conv2d(F.leaky_relu(F.conv2d(x, w, stride=2, padding=1), 0.2), w2, padding=1),
         r(2, 3, 8, 8), r(16, 3, 4, 4), r(4, 16, 3, 3), **CONV),
    case("conv2d_twice_same_weight", lambda m, F, x, w: F.conv2d(F.conv2d(x, w, padding=1), w, padding=1),
         r(2, 3, 6, 6), r(3, 3, 3, 3), **CONV),
]


# ---- conv_transpose2d ------------------------------------------------------------------------------------------
def convt(id: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, const: tuple[int, ...] = (),
          float64: bool = False, **kw) -> Case:
    """A conv_transpose2d case: ``F.conv_transpose2d(x, w, b, **kw)`` in both libraries, conv tolerances
    (``float64``: in float64 too)."""
    if b is None:
        return case("conv_transpose2d_" + id, lambda m, F, x, w: F.conv_transpose2d(x, w, **kw), x, w, const=const,
                    float64=float64, **CONV)
    return case("conv_transpose2d_" + id, lambda m, F, x, w, b: F.conv_transpose2d(x, w, b, **kw), x, w, b,
                const=const, float64=float64, **CONV)


# weight (C_in, C_out / groups, kh, kw). The op runs the products of its adjoint conv's lowering, Shifted without groups
# and ChannelsLast with (choose_adjoint_lowering, ops/conv/__init__.py), whatever conv2d's lowering, so these run under
# transpose_lowering's three, not every lowering; the cases that compose it with conv2d are in COMPOSITE_CASES
CONV_TRANSPOSE_CASES = [
    # kernel sizes
    convt("k1", r(2, 3, 5, 6), r(3, 4, 1, 1), r(4)),
    convt("k2_stride2_no_overlap", r(2, 3, 4, 5), r(3, 4, 2, 2), r(4), stride=2),
    convt("k3", r(2, 3, 5, 6), r(3, 4, 3, 3), r(4), float64=True),
    convt("k3_no_bias", r(2, 3, 5, 6), r(3, 4, 3, 3)),
    case("conv_transpose2d_k3_bias_kw_none", lambda m, F, x, w: F.conv_transpose2d(x, w, bias=None),
         r(2, 3, 4, 4), r(3, 2, 3, 3), **CONV),
    convt("k4_stride2_pad1", r(2, 3, 5, 5), r(3, 2, 4, 4), r(2), stride=2, padding=1, float64=True),
    convt("k5_pad2", r(2, 2, 6, 5), r(2, 3, 5, 5), r(3), padding=2),
    convt("k3x1_rect_pad10", r(2, 3, 5, 4), r(3, 4, 3, 1), r(4), padding=(1, 0)),
    convt("k2x3_rect_stride21_pad01", r(1, 3, 4, 5), r(3, 2, 2, 3), r(2), stride=(2, 1), padding=(0, 1), float64=True),
    # strides: output pixels no input reaches (stride > kernel) get only the bias
    convt("stride3_k2_gaps", r(1, 2, 4, 4), r(2, 3, 2, 2), r(3), stride=3, float64=True),
    convt("stride3_k5_pad2", r(2, 2, 4, 3), r(2, 3, 5, 5), r(3), stride=3, padding=2),
    convt("stride21_pad1", r(2, 3, 5, 4), r(3, 4, 3, 3), r(4), stride=(2, 1), padding=1),
    # padding crops the full output: int, tuple, and more than the kernel reaches
    convt("pad0", r(2, 3, 5, 5), r(3, 4, 3, 3), r(4), padding=0),
    convt("pad1", r(2, 3, 5, 5), r(3, 4, 3, 3), r(4), padding=1),
    convt("pad2", r(2, 3, 5, 5), r(3, 4, 3, 3), r(4), padding=2),
    convt("pad21", r(2, 3, 5, 6), r(3, 4, 3, 3), r(4), padding=(2, 1)),
    convt("pad3_stride2_beyond_kernel", r(1, 2, 5, 5), r(2, 3, 3, 3), r(3), stride=2, padding=3, float64=True),
    # output_padding: extra rows / columns at the bottom / right that only the bias reaches
    convt("stride2_pad1_output_padding1", r(2, 3, 5, 6), r(3, 4, 3, 3), r(4), stride=2, padding=1,
          output_padding=1),
    convt("output_padding10", r(2, 3, 4, 5), r(3, 4, 3, 3), r(4), stride=2, padding=1, output_padding=(1, 0),
          float64=True),
    convt("output_padding_below_dilation", r(2, 2, 5, 4), r(2, 3, 3, 3), r(3), dilation=2, output_padding=1,
          float64=True),
    convt("stride3_output_padding2", r(1, 2, 3, 4), r(2, 3, 3, 3), r(3), stride=3, output_padding=(2, 1)),
    # dilation
    convt("dil2", r(2, 3, 5, 5), r(3, 4, 3, 3), r(4), dilation=2),
    convt("dil21_stride2_pad1", r(2, 3, 5, 4), r(3, 4, 3, 3), r(4), dilation=(2, 1), stride=2, padding=1, float64=True),
    # groups: weight (C_in, C_out / groups, ...)
    convt("groups2", r(2, 4, 5, 5), r(4, 3, 3, 3), r(6), groups=2),
    convt("groups2_stride2_pad1_op1", r(2, 4, 4, 5), r(4, 2, 3, 3), r(4), groups=2, stride=2, padding=1,
          output_padding=1, float64=True),
    convt("groups3_dil2_no_bias", r(1, 6, 5, 5), r(6, 1, 3, 3), groups=3, dilation=2, padding=1),
    convt("depthwise", r(2, 4, 5, 5), r(4, 1, 3, 3), r(4), groups=4, padding=1),
    convt("depthwise_mult2_stride2", r(2, 3, 4, 4), r(3, 2, 4, 4), r(6), groups=3, stride=2, padding=1, float64=True),
    # batch and channel extremes, output of spatial size 1
    convt("batch1", r(1, 3, 5, 5), r(3, 4, 3, 3), r(4), padding=1),
    convt("one_in_one_out", r(2, 1, 5, 5), r(1, 1, 3, 3), r(1), stride=2),
    convt("out_1x1", r(2, 3, 1, 1), r(3, 4, 1, 1), r(4)),
    convt("out_1x1_padded", r(2, 3, 3, 3), r(3, 4, 3, 3), r(4), padding=2),
    convt("many_channels", r(2, 32, 5, 5), r(32, 16, 3, 3), r(16), stride=2, padding=1, output_padding=1),
    # unbatched (C, H, W) input, as torch allows
    convt("unbatched", r(3, 5, 4), r(3, 4, 3, 3), r(4), stride=2),
    # layouts: non-contiguous input (NHWC storage) and weight, Fortran order
    convt("input_nhwc_view", nhwc(2, 6, 4, 5), r(6, 4, 3, 3), r(4), stride=2, padding=1, float64=True),
    convt("weight_transposed_view", r(2, 3, 5, 5), r(3, 3, 3, 4).transpose(2, 3, 0, 1), r(4), padding=1),
    convt("fortran_input_and_weight", np.asfortranarray(r(2, 3, 4, 5)), np.asfortranarray(r(3, 4, 3, 3)), r(4),
          stride=(1, 2)),
    case("conv_transpose2d_input_permuted_in_graph",
         lambda m, F, x, w, b: F.conv_transpose2d(x.permute(0, 3, 1, 2), w, b, stride=2), r(2, 4, 5, 3),
         r(3, 4, 3, 3), r(4), **CONV),
    # which inputs require grad
    convt("const_weight", r(2, 3, 5, 5), r(3, 4, 3, 3), r(4), const=(1, 2), stride=2),
    convt("const_input", r(2, 3, 5, 5), r(3, 4, 3, 3), r(4), const=(0,), stride=2, padding=1, float64=True),
    convt("const_weight_and_bias_grad_of_input_only", r(2, 3, 5, 5), r(3, 4, 3, 3), r(4), const=(1,), padding=1),
    case("conv_transpose2d_kwargs",
         lambda m, F, x, w, b: F.conv_transpose2d(input=x, weight=w, bias=b, stride=2, padding=(0, 1),
                                                  output_padding=(1, 0), groups=1, dilation=1),
         r(2, 3, 4, 4), r(3, 4, 3, 3), r(4), **CONV),
    case("conv_transpose2d_positional_groups_before_dilation",
         lambda m, F, x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, 2, 2), r(2, 4, 4, 4), r(4, 2, 3, 3), r(4),
         **CONV),
    # DCGAN's generator on 28 x 28 (Fashion-MNIST): 7 -> 14 -> 28, kernel 4, stride 2, padding 1. The weight and
    # bias gradients of the second sum 4 * 14 * 14 = 784 products of size ~1: ~sqrt(784) ulps of ~28 is 5e-5
    case("conv_transpose2d_dcgan_128_to_64_7_to_14",
         lambda m, F, x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1), r(4, 128, 7, 7),
         r(128, 64, 4, 4, scale=0.05), r(64), rtol=1e-4, atol=1e-4),
    case("conv_transpose2d_dcgan_64_to_1_14_to_28",
         lambda m, F, x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1), r(4, 64, 14, 14),
         r(64, 1, 4, 4, scale=0.05), r(1), rtol=1e-4, atol=1e-4, float64=True),
    # the output feeds shape ops: its memory layout must not leak into the values
    case("conv_transpose2d_then_flatten_linear",
         lambda m, F, x, w, wl: F.linear(F.conv_transpose2d(x, w, stride=2, padding=1).flatten(1), wl),
         r(2, 3, 3, 3), r(3, 4, 3, 3), r(5, 100), **CONV),
    case("conv_transpose2d_twice_same_weight",
         lambda m, F, x, w: F.conv_transpose2d(F.conv_transpose2d(x, w, stride=2), w, padding=1),
         r(2, 3, 3, 3), r(3, 3, 3, 3), **CONV),
]


# ---- max_pool2d ------------------------------------------------------------------------------------------------
def mp(id: str, x: np.ndarray, *args, nan_ok: bool = False, smooth: bool = True, float64: bool = False,
       **kw) -> Case:
    return case("max_pool2d_" + id, lambda m, F, x: F.max_pool2d(x, *args, **kw), x, nan_ok=nan_ok, smooth=smooth,
                float64=float64)


# Ties: torch's CPU kernel sends each window's gradient to the FIRST maximum in row-major order within the window
# (checked: a constant 4x4 pooled with kernel 3, stride 1 puts grad 1 on the top-left of each of the 4 windows).
# One row, windows [0:3] and [2:5] (kernel 3, stride 2): the shared column 2 is the max of both -> its grad is 2 g.
SHARED_MAX = exact([[[0.0, 1.0, 5.0, 2.0, -1.0]]])  # (1, 1, 1, 5)
MAX_POOL_CASES = [
    mp("k2", r(2, 3, 6, 6), 2),
    mp("k2_last_window_short", r(2, 3, 7, 5), 2),
    mp("k3_default_stride", r(2, 2, 9, 7), 3),
    mp("k2_stride1", r(2, 3, 5, 5), 2, stride=1),
    mp("k3_stride1", r(1, 2, 6, 7), 3, stride=1),
    mp("k3_stride2_overlap", r(2, 3, 7, 7), 3, stride=2),
    mp("k3_stride2_pad1", r(2, 2, 8, 8), 3, stride=2, padding=1, float64=True),
    mp("k3_pad1_all_negative", -pos(2, 2, 6, 6), 3, stride=2, padding=1),  # padding is -inf, not 0
    mp("k2_pad1", r(1, 2, 5, 6), 2, padding=1),
    mp("rect_k23_stride12", r(2, 2, 6, 7), (2, 3), stride=(1, 2)),
    mp("pad_tuple_10", r(2, 2, 6, 6), (3, 2), stride=(2, 2), padding=(1, 0)),
    mp("dil2", r(1, 2, 9, 9), 3, stride=1, dilation=2),
    mp("dil2_stride2_pad1", r(2, 2, 9, 8), 2, stride=2, padding=1, dilation=2, float64=True),
    mp("dil21_pad1", r(1, 2, 8, 7), 3, stride=2, padding=1, dilation=(2, 1)),
    mp("ceil_k2", r(1, 2, 7, 7), 2, ceil_mode=True),
    mp("ceil_k3_stride2", r(2, 2, 8, 8), 3, stride=2, ceil_mode=True),
    mp("ceil_false_k3_stride2", r(2, 2, 8, 8), 3, stride=2, ceil_mode=False),
    mp("ceil_pad1_last_window_dropped", r(1, 2, 5, 5), 2, stride=2, padding=1, ceil_mode=True),
    mp("ceil_pad1_k3", r(1, 2, 6, 7), 3, stride=2, padding=1, ceil_mode=True, float64=True),
    mp("out_1x1", r(2, 3, 3, 3), 3),
    mp("unbatched", r(3, 6, 6), 2),
    mp("input_nhwc_view", nhwc(2, 4, 6, 6), 3, stride=2, padding=1),
    mp("kwargs", r(2, 2, 6, 6), kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False),
    # ties
    mp("ties_constant_k2", np.zeros((1, 2, 6, 6), np.float32), 2, smooth=False),
    mp("ties_constant_k3_stride1", np.ones((1, 1, 4, 4), np.float32), 3, stride=1, smooth=False),
    mp("ties_constant_pad1", np.zeros((1, 1, 4, 4), np.float32), 2, padding=1, smooth=False),
    mp("ties_constant_ceil", np.full((1, 1, 5, 5), 2.0, np.float32), 2, ceil_mode=True, smooth=False),
    mp("ties_integers_k2", ints(2, 3, 6, 6), 2, smooth=False),
    mp("ties_integers_k3_stride2", ints(2, 3, 7, 7), 3, stride=2, smooth=False, float64=True),
    mp("ties_integers_k3_stride1_pad1", ints(2, 2, 6, 6), 3, stride=1, padding=1, smooth=False),
    mp("ties_integers_dil2", ints(1, 2, 7, 7, low=0, high=1), 3, stride=1, dilation=2, smooth=False),
    # non-finite inputs: torch propagates nan and sends the gradient to it; an all -inf window still has a max
    mp("nan_propagates_and_takes_the_gradient", exact([[[1.0, np.nan, 2.0, 0.0], [0.0, 1.0, 3.0, np.nan]]]), 2,
       nan_ok=True, smooth=False),
    mp("all_minus_inf_with_padding", np.full((1, 1, 3, 3), -np.inf, np.float32), 3, stride=2, padding=1, smooth=False),
    mp("shared_max_two_windows", SHARED_MAX, (1, 3), stride=(1, 2)),
    mp("shared_max_2d", exact([[[0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 9.0, 0.0, 0.0],
                                 [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]]), 3, stride=2),
]


# ---- avg_pool2d ------------------------------------------------------------------------------------------------
def ap(id: str, x: np.ndarray, *args, float64: bool = False, **kw) -> Case:
    return case("avg_pool2d_" + id, lambda m, F, x: F.avg_pool2d(x, *args, **kw), x, float64=float64)


AVG_POOL_CASES = [
    ap("k2", r(2, 3, 6, 6), 2),
    ap("k2_last_window_short", r(2, 3, 7, 5), 2),
    ap("k3_stride1", r(1, 2, 6, 7), 3, stride=1),
    ap("k3_stride2_overlap", r(2, 3, 7, 7), 3, stride=2),
    ap("rect_k23_stride12", r(2, 2, 6, 7), (2, 3), stride=(1, 2)),
    ap("out_1x1", r(2, 3, 4, 4), 4),
    ap("unbatched", r(3, 6, 6), 2),
    ap("input_nhwc_view", nhwc(2, 4, 6, 6), 3, stride=2, padding=1),
    ap("kwargs", r(2, 2, 6, 6), kernel_size=3, stride=1, padding=1, ceil_mode=False, count_include_pad=True),
] + [
    ap(f"{name}_include_pad_{inc}", x, *args, count_include_pad=inc, **kw)
    for inc in (True, False)
    for name, x, args, kw in [
        ("k3_stride1_pad1", r(2, 2, 6, 6), (3,), {"stride": 1, "padding": 1}),
        ("k3_stride2_pad1", r(2, 2, 7, 6), (3,), {"stride": 2, "padding": 1}),
        ("k2_pad1", r(1, 2, 5, 6), (2,), {"padding": 1}),
        ("pad_tuple_10", r(2, 2, 6, 5), ((3, 2),), {"stride": 2, "padding": (1, 0)}),
        ("ceil_k2", r(1, 2, 7, 7), (2,), {"ceil_mode": True}),
        ("ceil_k3_stride2", r(2, 2, 8, 8), (3,), {"stride": 2, "ceil_mode": True}),
        # the divisor of a window that hangs over the end counts the padding, but not the part past it
        ("ceil_k3_stride2_pad1", r(1, 2, 6, 7), (3,), {"stride": 2, "padding": 1, "ceil_mode": True,
                                                       "float64": True}),
        ("ceil_pad1_last_window_dropped", r(1, 2, 5, 5), (2,), {"stride": 2, "padding": 1, "ceil_mode": True}),
        ("ones_ceil_k3_stride2_pad1", np.ones((1, 1, 5, 5), np.float32), (3,),
         {"stride": 2, "padding": 1, "ceil_mode": True}),
    ]
]


# ---- adaptive_avg_pool2d ---------------------------------------------------------------------------------------
def aap(id: str, x: np.ndarray, output_size, float64: bool = False) -> Case:
    return case("adaptive_avg_pool2d_" + id, lambda m, F, x: F.adaptive_avg_pool2d(x, output_size), x,
                float64=float64)


ADAPTIVE_CASES = [
    aap("1x1_from_5x5", r(2, 3, 5, 5), (1, 1)),
    aap("int1_from_7x4", r(2, 3, 7, 4), 1),
    aap("2x2_from_5x5_uneven", r(2, 3, 5, 5), (2, 2)),
    aap("6x6_from_13x13_alexnet", r(2, 4, 13, 13), (6, 6), float64=True),
    aap("6x6_from_6x6_identity", r(1, 2, 6, 6), 6),
    aap("int3_from_7x8", r(2, 2, 7, 8), 3),
    aap("3x2_from_7x5", r(2, 2, 7, 5), (3, 2)),
    aap("4x5_from_3x3_upsample", r(1, 2, 3, 3), (4, 5), float64=True),
    aap("none_3_from_5x7", r(2, 2, 5, 7), (None, 3)),
    aap("2_none_from_5x7", r(2, 2, 5, 7), (2, None)),
    aap("unbatched", r(3, 7, 6), (3, 4)),
    aap("input_nhwc_view", nhwc(2, 3, 9, 7), (4, 3)),
]


# ---- pad -------------------------------------------------------------------------------------------------------
def pd(id: str, x: np.ndarray, pad: tuple[int, ...], float64: bool = False, **kw) -> Case:
    return case("pad_" + id, lambda m, F, x: F.pad(x, pad, **kw), x, float64=float64)


PAD_CASES = [
    pd("4d_1111", r(2, 3, 4, 5), (1, 1, 1, 1)),
    pd("4d_asymmetric", r(2, 3, 4, 5), (1, 2, 0, 3)),
    pd("4d_last_dim_only", r(2, 3, 4, 5), (2, 1)),
    pd("4d_channels_too", r(2, 3, 4, 5), (1, 0, 0, 2, 1, 1)),
    pd("4d_all_dims", r(2, 3, 4, 5), (1, 1, 1, 1, 1, 1, 1, 1)),
    pd("4d_value", r(2, 3, 4, 5), (1, 2, 3, 0), value=-1.5, float64=True),
    pd("4d_mode_constant_value", r(1, 2, 3, 3), (2, 2, 1, 1), mode="constant", value=3.25),
    pd("2d", r(4, 5), (1, 2, 3, 0)),
    pd("2d_value", r(4, 5), (0, 1, 2, 0), value=7.0),
    pd("1d", r(5), (2, 1)),
    pd("3d", r(3, 4, 5), (0, 0, 2, 2)),
    pd("zeros_identity", r(2, 3, 4, 5), (0, 0, 0, 0)),
    pd("negative_crop", r(2, 3, 4, 5), (-1, 1, 0, -2), float64=True),
    pd("negative_all_sides", r(1, 2, 5, 6), (-1, -1, -2, -1)),
    pd("negative_2d", r(4, 5), (-1, 2)),
    pd("nhwc_view", nhwc(2, 3, 4, 5), (1, 2, 2, 1), value=0.5),
    case("pad_then_conv_asymmetric", lambda m, F, x, w: F.conv2d(F.pad(x, (0, 1, 1, 0)), w, stride=2),
         r(2, 3, 6, 6), r(4, 3, 3, 3), **CONV),
]


# ---- local_response_norm ---------------------------------------------------------------------------------------
def lrn(id: str, x: np.ndarray, size: int, float64: bool = False, **kw) -> Case:
    return case("local_response_norm_" + id, lambda m, F, x: F.local_response_norm(x, size, **kw), x,
                float64=float64)


LRN_CASES = [
    lrn("size2_c6", r(2, 6, 4, 5), 2),
    lrn("size3_c6", r(2, 6, 4, 5), 3),
    lrn("size5_c6", r(2, 6, 4, 5), 5),
    lrn("size5_c5", r(2, 5, 3, 3), 5),
    lrn("size1", r(2, 3, 3, 3), 1),
    lrn("size3_c2_small_C", r(2, 2, 4, 4), 3),
    lrn("size5_c2_small_C", r(2, 2, 4, 4), 5, float64=True),
    lrn("size2_c1", r(2, 1, 3, 3), 2),
    lrn("alexnet_params", r(2, 8, 5, 5, scale=5.0), 5, alpha=1e-4, beta=0.75, k=2.0),
    lrn("strong_alpha_beta_k", r(2, 6, 3, 4, scale=2.0), 3, alpha=0.5, beta=1.5, k=0.5, float64=True),
    lrn("size4_even_strong", r(1, 7, 3, 3, scale=2.0), 4, alpha=0.3, beta=0.6, k=1.2, float64=True),
    lrn("3d_input", r(2, 6, 7), 3, alpha=0.2),
    lrn("input_nhwc_view", nhwc(2, 6, 4, 4), 3, alpha=0.1),
]


# ---- composite: a miniature AlexNet ----------------------------------------------------------------------------
def _mini_alexnet(m, F, x, w1, b1, w2, b2, wl, bl):
    h = F.max_pool2d(F.local_response_norm(F.relu(F.conv2d(x, w1, b1, stride=2, padding=2)), 3, alpha=0.1), 3, 2)
    h = F.relu(F.conv2d(h, w2, b2, padding=1, groups=2))
    h = F.adaptive_avg_pool2d(h, (2, 2))
    return F.linear(h.flatten(1), wl, bl)


COMPOSITE_CASES = [
    case("mini_alexnet", _mini_alexnet, r(2, 3, 17, 17), r(8, 3, 5, 5, scale=0.3), r(8), r(6, 4, 3, 3, scale=0.3),
         r(6), r(5, 24, scale=0.3), r(5), float64=True, **CONV),
    case("conv_avgpool_conv", lambda m, F, x, w1, w2: F.conv2d(F.avg_pool2d(F.conv2d(x, w1, padding="same"), 2,
                                                                            ceil_mode=True), w2),
         r(2, 2, 7, 7), r(4, 2, 3, 3), r(3, 4, 2, 2), **CONV),
    # conv_transpose2d composed with conv2d (run under each conv2d lowering): a tied-weight autoencoder, whose
    # decoder is the adjoint of its encoder (the same w, read as (C_in, C_out, kh, kw)), and a generator block
    case("conv2d_then_conv_transpose2d_tied_weight",
         lambda m, F, x, w: F.conv_transpose2d(F.relu(F.conv2d(x, w, stride=2, padding=1)), w, stride=2, padding=1,
                                               output_padding=1),
         r(2, 3, 8, 7), r(5, 3, 3, 3), float64=True, **CONV),
    case("conv_transpose2d_then_conv2d",
         lambda m, F, x, w1, b1, w2: F.conv2d(F.relu(F.conv_transpose2d(x, w1, b1, stride=2, padding=1)), w2,
                                              padding=1),
         r(2, 8, 4, 4), r(8, 6, 4, 4, scale=0.3), r(6), r(4, 6, 3, 3, scale=0.3), float64=True, **CONV),
    case("conv2d_groups_then_conv_transpose2d_groups",
         lambda m, F, x, w1, w2: F.conv_transpose2d(F.conv2d(x, w1, groups=2), w2, groups=2, stride=2),
         r(2, 4, 6, 6), r(6, 2, 3, 3), r(6, 2, 2, 2), **CONV),
]

CONV_PARITY_CASES = (CONV_CASES + MAX_POOL_CASES + AVG_POOL_CASES + ADAPTIVE_CASES + PAD_CASES + LRN_CASES
                     + COMPOSITE_CASES)
# the cases declared float64=True run in float64 too, both libraries in double precision (rtol 1e-10, atol 1e-12:
# the same sums, up to summation order): a few of each op, each under every lowering, not the whole table
FLOAT64_CONV_CASES = [_double(c) for c in CONV_PARITY_CASES if c.float64]
FLOAT64_CONV_TRANSPOSE_CASES = [_double(c) for c in CONV_TRANSPOSE_CASES if c.float64]


@pytest.fixture(params=[None, "toeplitz", "planar", "shifted", "shifted-one-pixel-per-row", "channels_last"],
                ids=["lowering-auto", "lowering-toeplitz", "lowering-planar", "lowering-shifted",
                     "lowering-shifted-one-pixel-per-row", "lowering-channels-last"])
def lowering(request, force_lowering):
    """Each case runs with the layer's own choice of conv lowering and with each one forced (where supported);
    the shifted one also without pairing the pixels of few-channel layers."""
    force_lowering(request.param)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")  # torch's, harmless
@pytest.mark.parametrize("case", CONV_PARITY_CASES, ids=lambda c: c.id)
def test_matches_torch(case: Case, lowering) -> None:
    check(case)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("case", FLOAT64_CONV_CASES, ids=lambda c: c.id)
def test_matches_torch_float64(case: Case, lowering) -> None:
    check_float64(case)


# the finite-difference check runs each smooth case once, with each layer's own lowering (every lowering equals the
# reference, tests/ops/test_conv_lowerings.py); up to 1,000 input values, as gradcheck evaluates the op twice per value
GRADCHECK_CASES = [c for c in CONV_PARITY_CASES + CONV_TRANSPOSE_CASES
                   if sum(c.inputs[i].size for i in _float_inputs(c)) <= 1000 and gradcheckable(c)]


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=lambda c: c.id)
def test_gradients_match_finite_differences(case: Case) -> None:
    check_gradcheck(case)


@pytest.fixture(params=[None, "shifted-one-pixel-per-row", "channels_last"],
                ids=["lowering-auto", "lowering-shifted-one-pixel-per-row", "lowering-channels-last"])
def transpose_lowering(request, force_lowering):
    """A transposed conv is its adjoint conv's input gradient: Shifted's (no groups, the default) or ChannelsLast's
    (with groups, or forced)."""
    force_lowering(request.param)


@pytest.mark.parametrize("case", CONV_TRANSPOSE_CASES, ids=lambda c: c.id)
def test_conv_transpose2d_matches_torch(case: Case, transpose_lowering) -> None:
    check(case)


@pytest.mark.parametrize("case", FLOAT64_CONV_TRANSPOSE_CASES, ids=lambda c: c.id)
def test_conv_transpose2d_matches_torch_float64(case: Case, transpose_lowering) -> None:
    check_float64(case)


_TRANSPOSE_BY_ID = {c.id: c for c in CONV_TRANSPOSE_CASES}


@pytest.mark.parametrize("name", ["k4_stride2_pad1", "stride3_k5_pad2", "groups2_stride2_pad1_op1", "unbatched",
                                  "dil21_stride2_pad1", "dcgan_64_to_1_14_to_28"])
def test_conv_transpose2d_in_tiny_blocks_matches_torch(name: str, monkeypatch) -> None:
    """At 64 bytes every block of the col2im (forward) and of the gathers (backward) is one row of one image."""
    monkeypatch.setattr(conv_ops.geometry, "BLOCK_BYTES", 64)
    check(_TRANSPOSE_BY_ID["conv_transpose2d_" + name])


@pytest.mark.parametrize("kw", [{}, {"stride": 2, "padding": 1}, {"stride": (3, 2), "padding": 2},
                                {"groups": 2, "dilation": (1, 2), "padding": (0, 1)}])
def test_conv_transpose2d_is_the_adjoint_of_conv2d(kw) -> None:
    """<conv2d(x, w), v> = <x, conv_transpose2d(v, w)> for every x, v: the definition of the transposed conv.
    output_padding gives back the rows and columns of x past the last window (which conv2d does not read)."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2 if kw.get("groups") else 4, 3, 3))
    y = dl_F.conv2d(dl.tensor(x, dtype=dl.float64), dl.tensor(w, dtype=dl.float64), **kw).data
    s, p, d = (conv_ops.pair(kw.get(k, v), k) for k, v in (("stride", 1), ("padding", 0), ("dilation", 1)))
    op = tuple(x.shape[2 + k] - ((y.shape[2 + k] - 1) * s[k] - 2 * p[k] + d[k] * 2 + 1) for k in range(2))
    v = rng.standard_normal(y.shape)
    xt = dl_F.conv_transpose2d(dl.tensor(v, dtype=dl.float64), dl.tensor(w, dtype=dl.float64), output_padding=op,
                               **kw).data
    assert xt.shape == x.shape
    np.testing.assert_allclose(np.vdot(y, v), np.vdot(x, xt), rtol=1e-12)


def test_conv_transpose2d_output_padding_past_the_full_output_gets_only_the_bias() -> None:
    """output_padding first keeps rows that padding would crop (they get sums, as in torch: the parity cases);
    with no padding, the extra bottom row and right column lie past every window and get only the bias."""
    x, w, b = r(1, 2, 3, 3), r(2, 3, 3, 3), r(3)
    y = dl_F.conv_transpose2d(dl.tensor(x), dl.tensor(w), dl.tensor(b), stride=2, output_padding=1).data
    assert y.shape == (1, 3, 8, 8)
    np.testing.assert_array_equal(y[0, :, -1, :], np.broadcast_to(b[:, None], (3, 8)))
    np.testing.assert_array_equal(y[0, :, :, -1], np.broadcast_to(b[:, None], (3, 8)))
    yt = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2,
                                              output_padding=1)
    np.testing.assert_allclose(y, yt.numpy(), **CONV)


def test_conv_transpose2d_float64_by_definition() -> None:
    """out[n, o, s y - p + d i, s x - p + d j] += sum_c x[n, c, y, x] w[c, o, i, j], in float64 by loops."""
    x, w, b = f64(r(2, 4, 3, 4)), f64(r(4, 3, 2, 3)), f64(r(6))
    (sh, sw), (ph, pw), (dh, dw), (oh, ow) = (2, 3), (1, 0), (2, 1), (1, 2)
    y = dl_F.conv_transpose2d(*(dl.tensor(a, dtype=dl.float64) for a in (x, w, b)), stride=(sh, sw),
                              padding=(ph, pw), output_padding=(oh, ow), groups=2, dilation=(dh, dw)).data
    ho, wo = (3 - 1) * sh - 2 * ph + dh * 1 + oh + 1, (4 - 1) * sw - 2 * pw + dw * 2 + ow + 1
    want = np.zeros((2, 6, ho, wo)) + b[:, None, None]
    for n, c, yy, xx, o, i, j in np.ndindex(2, 4, 3, 4, 3, 2, 3):
        u, v = sh * yy - ph + dh * i, sw * xx - pw + dw * j
        if 0 <= u < ho and 0 <= v < wo:
            want[n, (c // 2) * 3 + o, u, v] += x[n, c, yy, xx] * w[c, o, i, j]
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CONV_PARITY_CASES + CONV_TRANSPOSE_CASES]
    assert len(ids) == len(set(ids))


def test_ties_really_are_ties() -> None:
    """The tie cases exercise the first-max rule: torch's gradient differs from splitting it among the ties."""
    x = torch.ones(1, 1, 4, 4, requires_grad=True)
    torch.nn.functional.max_pool2d(x, 3, stride=1).sum().backward()
    first = np.zeros((4, 4), np.float32)
    first[:2, :2] = 1.0  # each window's top-left element
    np.testing.assert_array_equal(x.grad[0, 0].numpy(), first)
    xd = dl.tensor(np.ones((1, 1, 4, 4), np.float32), requires_grad=True)
    dl_F.max_pool2d(xd, 3, stride=1).sum().backward()
    np.testing.assert_array_equal(xd.grad[0, 0], first)


def test_shared_max_gradient_accumulates() -> None:
    xd = dl.tensor(SHARED_MAX, requires_grad=True)
    out = dl_F.max_pool2d(xd, (1, 3), stride=(1, 2))
    np.testing.assert_array_equal(out.data, [[[[5.0, 5.0]]]])
    out.backward(np.array([[[[1.5, 2.0]]]], np.float32))
    np.testing.assert_array_equal(xd.grad, [[[[0.0, 0.0, 3.5, 0.0, 0.0]]]])


# ---- modules ---------------------------------------------------------------------------------------------------
def module_parity(dl_module, torch_module, x: np.ndarray, rtol: float = CONV["rtol"], atol: float = CONV["atol"]):
    if list(torch_module.state_dict()):
        copy_weights(dl_module, torch_module)
    else:
        assert list(dl_module.state_dict()) == []
    xd, xt = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = dl_module(xd), torch_module(xt)
    assert yd.shape == tuple(yt.shape)
    assert yd.dtype == dl.float32
    np.testing.assert_allclose(yd.data, yt.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(3).standard_normal(yd.shape).astype(np.float32)
    yd.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(torch_module.named_parameters())
    dparams = dict(dl_module.named_parameters())
    assert list(dparams) == list(tparams)
    for name, p in dparams.items():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)


CONV_MODULES = [
    ((3, 8, 3), {}, (2, 3, 7, 6)),
    ((3, 8, 3), {"bias": False}, (2, 3, 7, 6)),
    ((3, 4, (3, 1)), {"padding": 1}, (2, 3, 5, 5)),
    ((3, 4, (2, 3)), {"stride": (2, 1), "padding": (1, 2)}, (1, 3, 7, 6)),
    ((3, 4, 5), {"padding": "same"}, (2, 3, 6, 7)),
    ((3, 4, 4), {"padding": "same", "dilation": 2}, (2, 3, 9, 9)),
    ((3, 4, 3), {"padding": "valid", "stride": 2}, (2, 3, 8, 7)),
    ((4, 6, 3), {"groups": 2, "dilation": (2, 1), "padding": 1}, (2, 4, 8, 6)),
    ((4, 4, 3), {"groups": 4, "padding": 1}, (2, 4, 6, 6)),
    ((3, 6, 3), {"groups": 3, "stride": 2, "bias": False}, (2, 3, 7, 7)),
    ((1, 2, 1), {}, (3, 1, 4, 4)),
    ((3, 5, 11), {"stride": 4, "padding": 2}, (1, 3, 23, 23)),  # AlexNet's first layer, scaled down
]


@pytest.mark.parametrize(("args", "kwargs", "shape"), CONV_MODULES,
                         ids=[f"{a}-{k}" for a, k, _ in CONV_MODULES])
def test_conv2d_module(args, kwargs, shape) -> None:
    dm, tm = module_pair("Conv2d", args, kwargs)
    module_parity(dm, tm, r(*shape))


def module_pair(name: str, args: tuple, kwargs: dict) -> tuple:
    """(ours, torch's) module ``name`` built from the same arguments, with torch's parameter names and shapes."""
    torch.manual_seed(0)
    tm, dm = getattr(torch.nn, name)(*args, **kwargs), getattr(nn, name)(*args, **kwargs)
    assert list(dm.state_dict()) == (["weight", "bias"] if kwargs.get("bias", True) else ["weight"])
    assert dm.weight.shape == tuple(tm.weight.shape)
    assert dm.bias is None or dm.bias.shape == tuple(tm.bias.shape)
    return dm, tm


def test_conv2d_module_unbatched_input() -> None:
    tm, dm = torch.nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)
    module_parity(dm, tm, r(3, 5, 6))


def test_conv2d_module_attributes_like_torch() -> None:
    for args, kwargs, _ in CONV_MODULES:
        tm, dm = torch.nn.Conv2d(*args, **kwargs), nn.Conv2d(*args, **kwargs)
        for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"):
            assert getattr(dm, attr) == getattr(tm, attr), f"Conv2d{args} {kwargs}: {attr}"


def two_sgd_steps_agree(dm, tm, loss: str, x: np.ndarray, target: np.ndarray) -> None:
    """Copy tm's weights into dm, take two SGD steps (lr 0.5) by hand in both on ``loss(model(x), target)``: the
    losses and then every weight agree."""
    copy_weights(dm, tm)
    for _ in range(2):
        ld = getattr(dl_F, loss)(dm(dl.tensor(x)), dl.tensor(target))
        lt = getattr(torch.nn.functional, loss)(tm(torch.tensor(x)), torch.tensor(target))
        np.testing.assert_allclose(ld.item(), lt.item(), rtol=1e-5)
        dm.zero_grad()
        tm.zero_grad()
        ld.backward()
        lt.backward()
        with torch.no_grad():
            for p in tm.parameters():
                p -= 0.5 * p.grad
        for p in dm.parameters():
            p.data -= 0.5 * p.grad
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(dm.state_dict()[k], v.numpy(), rtol=1e-4, atol=1e-5, err_msg=k)


def test_conv2d_module_in_a_sequential_trains_like_torch() -> None:
    """Two SGD steps by hand through conv -> relu -> maxpool -> flatten -> linear: same weights after."""
    torch.manual_seed(1)
    tm = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                             torch.nn.Flatten(), torch.nn.Linear(36, 3))
    dm = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 3))
    two_sgd_steps_agree(dm, tm, "cross_entropy", r(5, 2, 6, 6), np.array([0, 2, 1, 1, 0]))


@pytest.mark.parametrize(("in_ch", "out_ch", "k", "groups"), [(64, 32, 3, 1), (16, 8, (5, 3), 1), (8, 16, 3, 8)])
def test_conv2d_default_init_distribution_matches_torch(in_ch, out_ch, k, groups) -> None:
    """kaiming_uniform(a=sqrt(5)) => W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), b too; fan_in = in/groups * kh * kw."""
    kh, kw = (k, k) if isinstance(k, int) else k
    bound = 1.0 / math.sqrt(in_ch // groups * kh * kw)
    dl.manual_seed(0)
    torch.manual_seed(0)
    dm, tm = nn.Conv2d(in_ch, out_ch, k, groups=groups), torch.nn.Conv2d(in_ch, out_ch, k, groups=groups)
    wd, bd = dm.weight.data, dm.bias.data
    wt = tm.weight.detach().numpy()
    assert wd.dtype == np.float32 and bd.dtype == np.float32
    assert np.abs(wd).max() <= bound and np.abs(bd).max() <= bound
    assert np.abs(wd).max() > 0.97 * bound  # fills the whole range, not a narrower one
    assert abs(wd.std() - bound / math.sqrt(3)) < 0.06 * bound / math.sqrt(3)  # std of U(-a, a) is a / sqrt(3)
    assert abs(wd.std() - wt.std()) < 0.08 * wt.std()
    assert abs(wd.mean()) < 0.1 * bound
    dl.manual_seed(0)
    np.testing.assert_array_equal(nn.Conv2d(in_ch, out_ch, k, groups=groups).weight.data, wd)  # seeded: reproducible


CONV_TRANSPOSE_MODULES = [
    ((3, 8, 3), {}, (2, 3, 5, 4)),
    ((3, 8, 3), {"bias": False}, (2, 3, 5, 4)),
    ((3, 4, (3, 1)), {"padding": (1, 0)}, (2, 3, 5, 5)),
    ((3, 4, (2, 3)), {"stride": (2, 1), "padding": (0, 1), "output_padding": (1, 0)}, (1, 3, 4, 5)),
    ((3, 4, 3), {"stride": 2, "padding": 1, "output_padding": 1}, (2, 3, 5, 6)),
    ((3, 4, 3), {"dilation": 2, "output_padding": 1}, (2, 3, 4, 4)),
    ((4, 6, 3), {"groups": 2, "stride": 2, "dilation": (2, 1), "padding": 1}, (2, 4, 4, 5)),
    ((4, 4, 3), {"groups": 4, "padding": 1}, (2, 4, 5, 5)),
    ((3, 6, 4), {"groups": 3, "stride": 2, "padding": 1, "bias": False}, (2, 3, 4, 4)),
    ((1, 2, 1), {}, (3, 1, 4, 4)),
    ((128, 64, 4, 2, 1), {}, (2, 128, 7, 7)),  # DCGAN's generator, positional as its code writes it
    ((64, 1, 4, 2, 1), {}, (2, 64, 14, 14)),
]


@pytest.mark.parametrize(("args", "kwargs", "shape"), CONV_TRANSPOSE_MODULES,
                         ids=[f"{a}-{k}" for a, k, _ in CONV_TRANSPOSE_MODULES])
def test_conv_transpose2d_module(args, kwargs, shape) -> None:
    dm, tm = module_pair("ConvTranspose2d", args, kwargs)
    # DCGAN's layers: a weight gradient sums 2 x 14 x 14 products of values up to ~40 in another order than torch's,
    # so float32 leaves ~2e-5 of absolute error on entries that cancel to near zero
    module_parity(dm, tm, r(*shape), atol=1e-4 if args[0] >= 64 else CONV["atol"])


def test_conv_transpose2d_module_unbatched_input() -> None:
    tm, dm = torch.nn.ConvTranspose2d(3, 4, 3, stride=2), nn.ConvTranspose2d(3, 4, 3, stride=2)
    module_parity(dm, tm, r(3, 5, 6))


def test_conv_transpose2d_module_attributes_and_repr_like_torch() -> None:
    for args, kwargs, _ in CONV_TRANSPOSE_MODULES:
        tm, dm = torch.nn.ConvTranspose2d(*args, **kwargs), nn.ConvTranspose2d(*args, **kwargs)
        for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
                     "dilation", "groups", "padding_mode"):
            assert getattr(dm, attr) == getattr(tm, attr), f"ConvTranspose2d{args} {kwargs}: {attr}"
        assert repr(dm) == repr(tm)


@pytest.mark.parametrize(("kwargs", "shape", "output_size"), [
    ({"stride": 2, "padding": 1}, (2, 3, 5, 5), (10, 10)),  # the size a stride-2 conv with padding 1 came from
    ({"stride": 2, "padding": 1}, (2, 3, 5, 5), (9, 10)),
    ({"stride": 2, "padding": 1}, (2, 3, 5, 5), [2, 4, 10, 9]),  # the whole shape, as torch allows
    ({"stride": (3, 2), "dilation": (1, 2)}, (1, 3, 4, 5), (12, 13)),
    ({"stride": 3, "padding": 2}, (3, 5, 4), (12, 10)),  # unbatched
    ({"stride": 3, "padding": 2}, (3, 5, 4), (4, 13, 8)),  # unbatched, its whole shape
    ({"stride": 1, "padding": 1}, (2, 3, 5, 5), (5, 5)),
])
def test_conv_transpose2d_module_output_size_like_torch(kwargs, shape, output_size) -> None:
    tm, dm = torch.nn.ConvTranspose2d(3, 4, 3, **kwargs), nn.ConvTranspose2d(3, 4, 3, **kwargs)
    copy_weights(dm, tm)
    x = r(*shape)
    xd, xt = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = dm(xd, output_size=output_size), tm(xt, output_size=list(output_size))
    assert yd.shape == tuple(yt.shape) and yd.shape[-2:] == tuple(output_size)[-2:]
    np.testing.assert_allclose(yd.data, yt.detach().numpy(), **CONV)
    g = np.random.default_rng(4).standard_normal(yd.shape).astype(np.float32)
    yd.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), **CONV)
    np.testing.assert_allclose(dm.weight.grad, tm.weight.grad.numpy(), **CONV)


@pytest.mark.parametrize(("output_size", "pattern"), [((11, 10), r"9\D{1,3}9.*10\D{1,3}10"), ((8, 10), "8"),
                                                      ((10,), "output_size"), ((1, 2, 3), "output_size")])
def test_conv_transpose2d_module_impossible_output_size(output_size, pattern) -> None:
    x = r(1, 4, 5, 5)
    with pytest.raises(ValueError):
        torch.nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1)(torch.tensor(x), output_size=list(output_size))
    with pytest.raises(ValueError) as e:
        nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1)(dl.tensor(x), output_size=output_size)
    assert_mentions(str(e.value), "ConvTranspose2d", pattern)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(("in_ch", "out_ch", "k", "groups"), [(128, 64, 4, 1), (16, 64, (3, 5), 1), (32, 64, 3, 8),
                                                              (64, 8, 3, 1)])
def test_conv_transpose2d_default_init_distribution_matches_torch(in_ch, out_ch, k, groups) -> None:
    """kaiming_uniform(a=sqrt(5)) => W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with torch's fan_in of the weight
    (C_in, C_out/groups, kh, kw): weight.shape[1] * kh * kw = C_out/groups * kh * kw (not C_in, as a conv's)."""
    kh, kw = (k, k) if isinstance(k, int) else k
    dl.manual_seed(0)
    torch.manual_seed(0)
    dm = nn.ConvTranspose2d(in_ch, out_ch, k, groups=groups)
    tm = torch.nn.ConvTranspose2d(in_ch, out_ch, k, groups=groups)
    fan_in = torch.nn.init._calculate_fan_in_and_fan_out(tm.weight)[0]
    assert fan_in == out_ch // groups * kh * kw
    bound = 1.0 / math.sqrt(fan_in)
    wd, bd = dm.weight.data, dm.bias.data
    wt, bt = tm.weight.detach().numpy(), tm.bias.detach().numpy()
    assert wd.dtype == np.float32 and bd.dtype == np.float32
    assert np.abs(wt).max() <= bound and np.abs(bt).max() <= bound  # torch's own range, the same bound
    assert np.abs(wd).max() <= bound and np.abs(bd).max() <= bound
    assert np.abs(wd).max() > 0.97 * bound  # fills the whole range, not a narrower one
    assert np.abs(bd).max() > 0.5 * bound
    assert abs(wd.std() - bound / math.sqrt(3)) < 0.06 * bound / math.sqrt(3)  # std of U(-a, a) is a / sqrt(3)
    assert abs(wd.std() - wt.std()) < 0.08 * wt.std()
    assert abs(wd.mean()) < 0.1 * bound
    dl.manual_seed(0)
    np.testing.assert_array_equal(nn.ConvTranspose2d(in_ch, out_ch, k, groups=groups).weight.data, wd)


def test_conv_transpose2d_module_dtype_and_device() -> None:
    m = nn.ConvTranspose2d(2, 3, 3, dtype=dl.float64, device="cpu")
    assert m.weight.dtype == dl.float64 and m.bias.dtype == dl.float64
    assert m(dl.tensor(r(1, 2, 4, 4).astype(np.float64), dtype=dl.float64)).dtype == dl.float64


def test_conv_transpose2d_generator_trains_like_torch() -> None:
    """Two SGD steps by hand through a DCGAN-style generator, convT -> relu -> convT -> tanh, MSE to a target."""
    torch.manual_seed(2)
    tm = torch.nn.Sequential(torch.nn.ConvTranspose2d(8, 4, 4, 2, 1), torch.nn.ReLU(),
                             torch.nn.ConvTranspose2d(4, 1, 4, 2, 1), torch.nn.Tanh())
    dm = nn.Sequential(nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(4, 1, 4, 2, 1), nn.Tanh())
    two_sgd_steps_agree(dm, tm, "mse_loss", r(3, 8, 3, 3), r(3, 1, 12, 12))


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda m: m.MaxPool2d(2), (2, 3, 6, 7)),
        (lambda m: m.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 8, 7)),
        (lambda m: m.MaxPool2d((2, 3), stride=1, dilation=(1, 2)), (1, 2, 6, 8)),
        (lambda m: m.MaxPool2d(kernel_size=3, stride=2), (2, 3, 13, 13)),
        (lambda m: m.AvgPool2d(2), (2, 3, 6, 7)),
        (lambda m: m.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 3, 8, 7)),
        (lambda m: m.AvgPool2d(3, 1, 1), (1, 2, 5, 5)),
        (lambda m: m.AdaptiveAvgPool2d((6, 6)), (2, 3, 13, 13)),
        (lambda m: m.AdaptiveAvgPool2d(1), (2, 3, 5, 4)),
        (lambda m: m.AdaptiveAvgPool2d((None, 2)), (2, 3, 5, 5)),
        (lambda m: m.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), (2, 8, 5, 5)),
        (lambda m: m.LocalResponseNorm(3), (2, 2, 4, 4)),
        (lambda m: m.LocalResponseNorm(2, 0.5, 1.5, 0.5), (2, 6, 3, 3)),
    ],
)
def test_pool_and_lrn_modules(make, shape) -> None:
    module_parity(make(nn), make(torch.nn), r(*shape, scale=2.0), rtol=1e-5, atol=1e-6)


# ---- errors ----------------------------------------------------------------------------------------------------
def shape_pattern(*dims: int) -> str:
    """A regex for a shape however it is printed: (1, 4, 5, 5), [1, 4, 5, 5], 1x4x5x5, torch.Size([...])."""
    return r"\D{1,3}".join(str(d) for d in dims)


def assert_mentions(msg: str, *patterns: str) -> None:
    for p in patterns:
        assert re.search(p, msg, flags=re.IGNORECASE), f"error message {msg!r} does not mention {p!r}"


def test_conv2d_module_wrong_channels_names_layer_and_shapes() -> None:
    msg = "Conv2d(3, 8, kernel_size=(3, 3)): expected input (N, 3, H, W), got (1, 4, 5, 5)"
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        nn.Conv2d(3, 8, 3)(dl.tensor(r(1, 4, 5, 5)))


def test_conv2d_functional_wrong_channels_names_shapes() -> None:
    msg = "conv2d: input (2, 4, 5, 5) has 4 channels, but weight (6, 3, 3, 3) with groups=1 expects 3"
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        dl_F.conv2d(dl.tensor(r(2, 4, 5, 5)), dl.tensor(r(6, 3, 3, 3)))


def test_conv2d_functional_groups_not_dividing_channels() -> None:
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv2d(torch.zeros(2, 4, 5, 5), torch.zeros(6, 2, 3, 3), groups=3)
    msg = "conv2d: groups=3 must divide both in_channels 4 and out_channels 6"
    with pytest.raises(ValueError, match=re.escape(msg)):
        dl_F.conv2d(dl.tensor(r(2, 4, 5, 5)), dl.tensor(r(6, 2, 3, 3)), groups=3)


@pytest.mark.parametrize(("x_shape", "padding", "padded"), [((1, 3, 2, 2), 0, (2, 2)), ((1, 3, 4, 1), (0, 0), (4, 1)),
                                                            ((2, 3, 1, 1), 0, (1, 1))])
def test_conv2d_kernel_larger_than_padded_input(x_shape, padding, padded) -> None:
    msg = f"conv2d: kernel (3, 3) with dilation (1, 1) is larger than the padded input {padded} of input {x_shape}"
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        dl_F.conv2d(dl.tensor(r(*x_shape)), dl.tensor(r(8, 3, 3, 3)), padding=padding)
    with pytest.raises(RuntimeError):  # torch refuses it too
        torch.nn.functional.conv2d(torch.zeros(x_shape), torch.zeros(8, 3, 3, 3), padding=padding)


def test_conv2d_module_kernel_larger_than_input() -> None:
    msg = "conv2d: kernel (5, 5) with dilation (1, 1) is larger than the padded input (4, 4) of input (1, 3, 2, 2)"
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        nn.Conv2d(3, 8, 5, padding=1)(dl.tensor(r(1, 3, 2, 2)))


def test_conv2d_weight_must_be_4d() -> None:
    msg = ("conv2d: expected input (N, C, H, W) and weight (O, C/groups, kh, kw), got input (1, 4, 5, 5) and weight "
           "(6, 4, 3)")
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        dl_F.conv2d(dl.tensor(r(1, 4, 5, 5)), dl.tensor(r(6, 4, 3)))


def test_conv2d_groups_must_divide_channels() -> None:
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(4, 6, 3, groups=4)


def test_conv2d_same_padding_with_stride_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("conv2d: padding='same' needs stride 1, got stride (2, 2)")):
        dl_F.conv2d(dl.tensor(r(1, 3, 5, 5)), dl.tensor(r(8, 3, 3, 3)), stride=2, padding="same")
    with pytest.raises(ValueError, match=re.escape("Conv2d: padding='same' needs stride 1, got stride (2, 2)")):
        nn.Conv2d(3, 8, 3, stride=2, padding="same")(dl.tensor(r(1, 3, 5, 5)))


def test_conv2d_module_same_padding_with_stride_is_refused_at_construction() -> None:
    """torch.nn.Conv2d raises ValueError in __init__, before any input is seen."""
    with pytest.raises(ValueError, match="same"):
        torch.nn.Conv2d(3, 8, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="same"):
        nn.Conv2d(3, 8, 3, stride=2, padding="same")


def test_conv2d_unknown_padding_string() -> None:
    msg = "conv2d: padding must be an int, a pair, 'same' or 'valid', got 'full'"
    with pytest.raises(ValueError, match=re.escape(msg)):
        dl_F.conv2d(dl.tensor(r(1, 3, 5, 5)), dl.tensor(r(8, 3, 3, 3)), padding="full")


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_pool_window_larger_than_input_names_function_and_sizes(name) -> None:
    with pytest.raises(RuntimeError):
        getattr(torch.nn.functional, name)(torch.zeros(1, 1, 2, 5), 3)
    msg = f"{name} of input (1, 1, 2, 5): kernel 3 with dilation 1 does not fit an input of size 2 + padding 0"
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        getattr(dl_F, name)(dl.tensor(r(1, 1, 2, 5)), 3)


@pytest.mark.parametrize(("fn", "message"), [
    pytest.param(lambda F, x: F.max_pool2d(x, 2, padding=2),
                 "max_pool2d: padding (2, 2) must be at most half the kernel size (2, 2)", id="max_pool2d"),
    pytest.param(lambda F, x: F.avg_pool2d(x, 3, padding=2),
                 "avg_pool2d: padding (2, 2) must be at most half the kernel size (3, 3)", id="avg_pool2d"),
])
def test_pool_padding_more_than_half_the_kernel(fn, message) -> None:
    with pytest.raises(RuntimeError):
        fn(torch.nn.functional, torch.zeros(1, 1, 6, 6))
    with pytest.raises(ValueError, match=re.escape(message)):
        fn(dl_F, dl.tensor(r(1, 1, 6, 6)))


@pytest.mark.parametrize("name", ["MaxPool2d", "AvgPool2d"])
def test_pool_module_error_names_its_op_and_the_shapes(name) -> None:
    op = {"MaxPool2d": "max_pool2d", "AvgPool2d": "avg_pool2d"}[name]  # the module's error is its functional's
    msg = f"{op} of input (2, 3, 3, 5): kernel 4 with dilation 1 does not fit an input of size 3 + padding 0"
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        getattr(nn, name)(4)(dl.tensor(r(2, 3, 3, 5)))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_modes_other_than_constant_are_refused_by_name(mode) -> None:
    """Only constant padding is implemented (what the zoo needs); the others are one clear error, not a wrong
    result."""
    with pytest.raises(ValueError, match=f"pad: mode '{mode}' is not supported; only 'constant'"):
        dl_F.pad(dl.tensor(r(1, 2, 4, 5)), (1, 2, 2, 1), mode=mode)


def test_pad_errors() -> None:
    with pytest.raises(ValueError, match=re.escape("pad: needs pairs for at most 2 dims, got (1, 2, 3)")):
        dl_F.pad(dl.tensor(r(2, 3)), (1, 2, 3))  # odd length
    with pytest.raises(ValueError, match=re.escape("pad: needs pairs for at most 2 dims, got (1, 1, 1, 1, 1, 1)")):
        dl_F.pad(dl.tensor(r(2, 3)), (1, 1, 1, 1, 1, 1))  # pads more dims than the input has
    with pytest.raises(RuntimeError):
        torch.nn.functional.pad(torch.zeros(2, 3), (1, 1, 1, 1, 1, 1))
    with pytest.raises(RuntimeError, match=re.escape("pad: padding (-3, -3) leaves a negative size from 5")):
        dl_F.pad(dl.tensor(r(2, 3, 4, 5)), (-3, -3))  # crops away more than the dim holds
    with pytest.raises(RuntimeError):
        torch.nn.functional.pad(torch.zeros(2, 3, 4, 5), (-3, -3))


def test_local_response_norm_needs_3d_input() -> None:
    with pytest.raises(ValueError):
        torch.nn.functional.local_response_norm(torch.zeros(3, 4), 2)
    with pytest.raises(RuntimeError, match=re.escape("local_response_norm: expected (N, C, ...) input, got (3, 4)")):
        dl_F.local_response_norm(dl.tensor(r(3, 4)), 2)


def test_float32_stays_float32_and_float64_stays_float64() -> None:
    for dt in (np.float32, np.float64):
        x = dl.tensor(r(1, 2, 6, 6).astype(dt), dtype=dt)
        w = dl.tensor(r(3, 2, 3, 3).astype(dt), dtype=dt)
        outs = [dl_F.conv2d(x, w), dl_F.max_pool2d(x, 2), dl_F.avg_pool2d(x, 2), dl_F.adaptive_avg_pool2d(x, 2),
                dl_F.pad(x, (1, 1)), dl_F.local_response_norm(x, 2)]
        for o in outs:
            assert o.dtype == dt


def test_no_grad_builds_no_graph() -> None:
    x = dl.tensor(r(1, 2, 6, 6), requires_grad=True)
    w = dl.tensor(r(3, 2, 3, 3), requires_grad=True)
    with dl.no_grad():
        y = dl_F.max_pool2d(dl_F.conv2d(x, w), 2)
    assert not y.requires_grad


def test_float64_conv_matches_reference_sum_exactly_enough() -> None:
    """Output elements by definition, in float64: sum over c, i, j of x[n, c, s*h + d*i - p, ...] w[o, c, i, j]."""
    x, w, b = f64(r(1, 3, 7, 6)), f64(r(2, 3, 3, 2)), f64(r(2))
    y = dl_F.conv2d(dl.tensor(x, dtype=dl.float64), dl.tensor(w, dtype=dl.float64), dl.tensor(b, dtype=dl.float64),
                    stride=(2, 1), padding=(1, 0), dilation=(1, 2)).data
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    assert y.shape == (1, 2, 4, 4)
    for o, h, v in [(0, 0, 0), (1, 2, 3), (1, 3, 1)]:
        want = sum(xp[0, c, 2 * h + i, v + 2 * j] * w[o, c, i, j] for c in range(3) for i in range(3) for j in range(2))
        np.testing.assert_allclose(y[0, o, h, v], want + b[o], rtol=1e-12)


# ---- conv_transpose2d errors -----------------------------------------------------------------------------------
def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def test_conv_transpose2d_module_wrong_channels_names_layer_and_shapes() -> None:
    with pytest.raises(RuntimeError):
        torch.nn.ConvTranspose2d(3, 8, 3)(torch.zeros(1, 4, 5, 5))
    with pytest.raises(RuntimeError) as e:
        nn.ConvTranspose2d(3, 8, 3)(dl.tensor(r(1, 4, 5, 5)))
    assert_mentions(one_line(e), r"ConvTranspose2d\(3, 8", shape_pattern(1, 4, 5, 5))


def test_conv_transpose2d_functional_wrong_channels_names_shapes() -> None:
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv_transpose2d(torch.zeros(2, 4, 5, 5), torch.zeros(3, 6, 3, 3))
    with pytest.raises(RuntimeError) as e:
        dl_F.conv_transpose2d(dl.tensor(r(2, 4, 5, 5)), dl.tensor(r(3, 6, 3, 3)))
    assert_mentions(one_line(e), "conv_transpose2d", shape_pattern(2, 4, 5, 5), shape_pattern(3, 6, 3, 3))


@pytest.mark.parametrize("kw", [{"stride": 2, "output_padding": 2}, {"stride": 1, "output_padding": 1},
                                {"stride": 1, "dilation": 2, "output_padding": 2},
                                {"stride": (2, 1), "output_padding": (0, 1)}])
def test_conv_transpose2d_output_padding_not_below_stride_or_dilation(kw) -> None:
    x, w = r(1, 4, 5, 5), r(4, 3, 3, 3)
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w), **kw)
    with pytest.raises(RuntimeError) as e:
        dl_F.conv_transpose2d(dl.tensor(x), dl.tensor(w), **kw)
    assert_mentions(one_line(e), "conv_transpose2d", "output_padding", "stride", "dilation")
    tm, dm = torch.nn.ConvTranspose2d(4, 3, 3, **kw), nn.ConvTranspose2d(4, 3, 3, **kw)
    with pytest.raises(RuntimeError):  # as torch: accepted at construction, refused at the first forward
        tm(torch.tensor(x))
    with pytest.raises(RuntimeError, match="output_padding"):
        dm(dl.tensor(x))


def test_conv_transpose2d_padding_mode_other_than_zeros() -> None:
    for mode in ("reflect", "replicate", "circular", "bogus"):
        with pytest.raises(ValueError):
            torch.nn.ConvTranspose2d(4, 3, 3, padding_mode=mode)
        with pytest.raises(ValueError) as e:
            nn.ConvTranspose2d(4, 3, 3, padding_mode=mode)
        assert_mentions(one_line(e), "ConvTranspose2d", "zeros", mode)


@pytest.mark.parametrize(("in_ch", "out_ch", "groups"), [(4, 3, 2), (3, 6, 2), (4, 4, 0), (4, 4, -2)])
def test_conv_transpose2d_module_bad_groups(in_ch, out_ch, groups) -> None:
    with pytest.raises(ValueError):
        torch.nn.ConvTranspose2d(in_ch, out_ch, 3, groups=groups)
    with pytest.raises(ValueError) as e:
        nn.ConvTranspose2d(in_ch, out_ch, 3, groups=groups)
    assert_mentions(one_line(e), "ConvTranspose2d", "groups")


@pytest.mark.parametrize(("x_shape", "w_shape", "kw", "patterns"), [
    ((1, 4, 5, 5), (4, 3, 3, 3), {"groups": 3}, ("groups", shape_pattern(4, 3, 3, 3))),
    ((1, 4, 5, 5), (4, 3, 3, 3), {"groups": 0}, ("groups",)),
    ((1, 4, 5, 5), (4, 3, 3), {}, (shape_pattern(4, 3, 3),)),
    ((1, 1, 4, 5, 5), (4, 3, 3, 3), {}, (shape_pattern(1, 1, 4, 5, 5),)),
    ((1, 4, 5, 5), (4, 3, 3, 3), {"padding": 4}, ("too small", shape_pattern(1, 4, 5, 5))),
    ((1, 4, 5, 5), (4, 3, 3, 3), {"padding": -1}, ("padding",)),
    ((1, 4, 5, 5), (4, 3, 3, 3), {"output_padding": -1}, ("output_padding",)),
    ((1, 4, 5, 5), (4, 3, 3, 3), {"stride": 0}, ("stride",)),
    ((1, 4, 5, 5), (4, 3, 3, 3), {"dilation": 0}, ("dilation",)),
])
def test_conv_transpose2d_functional_errors_like_torch(x_shape, w_shape, kw, patterns) -> None:
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv_transpose2d(torch.zeros(x_shape), torch.zeros(w_shape), **kw)
    with pytest.raises(RuntimeError) as e:
        dl_F.conv_transpose2d(dl.tensor(r(*x_shape)), dl.tensor(r(*w_shape)), **kw)
    assert_mentions(one_line(e), "conv_transpose2d", *patterns)


def test_conv_transpose2d_bias_of_the_wrong_size() -> None:
    with pytest.raises(RuntimeError):  # bias has C_out = weight.shape[1] * groups entries, not weight.shape[0]
        torch.nn.functional.conv_transpose2d(torch.zeros(1, 4, 5, 5), torch.zeros(4, 3, 3, 3), torch.zeros(4))
    with pytest.raises(RuntimeError) as e:
        dl_F.conv_transpose2d(dl.tensor(r(1, 4, 5, 5)), dl.tensor(r(4, 3, 3, 3)), dl.tensor(r(4)))
    assert_mentions(one_line(e), "conv_transpose2d", "bias", shape_pattern(4, 3, 3, 3))


def test_conv_transpose2d_string_padding_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        torch.nn.functional.conv_transpose2d(torch.zeros(1, 4, 5, 5), torch.zeros(4, 3, 3, 3), padding="same")
    with pytest.raises(TypeError, match="padding"):
        dl_F.conv_transpose2d(dl.tensor(r(1, 4, 5, 5)), dl.tensor(r(4, 3, 3, 3)), padding="same")
    with pytest.raises(TypeError, match=r"ConvTranspose2d.*padding"):  # torch only fails at the first forward
        nn.ConvTranspose2d(4, 3, 3, padding="same")


def test_conv_transpose2d_dtypes_and_no_grad() -> None:
    for dt in (np.float32, np.float64):
        x, w = dl.tensor(r(1, 2, 4, 4).astype(dt), dtype=dt), dl.tensor(r(2, 3, 3, 3).astype(dt), dtype=dt)
        assert dl_F.conv_transpose2d(x, w, stride=2).dtype == dt
    x, w = dl.tensor(r(1, 2, 4, 4), requires_grad=True), dl.tensor(r(2, 3, 3, 3), requires_grad=True)
    with dl.no_grad():
        assert not dl_F.conv_transpose2d(x, w).requires_grad


# ---- convolutions that compute only the gradients asked for ----------------------------------------------------------
_partial_rng = np.random.default_rng(8765)
LOWERINGS = ["toeplitz", "planar", "shifted", "shifted-one-pixel-per-row", "channels_last"]  # tests/conftest.py


def r64(*shape: int) -> np.ndarray:
    return _partial_rng.standard_normal(shape)


@pytest.mark.parametrize("wanted", ["x", "w", "b", "xw", "xb", "wb"])
def test_conv_transpose_computes_only_the_gradients_asked_for(wanted):
    arrays = {"x": r64(2, 4, 3, 4), "w": r64(4, 3, 3, 3), "b": r64(6)}
    g = r64(2, 6, 6, 8)

    def grads(trainable: str) -> dict[str, np.ndarray | None]:
        t = {k: dl.tensor(a, dtype=dl.float64, requires_grad=k in trainable) for k, a in arrays.items()}
        F.conv_transpose2d(t["x"], t["w"], t["b"], stride=2, padding=1, output_padding=1, groups=2).backward(
            dl.tensor(g, dtype=dl.float64))
        return {k: v.grad for k, v in t.items()}

    full, part = grads("xwb"), grads(wanted)
    for k in "xwb":
        if k in wanted:
            np.testing.assert_allclose(part[k], full[k], rtol=1e-12, atol=1e-12, err_msg=k)
        else:
            assert part[k] is None


@pytest.mark.parametrize("lowering", LOWERINGS)
@pytest.mark.parametrize("wanted", ["x", "w", "b", "xw", "xb", "wb"])
def test_conv_computes_only_the_gradients_asked_for(lowering, wanted, force_lowering):
    """With some of input, weight and bias frozen, each lowering's remaining gradients equal those of the
    all-trainable conv (each lowering has its own branches for dx, dW and db)."""
    force_lowering(lowering)
    arrays = {"x": r64(2, 3, 6, 7), "w": r64(4, 3, 3, 3), "b": r64(4)}
    g = r64(2, 4, 6, 7)

    def grads(trainable: str) -> dict[str, np.ndarray | None]:
        t = {k: dl.tensor(a, dtype=dl.float64, requires_grad=k in trainable) for k, a in arrays.items()}
        F.conv2d(t["x"], t["w"], t["b"], padding=1).backward(dl.tensor(g, dtype=dl.float64))
        return {k: v.grad for k, v in t.items()}

    full, part = grads("xwb"), grads(wanted)
    for k in "xwb":
        if k in wanted:
            np.testing.assert_allclose(part[k], full[k], rtol=1e-12, atol=1e-12, err_msg=k)
        else:
            assert part[k] is None


def test_conv_blocks_cover_the_output_once():
    geometry = conv_ops.geometry
    rows = list(geometry.blocks(5, 7, geometry.BLOCK_BYTES // 3))  # 3 rows per block
    cells = [(n, y) for ns, ys in rows for n in range(ns.start, ns.stop) for y in range(ys.start, ys.stop)]
    assert cells == [(n, y) for n in range(5) for y in range(7)]
    assert {ys.stop - ys.start for _, ys in rows} == {3, 1}
