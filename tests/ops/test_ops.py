"""The tensor ops (elementwise, reductions, movement, indexing, matmul, non-contiguous inputs, every spelling) from
the one case table, ``tests/cases.py``: each case runs PyTorch parity in float32 and in float64 and, where it is
smooth, the finite-difference check in float64. Then the harness's own failures, the spellings only dlbasics
accepts (no parity can hold them: a NumPy array as a mask, an index or an operand, a scalar for ``maximum``,
``keepdim`` without ``dim``, a negative slice step, ``.T`` on a 3-D tensor) and the gradient rules at kinks.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.autograd import gradcheck
from tests.cases import (
    FLOAT64_CASES,
    OPS_CASES,
    Case,
    case,
    check,
    check_float64,
    check_gradcheck,
    gradcheckable,
    r,
    run,
)


@pytest.mark.parametrize("case", OPS_CASES, ids=lambda c: c.id)
def test_op_matches_torch(case: Case) -> None:
    check(case)


OPS_IDS = {c.id for c in OPS_CASES}


@pytest.mark.parametrize("case", [c for c in FLOAT64_CASES if c.id[4:] in OPS_IDS], ids=lambda c: c.id)
def test_op_matches_torch_float64(case: Case) -> None:
    check_float64(case)


@pytest.mark.parametrize("case", [c for c in OPS_CASES if gradcheckable(c)], ids=lambda c: c.id)
def test_op_gradients_match_finite_differences(case: Case) -> None:
    check_gradcheck(case)


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in OPS_CASES]
    assert len(ids) == len(set(ids))


# ---- the harness itself must be able to fail ----------------------------------------------------------
def test_harness_catches_a_wrong_forward() -> None:
    wrong = case("wrong_forward", lambda m, F, a: a * (2.0 if m is dl else 3.0), r(3))
    with pytest.raises(AssertionError, match="output 0"):
        check(wrong)


def test_harness_catches_a_wrong_gradient() -> None:
    # same values, but dl's gradient is cut: the forward agrees and only the gradient check can fail
    wrong = case("wrong_grad", lambda m, F, a: a.detach() * a if m is dl else a * a, r(3))
    with pytest.raises(AssertionError, match="grad of input 0"):
        check(wrong)


def test_harness_catches_a_wrong_shape_and_dtype() -> None:
    shape = case("wrong_shape", lambda m, F, a: a.sum(dim=0, keepdim=m is dl), r(2, 3))
    with pytest.raises(AssertionError, match="shape"):
        check(shape)
    dtype = case("wrong_dtype", lambda m, F, a: a.double() if m is dl else a, r(3))
    with pytest.raises(AssertionError, match="dtype"):
        check(dtype)


def test_harness_passes_non_contiguous_views_through() -> None:
    a = np.asfortranarray(r(3, 4))
    _, xs = run(case("view", lambda m, F, x: x + 0.0, a), "dl")
    assert xs[0].data is a  # not copied into C order


# ---- what only dlbasics accepts: finite differences alone ------------------------------------------------------------
_dl_only_rng = np.random.default_rng(1234)


def away_from_zero(*shape: int) -> np.ndarray:
    """Normal samples kept at least 0.1 away from 0 (no relu/abs kinks, no division by ~0)."""
    x = _dl_only_rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.copysign(0.1, x) + x, x)


def dl_only(name: str, fn, *arrays: np.ndarray):
    return pytest.param(fn, arrays, id=name)


BOOL_MASK = np.array([[True, False, True], [False, True, True]])

DL_ONLY_CASES = [
    dl_only("maximum-scalar", lambda a: dl.maximum(a, 0.05), away_from_zero(2, 3)),
    dl_only("where-broadcast", lambda a, b: dl.where(BOOL_MASK, a, b), away_from_zero(2, 3), away_from_zero(3)),
    dl_only("where-scalar", lambda a: dl.where(BOOL_MASK, a, 0.0), away_from_zero(2, 3)),
    dl_only("sum-all-keepdim", lambda a: a.sum(keepdim=True), away_from_zero(2, 3)),
    dl_only("mean-all-keepdim", lambda a: a.mean(keepdim=True), away_from_zero(2, 3)),
    dl_only("gather-dim-neg-3d", lambda a: a.gather(-1, np.array([[[1], [0], [1]], [[0], [0], [1]]])),
            away_from_zero(2, 3, 2)),
    dl_only("index-slice-neg-step", lambda a: a[::-1, ::-2], away_from_zero(3, 4)),
    dl_only("rmatmul-ndarray", lambda a: np.array([[1.0, -2.0], [0.5, 3.0]]) @ a, away_from_zero(2, 3)),
    dl_only("T-3d", lambda a: a.T, away_from_zero(2, 3, 2)),
]


@pytest.mark.parametrize(("fn", "arrays"), DL_ONLY_CASES)
def test_dl_only_spelling_gradcheck(fn, arrays):
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=True) for a in arrays]
    assert gradcheck(fn, inputs)
    for t in inputs:
        assert t.grad is not None and t.grad.shape == t.shape and t.grad.dtype == np.float64


# (id, fn, arrays, which inputs require grad): ops must save what the needed gradients use, whichever they are.
PARTIAL = [
    ("where-only-y", lambda a, b: dl.where(BOOL_MASK, a, b), (away_from_zero(2, 3), away_from_zero(2, 3)),
     (False, True)),
]


@pytest.mark.parametrize(("fn", "arrays", "mask"), [pytest.param(f, a, m, id=i) for i, f, a, m in PARTIAL])
def test_gradcheck_with_some_inputs_constant(fn, arrays, mask):
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=m) for a, m in zip(arrays, mask)]
    assert gradcheck(fn, inputs)
    for t, m in zip(inputs, mask):
        assert (t.grad is not None) == m


def test_repeated_index_gradient_counts_every_pick():
    x = dl.tensor(np.arange(3.0), dtype=dl.float64, requires_grad=True)
    x[[0, 2, 0, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])
    y = dl.tensor(np.zeros((2, 3)), dtype=dl.float64, requires_grad=True)
    y.gather(1, dl.tensor([[1, 1, 1], [0, 2, 0]])).sum().backward()
    np.testing.assert_array_equal(y.grad, [[0.0, 3.0, 0.0], [2.0, 0.0, 1.0]])


def test_tied_max_splits_gradient_evenly():
    # amax shares the gradient among ties (PyTorch's amax); maximum splits a tie in half.
    x = dl.tensor([1.0, 3.0, 3.0, 2.0], dtype=dl.float64, requires_grad=True)
    x.amax().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5, 0.0])
    a = dl.tensor([1.0, 2.0], dtype=dl.float64, requires_grad=True)
    b = dl.tensor([1.0, 0.0], dtype=dl.float64, requires_grad=True)
    dl.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.5, 1.0])
    np.testing.assert_array_equal(b.grad, [0.5, 0.0])


def test_max_with_dim_sends_gradient_to_the_returned_index():
    x = dl.tensor([[1.0, 5.0, 5.0], [4.0, 0.0, 2.0]], dtype=dl.float64, requires_grad=True)
    values, indices = x.max(1)
    values.sum().backward()
    np.testing.assert_array_equal(values.data, [5.0, 4.0])
    assert x.grad[0, indices.data[0]] == 1.0 and x.grad.sum() == 2.0
    np.testing.assert_array_equal(x.grad[1], [1.0, 0.0, 0.0])


def test_nondifferentiable_points_follow_pytorch():
    x = dl.tensor([-1.0, 0.0, 2.0], dtype=dl.float64, requires_grad=True)
    (x.abs() + x.relu()).sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 2.0])  # abs'(0) = 0, relu'(0) = 0
    y = dl.tensor([-1.0, 0.0, 0.5, 1.0, 2.0], dtype=dl.float64, requires_grad=True)
    y.clamp(0.0, 1.0).sum().backward()
    np.testing.assert_array_equal(y.grad, [0.0, 1.0, 1.0, 1.0, 0.0])  # bounds pass the gradient
