"""The elementwise part of one time step of the recurrent cells (RNN, LSTM, GRU), forward and backward, as
compiled loops beside their NumPy twins. The GEMMs of a step (W_hh h^T forward, dpre W_hh backward) stay in the
op (ops/recurrent.py); what is left per step is a few thousand values of gate math.

At the sizes a recurrent network runs (batch 12, hidden 256: 12 x 1024 gate values a step), each step is small
and NumPy pays per call: the LSTM forward twin below makes 11 ufunc calls a step, the backward twin about 20. A
compiled loop makes one call and one pass. Measured here (one step, 12 x 256, float32; the forward includes adding
the step's W_hh h^T, which comes transposed from the GEMM, 5.5 us of it):

    LSTM forward:  NumPy twin 28 us;  compiled with math.exp sigmoids 76 us;  compiled with the rational tanh 12 us
    LSTM backward: NumPy twin 31 us;  compiled 4.4 us
    GRU forward / backward: NumPy 35 / 26 us;  compiled 7.8 / 3.8 us;   RNN: NumPy 3.9 / 3.0 us, compiled 2.4 / 1.6 us

So the op takes the kernels whenever they are on (``kernels.use`` of a whole sequence's gate values).

numba's ``exp``/``tanh`` are scalar calls into libm (llvmlite's wheel has no SVML): 2.5 ns per exp, 16 ns per
tanh, against NumPy's SIMD ``tanh`` at about 0.4 ns. So in float32 the loops compute tanh as Eigen's rational
approximation (odd degree-13 over even degree-6 polynomial, input clamped to +-7.9053, where tanh rounds to 1 in
float32): only multiplies, adds and a divide, which LLVM vectorizes. Its error is at most 3.4e-7 (6 ulp near
|x| = 5.9; NumPy's tanh: 1.4 ulp). Sigmoid is sigma(x) = 0.5 + 0.5 tanh(x / 2), exact in its halvings. In float64
(gradient checks and tight parity tests) the loops call ``math.tanh``: exact to float64 rounding, slow, never hot.
The NumPy twins compute the same formulas with ``np.tanh``.

Shapes: n rows (the batch rows active at this step), H hidden units; gates side by side along a row in PyTorch's
order (LSTM: i f g o, GRU: r z n), as the weights' rows are. Inside a loop each gate block is taken as an array
of its own (``a[:H]``, ``a[H:2 * H]``, ...): indexing one row at j + k H kept LLVM from vectorizing.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from dlbasics.kernels import Kernel

# Eigen's float tanh (TensorFlow's, originally): tanh(x) ~ x P(x^2) / Q(x^2) on [-LIM, LIM]
_LIM = np.float32(7.90531110763549805)
_A1, _A3, _A5, _A7 = (np.float32(4.89352455891786e-03), np.float32(6.37261928875436e-04),
                      np.float32(1.48572235717979e-05), np.float32(5.12229709037114e-08))
_A9, _A11, _A13 = np.float32(-8.60467152213735e-11), np.float32(2.00018790482477e-13), np.float32(-2.76076847742355e-16)
_B0, _B2, _B4, _B6 = (np.float32(4.89352518554385e-03), np.float32(2.26843463243900e-03),
                      np.float32(1.18534705686654e-04), np.float32(1.19825839466702e-06))
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)


# ---- LSTM: c = f c_prev + i g,  h = o tanh(c);  i f o = sigmoid, g = tanh (Hochreiter & Schmidhuber 1997) -----
def _lstm_forward_loop(pre, hw, bias, c_prev, c, tc, h):
    """pre (n, 4H): the input projections x W_ih^T [i f g o], overwritten with the activations of
    pre + hw^T + bias; hw (4H, n): W_hh h_prev^T; bias (4H,): b_ih + b_hh; c_prev (n, H) in; c, tc = tanh(c) and
    h (n, H) out."""
    n, h4 = pre.shape
    hs = h4 // 4
    fast = pre.itemsize == 4
    for b in range(n):
        p = pre[b]
        for j in range(h4):  # on its own: the strided reads of hw stopped the math's vectorizing (61 vs 12 us a step)
            p[j] += hw[j, b] + bias[j]
        for j in range(h4):
            # sigmoid(x) = s tanh(s x) + (1 - s) with s = 1/2; tanh(x) the same with s = 1 (the g block)
            s = _ONE if 2 * hs <= j < 3 * hs else _HALF
            a = s * p[j]
            if fast:
                a = min(max(a, -_LIM), _LIM)
                a2 = a * a
                t = (a * ((((((_A13 * a2 + _A11) * a2 + _A9) * a2 + _A7) * a2 + _A5) * a2 + _A3) * a2 + _A1)
                     / (((_B6 * a2 + _B4) * a2 + _B2) * a2 + _B0))
            else:
                t = math.tanh(a)
            p[j] = s * t + (_ONE - s)
        cp, cr, tr, hr = c_prev[b], c[b], tc[b], h[b]
        ai, af, ag, ao = p[:hs], p[hs:2 * hs], p[2 * hs:3 * hs], p[3 * hs:]  # blocks as arrays: LLVM then vectorizes
        for j in range(hs):
            cc = af[j] * cp[j] + ai[j] * ag[j]
            cr[j] = cc
            if fast:
                a = min(max(cc, -_LIM), _LIM)
                a2 = a * a
                t = (a * ((((((_A13 * a2 + _A11) * a2 + _A9) * a2 + _A7) * a2 + _A5) * a2 + _A3) * a2 + _A1)
                     / (((_B6 * a2 + _B4) * a2 + _B2) * a2 + _B0))
            else:
                t = math.tanh(cc)
            tr[j] = t
            hr[j] = ao[j] * t
    return h


@lru_cache(maxsize=16)
def _lstm_affine(hs: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(s, 1 - s) per gate column: 1/2 for the sigmoid gates i f o, 1 for g (read-only, shared)."""
    s = np.full(4 * hs, 0.5, dtype)
    s[2 * hs:3 * hs] = 1
    shift = 1 - s
    s.flags.writeable = shift.flags.writeable = False
    return s, shift


