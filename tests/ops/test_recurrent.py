"""The fused recurrent ops (a whole sequence, or one cell step as a sequence of one) and the row ops against
central finite differences in float64: every input's gradient - the sequence, the weights, the
biases, the initial states - through every output row (the outputs, h_n, c_n). Both paths: the NumPy twins and
the compiled kernels (forced on at these tiny sizes)."""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import kernels
from dlbasics.autograd import gradcheck
from dlbasics.ops.recurrent import gather_rows, recurrence, scatter_rows

_rng = np.random.default_rng(2024)
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
T, B, I, H = 3, 3, 2, 2


@pytest.fixture(params=["numpy", "kernel"])
def path(request, monkeypatch):
    if request.param == "kernel":
        pytest.importorskip("numba", reason="the compiled kernels need numba")
        monkeypatch.setattr(kernels, "JIT", True)
        monkeypatch.setattr(kernels, "MIN_SIZE", 0)
    else:
        monkeypatch.setattr(kernels, "JIT", False)
    return request.param


def leaf(*shape, scale=1.0):
    x = _rng.standard_normal(shape) * scale
    x = np.where(np.abs(x) < 0.05, np.copysign(0.05, x) + x, x)  # no relu kink at 0
    return dl.tensor(x, dtype=dl.float64, requires_grad=True)


def _inputs(mode, t_len, bias, state):
    g = GATES[mode] * H
    xs = [leaf(t_len, B, I), leaf(g, I, scale=0.7), leaf(g, H, scale=0.7)]
    xs += [leaf(g, scale=0.5), leaf(g, scale=0.5)] if bias else []
    xs += [leaf(B, H) for _ in range(2 if mode == "LSTM" else 1)] if state else []
    return xs


def _fn(mode, bias, state, **kw):
    def fn(x, w_ih, w_hh, *rest):
        b = list(rest[:2]) if bias else [None, None]
        s = list(rest[2:] if bias else rest) if state else []
        s += [None] * (2 - len(s))
        return recurrence(mode, x, w_ih, w_hh, *b, *s, **kw)

    return fn


@pytest.mark.parametrize("mode", list(GATES))
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias, state", [(True, True), (False, False)])
def test_sequence_op(mode, reverse, bias, state, path):
    assert gradcheck(_fn(mode, bias, state, reverse=reverse), _inputs(mode, T, bias, state))


@pytest.mark.parametrize("mode", list(GATES))
@pytest.mark.parametrize("reverse", [False, True])
def test_sequence_op_with_lengths(mode, reverse, path):
    """Packed batches: rows 3, 2, 1 steps long (batch_sizes 3, 2, 1); outputs past a length are zero constants."""
    assert gradcheck(_fn(mode, True, True, reverse=reverse, batch_sizes=[3, 2, 1]), _inputs(mode, T, True, True))


@pytest.mark.parametrize("mode", list(GATES))
def test_one_step_as_a_cell(mode, path):
    assert gradcheck(_fn(mode, True, True), _inputs(mode, 1, True, True))


def test_row_gather_and_scatter():
    index = np.array([4, 0, 2])
    assert gradcheck(lambda x: gather_rows(x, index), [leaf(5, 2)])
    assert gradcheck(lambda x: scatter_rows(x, index, 6, fill=-1.0), [leaf(3, 2)])
