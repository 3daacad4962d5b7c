"""Compiled kernels against their NumPy twins, and the ops that use them against the plain NumPy path.

Each kernel runs both ways on the same inputs - float32 and float64, odd sizes, rows at strides with gaps,
NaN and inf - and the results must agree (to float rounding: the kernels sum in float64, in another order).
The op tests switch ``kernels.JIT`` off and on in one process, so the suite holds both paths equal whichever
``DLBASICS_NO_JIT`` says.
"""

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import kernels, nn
from dlbasics.kernels.activation import leaky_relu_backward, leaky_relu_forward, relu_backward, relu_forward
from dlbasics.kernels.norm import batch_norm_backward, batch_norm_forward, flat_rows, rows_of
from tests.kernels.common import assert_same, both, run_layer

numba = pytest.importorskip("numba", reason="the compiled kernels need numba")

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 1000, 4099])
def test_relu_kernels_match_their_twins(dtype, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(dtype)
    if n >= 5:
        x[:5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    a, b, _, _ = both(relu_forward, lambda: (x, np.empty_like(x), np.empty(n, bool)))
    np.testing.assert_array_equal(a[1], b[1])  # exact: max(x, 0) rounds nothing
    np.testing.assert_array_equal(a[2], b[2])
    g = rng.standard_normal(n).astype(dtype)
    g[0] = np.nan
    a, b, _, _ = both(relu_backward, lambda: (g, a[2], np.empty_like(g)))
    np.testing.assert_array_equal(a[2], b[2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 1000, 4099])
def test_leaky_relu_kernels_match_their_twins_and_the_definition(dtype, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(dtype)
    if n >= 5:
        x[:5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    slope = dtype(0.2)
    a, b, _, _ = both(leaky_relu_forward, lambda: (x, slope, np.empty_like(x), np.empty(n, bool)))
    np.testing.assert_array_equal(a[2], b[2])
    np.testing.assert_array_equal(a[3], b[3])
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(a[2], np.where(x > 0, x, x * slope))  # float32 products, as NumPy and torch
    g = rng.standard_normal(n).astype(dtype)
    g[0] = np.nan
    a, b, _, _ = both(leaky_relu_backward, lambda: (g, a[3], slope, np.empty_like(g)))
    np.testing.assert_array_equal(a[3], b[3])


def _rows(rng, shape, dtype, gap):
    """(P, Q, L) rows at strides with ``gap`` values between rows, as a conv output with gaps has."""
    p, q, n = shape
    buf = rng.standard_normal((p, q, n + gap)).astype(dtype)
    return buf[:, :, :n]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, c, gap", [((1, 37, 3), 3, 0), ((4, 5, 24), 8, 3), ((2, 3, 16), 16, 0),
                                           ((3, 7, 20), 5, 1)])
@pytest.mark.parametrize("train, relu", [(True, False), (True, True), (False, False), (False, True)])
def test_batch_norm_kernels_match_their_twins(dtype, shape, c, gap, train, relu):
    rng = np.random.default_rng(7)
    x = _rows(rng, shape, dtype, gap) * 3 + 1
    gamma, beta = rng.random(c).astype(dtype) + 0.5, rng.standard_normal(c).astype(dtype)
    stats = (rng.random(c).astype(dtype), rng.random(c).astype(dtype) + 0.5)
    rows = shape[0] * shape[1]

    def fwd_args():
        mean, var = (np.empty(c, dtype), np.empty(c, dtype)) if train else (stats[0].copy(), stats[1].copy())
        return (*flat_rows(x), gamma, beta, dtype(1e-5), mean, var, train, relu, np.empty((rows, shape[2]), dtype))

    a, b, _, _ = both(batch_norm_forward, fwd_args)
    for i in (5, 6, 9):  # mean, var, out
        assert_same(a[i], b[i], dtype)
    g = _rows(rng, shape, dtype, gap)

    def bwd_args():
        return (*flat_rows(g), *flat_rows(x), a[9], gamma, a[5], a[6], dtype(1e-5), train, relu,
                np.empty((2, c), dtype), np.empty((rows, shape[2]), dtype))

    a2, b2, _, _ = both(batch_norm_backward, bwd_args)
    assert_same(a2[11], b2[11], dtype)  # the sums
    assert_same(a2[12], b2[12], dtype)  # dx


def test_batch_norm_kernel_propagates_nan_and_inf():
    x = np.ones((1, 6, 2), np.float32)
    x[0, 2, 1] = np.nan
    out = np.empty((6, 2), np.float32)
    mean, var = np.empty(2, np.float32), np.empty(2, np.float32)
    batch_norm_forward.compiled(*flat_rows(x), np.ones(2, np.float32), np.zeros(2, np.float32), np.float32(1e-5),
                                mean, var, True, True, out)
    assert np.isnan(mean[1]) and np.isnan(out[:, 1]).all() and np.isfinite(out[:, 0]).all()


def test_rows_of_reads_conv_outputs_where_they_lie():
    base = np.zeros((2, 3, 5 * 4 + 2), np.float32)  # image rows of 5 pixels x 4 channels, 2 values of gap
    xt = np.lib.stride_tricks.as_strided(base, (2, 3, 5, 4), (base.strides[0], base.strides[1], 16, 4))
    r = rows_of(xt)
    assert r.shape == (2, 3, 20) and np.shares_memory(r, base)
    assert rows_of(np.zeros((6, 4), np.float32)).shape == (1, 3, 8)  # dense: rows of several pixels
    assert rows_of(np.zeros((4096, 16), np.float32)).shape == (1, 16, 4096)
    assert rows_of(np.zeros((4, 6), np.float32).T) is None  # channels not contiguous: the NumPy path


# ---- the ops, both ways ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", ["bn2d", "bn1d", "bn2d_eval", "relu", "conv_bn_relu", "conv_bnrelu_fused",
                                  "bnrelu1d", "layernorm", "layernorm_2d_no_bias", "gelu", "gelu_tanh"])
