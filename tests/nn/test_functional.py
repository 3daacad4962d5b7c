"""``dlbasics.nn.functional`` (linear, activations, softmax / log-softmax over every dim, the losses in all their
options at every reduction) from the one case table, ``tests/cases.py``: each case runs PyTorch parity in float32
and in float64 and, where it is smooth, the finite-difference check in float64. Then what PyTorch cannot check:
dropout (its masks are dlbasics' own draws), the inputs only dlbasics accepts, and the losses worked out by hand
in NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics.autograd import gradcheck
from tests.cases import FLOAT64_CASES, FUNCTIONAL_CASES, Case, check, check_float64, check_gradcheck, gradcheckable


@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=lambda c: c.id)
def test_functional_matches_torch(case: Case) -> None:
    check(case)


FUNCTIONAL_IDS = {c.id for c in FUNCTIONAL_CASES}


@pytest.mark.parametrize("case", [c for c in FLOAT64_CASES if c.id[4:] in FUNCTIONAL_IDS], ids=lambda c: c.id)
def test_functional_matches_torch_float64(case: Case) -> None:
    check_float64(case)


@pytest.mark.parametrize("case", [c for c in FUNCTIONAL_CASES if gradcheckable(c)], ids=lambda c: c.id)
def test_functional_gradients_match_finite_differences(case: Case) -> None:
    check_gradcheck(case)


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in FUNCTIONAL_CASES]
    assert len(ids) == len(set(ids))


def test_extreme_logits_are_covered() -> None:
    finite = {c.id for c in FUNCTIONAL_CASES if c.finite}
    for prefix in ("softmax_huge", "log_softmax_huge", "ce_huge"):
        assert any(i.startswith(prefix) for i in finite), prefix


# ---- what PyTorch cannot check: finite differences and NumPy by hand -------------------------------------------------
_rng = np.random.default_rng(4321)


def r(*shape: int) -> np.ndarray:
    """Normal samples kept at least 0.1 away from 0 (no relu/leaky_relu kinks)."""
    x = _rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.copysign(0.1, x) + x, x)


def probs(*shape: int) -> np.ndarray:
    """Rows of class probabilities along dim 1 (or dim 0 for a 1-D shape)."""
    p = _rng.uniform(0.1, 1.0, shape)
    axis = 1 if len(shape) > 1 else 0
    return p / p.sum(axis=axis, keepdims=True)


def unit(*shape: int) -> np.ndarray:
    """Targets strictly inside (0, 1)."""
    return _rng.uniform(0.1, 0.9, shape)


def dl_only(name: str, fn, *arrays: np.ndarray):
    return pytest.param(fn, arrays, id=name)


W4 = dl.tensor([0.2, 1.0, 2.5, 0.7], dtype=dl.float64)
Q34 = probs(3, 4)
BCE_Y = unit(3, 2)

# What only dlbasics accepts (NumPy arrays as targets, a list as pos_weight) and dropout, whose masks no parity can
# match: the rest of nn.functional's cases are in the table above, each with parity and this check.
DL_ONLY_CASES = [
    dl_only("dropout", lambda x: F.dropout(x, 0.3, generator=0), r(3, 4)),
    dl_only("dropout-p0.5-3d", lambda x: F.dropout(x, 0.5, training=True, generator=7), r(2, 3, 2)),
    dl_only("dropout-eval-is-identity", lambda x: F.dropout(x, 0.5, training=False) * 2, r(2, 3)),
    dl_only("dropout-p1", lambda x: F.dropout(x, 1.0) + x, r(2, 3)),
    dl_only("cross_entropy-numpy-index-target", lambda x: F.cross_entropy(x, np.array([3, 3, 0])), r(3, 4) * 2),
    dl_only("cross_entropy-numpy-probs-target", lambda x: F.cross_entropy(x, Q34, weight=W4), r(3, 4)),
    dl_only("nll_loss-numpy-0d-target", lambda x: F.nll_loss(x, np.array(0), weight=W4), r(4)),
    dl_only("mse-numpy-target", lambda x: F.mse_loss(x, np.ones((2, 3))), r(2, 3)),
    dl_only("bce_with_logits-numpy-target-list-pos_weight",
         lambda x: F.binary_cross_entropy_with_logits(x, BCE_Y, pos_weight=[3.0, 0.25]), r(3, 2)),
]


@pytest.mark.parametrize(("fn", "arrays"), DL_ONLY_CASES)
def test_dl_only_gradcheck(fn, arrays):
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=True) for a in arrays]
    assert gradcheck(fn, inputs)
    for t in inputs:
        assert t.grad is not None and t.grad.shape == t.shape and t.grad.dtype == np.float64


def test_dropout_mask_is_reproducible_and_scaled():
    x = dl.tensor(np.ones((20, 20)), dtype=dl.float64)
    a, b = F.dropout(x, 0.3, generator=0), F.dropout(x, 0.3, generator=0)
    np.testing.assert_array_equal(a.data, b.data)
    assert set(np.unique(a.data)) <= {0.0, 1.0 / 0.7}
    assert 0.2 < np.mean(a.data == 0) < 0.4
    assert not np.array_equal(a.data, F.dropout(x, 0.3, generator=1).data)


def test_cross_entropy_matches_numpy_by_hand():
    z = _rng.standard_normal((3, 4))
    t = np.array([1, 0, 3])
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    w = W4.data
    x = dl.tensor(z, dtype=dl.float64)
    np.testing.assert_allclose(F.cross_entropy(x, t).item(), -logp[np.arange(3), t].mean())
    np.testing.assert_allclose(F.cross_entropy(x, t, weight=w).item(),
                               -(w[t] * logp[np.arange(3), t]).sum() / w[t].sum())
    np.testing.assert_allclose(F.nll_loss(x, t, reduction="none").data, -z[np.arange(3), t])
    np.testing.assert_allclose(F.cross_entropy(x, Q34, reduction="sum").item(), -(Q34 * logp).sum())


def test_bce_with_logits_matches_numpy_by_hand():
    x, y = _rng.standard_normal((3, 2)), unit(3, 2)
    pw = np.array([2.0, 0.5])
    s = 1 / (1 + np.exp(-x))
    expected = -(pw * y * np.log(s) + (1 - y) * np.log(1 - s))
    got = F.binary_cross_entropy_with_logits(dl.tensor(x, dl.float64), y, pos_weight=pw, reduction="none")
    np.testing.assert_allclose(got.data, expected)
