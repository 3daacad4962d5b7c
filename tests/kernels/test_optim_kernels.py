"""The optimizers' compiled updates against their NumPy twins, and whole optimizer steps with and without them."""

import itertools

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import kernels, nn
from tests.kernels.common import assert_same, both

numba = pytest.importorskip("numba", reason="the compiled kernels need numba")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("decay, l2, maximize, amsgrad", [(1.0, 0.0, False, False), (0.99, 0.0, False, True),
                                                         (1.0, 0.01, True, False), (1.0, 0.01, False, True)])
def test_adam_kernel_matches_its_twin(dtype, decay, l2, maximize, amsgrad):
    from dlbasics.kernels.optim import adam_update

    rng = np.random.default_rng(11)
    n = 1001
    theta, g, m, v = (rng.standard_normal(n).astype(dtype) for _ in range(4))
    v = np.abs(v)
    g[3] = np.nan
    v_max = np.abs(rng.standard_normal(n)).astype(dtype) if amsgrad else np.empty(0, dtype)
    scalars = [dtype(s) for s in (decay, l2)] + [maximize] + [dtype(s) for s in (0.1, 0.999, 0.001, 1e-3, 1e-8)]
    a, b, _, _ = both(adam_update, lambda: (theta.copy(), g, m.copy(), v.copy(), v_max.copy(), *scalars,
                                            np.empty(n, dtype), np.empty(n, dtype)))
    for i in (0, 2, 3, 4):  # theta, m, v, v_max
        assert_same(a[i], b[i], dtype)
    assert np.isnan(a[0][3]) and np.isnan(b[0][3])  # a NaN gradient reaches its parameter, both ways


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("first, l2, maximize, momentum, dampening, nesterov", [
    (False, 0.0, False, 0.0, 0.0, False), (True, 0.0, False, 0.9, 0.0, False), (False, 0.01, False, 0.9, 0.0, True),
    (False, 0.01, True, 0.9, 0.1, False)])
def test_sgd_kernel_matches_its_twin(dtype, first, l2, maximize, momentum, dampening, nesterov):
    from dlbasics.kernels.optim import sgd_update

    rng = np.random.default_rng(12)
    theta, g, buf = (rng.standard_normal(777).astype(dtype) for _ in range(3))
    buf = buf if momentum else np.empty(0, dtype)
    args = [first, dtype(l2), maximize, dtype(momentum), dtype(1 - dampening), nesterov, dtype(0.05)]
    scratch = [np.empty_like(theta), np.empty_like(theta)]
    a, b, _, _ = both(sgd_update, lambda: (theta.copy(), g, buf.copy(), *args, *scratch))
    assert_same(a[0], b[0], dtype)
    assert_same(a[2], b[2], dtype)


