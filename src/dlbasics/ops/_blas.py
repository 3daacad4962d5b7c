"""``out = a @ b + beta * out``, and long reductions split over the cores, on the BLAS NumPy itself calls.

NumPy's matmul always overwrites its output. A convolution computed as a sum of shifted GEMMs (ops/conv.py)
needs the accumulating form, BLAS's own ``beta``, or pays a full extra pass over the output per term. SciPy's
BLAS wrappers have ``beta`` but bring a second OpenBLAS with its own threads, which spin against NumPy's (a
NumPy GEMM interleaved with SciPy ones ran 6x slower here). So ``gemm`` calls ``cblas_?gemm`` from the
OpenBLAS already loaded by NumPy (its wheels bundle one), found by file and symbol; where there is none, it
falls back to matmul plus an add.

A GEMM with a tiny output and a long reduction (a conv's weight gradient: 16 x 16 summed over 37k positions)
runs on one core in OpenBLAS, which only splits the output. ``matmul_split`` cuts the reduction into chunks and
hands them to OpenBLAS's batched GEMM, which runs the batch on its own threads (1.5 vs 2.8 ms for ResNet's
16-channel weight gradient; two Python threads with one-thread BLAS calls instead lost to OpenBLAS's spinning
threads inside a network step).
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _find_cblas() -> tuple[dict[np.dtype, tuple], dict[np.dtype, ctypes._CFuncPtr]]:
    """({dtype: (cblas_?gemm, integer type)}, {dtype: cblas_?gemm_batch_strided}) from NumPy's bundled OpenBLAS;
    empty where there is none."""
    if os.environ.get("DLBASICS_NO_CBLAS"):
        return {}, {}
    root = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(glob.glob(os.path.join(root, "numpy.libs", "libscipy_openblas*"))
                       + glob.glob(os.path.join(os.path.dirname(np.__file__), ".dylibs", "libscipy_openblas*"))):
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: the same library and thread pool
        except OSError:
            continue
        found = {}
        for dtype, name, ctype in ((np.float32, "sgemm", ctypes.c_float), (np.float64, "dgemm", ctypes.c_double)):
            for prefix, suffix, int_t in (("scipy_cblas_", "64_", ctypes.c_int64), ("scipy_cblas_", "", ctypes.c_int),
                                          ("cblas_", "", ctypes.c_int)):
                fn = getattr(lib, f"{prefix}{name}{suffix}", None)
                if fn is not None:
                    fn.restype = None
                    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t, ctype,
                                   ctypes.c_void_p, int_t, ctypes.c_void_p, int_t, ctype, ctypes.c_void_p, int_t]
                    found[np.dtype(dtype)] = (fn, int_t)
                    break
        if len(found) == 2:
            batched = {}
            for dtype, name, ctype in ((np.float32, "cblas_sgemm_batch_strided", ctypes.c_float),
                                       (np.float64, "cblas_dgemm_batch_strided", ctypes.c_double)):
                fn = getattr(lib, name, None)  # OpenBLAS 0.3.30+, same integer width as its gemm
                if fn is not None:
                    int_t = found[np.dtype(dtype)][1]
                    fn.restype = None
                    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t, ctype,
                                   ctypes.c_void_p, int_t, int_t, ctypes.c_void_p, int_t, int_t, ctype,
                                   ctypes.c_void_p, int_t, int_t, int_t]
                    batched[np.dtype(dtype)] = fn
            return found, batched
    return {}, {}


_CBLAS, _BATCHED = _find_cblas()
_BATCH_MIN_WORK = 2 * 100**3


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
    if (fn is None or m * n * chunk < _BATCH_MIN_WORK or ta is None or tb is None
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


def available() -> bool:
    """Whether ``gemm`` runs on NumPy's BLAS directly (else on matmul plus an add)."""
    return bool(_CBLAS)
