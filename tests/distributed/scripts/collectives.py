"""The collectives, the sampler across processes, and DistributedDataParallel's bookkeeping, on 2 ranks.

Run under ``mpiexec -n 2``; each rank reports named checks (True when they hold) and a few values.
"""

from __future__ import annotations

import numpy as np
from common import report

import dlbasics as dl
import dlbasics.distributed as dist
from dlbasics.data import DistributedSampler
from dlbasics.errors import ConfigError
from dlbasics.nn.parallel import DistributedDataParallel


def collectives(rank: int, world: int, ok: dict[str, bool]) -> None:
    a = np.full(3, rank + 1, dtype=np.float32)
    dist.all_reduce(a)
    ok["sum_float32"] = a.dtype == np.float32 and np.array_equal(a, [3, 3, 3])
    a = np.full(2, rank + 1.0)
    dist.all_reduce(a, op=dist.ReduceOp.AVG)
    ok["avg"] = np.array_equal(a, [1.5, 1.5])
    a = np.array([rank, -rank], dtype=np.int64)
    b = a.copy()
    dist.all_reduce(a, op="max")
    dist.all_reduce(b, op="min")
    ok["max_min_int64"] = a.tolist() == [1, 0] and b.tolist() == [0, -1]
    a = np.array([rank + 2.0])
    dist.all_reduce(a, op="product")
    ok["product"] = a.tolist() == [6.0]
    m = np.arange(12.0).reshape(3, 4) * (rank + 1)
    dist.all_reduce(m[:, ::2])  # a strided view: reduced through a contiguous copy, written back
    expect = np.arange(12.0).reshape(3, 4) * (rank + 1)
    expect[:, ::2] = np.arange(12.0).reshape(3, 4)[:, ::2] * 3
    ok["strided_view"] = np.array_equal(m, expect)
    t = dl.Tensor(np.ones((2, 2), dtype=np.float32))
    dist.all_reduce(t)
    ok["tensor"] = np.array_equal(t.data, np.full((2, 2), 2.0))
    a = np.full(4, rank, dtype=np.int64)
    dist.broadcast(a, src=1)
    ok["broadcast_src1"] = a.tolist() == [1, 1, 1, 1]
    a = np.full((2, 3), rank, dtype=np.float64)
    dist.broadcast(a)
    ok["broadcast_src0"] = np.array_equal(a, np.zeros((2, 3)))
    dist.barrier()


def sampler(rank: int, world: int, ok: dict[str, bool]) -> None:
    n = 11  # not a multiple of 2: the epoch is padded by one index
    mine = DistributedSampler(n, seed=3)
    ok["sampler_defaults"] = (mine.rank, mine.num_replicas, len(mine)) == (rank, world, 6)
    epochs = []
    for epoch in (0, 1):
        mine.set_epoch(epoch)
        shards = np.zeros((world, len(mine)), dtype=np.int64)
        shards[rank] = mine.indices()
        dist.all_reduce(shards)  # every rank now holds every rank's shard, as that rank drew it
        here = [DistributedSampler(n, num_replicas=world, rank=r, seed=3) for r in range(world)]
        for s in here:
            s.set_epoch(epoch)
        ok[f"sampler_same_order_epoch{epoch}"] = all(np.array_equal(shards[r], here[r].indices()) for r in range(world))
        ok[f"sampler_covers_epoch{epoch}"] = set(shards.ravel().tolist()) == set(range(n))
        epochs.append(shards)
    ok["sampler_epochs_differ"] = not np.array_equal(epochs[0], epochs[1])


class TwoHeads(dl.nn.Module):
    """Head ``b`` is used on rank 1 only, ``c`` never."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = dl.nn.Linear(3, 2), dl.nn.Linear(3, 2), dl.nn.Linear(3, 2)

    def forward(self, x: dl.Tensor, use_b: bool) -> dl.Tensor:
        return self.a(x) + self.b(x) if use_b else self.a(x)


def ddp(rank: int, world: int, ok: dict[str, bool], values: dict[str, object]) -> None:
    # construction broadcasts rank 0's weights: here the ranks deliberately start from different seeds
    dl.manual_seed(100 + rank)
    model = TwoHeads()
    wrapped = DistributedDataParallel(model, bucket_cap_mb=0.00003)  # 31 bytes: one bucket per parameter
    w = model.a.weight.data.copy()
    dist.broadcast(w, src=0)
    ok["ddp_broadcasts_weights"] = np.array_equal(w, model.a.weight.data)
    ok["ddp_state_dict_keys"] = list(wrapped.state_dict()) == list(model.state_dict())
    ok["ddp_named_parameters"] = next(n for n, _ in wrapped.named_parameters()) == "module.a.weight"

    x = dl.Tensor(np.random.default_rng(rank).standard_normal((4, 3)))
    wrapped(x, use_b=rank == 1).sum().backward()
    local = {name: None if p.grad is None else p.grad.copy() for name, p in model.named_parameters()}
    expected = {name: np.zeros(p.shape) if g is None else g.astype(np.float64)
                for (name, p), g in zip(model.named_parameters(), local.values())}
    for g in expected.values():
        dist.all_reduce(g, op="avg")
    before = dist._group.completed
    wrapped.sync_gradients()
    values["collectives_per_sync"] = dist._group.completed - before
    values["grad_buckets"] = len(wrapped._grad_buckets)
    ok["ddp_grads_averaged"] = all(np.allclose(p.grad, expected[n], rtol=1e-6, atol=1e-7)
                                   for n, p in model.named_parameters() if not n.startswith("c."))
    ok["ddp_partly_used_param_gets_grad"] = model.b.weight.grad is not None  # rank 0 did not use b
    ok["ddp_unused_param_stays_none"] = model.c.weight.grad is None and model.c.bias.grad is None

    one_bucket = DistributedDataParallel(TwoHeads())
    values["default_grad_buckets"] = len(one_bucket._grad_buckets)

    try:  # a model that differs across ranks: every rank sees it and raises, none hangs
        DistributedDataParallel(dl.nn.Linear(3, 2 + rank))
        ok["ddp_model_mismatch_raises"] = False
    except ConfigError as e:
        ok["ddp_model_mismatch_raises"] = "different models" in str(e)


def batchnorm(rank: int, world: int, ok: dict[str, bool]) -> None:
    dl.manual_seed(0)
    model = dl.nn.Sequential(dl.nn.Linear(3, 4), dl.nn.BatchNorm1d(4))
    wrapped = DistributedDataParallel(model)
    bn = model[1]
    x = dl.Tensor(np.random.default_rng(rank).standard_normal((8, 3)) + rank)
    wrapped(x)  # training: normalised with this rank's own batch statistics
    other = bn.running_mean.data.copy()
    dist.broadcast(other, src=0)
    ok["bn_running_stats_per_rank"] = rank == 0 or not np.allclose(other, bn.running_mean.data)
    with dl.no_grad():
        before = dist._group.completed
        wrapped.eval()
        wrapped(x)
        wrapped.train()
        ok["bn_eval_forward_no_collective"] = dist._group.completed == before
    wrapped.sync_buffers()
    ok["bn_sync_buffers"] = np.array_equal(other, bn.running_mean.data)


def main() -> None:
    dist.init_process_group()
    rank, world = dist.get_rank(), dist.get_world_size()
    ok: dict[str, bool] = {}
    values: dict[str, object] = {}
    collectives(rank, world, ok)
    sampler(rank, world, ok)
    ddp(rank, world, ok, values)
    batchnorm(rank, world, ok)
    report(world=world, initialized=dist.is_initialized(), ok={k: bool(v) for k, v in ok.items()}, **values)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
