"""DQN on CartPole-v1 end to end, dlbasics beside its PyTorch twin (``benchmarks/twins/dqn.py``), each seed and each
library in its own process, in one run: training time, learning curve and test score side by side.

    python benchmarks/bench_rl.py --seeds 0 1 2 --steps 50000 --figure docs/figures/dqn_returns.png
    python benchmarks/bench_rl.py --seeds 0 --steps 3000 --figure /tmp/dqn_bench.png      # a smoke run
    python benchmarks/bench_rl.py --seeds 0 1 2 --json dqn_bench.json --threads 1

Both sides train the zoo's recipe (rl-baselines3-zoo's CartPole-v1 settings: Q-network 4-256-256-2, Adam 2.3e-3,
batch 64, 128 gradient steps every 256 environment steps after the first 1,000, a hard target copy every 10 steps,
epsilon from 1 to 0.04 over the first 16% of the run) on the same NumPy environment, replay buffer and exploration
schedule; only the network and its updates differ. dlbasics trains through its one loop (``commands.train``, as
``dlbasics train --model dqn`` does, into a run folder), PyTorch through the twin's ``train``. Every 1,000 steps
(and at the last) each side plays the same 10 fixed greedy episodes (seeds 10000...) and keeps the best snapshot;
at the end the best snapshot and the last agent play the same 100 fresh episodes (seeds 20000...).

Measured, for each (seed, side): ``seconds``, the wall time of the training including the periodic greedy
evaluations and the keeping of the best snapshot, excluding the final 100-episode tests on both sides and, on the
dlbasics side, the resumable checkpoints its run folder gets at every evaluation (replay buffer included; the twin
has none), timed apart and reported in the JSON as ``checkpoint_seconds``; the best 10-episode greedy mean and the
first step that reached it; the first evaluation >= 475 (CartPole-v1's "solved"); the 100-episode test mean and
standard deviation of the best snapshot, and the last agent's test mean. A seed counts as solved when its best
evaluation and its best snapshot's test mean are both >= 475. Both workers run ``--threads`` BLAS/OpenMP threads
(default 1: the networks are tiny), set in the worker's environment before NumPy loads, and ``torch.set_num_threads``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workers import run_worker

HERE = Path(__file__).resolve().parent
SOLVED = 475.0
TEST_SEED = 20_000  # the first of the final test episodes' seeds, both sides (rl.episodes.TEST_SEED)
SIDES = (("dlbasics", "dlbasics"), ("torch", "PyTorch"))


def scores(curve: list[list[float]], seconds: float, test_mean: float, test_std: float, last_test_mean: float,
           **extra: Any) -> dict[str, Any]:
    """A worker's result from its evaluation curve [[step, val_return], ...] and its tests: the best mean and the
    first step that reached it, and the first step whose evaluation was >= 475 (None if none was)."""
    best = max(v for _, v in curve)
    return {"seconds": seconds, "best_return": best, "best_step": next(int(s) for s, v in curve if v == best),
            "first_solved_step": next((int(s) for s, v in curve if v >= SOLVED), None), "test_mean": test_mean,
            "test_std": test_std, "last_test_mean": last_test_mean, "curve": curve, **extra}


# ---- the workers: one seed, one library, in this process ---------------------------------------------------
def dlbasics_worker(seed: int, steps: int, out: Path) -> dict[str, Any]:
    """Train through the one loop into the run folder ``out`` and read the result back from it."""
    from dlbasics.train import commands
    from dlbasics.train.config import RunConfig
    from dlbasics.train.loop import Loop
    from dlbasics.train.rundir import read_metrics

    spent = [0.0]  # the resumable checkpoints' writes, inside result.seconds: timed here to be taken out
    save_checkpoint: Callable[[Loop], None] = Loop.save_checkpoint

    def timed_save_checkpoint(self: Loop) -> None:
        tick = time.perf_counter()
        save_checkpoint(self)
        spent[0] += time.perf_counter() - tick

    Loop.save_checkpoint = timed_save_checkpoint  # type: ignore[method-assign]
    cfg = RunConfig.from_options({"model": "dqn", "steps": steps, "seed": seed})
    result = commands.train(cfg, out=out, verbose=0)
    curve = [[int(r["step"]), r["val_return"]] for r in read_metrics(out) if "val_return" in r]
    evaluation = json.loads((out / "evaluation.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    done = scores(curve, result.seconds - spent[0], evaluation["best"]["return"], evaluation["best"]["return_std"],
                  evaluation["last"]["return"], checkpoint_seconds=spent[0])
    if abs(done["best_return"] - summary["best_val_return"]) > 1e-6:
        raise RuntimeError(f"metrics.csv's best {done['best_return']} is not summary.json's "
                           f"{summary['best_val_return']}")
    return done


def torch_worker(seed: int, steps: int, threads: int) -> dict[str, Any]:
    """Train the twin; the time of its two final 100-episode tests is measured and taken out of its seconds."""
    sys.path.insert(0, str(HERE))
    from twins import dqn as twin

    tests = [0.0]
    evaluate = twin.evaluate

    def timed_evaluate(q: Any, seeds: Any, max_steps: int = 500) -> Any:
        tick = time.perf_counter()
        returns = evaluate(q, seeds, max_steps)
        if int(seeds[0]) >= TEST_SEED:
            tests[0] += time.perf_counter() - tick
        return returns

    twin.evaluate = timed_evaluate  # train() looks the function up at each call
    r = twin.train(seed=seed, steps=steps, threads=threads)
    curve = [[int(t), mean] for t, mean, _ in r["curve"]]
    done = scores(curve, r["seconds"] - tests[0], r["test_mean"], r["test_std"], r["last_test_mean"],
                  episodes=r["episodes"])
    if done["best_return"] != r["best_return"] or done["best_step"] != r["best_step"]:
        raise RuntimeError(f"the twin's best {r['best_return']} at {r['best_step']} is not its curve's")
    return done


# ---- the parent: run every (seed, side), report -------------------------------------------------------------
def in_process(argv: list[str], threads: int) -> dict[str, Any]:
    return run_worker(__file__, argv, threads)


def run_all(args: argparse.Namespace) -> dict[str, dict[int, dict[str, Any]]]:
    results: dict[str, dict[int, dict[str, Any]]] = {side: {} for side, _ in SIDES}
    with tempfile.TemporaryDirectory(prefix="bench_rl-") as tmp:
        for seed in args.seeds:
            for side, label in SIDES:
                argv = ["--worker", side, "--seeds", str(seed), "--steps", str(args.steps), "--threads",
                        str(args.threads), "--out", str(Path(tmp) / f"dqn-seed{seed}")]
                r = results[side][seed] = in_process(argv, args.threads)
                print(f"seed {seed}, {label}: {r['seconds']:.1f} s, best {r['best_return']:.1f} at "
                      f"{r['best_step']:,}, test {r['test_mean']:.1f}", file=sys.stderr, flush=True)
    return results


def solved(r: dict[str, Any]) -> bool:
    return r["best_return"] >= SOLVED and r["test_mean"] >= SOLVED


def report(args: argparse.Namespace, results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    digits = 0 if min(r["seconds"] for side in results.values() for r in side.values()) >= 100 else 1
    lines = [f"DQN on CartPole-v1, {args.steps:,} environment steps, {args.threads} thread(s) per side; greedy "
             "evaluation on 10 fixed episodes every 1,000 steps, tests on 100 fresh episodes.", "",
             "| seed | side | seconds | best 10-episode mean | at step | first step >= 475 | "
             "test mean ± std (best snapshot, 100 episodes) | last model's test mean |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for seed in args.seeds:
        for side, label in SIDES:
            r = results[side][seed]
            first = "-" if r["first_solved_step"] is None else f"{r['first_solved_step']:,}"
            lines.append(f"| {seed} | {label} | {r['seconds']:.{digits}f} | {r['best_return']:.1f} | "
                         f"{r['best_step']:,} | {first} | {r['test_mean']:.1f} ± {r['test_std']:.1f} | "
                         f"{r['last_test_mean']:.1f} |")
    d, t = results["dlbasics"], results["torch"]
    ratios = ", ".join(f"seed {s} {d[s]['seconds'] / t[s]['seconds']:.2f}" for s in args.seeds)
    total_d, total_t = sum(r["seconds"] for r in d.values()), sum(r["seconds"] for r in t.values())
    n = len(args.seeds)
    lines += ["", f"Time dlbasics / PyTorch: {ratios}; overall {total_d:.{digits}f} s / {total_t:.{digits}f} s = "
                  f"{total_d / total_t:.2f}.",
              f"Solved (best evaluation >= 475 and test mean >= 475): dlbasics {sum(map(solved, d.values()))}/{n} "
              f"seeds, PyTorch {sum(map(solved, t.values()))}/{n} seeds.",
              "Seconds: training with the periodic evaluations, without the final tests (and without dlbasics' "
              f"resumable checkpoints: {sum(r['checkpoint_seconds'] for r in d.values()):.1f} s in all)."]
    return lines


def figure(results: dict[str, dict[int, dict[str, Any]]], steps: int, path: Path) -> None:
    """One panel per library: the 10-episode greedy mean against environment steps, one line per seed."""
    from matplotlib.figure import Figure

    from dlbasics.io import atomic_write_bytes

    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (side, label) in zip(axes, SIDES):
        for i, (seed, r) in enumerate(sorted(results[side].items())):
            steps_, returns = zip(*r["curve"])
            ax.plot(steps_, returns, color=f"C{i}", marker="o", markersize=2, label=f"seed {seed}")
        ax.axhline(SOLVED, color="grey", linestyle="--", linewidth=1, label=f"solved ({SOLVED:g})")
        ax.set_title(f"{label}, DQN on CartPole-v1, {steps:,} steps")
        ax.set_xlabel("environment step")
        ax.set_xlim(0, steps * 1.02)
        ax.set_ylim(0, 520)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("greedy return (mean of 10 evaluation episodes)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=50_000, help="environment steps per run (the recipe's: 50,000)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP and torch threads per worker")
    ap.add_argument("--figure", help="write the evaluation curves of both sides to this PNG")
    ap.add_argument("--json", metavar="OUT", help="write every worker's result as JSON to OUT")
    ap.add_argument("--worker", choices=[side for side, _ in SIDES], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads < 1 or args.steps < 1:
        ap.error("--threads and --steps must be >= 1")
    if args.worker:
        seed = args.seeds[0]
        run = (dlbasics_worker(seed, args.steps, Path(args.out)) if args.worker == "dlbasics"
               else torch_worker(seed, args.steps, args.threads))
        print(json.dumps(run))
        return
    results = run_all(args)
    print("\n".join(report(args, results)))
    if args.figure:
        figure(results, args.steps, Path(args.figure))
    if args.json:
        from dlbasics.io import atomic_write_bytes

        data = {"steps": args.steps, "threads": args.threads, "seeds": args.seeds,
                "runs": {side: [{"seed": s, **r} for s, r in sorted(results[side].items())] for side, _ in SIDES}}
        atomic_write_bytes(Path(args.json), json.dumps(data, indent=1).encode())


if __name__ == "__main__":
    main()
