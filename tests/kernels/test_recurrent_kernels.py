"""The recurrent cells' step kernels and the embedding scatter-add against their NumPy twins: float32 (where the
kernels' tanh is a rational approximation, within float32 rounding of NumPy's) and float64, odd sizes, a partial
batch (rows of a larger step), NaN and inf; then the layers with the kernels on and off."""

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import kernels
from dlbasics.kernels.recurrent import (
    embedding_backward,
    gru_backward,
    gru_forward,
    lstm_backward,
    lstm_forward,
    rnn_backward,
    rnn_forward,
)
from dlbasics.nn.layers.rnn import GRU, LSTM, RNN
from tests.kernels.common import assert_same, both

numba = pytest.importorskip("numba", reason="the compiled kernels need numba")

SHAPES = [(1, 1), (3, 5), (12, 33)]  # (rows, hidden)
# NaN and inf inputs make NaN on purpose: NumPy's twins warn about them
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
DTYPES = [np.float32, np.float64]


def _data(rng, shape, dtype, scale=2.0, specials=False):
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    if specials and x.size >= 4:
        x.flat[:4] = [np.nan, np.inf, -np.inf, 0.0]
    return x


def _rows(rng, n, width, dtype, specials=False):
    """(n, width) rows of a larger (n + 2, width) step, as the ops pass a partial batch."""
    return _data(rng, (n + 2, width), dtype, specials=specials)[:n]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, h", SHAPES)
