"""BatchNorm over the channels-last view of (N, C, ...), optionally fused with the ReLU that follows it, forward
and backward, in one or two passes over the data.

The input is given as rows: x (P, Q, L), each row L = K * C contiguous values (K pixels of C channels), the
rows at any strides - so a conv output whose image rows have gaps between them (ops/conv.py) is read where it
lies, without a copy; a plain (M, C) matrix is (1, M, C). Outputs are dense (P * Q, L).

With xhat = (x - mean) * inv_std, inv_std = 1 / sqrt(var + eps), and s = gamma * inv_std:
    forward:    y = relu?(xhat * gamma + beta)          (train: mean and biased var of the batch, per channel)
    backward:   g' = g * (y > 0) with the ReLU, else g
                train:  dx = s (g' - sum(g') / M - xhat sum(g' xhat) / M)
                eval:   dx = s g'
                dgamma = sum(g' xhat),  dbeta = sum(g')
Sums are accumulated in float64 per block of rows, then added (the blocks keep the float64 sums short).
"""

from __future__ import annotations

import numpy as np

from dlbasics.kernels import Kernel

BLOCKS = 64  # row blocks of the sums


def _bn_forward_loop(x, gamma, beta, eps, mean, var, train, relu, out):
    p, q, n = x.shape
    c = gamma.shape[0]
    rows, k = p * q, n // c
    m = rows * k
    nb = max(1, min(rows, BLOCKS))
    if train:  # two passes: the mean, then the centred squares (no cancellation as in E[x^2] - E[x]^2)
        part = np.zeros((nb, c), np.float64)
        for b in range(nb):
            for r in range(b * rows // nb, (b + 1) * rows // nb):
                row = x[r // q, r % q]
                for i in range(k):
                    for j in range(c):
                        part[b, j] += row[i * c + j]
        for j in range(c):
            mean[j] = part[:, j].sum() / m
        part2 = np.zeros((nb, c), np.float64)
        for b in range(nb):
            for r in range(b * rows // nb, (b + 1) * rows // nb):
                row = x[r // q, r % q]
                for i in range(k):
                    for j in range(c):
                        d = row[i * c + j] - mean[j]
                        part2[b, j] += d * d
        for j in range(c):
            var[j] = part2[:, j].sum() / m
    scale = gamma / np.sqrt(var + eps)
    for r in range(rows):
        row = x[r // q, r % q]
        for i in range(k):
            for j in range(c):
                y = (row[i * c + j] - mean[j]) * scale[j] + beta[j]
                out[r, i * c + j] = 0 if relu and y <= 0 else y  # y <= 0 is False for a NaN: it stays
    return out


def _bn_forward_numpy(x, gamma, beta, eps, mean, var, train, relu, out):
    c = gamma.shape[0]
    xm = x.reshape(-1, c)  # (M, C); a copy where the rows have gaps
    if train:
        mean[...] = xm.mean(axis=0, dtype=np.float64)
        d = xm - mean
        var[...] = np.mean(d * d, axis=0, dtype=np.float64)
    om = out.reshape(-1, c)
    np.subtract(xm, mean, out=om)
    om *= gamma / np.sqrt(var + eps)
    om += beta
    if relu:
        np.maximum(om, 0, out=om)
    return out


def _bn_backward_loop(g, x, y, gamma, mean, var, eps, train, relu, sums, gx):
    """sums (2, C) <- sum(g'), sum(g' xhat); gx (P Q, L) <- dx (not written when gx has no rows). g and x are
    (P, Q, L) rows, y the forward's dense output (P Q, L)."""
    p, q, n = g.shape
    c = gamma.shape[0]
    rows, k = p * q, n // c
    m = rows * k
    inv_std = 1.0 / np.sqrt(var + eps)
    nb = max(1, min(rows, BLOCKS))
    part = np.zeros((nb, 2, c), np.float64)
    for b in range(nb):
        for r in range(b * rows // nb, (b + 1) * rows // nb):
            grow, xrow = g[r // q, r % q], x[r // q, r % q]
            for i in range(k):
                for j in range(c):
                    gp = grow[i * c + j]
                    if relu and not y[r, i * c + j] > 0:
                        gp = gp * 0  # 0, or NaN for a NaN gradient, as the ReLU's backward gives
                    part[b, 0, j] += gp
                    part[b, 1, j] += gp * (xrow[i * c + j] - mean[j]) * inv_std[j]
    for j in range(c):
        sums[0, j] = part[:, 0, j].sum()
        sums[1, j] = part[:, 1, j].sum()
    if gx.shape[0] == 0:
        return sums
    s = gamma * inv_std
    a = sums[0] / m
    b2 = sums[1] / m
    for r in range(rows):
        grow, xrow = g[r // q, r % q], x[r // q, r % q]
        for i in range(k):
            for j in range(c):
                gp = grow[i * c + j]
                if relu and not y[r, i * c + j] > 0:
                    gp = gp * 0
                if train:
                    gx[r, i * c + j] = s[j] * (gp - a[j] - (xrow[i * c + j] - mean[j]) * inv_std[j] * b2[j])
                else:
                    gx[r, i * c + j] = s[j] * gp
    return sums


def _bn_backward_numpy(g, x, y, gamma, mean, var, eps, train, relu, sums, gx):
    c = gamma.shape[0]
    gm, xm = g.reshape(-1, c), x.reshape(-1, c)
    inv_std = 1.0 / np.sqrt(var + eps)
    gp = gm * (y.reshape(-1, c) > 0) if relu else gm
    xhat = (xm - mean) * inv_std
    sums[0] = gp.sum(axis=0, dtype=np.float64)
    sums[1] = (gp * xhat).sum(axis=0, dtype=np.float64)
    if gx.shape[0] == 0:
        return sums
    s = gamma * inv_std
    gxm = gx.reshape(-1, c)
    if train:
        np.multiply(s, gp - sums[0] / len(gm) - xhat * (sums[1] / len(gm)), out=gxm)
    else:
        np.multiply(s, gp, out=gxm)
    return sums


batch_norm_forward = Kernel(_bn_forward_loop, numpy=_bn_forward_numpy)
batch_norm_backward = Kernel(_bn_backward_loop, numpy=_bn_backward_numpy)


def rows_of(xt: np.ndarray) -> np.ndarray | None:
    """A channels-last array (..., C) as rows (P, Q, L) with each row contiguous, without a copy; None where its
    layout has no such view (then the caller takes the NumPy path)."""
    c = xt.shape[-1]
    if xt.ndim == 2:
        return xt[None] if xt.strides[1] == xt.itemsize or c == 1 else None
    lead = xt.reshape(-1, c) if xt.flags.c_contiguous else None
    if lead is not None:
        return lead[None]
    if xt.ndim == 4:  # (N, H, W, C): rows of W C values, image rows at any strides (a conv output with gaps)
        n, h, w, _ = xt.shape
        if xt.strides[3] == xt.itemsize and (w == 1 or xt.strides[2] == c * xt.itemsize):
            return np.lib.stride_tricks.as_strided(xt, (n, h, w * c), (xt.strides[0], xt.strides[1], xt.itemsize))
    return None


__all__ = ["batch_norm_backward", "batch_norm_forward", "rows_of"]