def _lstm_forward_numpy(pre, hw, bias, c_prev, c, tc, h):
    hs = c.shape[1]
    s, shift = _lstm_affine(hs, pre.dtype)
    pre += hw.T
    pre += bias
    np.multiply(pre, s, out=pre)  # all four gates in one tanh: s tanh(s x) + (1 - s)
    np.tanh(pre, out=pre)
    np.multiply(pre, s, out=pre)
    np.add(pre, shift, out=pre)
    i, f, g, o = pre[:, :hs], pre[:, hs:2 * hs], pre[:, 2 * hs:3 * hs], pre[:, 3 * hs:]
    np.multiply(f, c_prev, out=c)
    np.multiply(i, g, out=tc)  # tc as scratch
    c += tc
    np.tanh(c, out=tc)
    np.multiply(o, tc, out=h)
    return h


def _lstm_backward_loop(act, c_prev, tc, dh, gout, dc, dpre):
    """With dh_t = dh + gout (from the next step and from the output) and dc (n, H) into c_t:
        dc_t = dc + dh_t o (1 - tc^2);  d_o = dh_t tc o (1 - o);  d_i = dc_t g i (1 - i);
        d_f = dc_t c_prev f (1 - f);  d_g = dc_t i (1 - g^2);  dc <- dc_t f  (the gradient into c_prev).
    dpre (n, 4H) out: the preactivations' gradients [i f g o]."""
    n, h4 = act.shape
    hs = h4 // 4
    for b in range(n):
        a, cp, tr, dhr, gr, dcr, dp = act[b], c_prev[b], tc[b], dh[b], gout[b], dc[b], dpre[b]
        # the gate blocks as arrays of their own: with indices j + k H into one row LLVM did not vectorize (11.6 us
        # for 12 x 256 against 4.3)
        ai, af, ag, ao = a[:hs], a[hs:2 * hs], a[2 * hs:3 * hs], a[3 * hs:]
        di, df, dg, do = dp[:hs], dp[hs:2 * hs], dp[2 * hs:3 * hs], dp[3 * hs:]
        for j in range(hs):
            i, f, g, o = ai[j], af[j], ag[j], ao[j]
            t = tr[j]
            d_h = dhr[j] + gr[j]
            d_c = dcr[j] + d_h * o * (1 - t * t)
            di[j] = d_c * g * i * (1 - i)
            df[j] = d_c * cp[j] * f * (1 - f)
            dg[j] = d_c * i * (1 - g * g)
            do[j] = d_h * t * o * (1 - o)
            dcr[j] = d_c * f
    return dpre


