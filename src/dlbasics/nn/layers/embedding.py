"""``Embedding``: a learned vector per token id - the first layer of every language model here.

A lookup table is a linear layer applied to one-hot inputs, W^T e_id, computed as a row pick instead of a
product with a mostly-zero matrix; its gradient adds each position's upstream gradient into the row it picked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics import dtypes
from dlbasics.nn import init
from dlbasics.nn.module import Module
from dlbasics.nn.parameter import Parameter
from dlbasics.ops.embedding import lookup, normalize_padding_idx
from dlbasics.rng import Seed
from dlbasics.tensor import Tensor


class Embedding(Module):
    """ids (*) integers in [0, num_embeddings) -> (*, embedding_dim): out = weight[ids].

    Init as PyTorch: weight ~ N(0, 1), the ``padding_idx`` row zeroed. ``padding_idx`` (may be negative, counted from
    the end) marks a padding token: its row gets no gradient, so it stays what it is (zero unless set).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *,
                 dtype: Any = None, _weight: Any = None) -> None:
        super().__init__()
        if num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError(f"Embedding: sizes must be positive, got num_embeddings={num_embeddings}, "
                             f"embedding_dim={embedding_dim}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = normalize_padding_idx(padding_idx, num_embeddings, self._name())
        if _weight is None:
            dt = dtypes.float32 if dtype is None else dtypes.as_dtype(dtype)
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dt))
            self.reset_parameters()
            return
        w = _weight.data if isinstance(_weight, Tensor) else np.asarray(_weight)  # a given weight keeps its dtype
        if w.shape != (num_embeddings, embedding_dim):
            raise ValueError(f"{self._name()}: _weight has shape {w.shape}, expected {(num_embeddings, embedding_dim)}")
        dt = dtypes.as_dtype(dtype) if dtype is not None else (w.dtype if w.dtype.kind == "f" else dtypes.float32)
        self.weight = Parameter(np.array(w, dtype=dt))

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None) -> Embedding:
        """An Embedding holding a copy of ``embeddings`` (V, D); ``freeze``: its weight does not require grad."""
        w = embeddings.data if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if w.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D (num_embeddings, embedding_dim), "
                             f"got {w.shape}")
        layer = cls(w.shape[0], w.shape[1], padding_idx, _weight=w)
        layer.weight.requires_grad_(not freeze)
        return layer

    def _name(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"

    def reset_parameters(self, generator: Seed = None) -> None:
        init.normal_(self.weight, 0.0, 1.0, generator)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input: Any) -> Tensor:
        return lookup(input, self.weight, self.padding_idx, self._name())

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
