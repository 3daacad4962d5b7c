"""Which lowering each conv layer takes (``choose_lowering`` in ops/conv/__init__.py): the choice the speed figures
in docs/benchmarks.md rest on."""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics.ops import conv as conv_ops


def lowering_of(x_shape, w_shape, **kw):
    x = dl.tensor(np.zeros(x_shape, np.float32), requires_grad=True)
    w = dl.tensor(np.zeros(w_shape, np.float32), requires_grad=True)
    return type(F.conv2d(x, w, **kw).grad_fn.lowering).__name__


@pytest.mark.parametrize(("x_shape", "w_shape", "kw", "expected"), [
    ((64, 1, 28, 28), (6, 1, 5, 5), {"padding": 2}, "Toeplitz"),   # LeNet C1: one channel, narrow rows
    ((64, 6, 14, 14), (16, 6, 5, 5), {}, "Toeplitz"),               # LeNet C3
    ((32, 3, 32, 32), (16, 3, 3, 3), {"padding": 1}, "Planar"),     # CIFAR stem: 34-wide rows, Toeplitz 11x work
    ((32, 16, 32, 32), (16, 16, 3, 3), {"padding": 1}, "Shifted"),  # ResNet stages
    ((32, 16, 32, 32), (32, 16, 3, 3), {"padding": 1, "stride": 2}, "Shifted"),  # polyphase
    ((2, 8, 9, 9), (8, 1, 3, 3), {"padding": 1, "groups": 8}, "ChannelsLast"),  # depthwise
])
def test_each_layer_takes_the_lowering_that_pays(x_shape, w_shape, kw, expected):
    assert lowering_of(x_shape, w_shape, **kw) == expected


def test_planar_output_is_channels_last_when_the_next_conv_would_not_be_planar():
    """The stem's 16 channels feed shifted convs, which read NHWC; LeNet-like 6-channel maps stay planes."""
    x = dl.tensor(np.zeros((2, 3, 32, 32), np.float32), requires_grad=True)
    stem = F.conv2d(x, dl.tensor(np.zeros((16, 3, 3, 3), np.float32)), padding=1)
    assert stem.data.strides[1] == stem.data.itemsize  # channels innermost
    few = F.conv2d(x, dl.tensor(np.zeros((6, 3, 3, 3), np.float32)), padding=1)
    assert type(stem.grad_fn.lowering).__name__ == type(few.grad_fn.lowering).__name__ == "Planar"
    assert few.data.strides[3] == few.data.itemsize  # rows of pixels innermost


def test_shifted_weight_gradient_in_cache_sized_blocks_matches_one_block(monkeypatch):
    """The shifted lowering's dW, summed over blocks of rows padded to one size (one batched call), equals the
    one-block reduction; both run in float64 so any mismatch in the block bookkeeping shows."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 16, 64, 64))
    w = rng.standard_normal((16, 16, 3, 3))
    g = rng.standard_normal((4, 16, 64, 64))

    def weight_grad() -> tuple[np.ndarray, int]:
        xt = dl.tensor(x, dtype=dl.float64, requires_grad=True)
        wt = dl.tensor(w, dtype=dl.float64, requires_grad=True)
        y = F.conv2d(xt, wt, padding=1)
        blocks = y.grad_fn.lowering.blocks
        y.backward(dl.tensor(g, dtype=dl.float64))
        return wt.grad, blocks

    blocked, n_blocks = weight_grad()
    monkeypatch.setattr(conv_ops.geometry, "BLOCK_BYTES", 1 << 30)  # one block: the plain reductions
    whole, n_whole = weight_grad()
    assert n_blocks > 1 and n_whole == 1 and blocked.dtype == np.float64
    np.testing.assert_allclose(blocked, whole, rtol=1e-10, atol=1e-9)
