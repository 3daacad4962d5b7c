"""Data-parallel training in which one rank fails at step 5: ``fault.py MODE RANK [TIMEOUT]``.

MODE: ``raise`` (an uncaught exception), ``exit`` (``sys.exit(3)``), ``kill`` (SIGKILL: the process just
vanishes) or ``hang`` (alive, but never reaches the next collective; the others' timeout ends the job).
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np

import dlbasics as dl
import dlbasics.distributed as dist
from dlbasics.nn.parallel import DistributedDataParallel


def main() -> None:
    mode, failing = sys.argv[1], int(sys.argv[2])
    dist.init_process_group("mpi", timeout=float(sys.argv[3]) if len(sys.argv) > 3 else None)
    dl.manual_seed(0)
    model = DistributedDataParallel(dl.nn.Sequential(dl.nn.Linear(4, 8), dl.nn.Tanh(), dl.nn.Linear(8, 1)))
    optimizer = dl.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(dist.get_rank())
    for step in range(10):
        if step == 5 and dist.get_rank() == failing:
            time.sleep(0.2)  # let the others block in the all-reduce first
            if mode == "raise":
                raise RuntimeError(f"simulated failure on rank {failing} at step {step}")
            if mode == "exit":
                sys.exit(3)
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if mode == "hang":
                time.sleep(120)
        x = dl.Tensor(rng.standard_normal((16, 4)))
        loss = (model(x) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        model.sync_gradients()
        optimizer.step()
    print(f"rank {dist.get_rank()} finished", flush=True)


if __name__ == "__main__":
    main()
