"""Memory layout: a conv's output is channels-last (or C-major planes) behind its NCHW view, and the ops that
build new arrays from it (pooling, padding, their gradients) keep that order, so later ops never mix layouts."""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics.ops._layout import axis_order, zeros_like_layout


def channels_last(a: np.ndarray) -> bool:
    """Channels innermost, then W, H, N (a padded region of such an array counts: it is a view of one)."""
    return axis_order(a) == (0, 2, 3, 1)


@pytest.fixture(params=[("planar", 3, (1, 0, 2, 3)), ("toeplitz", 3, (0, 2, 1, 3)), ("shifted", 16, (0, 2, 3, 1))],
                ids=["planar-conv", "toeplitz-conv", "channels-last-conv"])
def conv_out(request, force_lowering) -> dl.Tensor:
    """A conv output in each lowering's memory order (ops/conv/planar.py, toeplitz.py, shifted.py): C-major
    planes, (N, H, C, W) rows of channels, or channels-last."""
    lowering, c, order = request.param
    force_lowering(lowering)
    y = F.conv2d(dl.randn(2, c, 8, 8), dl.randn(4, c, 3, 3, requires_grad=True), padding=1)
    assert axis_order(y.data) == order
    return y


@pytest.mark.parametrize("op", [
    lambda y: F.max_pool2d(y, 2),
    lambda y: F.max_pool2d(y, 3, stride=2, padding=1),
    lambda y: F.avg_pool2d(y, 2),
    lambda y: F.pad(y, (1, 1, 2, 0)),
    lambda y: F.pad(y[:, :, ::2, ::2], (0, 0, 0, 0, 1, 1)),
], ids=["maxpool", "maxpool-padded", "avgpool", "pad-hw", "pad-channels-of-strided-view"])
def test_pool_and_pad_keep_the_input_layout_forward_and_backward(conv_out, op):
    out = op(conv_out)
    assert axis_order(out.data) == axis_order(conv_out.data)
    grads = []
    conv_out.grad_fn.backward = (lambda f: lambda g: grads.append(g) or f(g))(conv_out.grad_fn.backward)
    out.sum().backward()
    assert axis_order(grads[0]) == axis_order(conv_out.data)


def test_axis_order_and_zeros_like_layout():
    a = np.zeros((2, 3, 4, 5)).transpose(0, 3, 1, 2)  # NHWC memory behind an NCHW view
    assert axis_order(a) == (0, 2, 3, 1)
    z = zeros_like_layout((2, 3, 6, 7), a, np.float32)
    assert z.shape == (2, 3, 6, 7) and z.dtype == np.float32 and channels_last(z) and not z.any()
    assert axis_order(np.zeros((1, 3, 4))) == (0, 1, 2)  # a size-1 axis has no say
    assert zeros_like_layout((3, 2), np.zeros((2, 3))).flags.c_contiguous


@pytest.mark.parametrize("make", [
    lambda x: x,  # NCHW
    lambda x: np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),  # channels-last
    lambda x: np.pad(x.transpose(0, 2, 3, 1), ((0, 0), (0, 2), (0, 3), (0, 0)))[:, :5, :6].transpose(0, 3, 1, 2),
    lambda x: x[:1],  # one image
    lambda x: x[:, :, :1, :1],  # 1x1 maps: size-1 axes
], ids=["nchw", "channels-last", "channels-last-with-gaps", "one-image", "one-pixel"])
@pytest.mark.parametrize("channels", [4, 40], ids=["gemm-scaling", "numpy-scaling"])
def test_batch_norm_reads_every_layout_alike(make, channels):
    """BatchNorm sums channels by BLAS on views of the input without copying it and scales by diagonal GEMMs up
    to 32 channels (ops/norm.py); each layout of the same values gives the same output and gradient."""
    from dlbasics.ops.norm import _channel_sum

    values = np.random.default_rng(0).standard_normal((3, channels, 5, 6)).astype(np.float32)
    x = make(values)
    ref = np.ascontiguousarray(x)
    np.testing.assert_allclose(_channel_sum(np.moveaxis(x, 1, -1)), ref.sum((0, 2, 3)), rtol=1e-5, atol=1e-5)
    outs = []
    for data in (x, ref):
        t = dl.tensor(data, requires_grad=True)
        y = dl.nn.BatchNorm2d(channels)(t)
        (y * dl.arange(y.numel()).reshape(y.shape)).sum().backward()
        outs.append((y.data, t.grad))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-4)
