"""``out = a @ b + beta * out``, and long reductions split over the cores, on the BLAS NumPy itself calls.

NumPy's matmul always overwrites its output. A convolution computed as a sum of shifted GEMMs
(ops/conv/shifted.py) needs the accumulating form, BLAS's own ``beta``, or pays a full extra pass over the output
per term. SciPy's BLAS wrappers have ``beta`` but bring a second OpenBLAS with its own threads, which spin against
NumPy's (a NumPy GEMM interleaved with SciPy ones ran several times slower: docs/benchmarks.md). So ``gemm`` calls
``cblas_?gemm`` from the OpenBLAS already loaded by NumPy (its wheels bundle one), found by file and symbol; where
there is none, it falls back to matmul plus an add.

A GEMM with a tiny output and a long reduction (a conv's weight gradient: 16 x 16 summed over 37k positions)
runs on one core in OpenBLAS, which only splits the output. ``matmul_split`` cuts the reduction into chunks and
hands them to OpenBLAS's batched GEMM, which runs the batch on its own threads: both cores instead of one for
ResNet's 16-channel weight gradient (measured: docs/benchmarks.md); two Python threads with one-thread BLAS calls
instead lost to OpenBLAS's spinning threads inside a network step. ``gemm_batch`` hands it many independent
products at once, which it runs in order, one per thread at a time.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _find_cblas() -> tuple[dict[np.dtype, tuple], dict[np.dtype, ctypes._CFuncPtr], dict[np.dtype, tuple],
                          ctypes._CFuncPtr | None]:
    """({dtype: (cblas_?gemm, integer type)}, {dtype: cblas_?gemm_batch_strided},
    {dtype: (cblas_?gemm_batch, integer type)}, openblas_get_num_threads) from NumPy's bundled OpenBLAS; empty
    (None) where there is none."""
    if os.environ.get("DLBASICS_NO_CBLAS"):
        return {}, {}, {}, None
    root = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(glob.glob(os.path.join(root, "numpy.libs", "libscipy_openblas*"))
                       + glob.glob(os.path.join(os.path.dirname(np.__file__), ".dylibs", "libscipy_openblas*"))):
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: the same library and thread pool
        except OSError:
            continue
        found, names = {}, {}
        for dtype, name, ctype in ((np.float32, "sgemm", ctypes.c_float), (np.float64, "dgemm", ctypes.c_double)):
            for prefix, suffix, int_t in (("scipy_cblas_", "64_", ctypes.c_int64), ("scipy_cblas_", "", ctypes.c_int),
                                          ("cblas_", "", ctypes.c_int)):
                fn = getattr(lib, f"{prefix}{name}{suffix}", None)
                if fn is not None:
                    fn.restype = None
                    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t, ctype,
                                   ctypes.c_void_p, int_t, ctypes.c_void_p, int_t, ctype, ctypes.c_void_p, int_t]
                    found[np.dtype(dtype)] = (fn, int_t)
                    names[np.dtype(dtype)] = f"{prefix}{name}_batch{suffix}"
                    break
        if len(found) == 2:
            batched, grouped = {}, {}
            for dtype, name, ctype in ((np.float32, "sgemm", ctypes.c_float), (np.float64, "dgemm", ctypes.c_double)):
                int_t = found[np.dtype(dtype)][1]
                # OpenBLAS 0.3.30+, same integer width as its gemm
                fn = getattr(lib, f"cblas_{name}_batch_strided", None)
                if fn is not None:
                    fn.restype = None
                    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t, ctype,
                                   ctypes.c_void_p, int_t, int_t, ctypes.c_void_p, int_t, int_t, ctype,
                                   ctypes.c_void_p, int_t, int_t, int_t]
                    batched[np.dtype(dtype)] = fn
                fn = getattr(lib, names[np.dtype(dtype)], None)
                if fn is not None:  # the grouped form: arrays of shapes per group and of pointers per product
                    fn.restype = None
                    fn.argtypes = [ctypes.c_int] + [ctypes.c_void_p] * 13 + [int_t, ctypes.c_void_p]
                    grouped[np.dtype(dtype)] = (fn, int_t)
            count = next((getattr(lib, name) for name in ("scipy_openblas_get_num_threads64_",
                                                          "scipy_openblas_get_num_threads", "openblas_get_num_threads")
                          if hasattr(lib, name)), None)
            if count is not None:
                count.restype, count.argtypes = ctypes.c_int, []
            return found, batched, grouped, count
    return {}, {}, {}, None


_CBLAS, _BATCHED, _GROUPED, _THREADS = _find_cblas()
BATCH_MIN_WORK = 2 * 100**3  # products below it take the per-call paths (see matmul_split)


def _operand(a: np.ndarray) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) of a 2-D array BLAS can read in place, or None."""
    it = a.itemsize
    s0, s1 = a.strides
    if (s1 == it or a.shape[1] == 1) and s0 % it == 0 and s0 // it >= max(a.shape[1], 1):
        return _NO_TRANS, max(s0 // it, a.shape[1], 1)
    if (s0 == it or a.shape[0] == 1) and s1 % it == 0 and s1 // it >= max(a.shape[0], 1):
        return _TRANS, max(s1 // it, a.shape[0], 1)
    return None


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray, beta: float = 1.0) -> None:
    """out = a @ b + beta * out for 2-D arrays of one float dtype; a, b and out any layout with one unit stride
    (a column-major out is written as out^T = b^T a^T). beta = 0 ignores what out held (NaN included), as BLAS
    does."""
    entry = _CBLAS.get(out.dtype)
    ta, tb, tc = _operand(a), _operand(b), _operand(out)
    if tc is not None and tc[0] == _TRANS and out.shape[1] > 1:
        gemm(b.T, a.T, out.T, beta)
        return
    if (entry is None or ta is None or tb is None or tc is None or tc[0] != _NO_TRANS
            or not (a.dtype == b.dtype == out.dtype) or 0 in a.shape or 0 in b.shape):
        if beta == 0:
            np.matmul(a, b, out=out)
        else:
            if beta != 1:
                out *= beta
            out += a @ b
        return
    fn, _ = entry
    m, k = a.shape
    n = b.shape[1]
    fn(_ROW_MAJOR, ta[0], tb[0], m, n, k, 1.0, a.ctypes.data, ta[1], b.ctypes.data, tb[1], beta,
       out.ctypes.data, tc[1])


def matmul_split(a: np.ndarray, b: np.ndarray, out: np.ndarray, parts: int = 2) -> None:
    """out = a @ b for a (M, K), b (K, N) with K >> M, N (any layouts BLAS reads in place); out (M, N)
    contiguous. The reduction goes to OpenBLAS's batched GEMM in ``parts`` chunks (run on its threads) and the
    partial products are summed."""
    m, k = a.shape
    n = b.shape[1]
    fn = _BATCHED.get(out.dtype)
    ta, tb = _operand(a), _operand(b)
    chunk = k // parts
    # OpenBLAS 0.3.31's batched call crashed here (segfault) on parts below its small-matrix threshold,
    # M N K <= 100^3, which take another code path: use it only well above that
    if (fn is None or m * n * chunk < BATCH_MIN_WORK or ta is None or tb is None
            or not (a.dtype == b.dtype == out.dtype) or not out.flags.c_contiguous):
        np.matmul(a, b, out=out)
        return
    it = a.itemsize
    step_a, step_b = chunk * a.strides[1] // it, chunk * b.strides[0] // it  # one chunk along K, in elements
    partial = np.empty((parts, m, n), out.dtype)
    fn(_ROW_MAJOR, ta[0], tb[0], m, n, chunk, 1.0, a.ctypes.data, ta[1], step_a, b.ctypes.data, tb[1], step_b,
       0.0, partial.ctypes.data, n, m * n, parts)
    np.sum(partial, axis=0, out=out)
    if chunk * parts < k:  # the reduction left over
        gemm(a[:, chunk * parts:], b[chunk * parts:], out, beta=1.0)


def gemm_batch(a: list[np.ndarray], b: list[np.ndarray], out: list[np.ndarray]) -> None:
    """out[k] = a[k] @ b[k] for products of one shape and layout, in one call to OpenBLAS's batched GEMM, which
    runs them on its threads in order, as many at a time as it has threads (falls back to one ``gemm`` each).

    So independent small products in a row run on both cores with the data of consecutive ones on each core
    kept in its cache, where one GEMM per call would run a 16 x 16 output on one core."""
    if not out:
        return
    entry = _GROUPED.get(out[0].dtype)
    ops = [(_operand(x), _operand(y), _operand(z)) for x, y, z in zip(a, b, out)]
    m, k = a[0].shape
    n = b[0].shape[1]
    uniform = all(x.shape == a[0].shape and y.shape == b[0].shape and z.shape == out[0].shape
                  and x.dtype == y.dtype == z.dtype == out[0].dtype and op == ops[0]
                  for x, y, z, op in zip(a, b, out, ops))
    ta, tb, tc = ops[0]
    # below OpenBLAS 0.3.31's small-matrix threshold (M N K <= 100^3) its batched call went wrong here
    if (entry is None or not uniform or ta is None or tb is None or tc is None or tc[0] != _NO_TRANS
            or m * n * k < BATCH_MIN_WORK):
        for x, y, z in zip(a, b, out):
            gemm(x, y, z, beta=0.0)
        return
    fn, int_t = entry
    ints = np.int64 if int_t is ctypes.c_int64 else np.int32
    # one group of len(out) products: every argument is an array with one entry per group (the transposes are
    # C enums, hence int32), but the operands, one pointer per product
    group = [np.array([v], ints) for v in (m, n, k, ta[1], tb[1], tc[1], len(out))]
    trans = [np.array([t], np.int32) for t in (ta[0], tb[0])]
    alpha, beta = np.ones(1, out[0].dtype), np.zeros(1, out[0].dtype)
    pointers = [np.array([x.ctypes.data for x in xs], np.uintp) for xs in (a, b, out)]
    m_, n_, k_, lda, ldb, ldc, size = (g.ctypes.data for g in group)
    fn(_ROW_MAJOR, trans[0].ctypes.data, trans[1].ctypes.data, m_, n_, k_, alpha.ctypes.data,
       pointers[0].ctypes.data, lda, pointers[1].ctypes.data, ldb, beta.ctypes.data, pointers[2].ctypes.data, ldc,
       1, size)


def threads() -> int:
    """How many threads OpenBLAS runs a batch on (1 where there is no OpenBLAS to ask)."""
    return _THREADS() if _THREADS is not None else 1


def available() -> bool:
    """Whether ``gemm`` runs on NumPy's BLAS directly (else on matmul plus an add)."""
    return bool(_CBLAS)
