"""nn.utils.clip_grad_norm_ / clip_grad_value_ against torch.nn.utils: the same returned norm and clipped grads."""

import math

import numpy as np
import pytest
import torch

import dlbasics as dl
from dlbasics import nn


def _pair(seed, scale):
    rng = np.random.default_rng(seed)
    shapes = [(5, 3), (3,), (2, 2, 2), ()]
    grads = [np.asarray(rng.standard_normal(s) * scale, dtype=np.float32) for s in shapes]
    ours = [dl.tensor(np.zeros(s, dtype=np.float32), requires_grad=True) for s in shapes]
    theirs = [torch.zeros(s, requires_grad=True) for s in shapes]
    for o, t, g in zip(ours, theirs, grads):
        o.grad = g.copy()
        t.grad = torch.tensor(g.copy())
    return ours, theirs


@pytest.mark.parametrize("max_norm, norm_type, scale", [(1.0, 2.0, 3.0), (100.0, 2.0, 1.0), (0.5, 1.0, 2.0),
                                                        (0.1, math.inf, 1.0), (2.0, 3.0, 5.0)])
def test_clip_grad_norm_matches_torch(max_norm, norm_type, scale):
    ours, theirs = _pair(0, scale)
    got = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert got == pytest.approx(want.item(), rel=1e-6)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad, t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_clip_grad_value_and_non_finite_norms():
    ours, theirs = _pair(1, 4.0)
    nn.utils.clip_grad_value_(ours, 0.5)
    torch.nn.utils.clip_grad_value_(theirs, 0.5)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.grad, t.grad.numpy())
    ours, _ = _pair(2, 1.0)
    ours[0].grad[0, 0] = np.inf
    with pytest.raises(RuntimeError, match="total norm"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert nn.utils.clip_grad_norm_([dl.tensor([1.0], requires_grad=True)], 1.0) == 0.0  # no grads: norm 0
