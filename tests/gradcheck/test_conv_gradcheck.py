"""Convolution, transposed convolution, pooling, padding and local response norm: backward against central finite
differences in float64.

Same table style as ``test_functional_gradcheck``: ``case(id, fn, *arrays)``, each array a float64 leaf that
requires grad (input, weight, bias, in that order); anything else is a constant inside ``fn``. Max-pooling inputs
have no ties and no two values closer than 0.05, so the finite differences (eps 1e-6) never cross a switch of the
argmax; ties are covered by the oracle tests against torch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics.autograd import gradcheck
from dlbasics.ops import conv as conv_ops

_rng = np.random.default_rng(8765)


def r(*shape: int) -> np.ndarray:
    return _rng.standard_normal(shape)


def distinct(*shape: int) -> np.ndarray:
    """A shuffled range, 0.1 apart, plus a little noise: no ties, every gap far above the finite-difference step."""
    n = math.prod(shape)
    return ((_rng.permutation(n) - n / 2) * 0.1 + _rng.uniform(-0.02, 0.02, n)).reshape(shape)


def case(name: str, fn, *arrays: np.ndarray):
    return pytest.param(fn, arrays, id=name)


def conv(name: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, **kw):
    if b is None:
        return case("conv2d-" + name, lambda x, w: F.conv2d(x, w, **kw), x, w)
    return case("conv2d-" + name, lambda x, w, b: F.conv2d(x, w, b, **kw), x, w, b)


X_CONST = dl.tensor(r(2, 3, 5, 5), dtype=dl.float64)
W_CONST = dl.tensor(r(4, 3, 3, 3), dtype=dl.float64)

CONV = [
    conv("k3", r(2, 3, 5, 5), r(4, 3, 3, 3), r(4)),
    conv("k3-no-bias", r(2, 3, 5, 5), r(4, 3, 3, 3)),
    conv("1x1", r(2, 3, 4, 4), r(2, 3, 1, 1), r(2)),
    conv("k5-pad2", r(1, 2, 5, 6), r(2, 2, 5, 5), r(2), padding=2),
    conv("stride2-pad1", r(2, 2, 6, 6), r(3, 2, 3, 3), r(3), stride=2, padding=1),
    conv("stride2-last-window-short", r(2, 2, 6, 5), r(3, 2, 3, 3), r(3), stride=2),
    conv("rect23-stride21-pad12", r(2, 2, 5, 6), r(3, 2, 2, 3), r(3), stride=(2, 1), padding=(1, 2)),
    conv("rect31-pad10", r(2, 2, 5, 5), r(3, 2, 3, 1), r(3), padding=(1, 0)),
    conv("dil2-pad2", r(1, 2, 6, 6), r(2, 2, 3, 3), padding=2, dilation=2),
    conv("dil21-stride2", r(2, 2, 6, 5), r(2, 2, 3, 2), r(2), dilation=(2, 1), stride=2),
    conv("stride3-1x1-skips-pixels", r(2, 3, 7, 5), r(4, 3, 1, 1), r(4), stride=3),  # most phases never read
    conv("stride2-pad1-one-row", r(1, 2, 1, 3), r(3, 2, 3, 3), r(3), stride=2, padding=1),  # an empty phase
    conv("stride2-pad3-beyond-kernel", r(1, 2, 4, 4), r(2, 2, 3, 3), r(2), stride=2, padding=3),
    conv("groups2-pad1", r(2, 4, 5, 5), r(4, 2, 3, 3), r(4), groups=2, padding=1),
    conv("groups2-stride2-dil2", r(1, 4, 6, 6), r(2, 2, 2, 2), r(2), groups=2, stride=2, dilation=2),
    conv("depthwise-same", r(2, 3, 5, 5), r(3, 1, 3, 3), r(3), groups=3, padding="same"),
    conv("depthwise-mult2-stride2", r(1, 2, 5, 6), r(4, 1, 3, 3), r(4), groups=2, stride=2),
    conv("same-even-kernel", r(2, 2, 5, 5), r(2, 2, 2, 4), r(2), padding="same"),
    conv("same-dilated", r(1, 2, 6, 6), r(2, 2, 3, 2), padding="same", dilation=2),
    conv("valid", r(2, 2, 5, 6), r(3, 2, 3, 3), r(3), padding="valid"),
    conv("out-1x1", r(2, 2, 3, 3), r(3, 2, 3, 3), r(3)),
    conv("one-channel", r(3, 1, 5, 5), r(2, 1, 3, 3), r(2)),
    conv("unbatched", r(2, 5, 5), r(3, 2, 3, 3), r(3), padding=1),
    case("conv2d-constant-input", lambda w, b: F.conv2d(X_CONST, w, b, padding=1), r(4, 3, 3, 3), r(4)),
    case("conv2d-constant-weight", lambda x: F.conv2d(x, W_CONST, stride=2), r(2, 3, 5, 5)),
    case("conv2d-twice-same-weight", lambda x, w: F.conv2d(F.conv2d(x, w, padding=1), w), r(1, 2, 5, 5),
         r(2, 2, 3, 3)),
    case("conv2d-permuted-input", lambda x, w: F.conv2d(x.permute(0, 3, 1, 2), w, padding=1), r(2, 5, 4, 3),
         r(2, 3, 3, 3)),
    case("conv2d-then-flatten", lambda x, w: F.conv2d(x, w, stride=2).flatten(1) * dl.arange(1, 13), r(2, 2, 5, 5),
         r(3, 2, 3, 3)),
]


def convt(name: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, **kw):
    if b is None:
        return case("conv_transpose2d-" + name, lambda x, w: F.conv_transpose2d(x, w, **kw), x, w)
    return case("conv_transpose2d-" + name, lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), x, w, b)


CONV_TRANSPOSE = [  # weight (C_in, C_out / groups, kh, kw)
    convt("k3", r(2, 3, 4, 4), r(3, 2, 3, 3), r(2)),
    convt("k4-stride2-pad1", r(2, 3, 3, 4), r(3, 2, 4, 4), r(2), stride=2, padding=1),
    convt("stride2-pad1-output-padding1", r(2, 2, 3, 3), r(2, 3, 3, 3), r(3), stride=2, padding=1, output_padding=1),
    convt("stride3-k2-gaps-output-padding21", r(1, 2, 3, 3), r(2, 2, 2, 2), r(2), stride=3, output_padding=(2, 1)),
    convt("rect23-stride21-pad01", r(2, 2, 3, 4), r(2, 3, 2, 3), r(3), stride=(2, 1), padding=(0, 1)),
    convt("dil2-output-padding1", r(1, 2, 4, 4), r(2, 2, 3, 3), dilation=2, output_padding=1),
    convt("dil21-stride2-pad1", r(2, 2, 3, 4), r(2, 2, 3, 3), r(2), dilation=(2, 1), stride=2, padding=1),
    convt("groups2-stride2-op1", r(2, 4, 3, 3), r(4, 2, 3, 3), r(4), groups=2, stride=2, padding=1, output_padding=1),
    convt("depthwise-mult2", r(1, 3, 4, 4), r(3, 2, 3, 3), r(6), groups=3, padding=1),
    convt("no-bias-pad-beyond-kernel", r(1, 2, 4, 4), r(2, 2, 3, 3), stride=2, padding=3),
    convt("unbatched", r(2, 3, 4), r(2, 3, 3, 3), r(3), stride=2),
    case("conv_transpose2d-constant-input", lambda w, b: F.conv_transpose2d(X_CONST[:, :3], w, b, stride=2),
         r(3, 2, 3, 3), r(2)),
    case("conv_transpose2d-constant-weight", lambda x: F.conv_transpose2d(x, W_CONST.transpose(0, 1), stride=2,
                                                                          padding=1, output_padding=1),
         r(2, 3, 3, 3)),
    case("conv2d-then-conv_transpose2d-tied-weight",
         lambda x, w: F.conv_transpose2d(F.tanh(F.conv2d(x, w, stride=2, padding=1)), w, stride=2, padding=1),
         r(2, 2, 5, 5), r(3, 2, 3, 3)),
]


def mp(name: str, x: np.ndarray, *args, **kw):
    return case("max_pool2d-" + name, lambda x: F.max_pool2d(x, *args, **kw), x)


MAX_POOL = [
    mp("k2", distinct(2, 2, 6, 6), 2),
    mp("k2-last-window-short", distinct(2, 2, 5, 5), 2),
    mp("k3-stride2-overlap", distinct(2, 2, 7, 7), 3, stride=2),
    mp("k3-stride1", distinct(1, 2, 5, 5), 3, stride=1),
    mp("k3-stride2-pad1", distinct(2, 2, 6, 6), 3, stride=2, padding=1),
    mp("rect23-stride12", distinct(2, 2, 5, 6), (2, 3), stride=(1, 2)),
    mp("dil2", distinct(1, 2, 6, 6), 2, stride=1, dilation=2),
    mp("dil2-stride2-pad1", distinct(2, 2, 6, 5), 2, stride=2, padding=1, dilation=2),
    mp("ceil-k2", distinct(2, 2, 5, 5), 2, ceil_mode=True),
    mp("ceil-k3-stride2-pad1", distinct(1, 2, 6, 5), 3, stride=2, padding=1, ceil_mode=True),
    mp("unbatched", distinct(2, 5, 5), 2, stride=1),
]


def ap(name: str, x: np.ndarray, *args, **kw):
    return case("avg_pool2d-" + name, lambda x: F.avg_pool2d(x, *args, **kw), x)


AVG_POOL = [
    ap("k2", r(2, 2, 6, 6), 2),
    ap("k2-last-window-short", r(2, 2, 5, 5), 2),
    ap("k3-stride2-overlap", r(2, 2, 7, 7), 3, stride=2),
    ap("rect23-stride12", r(2, 2, 5, 6), (2, 3), stride=(1, 2)),
    ap("unbatched", r(2, 5, 5), 3, stride=1),
] + [
    ap(f"{name}-include-pad-{inc}", r(*shape), *args, count_include_pad=inc, **kw)
    for inc in (True, False)
    for name, shape, args, kw in [
        ("k3-stride1-pad1", (2, 2, 5, 5), (3,), {"stride": 1, "padding": 1}),
        ("k2-pad1", (1, 2, 5, 6), (2,), {"padding": 1}),
        ("ceil-k2", (2, 2, 5, 5), (2,), {"ceil_mode": True}),
        ("ceil-k3-stride2-pad1", (1, 2, 6, 5), (3,), {"stride": 2, "padding": 1, "ceil_mode": True}),
        ("rect32-pad10", (2, 2, 6, 5), ((3, 2),), {"stride": 2, "padding": (1, 0)}),
    ]
]


def aap(name: str, x: np.ndarray, output_size):
    return case("adaptive_avg_pool2d-" + name, lambda x: F.adaptive_avg_pool2d(x, output_size), x)


ADAPTIVE = [
    aap("1x1", r(2, 3, 5, 5), (1, 1)),
    aap("int1", r(2, 2, 5, 4), 1),
    aap("2x2-from-5x5", r(2, 2, 5, 5), (2, 2)),
    aap("3x2-from-6x5", r(2, 2, 6, 5), (3, 2)),
    aap("equal-bins-3x3-from-6x6", r(1, 2, 6, 6), 3),
    aap("upsample-4x4-from-3x3", r(1, 2, 3, 3), (4, 4)),
    aap("none-2", r(2, 2, 5, 6), (None, 2)),
    aap("unbatched", r(2, 5, 6), (2, 4)),
]


def pd(name: str, x: np.ndarray, widths: tuple[int, ...], **kw):
    return case("pad-" + name, lambda x: F.pad(x, widths, **kw), x)


PAD = [
    pd("4d-asymmetric-value", r(2, 2, 4, 5), (1, 2, 0, 3), value=1.5),
    pd("4d-last-dim", r(2, 2, 4, 5), (2, 1)),
    pd("4d-channels-too", r(2, 2, 3, 3), (1, 0, 0, 2, 1, 1)),
    pd("2d", r(4, 5), (1, 2, 3, 0), value=-2.0),
    pd("negative-crop", r(2, 2, 4, 5), (-1, 1, 0, -2)),
    pd("negative-all-sides", r(1, 2, 5, 6), (-1, -1, -2, -1)),
]


def lrn(name: str, x: np.ndarray, size: int, **kw):
    return case("local_response_norm-" + name, lambda x: F.local_response_norm(x, size, **kw), x)


LRN = [
    lrn("size2-c4", r(2, 4, 3, 3), 2, alpha=0.5),
    lrn("size3-c4", r(2, 4, 3, 3), 3, alpha=0.5),
    lrn("size5-c4", r(2, 4, 3, 3), 5, alpha=0.5),
    lrn("size5-c2", r(2, 2, 3, 3), 5, alpha=0.5),
    lrn("size3-c2", r(2, 2, 3, 3), 3, alpha=0.5, beta=1.5, k=0.5),
    lrn("default-params", r(2, 5, 3, 3), 3),
    lrn("3d-input", r(2, 4, 5), 3, alpha=0.3, beta=0.6, k=1.2),
]

COMPOSITE = [
    case("conv-tanh-maxpool-lrn-adaptive",
         lambda x, w, b: F.adaptive_avg_pool2d(F.local_response_norm(F.max_pool2d(F.tanh(F.conv2d(x, w, b, padding=1)),
                                                                                  2), 3, alpha=0.5), 1),
         r(2, 2, 6, 6), r(3, 2, 3, 3), r(3)),
    case("pad-then-conv-then-avgpool", lambda x, w: F.avg_pool2d(F.conv2d(F.pad(x, (0, 1, 1, 0), value=0.5), w), 2,
                                                                 ceil_mode=True),
         r(2, 2, 5, 5), r(2, 2, 3, 3)),
]


@pytest.mark.parametrize(("fn", "arrays"),
                         CONV + CONV_TRANSPOSE + MAX_POOL + AVG_POOL + ADAPTIVE + PAD + LRN + COMPOSITE)
def test_gradcheck(fn, arrays):
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=True) for a in arrays]
    assert gradcheck(fn, inputs)
    for t in inputs:
        assert t.grad is not None and t.grad.shape == t.shape and t.grad.dtype == np.float64
    assert fn(*inputs).dtype == dl.float64


LOWERINGS = ["toeplitz", "planar", "shifted", "shifted-one-pixel-per-row", "channels_last"]  # tests/conftest.py


@pytest.mark.parametrize("lowering", LOWERINGS)
@pytest.mark.parametrize(("fn", "arrays"), CONV)
def test_conv_gradcheck_each_lowering_in_tiny_blocks(fn, arrays, lowering, monkeypatch, force_lowering):
    """Each lowering, forced where supported, gathers in blocks of about ``BLOCK_BYTES``: at 64 bytes every block
    is one image (planar) or one output row (channels-last), so every block edge is exercised by every case."""
    monkeypatch.setattr(conv_ops.geometry, "BLOCK_BYTES", 64)
    force_lowering(lowering)
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=True) for a in arrays]
    assert gradcheck(fn, inputs)


@pytest.mark.parametrize(("fn", "arrays"), CONV_TRANSPOSE)
def test_conv_transpose_gradcheck_in_tiny_blocks(fn, arrays, monkeypatch):
    """conv_transpose2d runs channels-last's products whatever the lowering; in 64-byte blocks, each one row."""
    monkeypatch.setattr(conv_ops.geometry, "BLOCK_BYTES", 64)
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=True) for a in arrays]
    assert gradcheck(fn, inputs)


@pytest.mark.parametrize("wanted", ["x", "w", "b", "xw", "xb", "wb"])
def test_conv_transpose_computes_only_the_gradients_asked_for(wanted):
    arrays = {"x": r(2, 4, 3, 4), "w": r(4, 3, 3, 3), "b": r(6)}
    g = r(2, 6, 6, 8)

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
    arrays = {"x": r(2, 3, 6, 7), "w": r(4, 3, 3, 3), "b": r(4)}
    g = r(2, 4, 6, 7)

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
