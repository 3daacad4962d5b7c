"""Embedding lookup: rows of a weight matrix picked by integer ids, and the gradient that adds them back.

    out[..., :] = W[ids[...], :]          ids (*) integers in [0, V), W (V, D) -> out (*, D)
    dW[v] = sum of g[k] over the k with ids[k] = v   (repeated ids accumulate; the padding row gets none)

The backward is a scatter-add of N rows into V. ``np.add.at`` does it one element at a time through a generic
path (1.7 ms for 768 rows of 256 into 65); a compiled loop adds whole rows (0.02 ms), and its NumPy twin sorts the
ids so that each id's rows form one run and sums the runs with ``np.add.reduceat`` (0.26 ms) - see
kernels/recurrent.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics import kernels
from dlbasics.autograd.function import Function
from dlbasics.kernels.recurrent import embedding_backward
from dlbasics.tensor import Tensor


class Embedding(Function):
    """out = weight[ids];  dweight = scatter-add of g's rows at ids, none into ``padding_idx`` (-1: no padding)."""

    def forward(self, weight, ids, padding_idx):
        self.ids, self.padding_idx, self.shape = ids, padding_idx, weight.shape
        return np.take(weight, ids, axis=0)

    def backward(self, g):
        d = self.shape[1]
        ids = self.ids.reshape(-1)
        g2 = np.ascontiguousarray(g).reshape(-1, d)
        out = np.zeros(self.shape, g.dtype)
        step = embedding_backward.compiled if kernels.use(g2.size) else embedding_backward.numpy
        step(ids, g2, self.padding_idx, out)
        return out


def _ids(input: Any, who: str) -> np.ndarray:
    ids = input.data if isinstance(input, Tensor) else np.asarray(input)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{who}: input must hold integer ids, got {ids.dtype}")
    return ids.astype(np.int64, copy=False)


def normalize_padding_idx(padding_idx: int | None, num_embeddings: int, who: str) -> int | None:
    """``padding_idx`` in [-V, V) as an index in [0, V) (PyTorch's rule for a negative one), or None."""
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{who}: padding_idx must be within [-{num_embeddings}, {num_embeddings}) "
                         f"(num_embeddings), got {padding_idx}")
    return padding_idx + num_embeddings if padding_idx < 0 else padding_idx


def lookup(input: Any, weight: Tensor, padding_idx: int | None, who: str) -> Tensor:
    """The embedding op with errors naming ``who`` (the layer, or ``embedding``)."""
    if weight.ndim != 2:
        raise RuntimeError(f"{who}: weight must be 2-D (num_embeddings, embedding_dim), got {weight.shape}")
    ids = _ids(input, who)
    v = weight.shape[0]
    if ids.size and (ids.min() < 0 or ids.max() >= v):
        bad = int(ids.min()) if ids.min() < 0 else int(ids.max())
        raise IndexError(f"{who}: index {bad} is out of range: ids must be in [0, {v}) (num_embeddings = {v})")
    pad = normalize_padding_idx(padding_idx, v, who)
    return Embedding.apply(weight, ids=ids, padding_idx=-1 if pad is None else pad)


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Look up rows of ``weight`` (V, D) at the integer ids ``input`` (*): (*, D). The rows at ``padding_idx`` (which
    may be negative, counted from the end) get no gradient; repeated ids accumulate theirs."""
    return lookup(input, weight, padding_idx, "embedding")


__all__ = ["Embedding", "embedding", "lookup", "normalize_padding_idx"]
