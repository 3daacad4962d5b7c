"""The language-model recipes end to end: dlbasics' ``dlbasics train --model NAME`` and the same recipe written
once in PyTorch (the model's twin in ``benchmarks/twins``), each in its own process, in one run: final
validation loss and wall time side by side.

    python benchmarks/bench_recipes.py                      # gpt and char_lstm, the full 2000 steps
    python benchmarks/bench_recipes.py --steps 200 --models gpt
    python benchmarks/bench_recipes.py --write docs/benchmarks.md

The recipe is the zoo's (read from the model's registration, nanoGPT's CPU run; the char-LSTM's at char-rnn's lr
2e-3): Tiny Shakespeare as characters, 90/10 split, windows of 64, batch 12, AdamW (lr 1e-3, betas (0.9, 0.99),
weight decay 0.1 on matrices and embeddings), linear warm-up over 100 steps then a cosine to 1e-4, gradient norm
clipped at 1.0; the validation loss is the mean next-character cross-entropy over the validation text's non-
overlapping windows, as dlbasics reports it. The PyTorch side draws its training windows from the same set of
starts, shuffled by its own generator (nanoGPT's get_batch draws with replacement; this is the same distribution
without it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
THREADS = 2
STEPS = 2000


def recipe(name: str) -> dict[str, Any]:
    """The zoo's recipe for ``name`` (``@register(..., recipe=...)``), so the PyTorch side cannot drift from it."""
    from dlbasics.models.registry import info

    return info(name).recipe


def torch_run(name: str, steps: int, eval_every: int, seed: int = 0) -> dict[str, Any]:
    """The recipe in PyTorch: the validation loss every ``eval_every`` steps with the wall time so far
    (training + evaluations), and the final one."""
    import torch

    sys.path.insert(0, str(HERE))
    from twins import char_lstm, gpt

    import dlbasics.data.text as text  # the same corpus and split (data only; the model and loop are torch's)

    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    corpus = text.shakespeare()
    r = recipe(name)
    block, batch = r["block_size"], r["batch_size"]
    train = torch.tensor(corpus.train)
    val = torch.tensor(corpus.val)
    model = {"gpt": gpt.gpt, "char_lstm": char_lstm.char_lstm}[name](vocab_size=corpus.vocab_size, block_size=block)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": r["weight_decay"]}, {"params": rest, "weight_decay": 0}],
                            lr=r["lr"], betas=r["betas"])
    floor = r["min_lr"] / r["lr"]

    def lam(t: int) -> float:
        if t < r["warmup"]:
            return t / r["warmup"]
        progress = min(1.0, (t - r["warmup"]) / max(1, steps - r["warmup"]))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    gen = torch.Generator().manual_seed(seed)
    n_windows = len(train) - block
    order = torch.randperm(n_windows, generator=gen)
    offsets = torch.arange(block)

    def validate() -> float:
        model.eval()
        starts = torch.arange(0, len(val) - block, block)  # the non-overlapping validation windows
        total, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(starts), 512):
                idx = starts[i:i + 512, None] + offsets
                out = model(val[idx])
                total += float(torch.nn.functional.cross_entropy(out.reshape(-1, corpus.vocab_size),
                                                                 val[idx + 1].reshape(-1))) * len(idx)
                count += len(idx)
        model.train()
        return total / count

    curve = []
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        if (step + 1) * batch > len(order):
            order = torch.cat([order, torch.randperm(n_windows, generator=gen)])
        idx = order[step * batch:(step + 1) * batch, None] + offsets
        x, y = train[idx], train[idx + 1]
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, corpus.vocab_size), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), r["clip_grad_norm"])
        opt.step()
        sched.step()
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            curve.append((step + 1, time.perf_counter() - start, validate()))
    return {"val_loss": curve[-1][2], "seconds": curve[-1][1], "curve": curve}


