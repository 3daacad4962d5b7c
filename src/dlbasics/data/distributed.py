"""``DistributedSampler``: each rank's share of an epoch in data-parallel training (PyTorch's
``torch.utils.data.distributed.DistributedSampler``).

Every rank draws the same permutation (seeded with ``seed + epoch``) and takes every ``num_replicas``-th
index of it, starting at its rank: the shards are disjoint and together they are the epoch. With a per-rank
batch of B, step k of rank r reads ``perm[k*B*R + r :: R]`` up to B samples, so the R shards of step k are
exactly the global batch ``perm[k*B*R : (k+1)*B*R]`` that one process with batch B*R would read.

``DataLoader`` takes no sampler; hand it the rank's share as a ``Subset``, in order, once per epoch:

    sampler = DistributedSampler(train)                 # rank and world size from the process group
    for epoch in range(epochs):
        sampler.set_epoch(epoch)                        # a new order every epoch, the same on every rank
        for x, y in DataLoader(Subset(train, list(sampler)), batch_size=B):
            ...
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import numpy as np

from dlbasics import distributed as dist
from dlbasics.errors import ConfigError


def _int(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"DistributedSampler: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


class DistributedSampler:
    """The indices of this rank's shard of ``dataset``, a new order every epoch (``set_epoch``).

    Args:
        dataset: a sized dataset, or its length.
        num_replicas: the number of ranks; default: ``dist.get_world_size()``.
        rank: this shard; default: ``dist.get_rank()``.
        shuffle: permute the indices with a generator seeded ``seed + epoch`` (NumPy's ``default_rng``, so
            the order is not PyTorch's); else ``0 .. n-1``.
        seed: the same on every rank.
        drop_last: drop the tail so that every rank gets ``floor(n / R)`` samples; else the epoch is padded
            with its first indices up to a multiple of R (those few samples count twice in that epoch).

    Every rank gets ``len(sampler)`` indices, so every rank runs the same number of steps (a rank with
    one step more would wait forever in its gradient all-reduce).
    """

    def __init__(self, dataset: Sized | int, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        n = dataset if isinstance(dataset, int | np.integer) and not isinstance(dataset, bool) else None
        if n is None:
            if not hasattr(dataset, "__len__"):
                raise TypeError(f"DistributedSampler: expected a sized dataset or its length, "
                                f"got {type(dataset).__name__}")
            n = len(dataset)
        self.n = _int(n, "the dataset's length", 0)
        if num_replicas is None or rank is None:
            if not dist.is_initialized():
                raise ConfigError("DistributedSampler: pass num_replicas and rank, or call "
                                  "dlbasics.distributed.init_process_group() first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        self.num_replicas = _int(num_replicas, "num_replicas", 1)
        self.rank = _int(rank, "rank", 0)
        if self.rank >= self.num_replicas:
            raise ConfigError(f"DistributedSampler: invalid rank {self.rank}, rank should be in the interval "
                              f"[0, {self.num_replicas - 1}]")
        self.shuffle = bool(shuffle)
        self.seed = _int(seed, "seed", 0)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        if self.drop_last:
            self.num_samples = self.n // self.num_replicas
        else:
            self.num_samples = -(-self.n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch, (num_samples,) int64."""
        order = np.random.default_rng(self.seed + self.epoch).permutation(self.n) if self.shuffle \
            else np.arange(self.n)
        if self.total_size > self.n:  # pad with the epoch's first indices (repeated if there are too few)
            order = np.resize(order, self.total_size)
        return order[self.rank:self.total_size:self.num_replicas].astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch the next ``iter()`` shuffles for; call it with the same epoch on every rank."""
        self.epoch = _int(epoch, "epoch", 0)

    def __repr__(self) -> str:
        return (f"DistributedSampler({self.n} samples, rank {self.rank} of {self.num_replicas}, "
                f"{self.num_samples} each, shuffle={self.shuffle}, seed={self.seed}, epoch={self.epoch})")


__all__ = ["DistributedSampler"]