def _lstm_backward_numpy(act, c_prev, tc, dh, gout, dc, dpre):
    hs = dh.shape[1]
    i, f, g, o = act[:, :hs], act[:, hs:2 * hs], act[:, 2 * hs:3 * hs], act[:, 3 * hs:]
    d_h = dh + gout
    d_c = dc + d_h * o * (1 - tc * tc)
    dpre[:, :hs] = d_c * g * i * (1 - i)
    dpre[:, hs:2 * hs] = d_c * c_prev * f * (1 - f)
    dpre[:, 2 * hs:3 * hs] = d_c * i * (1 - g * g)
    dpre[:, 3 * hs:] = d_h * tc * o * (1 - o)
    np.multiply(d_c, f, out=dc)
    return dpre


lstm_forward = Kernel(_lstm_forward_loop, numpy=_lstm_forward_numpy)
lstm_backward = Kernel(_lstm_backward_loop, numpy=_lstm_backward_numpy)


# ---- GRU: r, z = sigmoid(.), n = tanh(x_n + r (W_hn h + b_hn)), h' = (1 - z) n + z h  (Cho et al. 2014) ---------
def _gru_forward_loop(gi, hw, bias, b_hn, h_prev, ghn, h):
    """gi (n, 3H): the input projections x W_ih^T [r z n], overwritten with the activations [r z n]; hw (3H, n):
    W_hh h_prev^T; bias (3H,): b_ih + [b_hr, b_hz, 0]; b_hn (H,); h_prev (n, H) in; ghn (n, H) out:
    W_hn h_prev + b_hn (kept for the backward); h (n, H) out."""
    n, h3 = gi.shape
    hs = h3 // 3
    fast = gi.itemsize == 4
    for b in range(n):
        p, q, hp, hr = gi[b], ghn[b], h_prev[b], h[b]
        for j in range(2 * hs):  # the strided reads of hw in loops of their own, so that the math vectorizes
            p[j] += hw[j, b] + bias[j]
        for j in range(2 * hs, h3):
            p[j] += bias[j]
        for j in range(hs):
            q[j] = hw[2 * hs + j, b] + b_hn[j]
        for j in range(2 * hs):
            a = _HALF * p[j]
            if fast:
                a = min(max(a, -_LIM), _LIM)
                a2 = a * a
                t = (a * ((((((_A13 * a2 + _A11) * a2 + _A9) * a2 + _A7) * a2 + _A5) * a2 + _A3) * a2 + _A1)
                     / (((_B6 * a2 + _B4) * a2 + _B2) * a2 + _B0))
            else:
                t = math.tanh(a)
            p[j] = _HALF * t + _HALF
        ar, az, an = p[:hs], p[hs:2 * hs], p[2 * hs:]
        for j in range(hs):
            a = an[j] + ar[j] * q[j]
            if fast:
                a = min(max(a, -_LIM), _LIM)
                a2 = a * a
                t = (a * ((((((_A13 * a2 + _A11) * a2 + _A9) * a2 + _A7) * a2 + _A5) * a2 + _A3) * a2 + _A1)
                     / (((_B6 * a2 + _B4) * a2 + _B2) * a2 + _B0))
            else:
                t = math.tanh(a)
            an[j] = t
            hr[j] = t + az[j] * (hp[j] - t)
    return h


