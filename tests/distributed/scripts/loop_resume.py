"""The one loop on two ranks, stopped half-way and resumed, against the same loop in one process.

Run under ``mpiexec -n 2 ... DIR``. Every rank trains three ways, on a share of each batch of 30 (the data's
last batch of each epoch, 10 samples, is split 5/5; an odd batch would be split unevenly, weighted):
  - ``once``: 24 steps without a stop;
  - ``stopped``: the same run, stopped by an exception at step 12, after its checkpoint at step 8...
  - ``resumed``: ...continued from that checkpoint to step 24.
Rank 0 writes the checkpoint; every rank reads it. Each rank reports its weights' distance from the
one-process run (computed on rank 0 before the ranks start), and the histories.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
from common import report

import dlbasics as dl
import dlbasics.distributed as dist
from dlbasics.train import Callback
from dlbasics.train.run import Run, train_run

DIR = Path(sys.argv[1])
STEPS = 24


class Crash(Callback):
    def __init__(self, armed: bool) -> None:
        super().__init__()
        self.armed = armed

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.armed and logs["step"] == 12:
            raise RuntimeError("planted")


def data() -> tuple[dl.data.TensorDataset, dl.data.TensorDataset]:
    g = np.random.default_rng(0)
    x = g.normal(size=(130, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64)
    return dl.data.TensorDataset(x[:100], y[:100]), dl.data.TensorDataset(x[100:], y[100:])


def build(seed: int) -> Run:
    model = dl.nn.Sequential(dl.nn.Linear(6, 16), dl.nn.Tanh(), dl.nn.Linear(16, 2))
    return Run(model, dl.nn.CrossEntropyLoss(), dl.optim.Adam(model.parameters(), lr=0.01), steps=STEPS,
               batch_size=30, eval_every=4)


def flat(run: Run) -> np.ndarray:
    return np.concatenate([p.data.ravel() for p in run.model.parameters()])


def main() -> None:
    dist.init_process_group("mpi")
    train, val = data()
    single = DIR / "single.npy"
    if dist.get_rank() == 0:  # the one-process reference: the loop without the process group
        run, history = train_run(build, train, val, seed=0, distributed=False)
        np.save(single, flat(run))
        single_rows = history.rows
    dist.barrier()
    run, history = train_run(build, train, val, seed=0)
    once, once_rows = flat(run), history.rows
    ckpt = DIR / "ckpt.safetensors"
    with contextlib.suppress(RuntimeError):  # the planted crash at step 12
        train_run(build, train, val, seed=0, checkpoint=ckpt, checkpoint_every=8, callbacks=[Crash(armed=True)])
    dist.barrier()  # rank 0's checkpoint is on disk before anyone reads it
    run, history = train_run(build, train, val, seed=0, checkpoint=ckpt, checkpoint_every=8, resume=True,
                             callbacks=[Crash(armed=False)])
    resumed, resumed_rows = flat(run), history.rows
    ref = np.load(single)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in once_rows]
    report(once_vs_single=float(np.abs(once - ref).max()), resumed_vs_once=float(np.abs(resumed - once).max()),
           rows_equal=strip == [{k: v for k, v in r.items() if k != "seconds"} for r in resumed_rows],
           rows=strip, single_rows=[{k: v for k, v in r.items() if k != "seconds"} for r in single_rows]
           if dist.get_rank() == 0 else None)


if __name__ == "__main__":
    main()