def test_ops_give_the_same_with_and_without_kernels(make, dtype, monkeypatch):
    rng = np.random.default_rng(3)
    if make.startswith("bn2d"):
        layer, x = nn.BatchNorm2d(6), rng.standard_normal((4, 6, 5, 3))
    elif make == "bn1d":
        layer, x = nn.BatchNorm1d(5), rng.standard_normal((9, 5))
    elif make == "relu":
        layer, x = nn.ReLU(), rng.standard_normal((3, 4, 5))
    elif make == "conv_bnrelu_fused":
        dl.manual_seed(1)
        layer, x = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNormReLU2d(8)), rng.standard_normal(
            (2, 3, 9, 9))
    elif make == "bnrelu1d":
        layer, x = nn.BatchNormReLU1d(5), rng.standard_normal((9, 5))
    elif make.startswith("gelu"):
        layer, x = nn.GELU(approximate="tanh" if make.endswith("tanh") else "none"), rng.standard_normal((4, 33)) * 3
    elif make == "layernorm":
        layer, x = nn.LayerNorm(7), rng.standard_normal((3, 5, 7)) * 3 + 1
    elif make == "layernorm_2d_no_bias":
        layer, x = nn.LayerNorm((4, 6), bias=False), rng.standard_normal((5, 4, 6))

    else:  # a conv's channels-last output with gaps feeds the batch norm
        dl.manual_seed(1)
        layer, x = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()), rng.standard_normal(
            (2, 3, 9, 9))
    layer = layer.to(dtype)
    if make == "bn2d_eval":
        layer.running_mean.data[:] = rng.standard_normal(6)
        layer.eval()
    x = x.astype(dtype)
    plain = run_layer(layer, x, monkeypatch, False)
    fast = run_layer(layer, x, monkeypatch, True)
    assert_same(fast[0], plain[0], dtype)
    assert_same(fast[1], plain[1], dtype)
    for a, b in zip(fast[2], plain[2]):
        assert_same(a, b, dtype)