@pytest.mark.parametrize("name, kw", [("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
                                      ("SGD", {"lr": 0.1}), ("Adam", {"lr": 1e-2, "amsgrad": True}),
                                      ("AdamW", {"lr": 1e-2}), ("RMSprop", {"lr": 1e-2}),
                                      ("RMSprop", {"lr": 1e-2, "centered": True, "momentum": 0.9}),
                                      ("Adagrad", {"lr": 0.1}), ("Adadelta", {})])
def test_optimizer_steps_are_the_same_with_and_without_kernels(name, kw, monkeypatch):
    from dlbasics import optim

    monkeypatch.setattr(kernels, "MIN_SIZE", 0)
    results = []
    for jit in (False, True):
        monkeypatch.setattr(kernels, "JIT", jit)
        p = nn.Parameter(dl.tensor(np.linspace(-1, 1, 300).reshape(20, 15)))
        opt = getattr(optim, name)([p], **kw)
        for step in range(5):
            p.grad = np.cos(p.data * (step + 1)).astype(np.float32)
            opt.step()
        results.append(p.data.copy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-6)


def _state(rng, n, dtype, positive=False):
    a = rng.standard_normal(n).astype(dtype)
    return np.abs(a) if positive else a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("l2, maximize, centered, momentum",
                         list(itertools.product([0.0, 0.01], [False, True], [False, True], [0.0, 0.9])))
def test_rmsprop_kernel_matches_its_twin(dtype, l2, maximize, centered, momentum):
    from dlbasics.kernels.optim import rmsprop_update

    rng = np.random.default_rng(13)
    n = 1003
    theta, g = _state(rng, n, dtype), _state(rng, n, dtype)
    m = _state(rng, n, dtype) * 0.5 if centered else np.empty(0, dtype)
    v = _state(rng, n, dtype, positive=True) + 1 + (m * m if centered else 0)  # v > m², as a real run keeps it
    b = _state(rng, n, dtype) if momentum else np.empty(0, dtype)
    g[3] = np.nan
    scalars = [dtype(l2), maximize] + [dtype(s) for s in (0.99, 1 - 0.99, 1e-8, momentum, 0.01)]
    a, c, _, _ = both(rmsprop_update, lambda: (theta.copy(), g, v.copy(), m.copy(), b.copy(), *scalars,
                                               np.empty(n, dtype), np.empty(n, dtype)))
    for i in range(5):  # theta, g (never written), v, m, b
        assert_same(a[i], c[i], dtype)
    assert np.array_equal(a[1], g, equal_nan=True) and np.array_equal(c[1], g, equal_nan=True)
    assert np.isnan(a[0][3]) and np.isnan(c[0][3])  # a NaN gradient reaches its parameter, both ways


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("l2, maximize", list(itertools.product([0.0, 0.01], [False, True])))
@pytest.mark.parametrize("initial_sum, clr", [(0.0, 0.1), (0.5, 0.1 / (1 + 4 * 0.01))], ids=["first", "lr_decay"])
def test_adagrad_kernel_matches_its_twin(dtype, l2, maximize, initial_sum, clr):
    from dlbasics.kernels.optim import adagrad_update

    rng = np.random.default_rng(14)
    n = 1005
    theta, g = _state(rng, n, dtype), _state(rng, n, dtype)
    s = np.full(n, initial_sum, dtype) if initial_sum else _state(rng, n, dtype, positive=True)
    g[3], g[4], theta[4] = np.nan, 0, 0  # a NaN; and a zero gradient on a zero sum (0 / ε)
    scalars = [dtype(l2), maximize, dtype(clr), dtype(1e-10)]
    a, c, _, _ = both(adagrad_update, lambda: (theta.copy(), g, s.copy(), *scalars, np.empty(n, dtype),
                                               np.empty(n, dtype)))
    assert_same(a[0], c[0], dtype)
    assert_same(a[2], c[2], dtype)
    assert np.isnan(a[0][3]) and np.isnan(c[0][3])  # a NaN gradient reaches its parameter, both ways


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("l2, maximize", list(itertools.product([0.0, 0.01], [False, True])))
@pytest.mark.parametrize("first", [True, False])
def test_adadelta_kernel_matches_its_twin(dtype, l2, maximize, first):
    from dlbasics.kernels.optim import adadelta_update

    rng = np.random.default_rng(15)
    n = 1007
    theta, g = _state(rng, n, dtype), _state(rng, n, dtype)
    v, u = (np.zeros(n, dtype), np.zeros(n, dtype)) if first else (
        _state(rng, n, dtype, positive=True), _state(rng, n, dtype, positive=True))
    g[3] = np.nan
    scalars = [dtype(l2), maximize] + [dtype(s) for s in (0.9, 1 - 0.9, 1e-6, 1.0)]
    a, c, _, _ = both(adadelta_update, lambda: (theta.copy(), g, v.copy(), u.copy(), *scalars,
                                                *(np.empty(n, dtype) for _ in range(3))))
    for i in (0, 2, 3):  # theta, v, u
        assert_same(a[i], c[i], dtype)
    assert np.isnan(a[0][3]) and np.isnan(c[0][3])  # a NaN gradient reaches its parameter, both ways


@pytest.mark.parametrize("name, kw", [
    ("RMSprop", {"lr": 1e-2, "centered": True, "momentum": 0.5, "weight_decay": 1e-2, "maximize": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 1e-2}),
    ("Adadelta", {"weight_decay": 1e-2, "maximize": True})])
def test_float64_optimizer_steps_are_the_same_with_and_without_kernels(name, kw, monkeypatch):
    """float64 parameters through the optimizers (absent state arrays come as float32 NO_ARRAY)."""
    from dlbasics import optim

    monkeypatch.setattr(kernels, "MIN_SIZE", 0)
    results = []
    for jit in (False, True):
        monkeypatch.setattr(kernels, "JIT", jit)
        p = nn.Parameter(dl.tensor(np.linspace(-1, 1, 300).reshape(20, 15), dtype=np.float64))
        opt = getattr(optim, name)([p], **kw)
        for step in range(5):
            p.grad = np.cos(p.data * (step + 1))
            opt.step()
        assert p.data.dtype == np.float64
        results.append(p.data.copy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-11, atol=1e-12)
