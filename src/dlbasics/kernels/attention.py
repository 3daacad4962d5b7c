"""The row passes of attention's softmax, forward and backward, over the (R, S) scores (R = batch x queries).

The exponential stays in NumPy between the two forward passes: NumPy's exp is vectorized, numba's is a scalar
call (measured here: 0.47 vs 2.45 ms per 1M float32). Around it NumPy needs a reduction along short rows, which
it does slowly (the max of (3072, 64) rows: 0.18 ms, a kernel 0.05 ms), and a pass per ufunc.

    shift:      s <- s - max_j s (per row); with ``causal`` = L > 0, row r is query r mod L and keys j > r mod L
                are set to -inf first. A row with every key at -inf is shifted by 0 (it stays -inf).
    (NumPy)     s <- e^s
    normalize:  s <- s / sum_j s; a row of zeros (every key masked) stays zero.
    backward:   dS = A ∘ (dA' - r),  r = sum_j A_j dA'_j  (per row),  dA' = dA ∘ keep · scale with dropout, else dA
                (written over dA; ``keep`` has no rows without dropout).
The kernels accumulate sums in float64, the twins in the data's dtype.
"""

from __future__ import annotations

import numpy as np

from dlbasics.kernels import Kernel


def _shift_loop(s, causal):
    rows, n = s.shape
    for r in range(rows):
        row = s[r]
        hi = n
        if causal > 0:
            hi = min(n, r % causal + 1)
            for j in range(hi, n):
                row[j] = -np.inf
        if hi == 0:
            continue
        m = row[0]  # (in the data's dtype: a float64 maximum of float32 values ran 1.7x slower)
        for j in range(1, hi):
            if row[j] > m:
                m = row[j]
        if m == -np.inf:  # a NaN is never the maximum here, but spreads through e^(s - m) and the row sum
            continue
        for j in range(hi):
            row[j] -= m
    return s


def _shift_numpy(s, causal):
    if causal > 0:
        length = causal
        blocked = np.triu(np.ones((length, s.shape[1]), bool), 1)
        np.copyto(s.reshape(-1, length, s.shape[1]), -np.inf, where=blocked)
    m = s.max(axis=1, keepdims=True)
    m[m == -np.inf] = 0
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, silently, as the loop (the row is NaN either way)
        s -= m
    return s


def _normalize_loop(s):
    rows, n = s.shape
    for r in range(rows):
        row = s[r]
        z = 0.0
        for j in range(n):
            z += row[j]
        if z == 0:
            continue
        k = 1.0 / z
        for j in range(n):
            row[j] *= k
    return s


def _normalize_numpy(s):
    z = s @ np.ones(s.shape[1], s.dtype)  # row sums on BLAS: 6x NumPy's sum along short rows
    z[z == 0] = 1
    s /= z[:, None]
    return s


def _backward_loop(a, da, keep, scale):
    rows, n = a.shape
    dropout = keep.shape[0] > 0
    zero = scale * 0
    for r in range(rows):
        arow, drow = a[r], da[r]
        if dropout:
            krow = keep[r]
            for j in range(n):
                drow[j] *= scale if krow[j] else zero
        t = 0.0
        for j in range(n):
            t += arow[j] * drow[j]
        for j in range(n):
            drow[j] = arow[j] * (drow[j] - t)
    return da


def _backward_numpy(a, da, keep, scale):
    if keep.shape[0]:
        da *= keep * scale
    da -= np.einsum("ij,ij->i", a, da)[:, None]
    da *= a
    return da


softmax_shift = Kernel(_shift_loop, numpy=_shift_numpy)
softmax_normalize = Kernel(_normalize_loop, numpy=_normalize_numpy)
softmax_backward = Kernel(_backward_loop, numpy=_backward_numpy)

__all__ = ["softmax_backward", "softmax_normalize", "softmax_shift"]