def test_small_arrays_keep_the_numpy_path(monkeypatch):
    monkeypatch.setattr(kernels, "JIT", True)
    assert not kernels.use(kernels.MIN_SIZE - 1) and kernels.use(kernels.MIN_SIZE)
    monkeypatch.setattr(kernels, "JIT", False)
    assert not kernels.use(10**9)


def test_the_default_run_never_imports_numba(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from dlbasics.cli import main; "
            f"main(['train', '--epochs', '2', '--quiet', '--out', {str(tmp_path / 'r')!r}]); "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == "False"  # the digits MLP's arrays are all below MIN_SIZE


def test_no_jit_selects_the_numpy_twins(monkeypatch):
    monkeypatch.setattr(kernels, "JIT", False)
    x = np.array([-1.0, 2.0])
    out, mask = np.empty(2), np.empty(2, bool)
    calls = []
    monkeypatch.setattr(relu_forward, "_compiled", lambda *a: calls.append(a))
    relu_forward(x, out, mask)
    assert not calls and list(out) == [0.0, 2.0]


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_relu_is_relu_of_batch_norm(jit, train, monkeypatch):
    """The fused layer gives what BatchNorm2d then ReLU give, values and gradients, and loads its state dict."""
    monkeypatch.setattr(kernels, "JIT", jit)
    monkeypatch.setattr(kernels, "MIN_SIZE", 0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 6, 5)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan
    plain, fused = nn.BatchNorm2d(4), nn.BatchNormReLU2d(4)
    plain.weight.data[:] = rng.random(4) + 0.5
    plain.running_var.data[:] = rng.random(4) + 0.5
    fused.load_state_dict(plain.state_dict())
    plain.train(train)
    fused.train(train)
    outs = []
    for layer in (nn.Sequential(plain, nn.ReLU()), fused):
        xt = dl.tensor(x.copy(), requires_grad=True)
        out = layer(xt)
        (out * dl.tensor(np.linspace(-1, 1, out.data.size).reshape(out.shape).astype(np.float32))).sum().backward()
        outs.append((out.data, xt.grad, layer.parameters().__next__().grad))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, d", [(1, 1), (7, 33), (64, 128)])
def test_layer_norm_kernels_match_their_twins(dtype, rows, d):
    from dlbasics.kernels.norm import layer_norm_backward, layer_norm_forward

    rng = np.random.default_rng(4)
    x = (rng.standard_normal((rows, d)) * 2 + 3).astype(dtype)
    x[0, 0] = np.nan if rows > 1 else x[0, 0]
    w, b = (rng.standard_normal(d).astype(dtype) for _ in range(2))

    def fwd():
        return x, w, b, dtype(1e-5), np.empty_like(x), np.empty_like(x), np.empty(rows, dtype)

    a, bb, _, _ = both(layer_norm_forward, fwd)
    for i in (4, 5, 6):
        assert_same(a[i], bb[i], dtype)
    g = rng.standard_normal((rows, d)).astype(dtype)

    def bwd():
        return g, a[5], a[6], w, np.empty_like(g), np.zeros(d), np.zeros(d)

    a2, b2, _, _ = both(layer_norm_backward, bwd)
    for i in (4, 5, 6):
        assert_same(a2[i], b2[i], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tanh_form", [False, True])
def test_gelu_kernels_match_their_twins(dtype, tanh_form):
    from dlbasics.kernels.activation import gelu_backward, gelu_forward

    x = np.concatenate([np.linspace(-8, 8, 1001), [np.nan, np.inf, -np.inf]]).astype(dtype)
    with np.errstate(invalid="ignore"):  # inf * 0 at -inf: NaN both ways
        a, b, _, _ = both(gelu_forward, lambda: (x, tanh_form, np.empty_like(x)))
        assert_same(a[2], b[2], dtype)
        g = np.linspace(-1, 1, x.size).astype(dtype)
        a, b, _, _ = both(gelu_backward, lambda: (g, x, tanh_form, np.empty_like(x)))
        assert_same(a[3], b[3], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_kernels_match_their_twins(dtype):
    from dlbasics.kernels.dropout import dropout_backward, dropout_forward

    rng = np.random.default_rng(6)
    x = rng.standard_normal(1003).astype(dtype)
    x[:3] = [np.nan, np.inf, -np.inf]
    u = rng.random(1003).astype(dtype)
    u[:3] = [0.0, 0.9, 0.0]  # NaN dropped, inf kept, -inf dropped: NaN, inf, NaN both ways
    args = lambda: (x, u, dtype(0.3), dtype(1 / 0.7), np.empty_like(x), np.empty(x.size, bool))  # noqa: E731
    with np.errstate(invalid="ignore"):
        a, b, _, _ = both(dropout_forward, args)
        np.testing.assert_array_equal(a[4], b[4])  # exact: one multiply by the same scale
        np.testing.assert_array_equal(a[5], b[5])
        assert np.isnan(a[4][0]) and a[4][1] == np.inf and np.isnan(a[4][2])
        g = rng.standard_normal(1003).astype(dtype)
        a2, b2, _, _ = both(dropout_backward, lambda: (g, a[5], dtype(1 / 0.7), np.empty_like(g)))
        np.testing.assert_array_equal(a2[3], b2[3])


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("layout", ["C", "channels_last"])
def test_dropout_op_is_the_composite_it_replaces(jit, layout, monkeypatch):
    """The fused op gives, bit for bit, what x * (keep * scale) gives with the same draws, both ways."""
    import dlbasics.nn.functional as F

    monkeypatch.setattr(kernels, "JIT", jit)
    monkeypatch.setattr(kernels, "MIN_SIZE", 0)
    data = np.random.default_rng(7).standard_normal((4, 5, 6, 3)).astype(np.float32)
    if layout == "channels_last":
        data = data.transpose(0, 3, 1, 2)
    x = dl.tensor(data, requires_grad=True)
    x.data = data
    y = F.dropout(x, 0.4, generator=11)
    g = np.linspace(-1, 1, y.data.size, dtype=np.float32).reshape(y.shape)
    y.backward(g)
    keep = np.random.default_rng(11).random(data.shape, dtype=np.float32) >= 0.4
    scale = keep.astype(np.float32) * np.float32(1 / 0.6)
    np.testing.assert_array_equal(y.data, data * scale)
    np.testing.assert_array_equal(x.grad, g * scale)


def test_float32_exact_gelu_kernel_matches_its_twin_and_the_true_erf():
    """Abramowitz & Stegun's erf (|error| <= 1.5e-7): GELU within 5e-7 of x Phi(x) computed in float64, as
    PyTorch's own float32 GELU is; NaN and inf as x Phi(x) gives them."""
    from scipy import special

    from dlbasics.kernels.activation import gelu32_backward, gelu32_forward

    x = np.concatenate([np.linspace(-12, 12, 4001), [np.nan, np.inf, -np.inf, 0.0, -0.0]]).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        a, b, _, _ = both(gelu32_forward, lambda: (x, np.empty_like(x), np.empty_like(x)))
        assert_same(a[1], b[1], np.float32)
        assert_same(a[2], b[2], np.float32)
        x64 = x[:-5].astype(np.float64)
        true = x64 * 0.5 * (1 + special.erf(x64 / np.sqrt(2)))
        assert np.all(np.abs(a[1][:-5] - true) <= 5e-7 * np.maximum(1, np.abs(x64)))
        assert np.isnan(a[1][-5]) and a[1][-4] == np.inf and np.isnan(a[1][-3])  # -inf * 0, as x Phi(x)
        g = np.linspace(-1, 1, x.size).astype(np.float32)
        a2, b2, _, _ = both(gelu32_backward, lambda: (g, x, a[2], np.empty_like(x)))
        assert_same(a2[3], b2[3], np.float32)
        d_true = g[:-5] * (0.5 * (1 + special.erf(x64 / np.sqrt(2))) + x64 * np.exp(-x64 ** 2 / 2) / np.sqrt(2 * np.pi))
        np.testing.assert_allclose(a2[3][:-5], d_true, rtol=0, atol=1e-6)
