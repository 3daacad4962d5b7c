"""Gradients against central finite differences for what only dlbasics accepts, and the checker itself.

The ops' cases live in one table, ``tests/oracle/cases.py``: each case there runs PyTorch parity in float32 and
float64 and, where it is smooth, this same finite-difference check (``check_gradcheck``). Here are the spellings
PyTorch does not have, so that no parity can hold them - a NumPy array as a mask, an index or an operand, a scalar
for ``maximum``, ``keepdim`` without ``dim``, a negative slice step, ``.T`` on a 3-D tensor - and the tests of
``gradcheck`` and of the gradient rules at kinks.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.autograd import Function, gradcheck

_rng = np.random.default_rng(1234)


def r(*shape: int) -> np.ndarray:
    """Normal samples kept at least 0.1 away from 0 (no relu/abs kinks, no division by ~0)."""
    x = _rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.copysign(0.1, x) + x, x)


def case(name: str, fn, *arrays: np.ndarray):
    return pytest.param(fn, arrays, id=name)


BOOL_MASK = np.array([[True, False, True], [False, True, True]])

CASES = [
    case("maximum-scalar", lambda a: dl.maximum(a, 0.05), r(2, 3)),
    case("where-broadcast", lambda a, b: dl.where(BOOL_MASK, a, b), r(2, 3), r(3)),
    case("where-scalar", lambda a: dl.where(BOOL_MASK, a, 0.0), r(2, 3)),
    case("sum-all-keepdim", lambda a: a.sum(keepdim=True), r(2, 3)),
    case("mean-all-keepdim", lambda a: a.mean(keepdim=True), r(2, 3)),
    case("gather-dim-neg-3d", lambda a: a.gather(-1, np.array([[[1], [0], [1]], [[0], [0], [1]]])), r(2, 3, 2)),
    case("index-slice-neg-step", lambda a: a[::-1, ::-2], r(3, 4)),
    case("rmatmul-ndarray", lambda a: np.array([[1.0, -2.0], [0.5, 3.0]]) @ a, r(2, 3)),
    case("T-3d", lambda a: a.T, r(2, 3, 2)),
]


@pytest.mark.parametrize(("fn", "arrays"), CASES)
def test_gradcheck(fn, arrays):
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=True) for a in arrays]
    assert gradcheck(fn, inputs)
    for t in inputs:
        assert t.grad is not None and t.grad.shape == t.shape and t.grad.dtype == np.float64


# (id, fn, arrays, which inputs require grad): ops must save what the needed gradients use, whichever they are.
PARTIAL = [
    ("where-only-y", lambda a, b: dl.where(BOOL_MASK, a, b), (r(2, 3), r(2, 3)), (False, True)),
]


@pytest.mark.parametrize(("fn", "arrays", "mask"), [pytest.param(f, a, m, id=i) for i, f, a, m in PARTIAL])
def test_gradcheck_with_some_inputs_constant(fn, arrays, mask):
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=m) for a, m in zip(arrays, mask)]
    assert gradcheck(fn, inputs)
    for t, m in zip(inputs, mask):
        assert (t.grad is not None) == m


def test_gradcheck_only_checks_inputs_that_require_grad():
    a = dl.tensor(r(2, 3), dtype=dl.float64, requires_grad=True)
    b = dl.tensor(r(2, 3), dtype=dl.float64)
    assert gradcheck(lambda x, y: x * y, [a, b])
    assert b.grad is None
    np.testing.assert_allclose(a.grad.shape, (2, 3))


def test_gradcheck_detects_a_wrong_backward():
    class WrongSquare(Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return g * self.x  # should be 2 x g

    x = dl.tensor(r(4), dtype=dl.float64, requires_grad=True)
    with pytest.raises(AssertionError, match="input 0 of shape"):
        gradcheck(lambda t: WrongSquare.apply(t), [x])


def test_gradcheck_rejects_float32_inputs():
    x = dl.tensor(r(3), requires_grad=True)
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda t: t * 2, [x])


def test_gradcheck_rejects_non_contiguous_inputs_with_a_clear_message():
    x = dl.from_numpy(np.arange(6.0).reshape(2, 3).T).requires_grad_()
    with pytest.raises(ValueError, match="not C-contiguous"):
        gradcheck(lambda t: t * 2, [x])
    assert gradcheck(lambda t: t * 2, [x.detach().contiguous().requires_grad_()])


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
