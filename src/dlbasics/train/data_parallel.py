"""What the one loop does differently when it runs on R > 1 MPI ranks (``mpiexec -n R dlbasics train ...``).

Every rank builds the same run from the same seed and draws the same global batches; rank r trains on its
share of each (``DataLoader(num_replicas=R, rank=r)``). After each backward the gradients are combined into
the gradient of the global batch's mean loss: with m_r of the batch's m samples on rank r and g_r the gradient
of rank r's own mean,

    g = sum_r (m_r / m) * g_r

(each rank scales its g_r by R * m_r / m, then ``DistributedDataParallel`` averages over the R ranks). So R
ranks take the steps of one process with the whole batch, up to float rounding, whatever the batch size:
the loop's guarantee, tested with ``mpiexec -n 2``. It needs a task whose loss is a mean over the batch's
samples and whose ``evaluate`` returns means over samples (``Task.data_parallel``); dropout and BatchNorm
break the equality (each rank draws its own masks, and normalises with its own share's statistics, as in
PyTorch's DDP; the running statistics that evaluation and checkpoints use are rank 0's).

The logged training values and the validation are reduced the same way, as sums over samples: every rank
ends each row with the same history, so callbacks such as early stopping decide alike everywhere. Only
rank 0 prints and writes files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from dlbasics import distributed as dist
from dlbasics.errors import ConfigError
from dlbasics.train.task import TASKS, Averages, Task


def world() -> tuple[int, int]:
    """(this process's rank, the number of ranks): (0, 1) without an initialised process group."""
    if not dist.is_initialized():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def check_task(task: Task) -> None:
    """ConfigError unless ``task`` can train on several ranks."""
    if not task.data_parallel:
        able = [name for name in TASKS.available() if TASKS.get(name).builder.data_parallel]
        raise ConfigError(f"the {type(task).__name__} cannot train on {world()[1]} ranks (its loss or its evaluation "
                          f"is not a mean over samples); tasks that can: {', '.join(able)}")


def shard(dataset: Any) -> Any:
    """This rank's contiguous share of ``dataset`` (for sharded evaluation); the whole of it on one rank."""
    from dlbasics.data import Subset

    rank, ranks = world()
    if ranks == 1:
        return dataset
    bounds = np.linspace(0, len(dataset), ranks + 1).round().astype(int)
    return Subset(dataset, np.arange(bounds[rank], bounds[rank + 1]))


class DataParallel:
    """The loop's part on R ranks: ``task``'s modules replicated, its gradients combined (installed as
    ``task.gradient_sync``), and the reductions of logs and validation values."""

    def __init__(self, task: Task, train_loader: Iterable) -> None:
        from dlbasics.nn.parallel import DistributedDataParallel

        check_task(task)
        self.rank, self.ranks = world()
        self.loader = train_loader
        # broadcast_buffers=False: BatchNorm's running statistics are copied from rank 0 before each evaluation
        # (sync_buffers), not before every forward
        self.replicas = [DistributedDataParallel(m, broadcast_buffers=False) for m in task.modules.values()
                         if any(p.requires_grad for p in m.parameters())]
        self.params = [p for r in self.replicas for p in r.module.parameters() if p.requires_grad]
        task.gradient_sync = self.sync_gradients

    def sync_gradients(self) -> None:
        """Each parameter's gradient becomes that of the mean loss over the global batch (the formula above)."""
        share, total = getattr(self.loader, "batch_share", (1, 1))
        scale = self.ranks * share / total
        if scale != 1:
            for p in self.params:
                if p.grad is not None:
                    p.grad *= scale
        for replica in self.replicas:
            replica.sync_gradients()

    def sync_buffers(self) -> None:
        for replica in self.replicas:
            replica.sync_buffers()

    def reduce_averages(self, averages: Averages) -> Averages:
        """The running averages of every rank pooled: sums and counts added over the ranks."""
        keys = list(averages.sums)  # in the order logged: the same on every rank (checked)
        self.check_same_keys(keys)
        values = np.array([averages.n, *(averages.sums[k] for k in keys), *(averages.counts[k] for k in keys)],
                          dtype=np.float64)
        dist.all_reduce(values)
        pooled = Averages()
        pooled.n = int(values[0])
        pooled.sums = dict(zip(keys, values[1:1 + len(keys)].tolist()))
        pooled.counts = {k: int(c) for k, c in zip(keys, values[1 + len(keys):])}
        return pooled

    def evaluate(self, task: Task, loader: Any) -> dict[str, float]:
        """``task.evaluate`` on this rank's share of the validation data (``loader.dataset``, a ``shard``),
        pooled into the means over the whole of it."""
        self.sync_buffers()
        values = task.evaluate(loader)
        n = len(loader.dataset)
        keys = list(values)
        self.check_same_keys(keys)
        sums = np.array([n, *(values[k] * n for k in keys)], dtype=np.float64)
        dist.all_reduce(sums)
        return {k: float(s / max(sums[0], 1)) for k, s in zip(keys, sums[1:])}

    def check_same_keys(self, keys: list[str]) -> None:
        """The reductions add values key by key: every rank must have logged the same keys."""
        if not dist.same_on_every_rank("\n".join(keys)):
            raise RuntimeError(f"rank {self.rank}: the ranks logged different values ({', '.join(keys)} here)")

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on some rank (a Ctrl-C that reached one rank stops all at the same step)."""
        value = np.array([int(flag)], dtype=np.int64)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value[0])


__all__ = ["DataParallel", "check_task", "shard", "world"]