@pytest.mark.parametrize("specials", [False, True])
def test_lstm_kernels_match_their_twins(dtype, n, h, specials):
    rng = np.random.default_rng(n * 100 + h)
    pre, hw = _rows(rng, n, 4 * h, dtype, specials), _data(rng, (4 * h, n), dtype)
    bias, c_prev = _data(rng, 4 * h, dtype), _rows(rng, n, h, dtype)

    def fwd_args():
        return (pre.copy(), hw, bias, c_prev, np.empty((n, h), dtype), np.empty((n, h), dtype),
                np.empty((n, h), dtype))

    a, b, _, _ = both(lstm_forward, fwd_args)
    for i in (0, 4, 5, 6):  # activations, c, tanh(c), h
        assert_same(a[i], b[i], dtype)
    dh, gout, dc = _rows(rng, n, h, dtype, specials), _rows(rng, n, h, dtype), _rows(rng, n, h, dtype)

    def bwd_args():
        return a[0], c_prev, a[5], dh.copy(), gout, dc.copy(), np.empty((n, 4 * h), dtype)

    a2, b2, _, _ = both(lstm_backward, bwd_args)
    assert_same(a2[6], b2[6], dtype)  # dpre
    assert_same(a2[5], b2[5], dtype)  # dc -> dc_prev


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, h", SHAPES)
@pytest.mark.parametrize("specials", [False, True])
def test_gru_kernels_match_their_twins(dtype, n, h, specials):
    rng = np.random.default_rng(n * 10 + h)
    gi, hw = _rows(rng, n, 3 * h, dtype, specials), _data(rng, (3 * h, n), dtype)
    bias, b_hn, h_prev = _data(rng, 3 * h, dtype), _data(rng, h, dtype), _rows(rng, n, h, dtype)

    def fwd_args():
        return gi.copy(), hw, bias, b_hn, h_prev, np.empty((n, h), dtype), np.empty((n, h), dtype)

    a, b, _, _ = both(gru_forward, fwd_args)
    for i in (0, 5, 6):  # activations, W_hn h + b_hn, h
        assert_same(a[i], b[i], dtype)
    dh, gout = _rows(rng, n, h, dtype, specials), _rows(rng, n, h, dtype)

    def bwd_args():
        return a[0], a[5], h_prev, dh.copy(), gout, np.empty((n, 3 * h), dtype), np.empty((n, 3 * h), dtype)

    a2, b2, _, _ = both(gru_backward, bwd_args)
    for i in (3, 5, 6):  # dh (the direct part), dgi, dgh
        assert_same(a2[i], b2[i], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, h", SHAPES)
@pytest.mark.parametrize("relu", [False, True])
def test_rnn_kernels_match_their_twins(dtype, n, h, relu):
    rng = np.random.default_rng(n + h)
    pre, hw = _rows(rng, n, h, dtype, specials=True), _data(rng, (h, n), dtype)
    bias = _data(rng, h, dtype)
    a, b, _, _ = both(rnn_forward, lambda: (pre, hw, bias, relu, np.empty((n, h), dtype)))
    assert_same(a[4], b[4], dtype)
    dh, gout = _rows(rng, n, h, dtype, specials=True), _rows(rng, n, h, dtype)
    a2, b2, _, _ = both(rnn_backward, lambda: (a[4], relu, dh, gout, np.empty((n, h), dtype)))
    assert_same(a2[4], b2[4], dtype)


def test_fast_tanh_is_float32_accurate():
    """The float32 kernels' rational tanh against float64 tanh over its whole range, through the RNN kernel."""
    x = np.linspace(-12, 12, 48001, dtype=np.float32)[:, None]
    h = np.empty_like(x)
    rnn_forward.compiled(x, np.zeros((1, x.shape[0]), np.float32), np.zeros(1, np.float32), False, h)
    err = np.abs(h[:, 0].astype(np.float64) - np.tanh(x[:, 0].astype(np.float64)))
    assert err.max() < 4e-7
    special = rnn_forward.compiled(np.array([[np.nan, np.inf, -np.inf]], np.float32), np.zeros((3, 1), np.float32),
                                   np.zeros(3, np.float32), False, np.empty((1, 3), np.float32))[0]
    assert np.isnan(special[0])
    np.testing.assert_allclose(special[1:], [1.0, -1.0], atol=3e-7)  # the value at the clamp, 1 - 2.4e-7


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_idx", [-1, 0, 4])
def test_embedding_backward_matches_its_twin(dtype, padding_idx):
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 6, 50)
    ids[:5] = 4  # a repeated run, and the padding row when padding_idx = 4
    g = _data(rng, (50, 7), dtype)
    g[10, 2] = np.nan
    a, b, _, _ = both(embedding_backward, lambda: (ids, g, padding_idx, np.zeros((6, 7), dtype)))
    assert_same(a[3], b[3], dtype)
    if padding_idx >= 0:
        assert not a[3][padding_idx].any()
    expected = np.zeros((6, 7), dtype)
    np.add.at(expected, ids, g)
    if padding_idx >= 0:
        expected[padding_idx] = 0
    assert_same(a[3], expected, dtype)


@pytest.mark.parametrize("make", [lambda dt: LSTM(5, 8, num_layers=2, bidirectional=True, dtype=dt),
                                  lambda dt: GRU(5, 8, batch_first=True, dtype=dt),
                                  lambda dt: RNN(5, 8, 1, "relu", dtype=dt)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_layers_equal_with_and_without_kernels(make, dtype, monkeypatch):
    monkeypatch.setattr(kernels, "MIN_SIZE", 0)
    dl.manual_seed(0)
    layer = make(dtype)
    x = np.random.default_rng(1).standard_normal((6, 3, 5)).astype(dtype)
    results = []
    for jit in (True, False):
        monkeypatch.setattr(kernels, "JIT", jit)
        layer.zero_grad()
        xt = dl.tensor(x, dtype=dtype, requires_grad=True)
        out, _ = layer(xt)
        (out * dl.tensor(np.linspace(-1, 1, out.data.size).reshape(out.shape), dtype=dtype)).sum().backward()
        results.append([out.data.copy(), xt.grad.copy(), *[p.grad.copy() for p in layer.parameters()]])
    for got, want in zip(*results):
        assert_same(got, want, dtype)
