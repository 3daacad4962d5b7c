"""``dlbasics.autograd.gradcheck`` itself: it checks only the inputs that require grad, catches a wrong backward, and
refuses what it cannot check (float32, non-contiguous inputs) with a message that says so."""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.autograd import Function, gradcheck

_rng = np.random.default_rng(1234)


def r(*shape: int) -> np.ndarray:
    return _rng.standard_normal(shape)


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
