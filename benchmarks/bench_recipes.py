"""The language-model recipes end to end: dlbasics' ``dlbasics train --model NAME`` and the same recipe written
once in PyTorch (the model's twin in ``benchmarks/twins``), each in its own process, in one run: final
validation loss and wall time side by side.

    python benchmarks/bench_recipes.py                      # gpt and char_lstm, the full 2000 steps
    python benchmarks/bench_recipes.py --steps 200 --models gpt
    python benchmarks/bench_recipes.py --write docs/benchmarks.md

The recipe (the zoo's, nanoGPT's CPU run): Tiny Shakespeare as characters, 90/10 split, windows of 64, batch
12, AdamW (lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on matrices and embeddings), linear warm-up over 100
steps then a cosine to 1e-4, gradient norm clipped at 1.0; the validation loss is the mean next-character
cross-entropy over the validation text's non-overlapping windows, as dlbasics reports it. The PyTorch side draws
its training windows from the same set of starts, shuffled by its own generator (nanoGPT's get_batch draws
with replacement; this is the same distribution without it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
THREADS = 2
RECIPE = {"steps": 2000, "batch": 12, "block": 64, "lr": 1e-3, "min_lr": 1e-4, "warmup": 100, "betas": (0.9, 0.99),
          "weight_decay": 0.1, "clip": 1.0}


def torch_run(name: str, steps: int, seed: int = 0) -> dict[str, float]:
    """The recipe in PyTorch: returns the final validation loss and the wall time of training + evaluation."""
    import torch

    sys.path.insert(0, str(HERE))
    from twins import char_lstm, gpt

    import dlbasics.data.text as text  # the same corpus and split (data only; the model and loop are torch's)

    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    corpus = text.shakespeare()
    r = RECIPE
    block, batch = r["block"], r["batch"]
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
        torch.nn.utils.clip_grad_norm_(model.parameters(), r["clip"])
        opt.step()
        sched.step()
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
    return {"val_loss": total / count, "seconds": time.perf_counter() - start}


def dlbasics_run(name: str, steps: int) -> dict[str, float]:
    """``dlbasics train --model NAME --steps STEPS`` in a fresh process: its summary and timing."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS))
        subprocess.run([sys.executable, "-m", "dlbasics.cli", "train", "--model", name, "--steps", str(steps),
                        "--eval-every", str(steps), "--quiet", "--out", str(out)], check=True, env=env)
        summary = json.loads((out / "summary.json").read_text())
        timing = json.loads((out / "timing.json").read_text())
        return {"val_loss": summary["val_loss"], "seconds": timing["seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["gpt", "char_lstm"], choices=["gpt", "char_lstm"])
    ap.add_argument("--steps", type=int, default=RECIPE["steps"])
    ap.add_argument("--torch-worker", metavar="NAME", help=argparse.SUPPRESS)
    ap.add_argument("--write", metavar="MD", help="also write the table into this Markdown file")
    args = ap.parse_args()
    if args.torch_worker:
        print(json.dumps(torch_run(args.torch_worker, args.steps)))
        return
    rows = []
    for name in args.models:
        env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS))
        t = json.loads(subprocess.run([sys.executable, __file__, "--torch-worker", name, "--steps", str(args.steps)],
                                      capture_output=True, text=True, env=env, check=True).stdout.splitlines()[-1])
        d = dlbasics_run(name, args.steps)
        rows.append(f"| {name} | {args.steps} | {d['val_loss']:.3f} | {t['val_loss']:.3f} | {d['seconds']:.0f} | "
                    f"{t['seconds']:.0f} | {d['seconds'] / t['seconds']:.2f} |")
    md = "\n".join(["| model | steps | val loss dlbasics | val loss PyTorch | seconds dlbasics | seconds PyTorch | "
                    "time ratio |", "|---|---:|---:|---:|---:|---:|---:|", *rows])
    print(md)
    if args.write:
        write_table(args.write, md, args)


START, END = "<!-- bench_recipes:start -->", "<!-- bench_recipes:end -->"


def write_table(path: str, md: str, args: argparse.Namespace) -> None:
    import torch

    command = "python benchmarks/bench_recipes.py" + (f" --steps {args.steps}" if args.steps != RECIPE["steps"] else "")
    block = (f"{START}\nCommand: `{command} --write {path}`  \nThe recipe end to end (training, then the validation "
             f"pass), {THREADS} threads, each library in its own process. NumPy {np.__version__}, PyTorch "
             f"{torch.__version__}; {time.strftime('%Y-%m-%d')}.\n\n{md}\n{END}")
    p = Path(path)
    text = p.read_text()
    if START in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Language-model recipes\n\n" + block + "\n"
    p.write_text(text)


if __name__ == "__main__":
    main()
