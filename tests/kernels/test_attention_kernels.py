"""Attention's softmax row passes (the shift before the exponential, the backward pass): the compiled loops
against their NumPy twins (float32 and float64, causal and not, rows with every key masked, NaN and inf, dropout
masks), and the op with and without them."""

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import kernels
from dlbasics.kernels.attention import softmax_backward, softmax_shift
from dlbasics.ops.attention import scaled_dot_product_attention
from tests.kernels.common import assert_same, both

numba = pytest.importorskip("numba", reason="the compiled kernels need numba")


def _scores(rng, rows, n, dtype, special=False):
    s = (rng.standard_normal((rows, n)) * 3).astype(dtype)
    s[rng.random((rows, n)) > 0.7] = -np.inf
    s[1] = -np.inf  # every key masked
    if special:
        s[2, 3], s[3, 1] = np.nan, np.inf
    return s


def _normalized(e):
    z = e.sum(axis=1, keepdims=True)
    return e / np.where(z == 0, 1, z)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, n, causal", [(12, 7, 0), (12, 5, 4), (10, 9, 5), (6, 1, 3), (40, 33, 8)])
def test_forward_passes_match_their_twins(dtype, rows, n, causal):
    rng = np.random.default_rng(rows * n)
    s = _scores(rng, rows, n, dtype, special=n > 3)
    a, b, _, _ = both(softmax_shift, lambda: (s.copy(), causal))
    # (the shifts differ only in rows holding a NaN, which the loop leaves out of its maximum: NaN rows either way)
    with np.errstate(invalid="ignore"):
        p, p_twin = _normalized(np.exp(a[0])), _normalized(np.exp(b[0]))
    assert_same(p, p_twin, dtype)
    assert not p[1].any()  # the masked row stays zeros
    if n > 3 and not causal:  # (causal masks may cover them)
        assert np.isnan(p[2]).all() and np.isnan(p[3]).all()  # a NaN or an inf score: a NaN row, as NumPy's
    live = np.isfinite(p).all(axis=1) & p.any(axis=1)
    np.testing.assert_allclose(p[live].sum(axis=1), 1, rtol=1e-5)
    if causal:
        blocked = np.triu(np.ones((causal, n), bool), 1)
        assert not np.nan_to_num(p).reshape(-1, causal, n)[:, blocked].any()  # zeros (in rows that are not NaN)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dropout", [False, True])
def test_backward_pass_matches_its_twin(dtype, dropout):
    rng = np.random.default_rng(3)
    rows, n = 24, 11
    s = rng.standard_normal((rows, n))
    a = (np.exp(s) / np.exp(s).sum(1, keepdims=True)).astype(dtype)
    a[4] = 0  # a row with every key masked
    da = rng.standard_normal((rows, n)).astype(dtype)
    da[5, 2] = np.nan
    keep = rng.random((rows, n)) > 0.3 if dropout else np.empty((0, 0), bool)
    scale = dtype(1 / 0.7)
    x, y, _, _ = both(softmax_backward, lambda: (a, da.copy(), keep, scale))
    assert_same(x[1], y[1], dtype)
    assert np.isnan(x[1][5]).all() and not x[1][4].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [dict(is_causal=True), dict(attn_mask="bool"), dict(attn_mask="float"),
                                dict(dropout_p=0.3, generator=4)], ids=["causal", "bool", "float", "dropout"])
def test_op_with_and_without_kernels(monkeypatch, dtype, kw):
    rng = np.random.default_rng(9)
    q, k, v = (rng.standard_normal((2, 3, 6, 4)).astype(dtype) for _ in range(3))
    if kw.get("attn_mask") == "bool":
        kw = dict(attn_mask=rng.random((6, 6)) > 0.5)
    elif kw.get("attn_mask") == "float":
        kw = dict(attn_mask=np.where(rng.random((6, 6)) > 0.5, -np.inf, rng.standard_normal((6, 6))).astype(dtype))
    g = rng.standard_normal((2, 3, 6, 4)).astype(dtype)
    results = []
    for jit in (False, True):
        monkeypatch.setattr(kernels, "JIT", jit)
        monkeypatch.setattr(kernels, "MIN_SIZE", 0)  # small test arrays take the kernels too
        ts = [dl.tensor(x, dtype=dtype, requires_grad=True) for x in (q, k, v)]
        out = scaled_dot_product_attention(*ts, **kw)
        out.backward(g)
        results.append([out.data, *(t.grad for t in ts)])
    for x, y in zip(*results):
        assert_same(x, y, dtype)