def dlbasics_run(name: str, steps: int, eval_every: int) -> dict[str, Any]:
    """The zoo's run of ``name`` (its recipe, ``--steps`` and ``--eval-every`` as given) through the library's
    one loop, the validation loss at each evaluation with the wall time so far."""
    from dlbasics.train import Callback
    from dlbasics.train.commands import _prepare
    from dlbasics.train.config import RunConfig
    from dlbasics.train.run import train_run

    class Clock(Callback):
        def __init__(self) -> None:
            self.start, self.curve = time.perf_counter(), []

        def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
            self.curve.append((int(logs["step"]), time.perf_counter() - self.start, float(logs["val_loss"])))

    cfg, splits, builder = _prepare(RunConfig.from_options(model=name, steps=steps, eval_every=eval_every))
    clock = Clock()
    train_run(builder, splits.train, splits.val, seed=cfg.seed, callbacks=[clock])
    return {"val_loss": clock.curve[-1][2], "seconds": clock.curve[-1][1], "curve": clock.curve}


def worker(lib: str, name: str, steps: int, eval_every: int) -> dict[str, Any]:
    return (torch_run if lib == "torch" else dlbasics_run)(name, steps, eval_every)


def in_process(lib: str, name: str, steps: int, eval_every: int) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS))
    out = subprocess.run([sys.executable, __file__, "--worker", lib, name, "--steps", str(steps), "--eval-every",
                          str(eval_every)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def plot(results: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    """Validation loss against wall-clock seconds, one line per model and library."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for name, libs in results.items():
        for lib, r in libs.items():
            _, secs, loss = zip(*r["curve"])
            ax.plot(secs, loss, marker="o", markersize=3, linestyle="-" if lib == "dlbasics" else "--",
                    label=f"{name}, {'dlbasics' if lib == 'dlbasics' else 'PyTorch'}")
    ax.axhline(2.48, color="gray", linewidth=0.8, linestyle=":", label="add-one bigram (2.48)")
    ax.set_xlabel("wall-clock seconds (training + evaluations)")
    ax.set_ylabel("validation loss (nats / character)")
    ax.set_title("Tiny Shakespeare, the zoo's recipe, 2 CPU threads")
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["gpt", "char_lstm"], choices=["gpt", "char_lstm"])
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--worker", nargs=2, metavar=("LIB", "NAME"), help=argparse.SUPPRESS)
    ap.add_argument("--write", metavar="MD", help="also write the table into this Markdown file")
    ap.add_argument("--figure", metavar="PNG", help="also draw validation loss against wall-clock time")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.steps, args.eval_every)))
        return
    results: dict[str, dict[str, dict[str, Any]]] = {}
    rows = []
    for name in args.models:
        t = in_process("torch", name, args.steps, args.eval_every)
        d = in_process("dlbasics", name, args.steps, args.eval_every)
        results[name] = {"dlbasics": d, "torch": t}
        rows.append(f"| {name} | {args.steps} | {d['val_loss']:.3f} | {t['val_loss']:.3f} | {d['seconds']:.0f} | "
                    f"{t['seconds']:.0f} | {d['seconds'] / t['seconds']:.2f} |")
    md = "\n".join(["| model | steps | val loss dlbasics | val loss PyTorch | seconds dlbasics | seconds PyTorch | "
                    "time ratio |", "|---|---:|---:|---:|---:|---:|---:|", *rows])
    print(md)
    if args.figure:
        plot(results, Path(args.figure))
    if args.write:
        write_table(args.write, md, args)


START, END = "<!-- bench_recipes:start -->", "<!-- bench_recipes:end -->"


def write_table(path: str, md: str, args: argparse.Namespace) -> None:
    import torch

    command = "python benchmarks/bench_recipes.py" + (f" --steps {args.steps}" if args.steps != STEPS else "")
    command += f" --figure {args.figure}" if args.figure else ""
    block = (f"{START}\nCommand: `{command} --write {path}`  \nThe recipe end to end (training with a validation "
             f"pass every {args.eval_every} steps), {THREADS} threads, each library in its own process. NumPy "
             f"{np.__version__}, PyTorch {torch.__version__}; {time.strftime('%Y-%m-%d')}.\n\n{md}\n{END}")
    p = Path(path)
    text = p.read_text()
    if START in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Language-model recipes\n\n" + block + "\n"
    p.write_text(text)


if __name__ == "__main__":
    main()
