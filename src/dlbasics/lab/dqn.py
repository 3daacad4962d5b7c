"""DQN: a deep Q-network learns to balance the pole of CartPole-v1 from its four state variables and a reward of 1 a
step.

Claim (Mnih et al. 2015): Q-learning with a deep network - made stable by experience replay and a target network -
learns control from reward alone. On CartPole-v1, "solved" means a mean return of at least 475 of the possible 500.
rl-baselines3-zoo's tuned DQN scores 500 +- 0 after 50k steps; CleanRL's dqn.py 488.7 +- 16.1 after 500k.

Method: ``dlbasics train --model dqn`` (the zoo's settings: Adam 2.3e-3, batch 64, replay 100k, 1,000 random steps,
target copied every 10 steps, 128 updates every 256 steps, epsilon 1 -> 0.04 over 16% of the run, Q-network
256-256) for ``steps`` environment steps on each of ``seeds``. Every 1,000 steps the greedy policy plays the 10
fixed evaluation episodes; the best evaluation's snapshot is kept, and it and the last agent each play 100 fresh
test episodes. A seed "needed the best snapshot" when its best snapshot solves the test and its last agent does not:
DQN's greedy score swings and can collapse late.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlbasics.lab.base import Finding, command_for, new_figure, save_figure

NAME = "dqn"
TITLE = "DQN: deep Q-learning balances CartPole"
CLAIM = ("A deep Q-network with experience replay and a target network learns CartPole-v1 from reward alone: with "
         "rl-baselines3-zoo's settings every seed reaches a greedy mean return >= 475 within 50k steps, and keeping "
         "the best evaluated snapshot guards against DQN's late collapses.")

SIZES = {False: {"steps": 50_000, "seeds": (0, 1, 2)}, True: {"steps": 3000, "seeds": (0,)}}
SOLVED = 475.0


def train_seed(out: Path, steps: int, seed: int) -> dict[str, Any]:
    """One run of the zoo's DQN into ``out``; its numbers: best evaluation and its step, the first step that reached
    ``SOLVED``, and the best snapshot's and the last agent's 100 test episodes."""
    import json

    from dlbasics.train import commands
    from dlbasics.train.config import RunConfig
    from dlbasics.train.rundir import read_metrics

    result = commands.train(RunConfig.from_options({"model": "dqn", "steps": steps, "seed": seed}), out=out, verbose=0)
    rows = [r for r in read_metrics(out) if "val_return" in r]
    best = max(rows, key=lambda r: r["val_return"])  # max keeps the first of equals: the snapshot the run kept
    solved_at = next((int(r["step"]) for r in rows if r["val_return"] >= SOLVED), None)
    evaluation = json.loads((out / "evaluation.json").read_text())
    return {"rows": rows, "seconds": result.seconds, "best": best["val_return"], "best_step": int(best["step"]),
            "solved_at": solved_at, "test_best": evaluation["best"]["return"],
            "test_best_std": evaluation["best"]["return_std"], "test_last": evaluation["last"]["return"],
            "final_eval": rows[-1]["val_return"]}


def run(out_dir: str | Path, quick: bool = False, seed: int = 0) -> Finding:
    out_dir = Path(out_dir)
    size = SIZES[quick]
    seeds = [seed + s for s in size["seeds"]]
    runs = {s: train_seed(out_dir / f"seed-{s}", size["steps"], s) for s in seeds}

    from dlbasics.train.reinforcement import returns_figure

    fig, ax = new_figure(1, 1, figsize=(8, 4.2))
    returns_figure([(f"seed {s}", r["rows"]) for s, r in runs.items()], f"DQN on CartPole-v1, {len(seeds)} seeds",
                   SOLVED, ax=ax)
    figures = [save_figure(fig, out_dir, "dqn_returns")]

    numbers: dict[str, float | int | str] = {"steps": size["steps"], "seeds": len(seeds)}
    lines = ["| seed | best 10-episode mean (step) | first >= 475 | best snapshot, 100 episodes | last agent, 100 "
             "episodes | time |", "|---:|---:|---:|---:|---:|---:|"]
    rescued = []
    for s, r in runs.items():
        numbers |= {f"seed{s}_best": r["best"], f"seed{s}_best_step": r["best_step"],
                    f"seed{s}_solved_at": r["solved_at"] if r["solved_at"] is not None else "never",
                    f"seed{s}_test_best": round(r["test_best"], 1), f"seed{s}_test_last": round(r["test_last"], 1),
                    f"seed{s}_seconds": round(r["seconds"], 1)}
        if r["test_best"] >= SOLVED > r["test_last"]:
            rescued.append(s)
        lines.append(f"| {s} | {r['best']:.1f} ({r['best_step']:,}) | "
                     f"{'never' if r['solved_at'] is None else format(r['solved_at'], ',')} | "
                     f"{r['test_best']:.1f} ± {r['test_best_std']:.1f} | {r['test_last']:.1f} | {r['seconds']:.0f} s |")
    solved = [s for s, r in runs.items() if r["best"] >= SOLVED and r["test_best"] >= SOLVED]
    numbers |= {"solved_seeds": len(solved), "needed_best_snapshot": ", ".join(map(str, rescued)) or "none"}
    verdict = (f"{len(solved)} of {len(seeds)} seeds solved CartPole-v1 (best evaluation >= 475 and 100 fresh "
               f"episodes of that snapshot >= 475) within {size['steps']:,} steps.")
    rescue = (f"Seed(s) {', '.join(map(str, rescued))} needed the best-snapshot rule: the last agent scored below 475."
              if rescued else "No seed needed the best-snapshot rule this time: every last agent also scored >= 475 "
              "(the curves still show how far the greedy score swings between evaluations).")
    summary = "\n".join([verdict, "", *lines, "", rescue,
                         "Reference points: rl-baselines3-zoo 500 ± 0 at 50k steps; CleanRL 488.7 ± 16.1 at 500k."])
    return Finding(NAME, TITLE, CLAIM, numbers, figures, summary, command_for(NAME, out_dir, quick, seed))
