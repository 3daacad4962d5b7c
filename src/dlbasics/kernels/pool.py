"""Max and average pooling over (N, C, H, W), forward and backward, in the input's memory order.

A conv's output in this library lies channels-last behind its NCHW view, (N, H, W, C) in memory, or - from the
planar and Toeplitz lowerings (LeNet, any 1-channel first layer) - (N, H, C, W); a plain array is (N, C, H, W).
The loops see each as images of H rows, a row being L *lines* of W *cells* of V contiguous values:

    channels-last (C contiguous):   Q = 1, L = 1, V = C   a cell is a pixel's C channels
    (N, H, C, W) (W contiguous):    Q = 1, L = C, V = 1   a row holds the C channels' lines
    (N, C, H, W) (W contiguous):    Q = C, L = 1, V = 1   each of the Q channels is an image

An image, padded (-inf for max, 0 for average) where the pooling pads, is then one buffer S of Hp rows of
L * Wp * V values, and window tap (i, j) of every window start u of output row y is one shift of it:
S[y sh R + i dh R + j dw V + u], R = L Wp V. So each output row is kh * kw contiguous passes over a row of S, in
row-major tap order, each pass as long as the whole row (the values between the sw-th are computed and dropped:
strided loads do not vectorize, and a loop over the 14 outputs of one LeNet line is too short to); then the
outputs are every sw-th value. A loop in NCHW order over channels-last memory strides across it (such a max-pool
kernel made the LeNet step slower: docs/benchmarks.md, BatchNorm and pooling); these read and write memory in
order.

    max:   out[y, x] = max_{i, j} x[sh y - ph + dh i, sw x - pw + dw j];  which[y, x] = its tap i kw + j
           dx[cell] = sum of g[y, x] over the windows whose ``which`` names the cell
    avg:   out[y, x] = sum_{i, j} x[...] / div[y, x];   dx[cell] = sum of g[y, x] / div[y, x] over windows holding it

The max follows PyTorch's scan exactly: in row-major tap order a tap replaces the running max if it is greater or
NaN, so the first of equal maxima wins and a window's last NaN wins; padding (-inf) is never greater, and a window
whose max is -inf sends its gradient to its first real cell. Backward runs per output row the same shifts
backwards: g and ``which`` spread to every sw-th window start (an impossible tap between), each tap's pass adds g
where ``which`` names it.

Arrays come as flat buffers with element strides for image n, channel c (the Q images or the L lines) and row;
a line's cells are contiguous. ``geo`` = (N, Q, L, V, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, Hp, Wp).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dlbasics.kernels import Kernel

NO_TAP = 255  # a tap no window has (windows have at most 255 cells): marks the cells between the sw-th
# a pass covers this many values at least: consecutive output rows go together where rows are short (an NCHW
# image's 28 values), the rows between them computed and dropped - a loop over a few values costs its setup
GROUP = 512


def _max_forward_loop(xb, xn, xc, xh, geo, out, on, oc, oh, which):
    """out, which <- the max of each window and its tap."""
    n_, nq, nl, v_, h_, w_, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw, hp, wp = geo
    span, wv = wp * v_, w_ * v_  # a padded line, a line, in values
    row = nl * span
    step, reach = sh * row, (kw - 1) * dw * v_  # from one output row's windows to the next; a window's width
    rows = min(ho, max(1, GROUP // step))  # output rows a pass covers
    dense = hp == h_ and wp == w_ and xh == row and (nl == 1 or xc == wv)  # S is the image itself
    s = np.full(1 if dense else hp * row, -np.inf, out.dtype)  # padding stays -inf: only the inside is written
    mv, mk = np.empty((rows - 1) * step + row - reach, out.dtype), np.empty((rows - 1) * step + row - reach, np.uint8)
    first_row, first_col = np.empty(ho, np.uint8), np.empty(wo, np.uint8)  # each window's first real cell
    for y in range(ho):
        top = ph - y * sh
        first_row[y] = kw * (0 if top <= 0 else (top + dh - 1) // dh)
    for x in range(wo):
        left = pw - x * sw
        first_col[x] = 0 if left <= 0 else (left + dw - 1) // dw
    near_pad = ph > 0 or pw > 0  # else every window's first cell, tap 0, is real: the scan's own answer
    for n in range(n_):
        for q in range(nq):
            base = n * xn + q * xc
            if dense:
                img = xb[base:base + h_ * row]
            else:
                for r in range(h_):
                    for ln in range(nl):
                        at, src = (r + ph) * row + ln * span + pw * v_, base + r * xh + ln * xc
                        s_run, x_run = s[at:at + wv], xb[src:src + wv]
                        for e in range(wv):
                            s_run[e] = x_run[e]
                img = s
            for y0 in range(0, ho, rows):
                ny = min(rows, ho - y0)
                length = (ny - 1) * step + row - reach
                first = img[y0 * step:y0 * step + length]  # tap 0
                for e in range(length):
                    mv[e] = first[e]
                    mk[e] = 0
                for t in range(1, kh * kw):  # the other taps in row-major order: PyTorch's scan
                    at = y0 * step + t // kw * dh * row + t % kw * dw * v_
                    a_run, tap = img[at:at + length], np.uint8(t)
                    for e in range(length):
                        a, b = a_run[e], mv[e]
                        take = (a > b) | (a != a)  # greater, or NaN
                        mv[e] = a if take else b
                        mk[e] = tap if take else mk[e]
                for yy in range(ny):  # every sw-th window start of each line of each output row is an output
                    y = y0 + yy
                    for ln in range(nl):
                        dst, at = n * on + (q + ln) * oc + y * oh, yy * step + ln * span
                        m_line, k_line = mv[at:], mk[at:]
                        if v_ == 1:  # a strided pick; uint64 indices skip the negative-index test
                            o_line, w_line = out[dst:dst + wo], which[dst:dst + wo]
                            for x in range(wo):
                                m = m_line[np.uint64(x * sw)]
                                o_line[x] = m
                                w_line[x] = k_line[np.uint64(x * sw)]
                                if near_pad and m == -np.inf:
                                    w_line[x] = first_row[y] + first_col[x]
                            continue
                        for x in range(wo):
                            at = x * sw * v_
                            m_run, k_run = m_line[at:at + v_], k_line[at:at + v_]
                            o_run, w_run = out[dst + x * v_:dst + x * v_ + v_], which[dst + x * v_:dst + x * v_ + v_]
                            fx = first_row[y] + first_col[x]
                            for c in range(v_):
                                m = m_run[c]
                                o_run[c] = m
                                w_run[c] = fx if near_pad and m == -np.inf else k_run[c]
    return out


def _max_backward_loop(gb, gn, gc, gh, gw, which, wn, wc, wh, geo, dx, dn, dc, dh_):
    """dx <- the gradient g of each window, at the tap ``which`` names; g's cells at any stride gw."""
    n_, nq, nl, v_, h_, w_, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw, hp, wp = geo
    span, wv = wp * v_, w_ * v_
    row = nl * span
    step, reach = sh * row, (kw - 1) * dw * v_
    rows = min(ho, max(1, GROUP // step))
    dense = hp == h_ and wp == w_ and dh_ == row and (nl == 1 or dc == wv)  # dx's image is the sum itself
    zero = gb.dtype.type(0)  # (a bare 0 would make the selects float64)
    d = np.empty(1 if dense else hp * row, dx.dtype)
    gf = np.zeros((rows - 1) * step + row - reach, dx.dtype)
    kf = np.full((rows - 1) * step + row - reach, NO_TAP, np.uint8)  # only the sw-th window starts are written
    for n in range(n_):
        for q in range(nq):
            base = n * dn + q * dc
            img = dx[base:base + h_ * row] if dense else d
            for e in range(img.size):
                img[e] = 0
            for y0 in range(0, ho, rows):
                ny = min(rows, ho - y0)
                length = (ny - 1) * step + row - reach
                for yy in range(ny):  # g and which of each output row at every sw-th window start
                    for ln in range(nl):
                        y, e0 = y0 + yy, yy * step + ln * span
                        g0, w0 = n * gn + (q + ln) * gc + y * gh, n * wn + (q + ln) * wc + y * wh
                        g_line, w_line = gb[g0:g0 + (wo - 1) * gw + v_], which[w0:w0 + wo * v_]
                        gf_line, kf_line = gf[e0:], kf[e0:]
                        if v_ == 1:
                            for x in range(wo):
                                gf_line[np.uint64(x * sw)] = g_line[np.uint64(x * gw)]
                                kf_line[np.uint64(x * sw)] = w_line[x]
                            continue
                        for x in range(wo):
                            g_run, w_run = g_line[x * gw:x * gw + v_], w_line[x * v_:x * v_ + v_]
                            at = x * sw * v_
                            gf_run, kf_run = gf_line[at:at + v_], kf_line[at:at + v_]
                            for c in range(v_):
                                gf_run[c] = g_run[c]
                                kf_run[c] = w_run[c]
                for t in range(kh * kw):
                    at = y0 * step + t // kw * dh * row + t % kw * dw * v_
                    d_run, tap = img[at:at + length], np.uint8(t)
                    for e in range(length):
                        d_run[e] += gf[e] if kf[e] == tap else zero
            if not dense:
                for r in range(h_):
                    for ln in range(nl):
                        at, dst = (r + ph) * row + ln * span + pw * v_, base + r * dh_ + ln * dc
                        d_run, x_run = d[at:at + wv], dx[dst:dst + wv]
                        for e in range(wv):
                            x_run[e] = d_run[e]
    return dx


def _avg_forward_loop(xb, xn, xc, xh, geo, div, out, on, oc, oh):
    """out <- the sum of each window's real cells / div[y, x]."""
    n_, nq, nl, v_, h_, w_, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw, hp, wp = geo
    span, wv = wp * v_, w_ * v_
    row = nl * span
    step, reach = sh * row, (kw - 1) * dw * v_
    rows = min(ho, max(1, GROUP // step))
    dense = hp == h_ and wp == w_ and xh == row and (nl == 1 or xc == wv)
    s = np.zeros(1 if dense else hp * row, out.dtype)  # padding stays 0
    mv = np.empty((rows - 1) * step + row - reach, out.dtype)
    for n in range(n_):
        for q in range(nq):
            base = n * xn + q * xc
            if dense:
                img = xb[base:base + h_ * row]
            else:
                for r in range(h_):
                    for ln in range(nl):
                        at, src = (r + ph) * row + ln * span + pw * v_, base + r * xh + ln * xc
                        s_run, x_run = s[at:at + wv], xb[src:src + wv]
                        for e in range(wv):
                            s_run[e] = x_run[e]
                img = s
            for y0 in range(0, ho, rows):
                ny = min(rows, ho - y0)
                length = (ny - 1) * step + row - reach
                first = img[y0 * step:y0 * step + length]
                for e in range(length):
                    mv[e] = first[e]
                for t in range(1, kh * kw):
                    at = y0 * step + t // kw * dh * row + t % kw * dw * v_
                    a_run = img[at:at + length]
                    for e in range(length):
                        mv[e] += a_run[e]
                for yy in range(ny):
                    y = y0 + yy
                    d_row = div[y]
                    for ln in range(nl):
                        dst, m_line = n * on + (q + ln) * oc + y * oh, mv[yy * step + ln * span:]
                        if v_ == 1:
                            o_line = out[dst:dst + wo]
                            for x in range(wo):
                                o_line[x] = m_line[np.uint64(x * sw)] / d_row[x]
                            continue
                        for x in range(wo):
                            m_run, o_run = m_line[x * sw * v_:x * sw * v_ + v_], out[dst + x * v_:dst + x * v_ + v_]
                            dv = d_row[x]
                            for c in range(v_):
                                o_run[c] = m_run[c] / dv
    return out


def _avg_backward_loop(gb, gn, gc, gh, gw, geo, div, dx, dn, dc, dh_):
    """dx <- the sum over the windows holding each cell of g / div; g's cells at any stride gw."""
    n_, nq, nl, v_, h_, w_, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw, hp, wp = geo
    span, wv = wp * v_, w_ * v_
    row = nl * span
    step, reach = sh * row, (kw - 1) * dw * v_
    rows = min(ho, max(1, GROUP // step))
    dense = hp == h_ and wp == w_ and dh_ == row and (nl == 1 or dc == wv)
    d = np.empty(1 if dense else hp * row, dx.dtype)
    gf = np.zeros((rows - 1) * step + row - reach, dx.dtype)  # g / div at every sw-th window start, 0 between
    for n in range(n_):
        for q in range(nq):
            base = n * dn + q * dc
            img = dx[base:base + h_ * row] if dense else d
            for e in range(img.size):
                img[e] = 0
            for y0 in range(0, ho, rows):
                ny = min(rows, ho - y0)
                length = (ny - 1) * step + row - reach
                for yy in range(ny):
                    y = y0 + yy
                    d_row = div[y]
                    for ln in range(nl):
                        g0, e0 = n * gn + (q + ln) * gc + y * gh, yy * step + ln * span
                        g_line, gf_line = gb[g0:g0 + (wo - 1) * gw + v_], gf[e0:]
                        if v_ == 1:
                            for x in range(wo):
                                gf_line[np.uint64(x * sw)] = g_line[np.uint64(x * gw)] / d_row[x]
                            continue
                        for x in range(wo):
                            g_run, gf_run = g_line[x * gw:x * gw + v_], gf_line[x * sw * v_:x * sw * v_ + v_]
                            dv = d_row[x]
                            for c in range(v_):
                                gf_run[c] = g_run[c] / dv
                for t in range(kh * kw):
                    at = y0 * step + t // kw * dh * row + t % kw * dw * v_
                    d_run = img[at:at + length]
                    for e in range(length):
                        d_run[e] += gf[e]
            if not dense:
                for r in range(h_):
                    for ln in range(nl):
                        at, dst = (r + ph) * row + ln * span + pw * v_, base + r * dh_ + ln * dc
                        d_run, x_run = d[at:at + wv], dx[dst:dst + wv]
                        for e in range(wv):
                            x_run[e] = d_run[e]
    return dx


# ---- the NumPy twins: the same arrays seen as (N, Q, L, rows, cells, V), pooled over rows and cells -----------
def _view(buf, geo, rows, cols, sn, sc, sh, sw=None):
    """The (N, Q, L, rows, cols, V) array a flat buffer and its strides stand for (a view); cells ``sw`` apart
    (default: adjacent)."""
    n_, nq, nl, v_ = (int(a) for a in geo[:4])
    steps = (sn, sc if nq > 1 else 0, sc if nl > 1 else 0, sh, v_ if sw is None else sw, 1)
    return as_strided(buf, (n_, nq, nl, rows, cols, v_), tuple(int(a) * buf.itemsize for a in steps))


def _windows(xp, geo):
    """Yield (tap, view) per window tap (i, j): view[..., y, x, :] = xp[..., sh y + dh i, sw x + dw j, :]."""
    ho, wo, kh, kw, sh, sw, _, _, dh, dw = (int(a) for a in geo[6:16])
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
            yield i * kw + j, xp[:, :, :, rows, j * dw:j * dw + sw * (wo - 1) + 1:sw]


def _padded(x, geo, fill):
    """x (N, Q, L, H, W, V) inside a block of ``fill`` (Hp, Wp)."""
    h_, w_ = int(geo[4]), int(geo[5])
    ph, pw, hp, wp = (int(a) for a in (geo[12], geo[13], geo[16], geo[17]))
    xp = np.full((*x.shape[:3], hp, wp, x.shape[5]), fill, x.dtype)
    xp[:, :, :, ph:ph + h_, pw:pw + w_] = x
    return xp


def _first_taps(geo):
    """(Ho, Wo, 1): the tap of each window's first real cell."""
    ho, wo, _, kw, sh, sw, ph, pw, dh, dw = (int(a) for a in geo[6:16])
    i0 = np.maximum(0, -((np.arange(ho) * sh - ph) // dh))  # ceil((ph - sh y) / dh), at least 0
    j0 = np.maximum(0, -((np.arange(wo) * sw - pw) // dw))
    return (i0[:, None] * kw + j0)[:, :, None]


def _max_forward_numpy(xb, xn, xc, xh, geo, out, on, oc, oh, which):
    """out = the max of each window (a NaN wins, as in PyTorch), which = the tap it came from: one pass per tap of
    the kernel over every window at once. Textbook version on NCHW arrays: ``ops/references.py``."""
    h_, w_, ho, wo = (int(a) for a in geo[4:8])
    o, wk = _view(out, geo, ho, wo, on, oc, oh), _view(which, geo, ho, wo, on, oc, oh)
    xp = _padded(_view(xb, geo, h_, w_, xn, xc, xh), geo, -np.inf)  # -inf: never greater, never NaN
    o[...] = -np.inf
    wk[...] = _first_taps(geo)
    for tap, win in _windows(xp, geo):
        take = (win > o) | np.isnan(win)
        np.copyto(o, win, where=take)
        np.copyto(wk, np.uint8(tap), where=take)
    return out


def _unpadded(dxp, geo):
    h_, w_, ph, pw = int(geo[4]), int(geo[5]), int(geo[12]), int(geo[13])
    return dxp[:, :, :, ph:ph + h_, pw:pw + w_]


def _max_backward_numpy(gb, gn, gc, gh, gw, which, wn, wc, wh, geo, dx, dn, dc, dh_):
    """dx = each window's gradient added at the input its max came from (the recorded tap); overlapping windows
    add up."""
    h_, w_, ho, wo = (int(a) for a in geo[4:8])
    g, wk = _view(gb, geo, ho, wo, gn, gc, gh, gw), _view(which, geo, ho, wo, wn, wc, wh)
    dxp = _padded(np.zeros((*g.shape[:3], h_, w_, g.shape[5]), g.dtype), geo, 0)
    for tap, win in _windows(dxp, geo):
        win += np.where(wk == tap, g, 0)
    _view(dx, geo, h_, w_, dn, dc, dh_)[...] = _unpadded(dxp, geo)
    return dx


def _avg_forward_numpy(xb, xn, xc, xh, geo, div, out, on, oc, oh):
    """out = the sum of each window's taps / div (the window's size, with or without its padding)."""
    h_, w_, ho, wo = (int(a) for a in geo[4:8])
    xp = _padded(_view(xb, geo, h_, w_, xn, xc, xh), geo, 0)
    o = _view(out, geo, ho, wo, on, oc, oh)
    o[...] = 0
    with np.errstate(invalid="ignore"):  # inf + -inf is NaN, as in the loop, without a warning
        for _, win in _windows(xp, geo):
            o += win
        o /= div[:, :, None]
    return out


def _avg_backward_numpy(gb, gn, gc, gh, gw, geo, div, dx, dn, dc, dh_):
    """dx = each window's gradient / div added at every tap of the window."""
    h_, w_, ho, wo = (int(a) for a in geo[4:8])
    gd = _view(gb, geo, ho, wo, gn, gc, gh, gw) / div[:, :, None]
    dxp = _padded(np.zeros((*gd.shape[:3], h_, w_, gd.shape[5]), gd.dtype), geo, 0)
    for _, win in _windows(dxp, geo):
        win += gd
    _view(dx, geo, h_, w_, dn, dc, dh_)[...] = _unpadded(dxp, geo)
    return dx


max_pool_forward = Kernel(_max_forward_loop, numpy=_max_forward_numpy)
max_pool_backward = Kernel(_max_backward_loop, numpy=_max_backward_numpy)
avg_pool_forward = Kernel(_avg_forward_loop, numpy=_avg_forward_numpy)
avg_pool_backward = Kernel(_avg_backward_loop, numpy=_avg_backward_numpy)


# ---- what the op hands the loops ------------------------------------------------------------------------------
def _flat(a: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """``a`` as the flat span of memory from its first value to its last, and its strides in values; None where a
    stride is negative or not a whole number of values, or ``a`` is read-only (the loops take one array type for
    inputs and scratch alike)."""
    item = a.itemsize
    if not a.flags.writeable or min(a.strides) < 0 or any(s % item for s in a.strides):
        return None
    steps = tuple(s // item for s in a.strides)
    dense, size = True, 1
    for step, d in sorted(zip(steps, a.shape)):
        dense = dense and (d == 1 or step == size)
        size *= d
    if dense:  # its K-order ravel is a view, in memory order, without as_strided's cost per call (docs/benchmarks.md)
        return a.ravel(order="K"), steps
    span = sum((d - 1) * s for d, s in zip(a.shape, steps)) + 1 if a.size else 0
    return as_strided(a, (span,), (item,)), steps


def lines(a: np.ndarray, v: int) -> tuple[np.ndarray, int, int, int] | None:
    """(buffer, image stride, channel stride, row stride) of ``a`` (N, C, H, W) whose lines are runs of cells of
    ``v`` values (v = C: channels-last; v = 1: W contiguous); None where it has no such view (``_flat``)."""
    f = _flat(a)
    if f is None:
        return None
    buf, (sn, sc, sh, sw) = f
    w = a.shape[3]
    if (v > 1 and not (sc == 1 and (sw == v or w == 1))) or (v == 1 and not (sw == 1 or w == 1)):
        return None
    return buf, sn, sc, sh


def grad_lines(g: np.ndarray, v: int) -> tuple[np.ndarray, int, int, int, int] | None:
    """(buffer, image, channel, row and cell strides) of a gradient (N, C, Ho, Wo): its cells may lie at any
    stride (the backward loops pick them one by one), a cell's ``v`` values must be contiguous."""
    f = _flat(g)
    if f is None or (v > 1 and f[1][1] != 1):
        return None
    return f[0], *f[1]


__all__ = [
    "NO_TAP", "avg_pool_backward", "avg_pool_forward", "grad_lines", "lines", "max_pool_backward", "max_pool_forward",
]