def _gru_forward_numpy(gi, hw, bias, b_hn, h_prev, ghn, h):
    hs = h.shape[1]
    gi += bias
    rz = gi[:, :2 * hs]
    rz += hw[:2 * hs].T
    rz *= 0.5  # sigmoid(x) = 0.5 tanh(x / 2) + 0.5
    np.tanh(rz, out=rz)
    rz *= 0.5
    rz += 0.5
    np.add(hw[2 * hs:].T, b_hn, out=ghn)
    nn = gi[:, 2 * hs:]
    nn += gi[:, :hs] * ghn
    np.tanh(nn, out=nn)
    np.subtract(h_prev, nn, out=h)  # h' = n + z (h - n)
    h *= gi[:, hs:2 * hs]
    h += nn
    return h


def _gru_backward_loop(act, ghn, h_prev, dh, gout, dgi, dgh):
    """With dh_t = dh + gout:  d_n = dh_t (1 - z) (1 - n^2) (the n preactivation's), d_z = dh_t (h_prev - n) z (1 - z),
    d_r = d_n (W_hn h + b_hn) r (1 - r). dgi (n, 3H) <- [d_r d_z d_n] (the input part's gradient), dgh (n, 3H) <-
    [d_r d_z d_n r] (the hidden part's), dh <- dh_t z (the direct path to h_prev; the op adds dgh W_hh).
    ghn (n, H): W_hn h_prev + b_hn from the forward."""
    n, h3 = act.shape
    hs = h3 // 3
    for b in range(n):
        a, q, hp, dhr, gr, di, dg = act[b], ghn[b], h_prev[b], dh[b], gout[b], dgi[b], dgh[b]
        ar, az, an = a[:hs], a[hs:2 * hs], a[2 * hs:]  # blocks as arrays of their own, as in the LSTM's
        ir, iz, i_n = di[:hs], di[hs:2 * hs], di[2 * hs:]
        hr_, hz, h_n = dg[:hs], dg[hs:2 * hs], dg[2 * hs:]
        for j in range(hs):
            r, z, nn = ar[j], az[j], an[j]
            d_h = dhr[j] + gr[j]
            d_n = d_h * (1 - z) * (1 - nn * nn)
            d_z = d_h * (hp[j] - nn) * z * (1 - z)
            d_r = d_n * q[j] * r * (1 - r)
            ir[j] = d_r
            iz[j] = d_z
            i_n[j] = d_n
            hr_[j] = d_r
            hz[j] = d_z
            h_n[j] = d_n * r
            dhr[j] = d_h * z
    return dgi


def _gru_backward_numpy(act, ghn, h_prev, dh, gout, dgi, dgh):
    hs = dh.shape[1]
    r, z, nn = act[:, :hs], act[:, hs:2 * hs], act[:, 2 * hs:]
    d_h = dh + gout
    d_n = d_h * (1 - z) * (1 - nn * nn)
    dgi[:, :hs] = d_n * ghn * r * (1 - r)
    dgi[:, hs:2 * hs] = d_h * (h_prev - nn) * z * (1 - z)
    dgi[:, 2 * hs:] = d_n
    dgh[:, :2 * hs] = dgi[:, :2 * hs]
    np.multiply(d_n, r, out=dgh[:, 2 * hs:])
    np.multiply(d_h, z, out=dh)
    return dgi


gru_forward = Kernel(_gru_forward_loop, numpy=_gru_forward_numpy)
gru_backward = Kernel(_gru_backward_loop, numpy=_gru_backward_numpy)


