"""DistributedSampler's shards, in one process (the ranks are just arguments here)."""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics.distributed as dist
from dlbasics.data import DataLoader, DistributedSampler, Subset, TensorDataset
from dlbasics.errors import ConfigError


def shards(n: int, world: int, epoch: int = 0, **kw) -> list[np.ndarray]:
    out = []
    for rank in range(world):
        s = DistributedSampler(n, num_replicas=world, rank=rank, **kw)
        s.set_epoch(epoch)
        out.append(s.indices())
    return out


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_are_disjoint_and_cover_the_epoch(world):
    parts = shards(12, world, seed=7)
    assert all(len(p) == 12 // world for p in parts)
    assert sorted(np.concatenate(parts).tolist()) == list(range(12))


def test_interleaved_shards_of_each_step_make_the_global_batch():
    """Rank r's step k (batch B) holds perm[k*B*R + r :: R]: the R shards are one process's batch of B*R."""
    world, batch = 2, 3
    parts = shards(12, world, seed=1)
    perm = shards(12, 1, seed=1)[0]
    for k in range(12 // (world * batch)):
        step = np.concatenate([p[k * batch:(k + 1) * batch] for p in parts])
        assert sorted(step.tolist()) == sorted(perm[k * world * batch:(k + 1) * world * batch].tolist())


def test_padding_and_drop_last():
    padded = shards(11, 3, shuffle=False)
    assert [p.tolist() for p in padded] == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 0]]  # 0 counts twice
    dropped = shards(11, 3, shuffle=False, drop_last=True)
    assert [p.tolist() for p in dropped] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    tiny = shards(2, 4, shuffle=False)  # fewer samples than ranks: padded by repeating
    assert [p.tolist() for p in tiny] == [[0], [1], [0], [1]]
    assert [len(DistributedSampler(11, 3, r, drop_last=True)) for r in range(3)] == [3, 3, 3]


def test_order_depends_on_seed_and_epoch_only():
    assert np.array_equal(shards(50, 2, epoch=3, seed=9)[1], shards(50, 2, epoch=3, seed=9)[1])
    assert not np.array_equal(shards(50, 2, epoch=0, seed=9)[0], shards(50, 2, epoch=1, seed=9)[0])
    assert not np.array_equal(shards(50, 2, seed=9)[0], shards(50, 2, seed=10)[0])
    assert shards(6, 2, shuffle=False)[1].tolist() == [1, 3, 5]


def test_iterates_python_ints_and_feeds_a_dataloader_through_subset():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    data = TensorDataset(x, np.arange(10))
    sampler = DistributedSampler(data, num_replicas=2, rank=1, seed=0)
    idx = list(sampler)
    assert len(idx) == len(sampler) == 5 and all(type(i) is int for i in idx)
    (xb, yb), = list(DataLoader(Subset(data, idx), batch_size=5))
    assert yb.data.tolist() == idx and np.array_equal(xb.data, x[idx])


def test_errors_name_the_valid_choices():
    with pytest.raises(ConfigError, match=r"invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(10, num_replicas=2, rank=2)
    with pytest.raises(ConfigError, match="num_replicas must be an integer >= 1"):
        DistributedSampler(10, num_replicas=0, rank=0)
    with pytest.raises(ConfigError, match="epoch must be an integer >= 0"):
        DistributedSampler(10, num_replicas=1, rank=0).set_epoch(-1)
    with pytest.raises(TypeError, match="a sized dataset or its length"):
        DistributedSampler(object(), num_replicas=1, rank=0)
    assert not dist.is_initialized()
    with pytest.raises(ConfigError, match=r"pass num_replicas and rank, or call .*init_process_group"):
        DistributedSampler(10)
