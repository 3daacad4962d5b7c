"""The fast BatchNorm and max-pooling (layout-aware NumPy, BLAS and compiled kernels) against their textbook
references (ops/references.py), and the references against PyTorch: float64, forward and every gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics import kernels
from dlbasics.ops import references as ref
from dlbasics.ops.pool import _geometry

# (shape, memory layout): small arrays take the ops' NumPy paths; the last two hold kernels.MIN_SIZE values, for
# the compiled kernels (or their twins with DLBASICS_NO_JIT=1); channels-last is how a conv leaves its output
CASES = [((4, 3), "contiguous"), ((5, 2, 3), "contiguous"), ((3, 4, 5, 6), "contiguous"),
         ((3, 4, 5, 6), "channels-last"), ((8, 16, 32, 32), "contiguous"), ((8, 16, 32, 32), "channels-last")]


def tensor(a: np.ndarray, grad: bool = True) -> dl.Tensor:
    return dl.tensor(a, dtype=dl.float64, requires_grad=grad)


@pytest.mark.parametrize("training", [True, False], ids=["batch-statistics", "running-statistics"])
@pytest.mark.parametrize("shape, layout", CASES, ids=["x".join(map(str, s)) + "-" + lay for s, lay in CASES])
def test_batch_norm_equals_its_reference(shape, layout, training):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape) * 3 + 1
    if layout == "channels-last":  # as a conv leaves it: (N, H, W, C) in memory behind the NCHW view
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    c = shape[1]
    gamma, beta, g = rng.standard_normal(c), rng.standard_normal(c), rng.standard_normal(shape)
    mean, var = (None, None) if training else (rng.standard_normal(c), rng.uniform(0.5, 2, c))
    xt, gt, bt = tensor(x), tensor(gamma), tensor(beta)
    stats = (None, None) if training else (tensor(mean, False), tensor(var, False))
    y = F.batch_norm(xt, *stats, gt, bt, training=training, eps=1e-5)
    y.backward(tensor(g, False))
    y_ref, cache = ref.batch_norm_forward(x, gamma, beta, 1e-5, mean, var)
    for what, got, want in zip(("y", "dx", "dgamma", "dbeta"), (y.data, xt.grad, gt.grad, bt.grad),
                               (y_ref, *ref.batch_norm_backward(g, cache))):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=what)


def test_the_batch_norm_reference_matches_torch():
    rng = np.random.default_rng(0)
    x, gamma, beta, g = rng.standard_normal((6, 3, 4, 5)), rng.standard_normal(3), rng.standard_normal(3), \
        rng.standard_normal((6, 3, 4, 5))
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5).backward(torch.tensor(g))
    y, cache = ref.batch_norm_forward(x, gamma, beta, 1e-5)
    want = torch.nn.functional.batch_norm(torch.tensor(x), None, None, torch.tensor(gamma), torch.tensor(beta),
                                          training=True, eps=1e-5).numpy()
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10)
    for got, t in zip(ref.batch_norm_backward(g, cache), (xt, gt, bt)):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-10, atol=1e-10)


def random_pool(rng: np.random.Generator) -> tuple[tuple[int, ...], dict]:
    k = tuple(int(v) for v in rng.integers(1, 4, 2))
    kw = {"kernel_size": k, "stride": tuple(int(v) for v in rng.integers(1, 4, 2)),
          "padding": tuple(int(rng.integers(0, ki // 2 + 1)) for ki in k),
          "dilation": tuple(int(v) for v in rng.integers(1, 3, 2)), "ceil_mode": bool(rng.integers(0, 2))}
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(7, 13)), int(rng.integers(7, 13)))
    return shape, kw


def pool_of(shape: tuple[int, ...], kw: dict) -> ref.Pool:
    out = tuple(_geometry(shape[2 + a], kw["kernel_size"][a], kw["stride"][a], kw["padding"][a], kw["dilation"][a],
                          kw["ceil_mode"], "test")[0] for a in range(2))
    return ref.Pool(kw["kernel_size"], kw["stride"], kw["padding"], kw["dilation"], out)


@pytest.mark.parametrize("large", [False, True], ids=["numpy-path", "kernel-path"])
def test_max_pool_equals_its_reference_on_random_windows(large):
    for seed in range(40):
        rng = np.random.default_rng(seed)
        shape, kw = random_pool(rng)
        if large:  # enough values for the compiled kernels
            shape = (shape[0], -(-kernels.MIN_SIZE // (shape[0] * shape[2] * shape[3])), *shape[2:])
        x = rng.standard_normal(shape)
        xt = tensor(x)
        y = F.max_pool2d(xt, **kw)
        g = rng.standard_normal(y.shape)
        y.backward(tensor(g, False))
        pool = pool_of(shape, kw)
        y_ref, which = ref.max_pool_forward(x, pool)
        np.testing.assert_allclose(y.data, y_ref, rtol=0, atol=0, err_msg=f"{shape} {kw}")
        np.testing.assert_allclose(xt.grad, ref.max_pool_backward(g, which, shape, pool), rtol=1e-12, atol=1e-12,
                                   err_msg=f"{shape} {kw}")


def test_the_max_pool_reference_matches_torch():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        shape, kw = random_pool(rng)
        x = rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        yt = torch.nn.functional.max_pool2d(xt, **kw)
        g = rng.standard_normal(tuple(yt.shape))
        yt.backward(torch.tensor(g))
        pool = pool_of(shape, kw)
        y, which = ref.max_pool_forward(x, pool)
        np.testing.assert_array_equal(y, yt.detach().numpy())
        np.testing.assert_allclose(ref.max_pool_backward(g, which, shape, pool), xt.grad.numpy(), rtol=1e-12,
                                   atol=1e-12)