# ---- Elman RNN: h' = tanh(pre) or relu(pre) ----------------------------------------------------------------
def _rnn_forward_loop(pre, hw, bias, relu, h):
    """h (n, H) = tanh(pre + hw^T + bias) or max(..., 0) (a NaN stays NaN); pre (n, H) the input projections
    x W_ih^T, hw (H, n) = W_hh h_prev^T, bias (H,) = b_ih + b_hh."""
    n, hs = pre.shape
    fast = pre.itemsize == 4
    for b in range(n):
        p, hr = pre[b], h[b]
        for j in range(hs):  # the strided reads of hw in a loop of their own, so that the math vectorizes
            hr[j] = p[j] + hw[j, b] + bias[j]
        for j in range(hs):
            a = hr[j]
            if relu:
                hr[j] = a if a > 0 or a != a else 0
                continue
            if fast:
                a = min(max(a, -_LIM), _LIM)
                a2 = a * a
                t = (a * ((((((_A13 * a2 + _A11) * a2 + _A9) * a2 + _A7) * a2 + _A5) * a2 + _A3) * a2 + _A1)
                     / (((_B6 * a2 + _B4) * a2 + _B2) * a2 + _B0))
            else:
                t = math.tanh(a)
            hr[j] = t
    return h


def _rnn_forward_numpy(pre, hw, bias, relu, h):
    np.add(pre, hw.T, out=h)
    h += bias
    if relu:
        np.maximum(h, 0, out=h)  # propagates a NaN
    else:
        np.tanh(h, out=h)
    return h


def _rnn_backward_loop(h, relu, dh, gout, dpre):
    """dpre = (dh + gout) (1 - h^2) for tanh, (dh + gout) [h > 0] for relu."""
    n, hs = h.shape
    for b in range(n):
        hr, dhr, gr, dp = h[b], dh[b], gout[b], dpre[b]
        for j in range(hs):
            d = dhr[j] + gr[j]
            v = hr[j]
            if relu:
                dp[j] = d * (1 if v > 0 else 0)  # 0 * NaN stays NaN, as the ReLU op's backward
            else:
                dp[j] = d * (1 - v * v)
    return dpre


def _rnn_backward_numpy(h, relu, dh, gout, dpre):
    np.add(dh, gout, out=dpre)
    if relu:
        dpre *= h > 0
    else:
        dpre *= 1 - h * h
    return dpre


rnn_forward = Kernel(_rnn_forward_loop, numpy=_rnn_forward_numpy)
rnn_backward = Kernel(_rnn_backward_loop, numpy=_rnn_backward_numpy)


# ---- embedding gradient: rows of g added into the rows of dW that the ids name ---------------------------------
def _embedding_backward_loop(ids, g, padding_idx, out):
    """out (V, D) += g[k] at row ids[k] for each k, skipping ``padding_idx`` (-1: none). One pass over g; the
    rows of one id are added in the order they come."""
    for k in range(ids.shape[0]):
        r = ids[k]
        if r == padding_idx:
            continue
        orow, grow = out[r], g[k]
        for j in range(grow.shape[0]):
            orow[j] += grow[j]
    return out


def _embedding_backward_numpy(ids, g, padding_idx, out):
    # np.add.at is the obvious form but slow; a stable sort makes each id's rows one run, which reduceat sums (in
    # their original order, as the loop does)
    order = np.argsort(ids, kind="stable")
    sid = ids[order]
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]]) if sid.size else np.empty(0, np.intp)
    if starts.size:
        sums = np.add.reduceat(g[order], starts, axis=0)
        rows = sid[starts]
        keep = rows != padding_idx
        out[rows[keep]] += sums[keep]
    return out


embedding_backward = Kernel(_embedding_backward_loop, numpy=_embedding_backward_numpy)

__all__ = ["embedding_backward", "gru_backward", "gru_forward", "lstm_backward", "lstm_forward", "rnn_backward",
           "rnn_forward"]
