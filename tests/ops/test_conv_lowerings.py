"""Every conv lowering against the reference (ops/conv/reference.py), and the reference against PyTorch and finite
differences: the reference is what a student reads, and the oracle the fast lowerings are held to."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics.autograd import gradcheck
from dlbasics.ops import conv as conv_ops
from dlbasics.ops.conv.geometry import Geometry, out_size


def random_geometry(rng: np.random.Generator, plain: bool) -> Geometry:
    """A random valid conv: 1-3 images, 1-9 channels (groups dividing both), kernels 1-5, strides 1-3, padding
    0-2, dilation 1-2; ``plain``: stride 1 and no groups, which every lowering supports."""
    groups = 1 if plain else int(rng.choice([1, 2, 3]))
    c, o = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    kh, kw = (int(k) for k in rng.integers(1, 6, 2))
    stride = (1, 1) if plain else tuple(int(s) for s in rng.integers(1, 4, 2))
    dilation = tuple(int(d) for d in rng.integers(1, 3, 2))
    pads = tuple(int(p) for p in rng.integers(0, 3, 4))
    h = int(rng.integers(max(1, dilation[0] * (kh - 1) + 1 - pads[0] - pads[1]), 12))
    w = int(rng.integers(max(1, dilation[1] * (kw - 1) + 1 - pads[2] - pads[3]), 12))
    ho, wo = out_size(h, kh, stride[0], pads[0] + pads[1], dilation[0]), out_size(w, kw, stride[1],
                                                                                    pads[2] + pads[3], dilation[1])
    return Geometry(int(rng.integers(1, 4)), c, h, w, o, kh, kw, ho, wo, groups, stride, pads, dilation)


def arrays(geo: Geometry, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    x = rng.standard_normal((geo.n, geo.c, geo.h, geo.w))
    w = rng.standard_normal((geo.o, geo.c // geo.groups, geo.kh, geo.kw))
    return x, w, rng.standard_normal(geo.o), rng.standard_normal((geo.n, geo.o, geo.ho, geo.wo))


GEOMETRIES = [random_geometry(np.random.default_rng(seed), plain=seed % 2 == 0) for seed in range(60)]
# the class each name forces; where it does not support a geometry, choose_lowering falls back to another
CLASS = {"channels_last": "ChannelsLast", "shifted": "Shifted", "shifted-one-pixel-per-row": "Shifted",
         "planar": "Planar", "toeplitz": "Toeplitz"}


@pytest.mark.parametrize("block_bytes", [None, 64], ids=["blocks-as-shipped", "one-row-blocks"])
@pytest.mark.parametrize("name", [n for n in conv_ops.LOWERINGS if n != "reference"])
def test_each_lowering_equals_the_reference_on_random_convolutions(name, block_bytes, monkeypatch):
    """Forward and all three gradients, float64, on 60 random geometries (each lowering where it supports one),
    with the gathers in blocks as shipped and in 64-byte blocks (one row each, so every block edge is hit)."""
    if block_bytes is not None:
        monkeypatch.setattr(conv_ops.geometry, "BLOCK_BYTES", block_bytes)
    tested = 0
    for seed, geo in enumerate(GEOMETRIES):
        lowering = conv_ops.choose_lowering(geo, name)
        if type(lowering).__name__ != CLASS[name]:
            continue  # not a geometry this lowering supports (groups, or a stride for planar)
        x, w, b, dy = arrays(geo, np.random.default_rng(seed))
        ref = conv_ops.Reference(geo)
        expected = ref.forward(x, w, b), *ref.grads(dy)
        got = lowering.forward(x, w, b, keep_input=True), *lowering.grads(dy, True, True, True)
        for what, e, g in zip(("out", "dx", "dw", "db"), expected, got):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10, err_msg=f"{name} {what} {geo}")
        tested += 1
    assert tested >= 15, f"only {tested} of the random geometries suit {name}"


def test_the_reference_matches_torch_on_random_convolutions():
    for seed, geo in enumerate(GEOMETRIES[:30]):
        x, w, b, dy = arrays(geo, np.random.default_rng(seed))
        pt, pb, pl, pr = geo.pads
        xt = torch.nn.functional.pad(torch.tensor(x), (pl, pr, pt, pb)).requires_grad_()
        wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
        yt = torch.nn.functional.conv2d(xt, wt, bt, stride=geo.stride, dilation=geo.dilation, groups=geo.groups)
        yt.backward(torch.tensor(dy))
        ref = conv_ops.Reference(geo)
        y = ref.forward(x, w, b)
        dx, dw, db = ref.grads(dy)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-10, err_msg=str(geo))
        np.testing.assert_allclose(dx, xt.grad.numpy()[:, :, pt:pt + geo.h, pl:pl + geo.w], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(dw, wt.grad.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kw", [{"padding": 1}, {"stride": 2, "padding": (0, 1)}, {"dilation": 2, "groups": 2}])
def test_the_reference_through_autograd_matches_finite_differences(kw):
    rng = np.random.default_rng(0)
    x = dl.tensor(rng.standard_normal((2, 4, 7, 6)), dtype=dl.float64, requires_grad=True)
    w = dl.tensor(rng.standard_normal((4, 4 // kw.get("groups", 1), 3, 2)), dtype=dl.float64, requires_grad=True)
    b = dl.tensor(rng.standard_normal(4), dtype=dl.float64, requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, lowering="reference", **kw), [x, w, b])
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, lowering="reference", **kw), [x, w, b])


def test_a_named_lowering_is_the_one_that_runs_and_a_wrong_name_is_refused():
    x, w = dl.randn(1, 3, 8, 8), dl.randn(4, 3, 3, 3, requires_grad=True)
    assert type(F.conv2d(x, w, lowering="reference").grad_fn.lowering).__name__ == "Reference"
    assert type(F.conv2d(x, w, lowering="planar").grad_fn.lowering).__name__ == "Planar"
    with pytest.raises(ValueError, match="unknown lowering 'fast'; choose from reference, channels_last"):
        F.conv2d(x, w, lowering="fast")
