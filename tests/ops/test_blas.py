"""``ops._blas.gemm``: out = a @ b + beta * out on NumPy's BLAS, and its matmul fallback, for every layout the
shifted convolution hands it."""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics.autograd import gradcheck
from dlbasics.ops import _blas

rng = np.random.default_rng(0)


def layouts(dtype):
    a = rng.standard_normal((7, 5)).astype(dtype)
    b = rng.standard_normal((5, 4)).astype(dtype)
    rows = np.zeros((20, 5), dtype)
    rows[3:10] = a
    yield "contiguous", a, b
    yield "row-slice-of-taller", rows[3:10], b
    yield "transposed-a", np.asfortranarray(a), b
    yield "transposed-b", a, np.asfortranarray(b)
    yield "b-is-a-transpose", a, np.ascontiguousarray(b.T).T
    yield "strided-a-copied-by-fallback", np.repeat(a, 2, axis=1)[:, ::2], b  # no unit stride: matmul path
    yield "one-column-b", a, b[:, :1]


@pytest.fixture(params=["cblas", "fallback"])
def backend(request, monkeypatch):
    if request.param == "fallback":
        for table in ("_CBLAS", "_BATCHED", "_GROUPED"):
            monkeypatch.setattr(_blas, table, {})
    elif not _blas.available():
        pytest.skip("NumPy's BLAS has no cblas_sgemm this process can find; the fallback is tested")
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
def test_gemm_matches_matmul(backend, dtype, beta):
    for name, a, b in layouts(dtype):
        for out_layout in ("row-major", "column-major"):
            big = rng.standard_normal((a.shape[0] + 3, b.shape[1] + 2)).astype(dtype)
            out = big[1:1 + a.shape[0], :b.shape[1]]  # a row stride wider than the row: ldc > n
            if out_layout == "column-major":
                big = rng.standard_normal((b.shape[1] + 2, a.shape[0] + 3)).astype(dtype)
                out = big[1:1 + b.shape[1], :a.shape[0]].T
            before, around = out.copy(), big.copy()
            if beta == 0:
                out[0, 0] = np.nan  # beta = 0 ignores what out held
            _blas.gemm(a, b, out, beta=beta)
            ref = a @ b + (beta * before if beta else 0)
            np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5, err_msg=f"{name}, {out_layout} out")
            if out_layout == "row-major":
                around[1:1 + a.shape[0], :b.shape[1]] = out
            else:
                around[1:1 + b.shape[1], :a.shape[0]] = out.T
            assert np.array_equal(big, around), name  # nothing written outside out


def test_shifted_conv_on_the_fallback_matches_finite_differences(monkeypatch):
    monkeypatch.setattr(_blas, "_CBLAS", {})
    x = dl.tensor(rng.standard_normal((2, 3, 5, 6)), dtype=dl.float64, requires_grad=True)
    w = dl.tensor(rng.standard_normal((4, 3, 3, 2)), dtype=dl.float64, requires_grad=True)
    assert gradcheck(lambda x, w: F.conv2d(x, w, padding=(1, 2), dilation=(1, 2), lowering="shifted"), [x, w])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [40001, 1001], ids=["batched-odd-k", "small-falls-back"])
@pytest.mark.parametrize("layout", ["a-transposed", "b-transposed"])
def test_matmul_split_matches_matmul(backend, dtype, k, layout):
    """A long reduction in chunks (OpenBLAS's batched GEMM above its small-matrix threshold, with a left-over
    column when k is odd) equals one product, for either operand stored transposed."""
    a = rng.standard_normal((k + 5, 16)).astype(dtype)[2:2 + k].T  # (16, k), a view of rows of a taller array
    b = rng.standard_normal((k, 16)).astype(dtype)
    if layout == "b-transposed":
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b.T).T
    out = np.empty((16, 16), dtype)
    _blas.matmul_split(a, b, out)
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-2 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_batch_matches_one_product_each(backend, dtype):
    """Products of one shape in one batched call (above the small-matrix threshold), reading overlapping row
    windows of one array transposed, as the shifted conv's weight gradient does; and a mixed list, which falls
    back to one call each."""
    k = 2 * _blas.BATCH_MIN_WORK // (16 * 16) + 1
    x = rng.standard_normal((k + 40, 16)).astype(dtype)
    dy = rng.standard_normal((k, 16)).astype(dtype)
    a = [x[s:s + k].T for s in (0, 1, 2, 17, 39)]
    out = [np.full((16, 16), np.nan, dtype) for _ in a]  # overwritten (beta = 0)
    _blas.gemm_batch(a, [dy] * len(a), out)
    for got, ai in zip(out, a):
        np.testing.assert_allclose(got, ai.astype(np.float64) @ dy, rtol=1e-4,
                                   atol=1e-2 if dtype == np.float32 else 1e-9)
    small = [rng.standard_normal((3, 5)).astype(dtype), rng.standard_normal((2, 4)).astype(dtype)]
    rhs = [rng.standard_normal((5, 2)).astype(dtype), rng.standard_normal((4, 6)).astype(dtype)]
    out = [np.empty((3, 2), dtype), np.empty((2, 6), dtype)]
    _blas.gemm_batch(small, rhs, out)
    for got, ai, bi in zip(out, small, rhs):
        np.testing.assert_allclose(got, ai @ bi, rtol=1e-5, atol=1e-6)


def test_threads_is_a_positive_count():
    assert _blas.threads() >= 1
