"""BatchNorm over the channels-last view of (N, C, ...), optionally fused with the ReLU that follows it, forward
and backward, in one or two passes over the data.

The input is given as rows of L = K * C contiguous values (K pixels of C channels), the rows anywhere in one
buffer - so a conv output whose image rows have gaps between them (ops/conv/shifted.py) is read where it lies,
without a copy: ``rows_of`` finds the (P, Q, L) rows of a channels-last array, ``flat_rows`` turns them into
the flat buffer and row offsets the kernels take. Outputs are dense (R, L), R = P * Q rows.

With xhat = (x - mean) * inv_std, inv_std = 1 / sqrt(var + eps), and s = gamma * inv_std:
    forward:    y = relu?(xhat * gamma + beta)          (train: mean and biased var of the batch, per channel)
    backward:   g' = g * (y > 0) with the ReLU, else g
                train:  dx = s (g' - sum(g') / M - xhat sum(g' xhat) / M)
                eval:   dx = s g'
                dgamma = sum(g' xhat),  dbeta = sum(g')
Sums are accumulated in float64, per position of a row, then folded into channels.
"""

from __future__ import annotations

import numpy as np

from dlbasics.kernels import Kernel


def _bn_forward_loop(xb, xo, gamma, beta, eps, mean, var, train, relu, out):
    # (scalar loops only, no array expressions: each of those compiles a ufunc loop of its own, which
    # lengthens a first run's compiling: docs/benchmarks.md, BatchNorm and pooling)
    rows, n = out.shape
    c = gamma.shape[0]
    m = rows * (n // c)
    if train:  # two passes: the mean, then the centred squares (no cancellation as in E[x^2] - E[x]^2)
        acc = np.zeros(n, np.float64)  # per position of a row: contiguous, vectorized
        for r in range(rows):
            row = xb[xo[r]:xo[r] + n]  # a contiguous slice: vectorized (indexing xb[o + i] is not)
            for i in range(n):
                acc[i] += row[i]
        total = np.zeros(c, np.float64)  # fold the K pixels of a row into channels
        for i in range(n):
            total[i % c] += acc[i]
        for j in range(c):
            mean[j] = total[j] / m
            total[j] = 0
        mrow = np.empty(n, out.dtype)
        for i in range(n):
            mrow[i] = mean[i % c]
            acc[i] = 0
        for r in range(rows):
            row = xb[xo[r]:xo[r] + n]
            for i in range(n):
                d = row[i] - mrow[i]
                acc[i] += d * d
        for i in range(n):
            total[i % c] += acc[i]
        for j in range(c):
            var[j] = total[j] / m
    srow, trow = np.empty(n, out.dtype), np.empty(n, out.dtype)
    for i in range(n):  # y = x s + t with s = gamma inv_std, t = beta - mean s: one multiply-add a value
        j = i % c
        scale = gamma[j] / np.sqrt(var[j] + eps)
        srow[i] = scale
        trow[i] = beta[j] - mean[j] * scale
    for r in range(rows):
        row, orow = xb[xo[r]:xo[r] + n], out[r]
        for i in range(n):
            y = row[i] * srow[i] + trow[i]
            orow[i] = 0 if relu and y <= 0 else y  # y <= 0 is False for a NaN: it stays
    return out


def _gather(buf, offsets, n):
    """The (R, L) rows a flat buffer and its row offsets stand for (a copy)."""
    return buf[offsets[:, None] + np.arange(n)]


def _bn_forward_numpy(xb, xo, gamma, beta, eps, mean, var, train, relu, out):
    """y = gamma (x - mean) / sqrt(var + eps) + beta per channel (then max(y, 0) when fused with a ReLU); in
    training mean and var are the batch's. The loop's twin on the same flat rows; the textbook version on a plain
    NCHW array is ``ops/references.py``'s ``batch_norm_forward``."""
    c = gamma.shape[0]
    xm = _gather(xb, xo, out.shape[1]).reshape(-1, c)  # (M, C)
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


def _bn_backward_loop(gb, go, xb, xo, y, gamma, mean, var, eps, train, relu, sums, gx):
    """sums (2, C) <- sum(g'), sum(g' xhat); gx (R, L) <- dx (not written when gx has no rows). g and x are
    flat buffers with row offsets (``flat_rows``), y the forward's dense output (R, L)."""
    rows, n = y.shape
    c = gamma.shape[0]
    m = rows * (n // c)
    inv_std, s = np.empty(c, np.float64), np.empty(c, np.float64)
    for j in range(c):
        inv_std[j] = 1.0 / np.sqrt(var[j] + eps)
        s[j] = gamma[j] * inv_std[j]
    ag = np.zeros(n, np.float64)
    agx = np.zeros(n, np.float64)  # sum(g' x); sum(g' xhat) = inv_std (sum(g' x) - mean sum(g'))
    for r in range(rows):
        grow, xrow, yrow = gb[go[r]:go[r] + n], xb[xo[r]:xo[r] + n], y[r]
        for i in range(n):
            gp = grow[i]
            if relu and not yrow[i] > 0:
                gp = gp * 0  # 0, or NaN for a NaN gradient, as the ReLU's backward gives
            ag[i] += gp
            agx[i] += gp * xrow[i]
    sg, sgx = np.zeros(c, np.float64), np.zeros(c, np.float64)  # folded into channels
    for i in range(n):
        sg[i % c] += ag[i]
        sgx[i % c] += agx[i]
    for j in range(c):
        sums[0, j] = sg[j]
        sums[1, j] = inv_std[j] * (sgx[j] - mean[j] * sg[j])
    if gx.shape[0] == 0:
        return sums
    # dx = s (g' - sum(g')/M - xhat sum(g' xhat)/M) = g' a + x b + k per channel, one multiply-add pass
    arow, brow, krow = np.empty(n, y.dtype), np.empty(n, y.dtype), np.empty(n, y.dtype)
    for i in range(n):
        j = i % c
        arow[i] = s[j]
        if train:
            w = s[j] * inv_std[j] * sums[1, j] / m
            brow[i] = -w
            krow[i] = w * mean[j] - s[j] * sums[0, j] / m
        else:
            brow[i] = 0
            krow[i] = 0
    for r in range(rows):
        grow, xrow, yrow, out = gb[go[r]:go[r] + n], xb[xo[r]:xo[r] + n], y[r], gx[r]
        for i in range(n):
            gp = grow[i]
            if relu and not yrow[i] > 0:
                gp = gp * 0
            out[i] = gp * arow[i] + xrow[i] * brow[i] + krow[i]
    return sums


def _bn_backward_numpy(gb, go, xb, xo, y, gamma, mean, var, eps, train, relu, sums, gx):
    """sums = (sum g', sum g' xhat) per channel (beta's and gamma's gradients), g' the gradient past the fused ReLU;
    dx = gamma / sqrt(var + eps) (g' - sum(g')/M - xhat sum(g' xhat)/M) in training (the batch statistics depend
    on x), gamma / sqrt(var + eps) g' in evaluation. Textbook version: ``ops/references.py``."""
    c = gamma.shape[0]
    gm, xm = _gather(gb, go, y.shape[1]).reshape(-1, c), _gather(xb, xo, y.shape[1]).reshape(-1, c)
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


def flat_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows (P, Q, L), each contiguous, as one flat contiguous buffer from the first value to the last (gaps
    included, never read) and the offset of each row in it: a kernel then takes each row as a contiguous slice
    ``buf[offset:offset + L]``, which the compiler vectorizes, where a strided 3-D view would not be."""
    p, q, n = rows.shape
    item = rows.itemsize
    sp, sq = rows.strides[0] // item, rows.strides[1] // item
    if min(sp, sq) < 0 or rows.strides[2] != item:
        raise ValueError(f"flat_rows: rows must lie forwards in memory, got strides {rows.strides}")
    span = (p - 1) * sp + (q - 1) * sq + n if rows.size else 0
    buf = np.lib.stride_tricks.as_strided(rows, (span,), (item,), writeable=False)
    offsets = (np.arange(p)[:, None] * sp + np.arange(q) * sq).reshape(-1).astype(np.int64)
    return buf, offsets


def rows_of(xt: np.ndarray) -> np.ndarray | None:
    """A channels-last array (..., C) as rows (P, Q, L) with each row contiguous, without a copy; None where its
    layout has no such view (then the caller takes the NumPy path)."""
    c = xt.shape[-1]
    if xt.flags.c_contiguous:  # dense: long rows of k pixels, so the per-row work is spread over many values
        m = xt.size // c if c else 0
        k = m & -m if m else 1  # the largest power of two dividing M, down to rows of at most 4096 values
        while k > 1 and k * c > 4096:
            k //= 2
        return xt.reshape(1, m // k, k * c)
    if xt.ndim == 2:
        return None
    if xt.ndim == 4:  # (N, H, W, C): rows of W C values, image rows at any strides (a conv output with gaps)
        n, h, w, _ = xt.shape
        if xt.strides[3] == xt.itemsize and (w == 1 or xt.strides[2] == c * xt.itemsize):
            return np.lib.stride_tricks.as_strided(xt, (n, h, w * c), (xt.strides[0], xt.strides[1], xt.itemsize))
    return None




# ---- LayerNorm over (R, D) rows: each row normalized on its own ----------------------------------------------
def _ln_forward_loop(x, w, b, eps, out, xhat, inv_std):
    """x (R, D) -> out = xhat * w + b, xhat = (x - mean) * inv_std per row; xhat (R, D) and inv_std (R,) kept."""
    rows, d = x.shape
    for r in range(rows):
        row = x[r]
        s = 0.0
        for i in range(d):
            s += row[i]
        mean = s / d
        q = 0.0
        for i in range(d):
            t = row[i] - mean
            q += t * t
        k = 1.0 / np.sqrt(q / d + eps)
        inv_std[r] = k
        hrow, orow = xhat[r], out[r]
        for i in range(d):
            h = (row[i] - mean) * k
            hrow[i] = h
            orow[i] = h * w[i] + b[i]
    return out


def _ln_forward_numpy(x, w, b, eps, out, xhat, inv_std):
    mean = x.mean(axis=1, keepdims=True, dtype=np.float64)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    k = 1.0 / np.sqrt(var + eps)
    inv_std[:] = k[:, 0]
    xhat[:] = (x - mean) * k
    np.multiply(xhat, w, out=out)
    out += b
    return out


def _ln_backward_loop(g, xhat, inv_std, w, gx, dw, db):
    """gx (R, D) <- (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) inv_std with dxhat = g w (not written when gx
    has no rows); dw, db (D,) <- sums over rows of g xhat and g, in float64."""
    rows, d = g.shape
    for r in range(rows):
        grow, hrow = g[r], xhat[r]
        for i in range(d):
            dw[i] += grow[i] * hrow[i]
            db[i] += grow[i]
        if gx.shape[0] == 0:
            continue
        s1 = 0.0
        s2 = 0.0
        for i in range(d):
            t = grow[i] * w[i]
            s1 += t
            s2 += t * hrow[i]
        m1, m2, k = s1 / d, s2 / d, inv_std[r]
        orow = gx[r]
        for i in range(d):
            orow[i] = (grow[i] * w[i] - m1 - hrow[i] * m2) * k
    return gx


def _ln_backward_numpy(g, xhat, inv_std, w, gx, dw, db):
    dw += (g * xhat).sum(axis=0, dtype=np.float64)
    db += g.sum(axis=0, dtype=np.float64)
    if gx.shape[0]:
        dxhat = g * w
        m1 = dxhat.mean(axis=1, keepdims=True)
        m2 = (dxhat * xhat).mean(axis=1, keepdims=True)
        gx[:] = (dxhat - m1 - xhat * m2) * inv_std[:, None]
    return gx


layer_norm_forward = Kernel(_ln_forward_loop, numpy=_ln_forward_numpy)
layer_norm_backward = Kernel(_ln_backward_loop, numpy=_ln_backward_numpy)

__all__ = ["batch_norm_backward", "batch_norm_forward", "flat_rows", "layer_norm_backward", "layer_norm_forward",
           "rows_of"]
