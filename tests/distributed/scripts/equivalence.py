"""Two ranks with batch B each against one process with batch 2B: the same weights after 20 steps.

Run under ``mpiexec -n 2``. Each rank also trains the one-process reference itself (it is small), so every
rank reports how far its DDP weights are from the reference and from rank 0's.
"""

from __future__ import annotations

import numpy as np
from common import report

import dlbasics as dl
import dlbasics.distributed as dist
from dlbasics.data import DataLoader, DistributedSampler, Subset, TensorDataset
from dlbasics.nn.parallel import DistributedDataParallel

B, STEPS, N = 8, 20, 96  # 6 steps an epoch: 20 steps cross three epoch boundaries


def make_model(dtype: np.dtype) -> dl.nn.Module:
    dl.manual_seed(0)  # the same initial weights in every process
    return dl.nn.Sequential(dl.nn.Linear(5, 16), dl.nn.Tanh(), dl.nn.Linear(16, 3)).to(dtype)


def make_optimizer(name: str, model: dl.nn.Module) -> dl.optim.Optimizer:
    if name == "sgd":
        return dl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return dl.optim.Adam(model.parameters(), lr=0.01)


def flat(model: dl.nn.Module) -> np.ndarray:
    return np.concatenate([p.data.ravel() for p in model.parameters()])


def train(model: dl.nn.Module, optimizer: dl.optim.Optimizer, sampler: DistributedSampler, batch: int,
          data: TensorDataset, sync: DistributedDataParallel | None) -> None:
    loss_fn = dl.nn.MSELoss()
    step, epoch = 0, 0
    while step < STEPS:
        sampler.set_epoch(epoch)
        for x, y in DataLoader(Subset(data, list(sampler)), batch_size=batch):
            loss = loss_fn((sync or model)(x), y)
            optimizer.zero_grad()
            loss.backward()
            if sync is not None:
                sync.sync_gradients()
            optimizer.step()
            step += 1
            if step == STEPS:
                return
        epoch += 1


def main() -> None:
    dist.init_process_group("mpi")
    world = dist.get_world_size()
    rng = np.random.default_rng(1)
    x64, w = rng.standard_normal((N, 5)), rng.standard_normal((5, 3))
    y64 = np.tanh(x64 @ w) + 0.1 * rng.standard_normal((N, 3))
    out = {}
    for dtype in (np.float32, np.float64):
        data = TensorDataset(dl.Tensor(x64, dtype=dtype), dl.Tensor(y64, dtype=dtype))
        for opt in ("sgd", "adam"):
            name = f"{opt}_{np.dtype(dtype).name}"
            model = make_model(dtype)
            before = flat(model)
            rank0 = before.copy()
            dist.broadcast(rank0, src=0)
            out[f"{name}_same_init"] = bool(np.array_equal(before, rank0))
            # a small cap in float64 makes several buckets (the largest weight alone exceeds it)
            ddp = DistributedDataParallel(model, bucket_cap_mb=0.0005 if dtype == np.float64 else 25)
            train(model, make_optimizer(opt, model), DistributedSampler(N, seed=5), B, data, ddp)

            reference = make_model(dtype)
            train(reference, make_optimizer(opt, reference), DistributedSampler(N, num_replicas=1, rank=0, seed=5),
                  world * B, data, None)
            mine, ref = flat(model), flat(reference)
            rank0 = mine.copy()
            dist.broadcast(rank0, src=0)
            out[f"{name}_vs_reference"] = float(np.max(np.abs(mine - ref)))
            out[f"{name}_moved"] = float(np.max(np.abs(ref - before)))
            out[f"{name}_ranks_identical"] = bool(np.array_equal(mine, rank0))
            out[f"{name}_buckets"] = len(ddp._grad_buckets)
    # the control: without the gradient all-reduce each rank follows its own half of the data
    model = make_model(np.float64)
    ddp = DistributedDataParallel(model)
    data = TensorDataset(dl.Tensor(x64, dtype=np.float64), dl.Tensor(y64, dtype=np.float64))
    train(model, make_optimizer("sgd", model), DistributedSampler(N, seed=5), B, data, None)
    reference = make_model(np.float64)
    train(reference, make_optimizer("sgd", reference), DistributedSampler(N, num_replicas=1, rank=0, seed=5),
          world * B, data, None)
    out["unsynced_vs_reference"] = float(np.max(np.abs(flat(model) - flat(reference))))
    report(world=world, **out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
