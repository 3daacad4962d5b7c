"""Dropout: a regularizer that trains an implicit ensemble of thinned networks."""

from __future__ import annotations

from dlbasics.nn import functional as F
from dlbasics.nn.module import Module
from dlbasics.rng import Seed, get_generator
from dlbasics.tensor import Tensor


class Dropout(Module):
    """Zero each element with probability p in training, scale the kept ones by 1/(1-p); identity in eval.

    ``generator`` (a seed or Generator) gives the layer its own stream of masks; by default masks come
    from the generator ``dl.manual_seed`` sets.
    """

    def __init__(self, p: float = 0.5, generator: Seed = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p
        self.generator = None if generator is None else get_generator(generator)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
