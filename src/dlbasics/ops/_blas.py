"""``out = a @ b + beta * out`` on the BLAS that NumPy itself calls.

NumPy's matmul always overwrites its output. A convolution computed as a sum of shifted GEMMs (ops/conv.py)
needs the accumulating form, BLAS's own ``beta``, or pays a full extra pass over the output per term. SciPy's
BLAS wrappers have ``beta`` but bring a second OpenBLAS with its own threads, which spin against NumPy's (a
NumPy GEMM interleaved with SciPy ones ran 6x slower here). So ``gemm`` calls ``cblas_?gemm`` from the
OpenBLAS already loaded by NumPy (its wheels bundle one), found by file and symbol; where there is none, it
falls back to matmul plus an add.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _find_cblas() -> dict[np.dtype, tuple]:
    """{dtype: (cblas_?gemm, integer type)} from NumPy's bundled OpenBLAS, or {} if there is none."""
    if os.environ.get("DLBASICS_NO_CBLAS"):
        return {}
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
            return found
    return {}


_CBLAS = _find_cblas()


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
    """out = a @ b + beta * out for 2-D arrays of one float dtype; out row-major (any row stride), a and b any
    layout with one unit stride. beta = 0 ignores what out held (NaN included), as BLAS does."""
    entry = _CBLAS.get(out.dtype)
    ta, tb, tc = _operand(a), _operand(b), _operand(out)
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


def available() -> bool:
    """Whether ``gemm`` runs on NumPy's BLAS directly (else on matmul plus an add)."""
    return bool(_CBLAS)
