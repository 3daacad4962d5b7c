"""Scaled dot-product attention as one op: two batched GEMMs with a softmax between them, forward and backward.

    A = softmax(scale · Q K^T + M) (row by row),   out = dropout(A) V

Composed from primitives this is a dozen nodes, each with its own temporaries of the (..., L, S) scores; as
one op the scores live in one buffer that is masked, exponentiated and normalized in place, and backward
needs only A (plus the dropout mask as bytes) besides the inputs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlbasics import kernels
from dlbasics.autograd.function import Function
from dlbasics.kernels.attention import softmax_backward, softmax_shift
from dlbasics.kernels.dropout import dropout_forward
from dlbasics.rng import Seed, get_generator
from dlbasics.tensor import Tensor


def _swap(a: np.ndarray) -> np.ndarray:
    return a.swapaxes(-1, -2)


def _scaled_t(x: np.ndarray, c: np.generic) -> np.ndarray:
    """c x^T (..., n, m) for x (..., m, n), contiguous: the scale rides on the copy that the GEMM wants anyway
    (NumPy's batched matmul took 0.19 ms with a transposed view, 0.03 + 0.12 ms with the copy, on (48, 64, 32))."""
    out = np.empty((*x.shape[:-2], x.shape[-1], x.shape[-2]), x.dtype)
    np.multiply(_swap(x), c, out=out)
    return out


def _dropped(a: np.ndarray, u: np.ndarray, p: float, keep: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = a · keep / (1 - p), keep = u >= p (written into ``keep``): the dropout op's own passes."""
    scale = a.dtype.type(1.0 / (1.0 - p)) if p < 1 else a.dtype.type(0)  # p = 1 drops all: 0, not 0 · inf
    if kernels.use(a.size) and a.flags.c_contiguous and u.flags.c_contiguous:
        dropout_forward(a.reshape(-1), u.reshape(-1), u.dtype.type(p), scale, out.reshape(-1), keep.reshape(-1))
        return out
    return dropout_forward.numpy(a, u, u.dtype.type(p), scale, out, keep)


class ScaledDotProductAttention(Function):
    """out = P V with P = dropout(A), A = softmax(S), S = scale Q K^T + bias, masked positions at -inf.

    Q (..., L, E), K (..., S, E), V (..., S, Ev) -> (..., L, Ev); batch dims broadcast. A row with every
    position masked gives A = 0 (so out = 0 and no gradient), as PyTorch. With G the output's gradient:
        dV = P^T G,   dP = G V^T,   dS = A ∘ (dA - rowsum(A ∘ dA)),   dA = dP ∘ keep / (1 - p)
        dQ = scale dS K,   dK = scale dS^T Q,   dbias = dS
    The scores are one buffer, shifted by the row maxima in a compiled row pass (kernels/attention.py), then
    exponentiated by NumPy and divided by row sums that BLAS computes; ``scale`` is folded into the copies of
    K^T (forward) and V^T (backward) that the GEMMs want, never into a pass over the scores. Saved: A, and the
    dropout mask as bytes (P is rebuilt from them).

    Inputs: (Q, K, V[, bias]), or with ``packed`` (QKV[, bias]) for self-attention, QKV (3, ..., L, E) stacking
    the three (views of one projection): its gradient is then one array the three products are written into,
    laid out as QKV, instead of three that a slicing op would each pad with zeros to QKV's size.
    """

    def forward(self, *arrays, packed=False, blocked=None, causal=False, scale, p=0.0, u=None):
        if packed:
            self.qkv = arrays[0]
            q, k, v = arrays[0]
            needs = self.needs_input_grad[:1] * 3 + self.needs_input_grad[1:]
        else:
            q, k, v = arrays[:3]
            needs = self.needs_input_grad
        bias = arrays[-1] if len(arrays) == (2 if packed else 4) else None
        self.packed, self.needs = packed, needs
        c = q.dtype.type(scale)
        s = q @ _scaled_t(k, c)  # (..., L, S), a fresh buffer
        if bias is not None:
            s += bias
        if blocked is not None:
            np.copyto(s, -np.inf, where=blocked)
        rows = s.reshape(math.prod(s.shape[:-1]), s.shape[-1])  # (R, S)
        # softmax along rows, in place: e^(s - max) / sum
        if rows.size:  # (no keys: an empty softmax, and zeros out, as PyTorch)
            (softmax_shift if kernels.use(s.size) else softmax_shift.numpy)(rows, s.shape[-2] if causal else 0)
        np.exp(rows, out=rows)
        z = rows @ np.ones(rows.shape[1], rows.dtype)  # row sums on BLAS: 6x NumPy's sum along short rows
        z[z == 0] = 1  # every key masked: a row of zeros stays zeros
        rows /= z[:, None]
        a = s
        self.p, self.scale, self.keep = p, c, None
        pa = a
        if p > 0:
            self.keep = np.empty(a.shape, bool)
            pa = _dropped(a, u, p, self.keep, np.empty_like(a))
        need_scores = needs[0] or needs[1] or (len(needs) > 3 and needs[3])  # dQ, dK and dbias go through dS
        self.a = a if any(needs) else None
        self.q = q if needs[1] else None
        self.k = k if needs[0] else None
        self.v = v if need_scores else None
        return pa @ v

    def backward(self, g):
        needs, a, p = self.needs, self.a, self.p
        need_bias = len(needs) > 3 and needs[3]
        out = [None, None, None]  # where dQ, dK and dV are written (allocated by matmul unless packed)
        if self.packed and needs[0]:
            grad = np.empty_like(self.qkv)  # (order "K": QKV's layout, so the projection's backward reads it as is)
            out = [grad[0], grad[1], grad[2]]
        keep_scale = a.dtype.type(1.0 / (1.0 - p)) if p < 1 else a.dtype.type(0)  # p = 1: 0, not 0 · inf
        if needs[2]:
            pa = a
            if p > 0:  # P = A ∘ keep / (1 - p), rebuilt from the saved mask
                pa = np.multiply(self.keep, keep_scale, dtype=a.dtype)
                pa *= a
            out[2] = np.matmul(_swap(pa), g, out=out[2])
        ds = None
        if needs[0] or needs[1] or need_bias:
            # c dS, with c = scale folded into V (or 1 where dbias = dS itself is wanted)
            c = self.scale if not need_bias and self.scale != 0 else a.dtype.type(1)
            ds = g @ _scaled_t(self.v, c)  # c dP
            a2, ds2 = a.reshape(math.prod(a.shape[:-1]), a.shape[-1]), ds.reshape(math.prod(a.shape[:-1]), -1)
            keep = self.keep.reshape(a2.shape) if p > 0 else _NO_ROWS
            (softmax_backward if kernels.use(a.size) else softmax_backward.numpy)(a2, ds2, keep, keep_scale)
            cq = self.scale / c  # what is left of the scale for dQ and dK
            if needs[0]:
                out[0] = np.matmul(ds, self.k, out=out[0])
                if cq != 1:
                    out[0] *= cq
            if needs[1]:
                out[1] = np.matmul(_swap(ds), self.q, out=out[1])
                if cq != 1:
                    out[1] *= cq
        first = (grad if needs[0] else None,) if self.packed else tuple(out)
        return (*first, ds) if need_bias else first


_NO_ROWS = np.empty((0, 0), bool)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Any = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 *, generator: Seed = None) -> Tensor:
    """softmax(Q K^T · scale + mask) V, as one op (``ScaledDotProductAttention``).

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); leading dims broadcast.
    ``attn_mask`` broadcastable to (..., L, S): bool (True = may attend) or float of the query's dtype (added
    to the scores; it gets a gradient if it requires one). ``is_causal``: query i attends to keys 0..i.
    ``scale`` defaults to 1/sqrt(E). ``dropout_p`` drops attention weights with ``generator`` (a seed or
    Generator; the default generator otherwise) whenever it is > 0, as PyTorch's function does (modules pass
    0 in evaluation). A query whose every key is masked gets zeros, as PyTorch.
    """
    q, k, v = query, key, value
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise RuntimeError(f"scaled_dot_product_attention: query, key and value must be at least 2-D, got "
                           f"{q.shape}, {k.shape} and {v.shape}")
    if not q.dtype == k.dtype == v.dtype or q.dtype.kind != "f":
        raise RuntimeError(f"scaled_dot_product_attention: query, key and value must have one floating dtype, "
                           f"got {q.dtype}, {k.dtype} and {v.dtype}")
    if k.shape[-1] != q.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise RuntimeError(f"scaled_dot_product_attention: query {q.shape}, key {k.shape} and value {v.shape} "
                           "must be (..., L, E), (..., S, E) and (..., S, Ev)")
    try:
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise RuntimeError(f"scaled_dot_product_attention: the batch dims of query {q.shape}, key {k.shape} and "
                           f"value {v.shape} do not broadcast") from None
    if attn_mask is not None and is_causal:
        raise RuntimeError("scaled_dot_product_attention: an explicit attn_mask must not be given with "
                           "is_causal=True")
    blocked, bias = split_mask(attn_mask, (*batch, q.shape[-2], k.shape[-2]), q.dtype, "scaled_dot_product_attention")
    return attend([q, k, v], blocked, bias, is_causal, scale, dropout_p, generator)


def split_mask(mask: Any, scores: tuple[int, ...], dtype: np.dtype, where: str) -> tuple[np.ndarray | None,
                                                                                         Tensor | None]:
    """An attention mask as (blocked, bias): a bool mask (True = may attend) becomes ``blocked`` (True = may
    not), a float one the additive ``bias`` tensor; either must broadcast to the ``scores`` shape."""
    if mask is None:
        return None, None
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    try:
        fits = np.broadcast_shapes(m.shape, scores) == scores
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"{where}: attn_mask {m.shape} does not broadcast to the attention weights' shape {scores}")
    if m.dtype == np.bool_:
        return np.logical_not(m), None
    if m.dtype != dtype:
        raise RuntimeError(f"{where}: attn_mask must be bool or of the query's dtype {dtype}, got {m.dtype}")
    return None, mask if isinstance(mask, Tensor) else Tensor._make(m, False, None)


def attend(inputs: list[Tensor], blocked: np.ndarray | None, bias: Tensor | None, causal: bool,
           scale: float | None, dropout_p: float, generator: Seed, packed: bool = False) -> Tensor:
    """The op on checked arguments: ``inputs`` [Q, K, V], or [QKV] (3, ..., L, E) with ``packed``; ``blocked``
    True where a query may not attend, ``bias`` added to the scores (each broadcastable to them)."""
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1], got {dropout_p}")
    q = inputs[0][0] if packed else inputs[0]
    e = q.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(e) if e else 1.0
    u = None
    if dropout_p > 0:
        k = inputs[0][1] if packed else inputs[1]
        v = inputs[0][2] if packed else inputs[2]
        scores = (*np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2]), q.shape[-2], k.shape[-2])
        u = get_generator(generator).random(scores, dtype=np.float32 if q.dtype == np.float32 else np.float64)
    if bias is not None:
        inputs = [*inputs, bias]
    return ScaledDotProductAttention.apply(*inputs, packed=packed, blocked=blocked, causal=bool(causal),
                                           scale=float(scale), p=float(dropout_p), u=u)


__all__ = ["ScaledDotProductAttention", "attend", "scaled_dot_product_attention", "split_mask"]
