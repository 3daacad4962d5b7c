"""The row passes of attention's softmax, forward and backward, over the (R, S) scores (R = batch x queries).

The exponential stays in NumPy after the shift: NumPy's exp is vectorized, numba's is a scalar call (measured
here: 0.47 vs 2.45 ms per 1M float32), and so does the normalization, whose row sums BLAS computes as a product
with ones as fast as a loop would (0.08 ms for both on (3072, 64), with the divide). Before it NumPy needs a
maximum along short rows, which it does slowly: the shift on (3072, 64) scores took 0.25 ms (0.34 causal) in
NumPy and 0.09 (0.10) here; the backward pass 0.11 ms in NumPy, 0.08 here.

    shift:      s <- s - max_j s (per row); with ``causal`` = L > 0, row r is query r mod L and keys j > r mod L
                are set to -inf first. A row with every key at -inf is shifted by 0 (it stays -inf).
    (NumPy)     s <- e^s / sum_j e^s   (a row of zeros - every key masked - stays zero)
    backward:   dS = A ∘ (dA' - r),  r = sum_j A_j dA'_j  (per row),  dA' = dA ∘ keep · scale with dropout, else dA
                (written over dA; ``keep`` has no rows without dropout).
The backward loop accumulates its row sums in float64, its twin in the data's dtype.
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
softmax_backward = Kernel(_backward_loop, numpy=_backward_numpy)

__all__ = ["softmax_backward", "softmax_shift"]
