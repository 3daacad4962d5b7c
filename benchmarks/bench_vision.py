"""A zoo vision model's recipe on Fashion-MNIST end to end: ``dlbasics train --model NAME`` through the library's
one loop, and the same model, data, recipe and schedule in PyTorch (the model's twin in ``benchmarks/twins``), each
in its own process, in one run: test accuracy and wall time side by side.

    python benchmarks/bench_vision.py --model vit                     # the recipe: 5 epochs of 50,000 images
    python benchmarks/bench_vision.py --model vit --epochs 2 --train-size 10000

Both sides read the same standardized images (``dlbasics.data.datasets.fashion_mnist``), shuffle with their own
generators, step the recipe's schedule per step (linear warm-up, then a cosine to 0) and clip gradients at its norm.
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


def recipe(name: str) -> dict[str, Any]:
    from dlbasics.models.registry import info

    return info(name).recipe


def data(train_size: int | None) -> tuple[Any, Any]:
    from dlbasics.data import Subset
    from dlbasics.data.datasets import fashion_mnist

    splits = fashion_mnist()
    train = splits.train if train_size is None else Subset(splits.train, np.arange(train_size))
    return train, splits.test


def arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    from dlbasics.data import DataLoader

    x, y = next(iter(DataLoader(dataset, batch_size=len(dataset))))
    return x.data, y.data


def torch_run(name: str, epochs: int, train_size: int | None, seed: int = 0) -> dict[str, float]:
    import torch

    sys.path.insert(0, str(HERE))
    twin = __import__(f"twins.{name}", fromlist=[name])
    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    r = recipe(name)
    train, test = data(train_size)
    x, y = map(torch.tensor, arrays(train))
    xt, yt = map(torch.tensor, arrays(test))
    model = getattr(twin, name)(1, 28, 10)
    opt = torch.optim.AdamW(model.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
    batch, warmup = r["batch_size"], r["warmup"]
    total = epochs * math.ceil(len(x) / batch)

    def lam(t: int) -> float:
        if t < warmup:
            return t / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (t - warmup) / max(1, total - warmup))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), r["clip_grad_norm"])
            opt.step()
            sched.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum()) for i in range(0, len(xt), 1000))
    return {"accuracy": correct / len(xt), "seconds": seconds}


def dlbasics_run(name: str, epochs: int, train_size: int | None) -> dict[str, float]:
    from dlbasics.data import DataLoader
    from dlbasics.train.commands import _prepare
    from dlbasics.train.config import RunConfig
    from dlbasics.train.run import train_run

    cfg, _, builder = _prepare(RunConfig.from_options(model=name, data="fashion-mnist", epochs=epochs))
    train, test = data(train_size)
    start = time.perf_counter()
    run, _ = train_run(builder, train, None, seed=cfg.seed)
    seconds = time.perf_counter() - start
    return {"accuracy": run.task.evaluate(DataLoader(test, batch_size=1000))["accuracy"], "seconds": seconds}


def in_process(lib: str, name: str, epochs: int, train_size: int | None) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS))
    argv = [sys.executable, __file__, "--worker", lib, "--model", name, "--epochs", str(epochs)]
    argv += ["--train-size", str(train_size)] if train_size else []
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="vit", choices=["vit"])
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--train-size", type=int, help="the first N training images (default all 50,000)")
    ap.add_argument("--worker", choices=["torch", "dlbasics"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    epochs = args.epochs or recipe(args.model)["epochs"]
    if args.worker:
        run = torch_run if args.worker == "torch" else dlbasics_run
        print(json.dumps(run(args.model, epochs, args.train_size)))
        return
    t = in_process("torch", args.model, epochs, args.train_size)
    d = in_process("dlbasics", args.model, epochs, args.train_size)
    print("| model | epochs | train images | test acc dlbasics | test acc PyTorch | s dlbasics | s PyTorch | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.model} | {epochs} | {args.train_size or 50000} | {d['accuracy']:.4f} | {t['accuracy']:.4f} | "
          f"{d['seconds']:.0f} | {t['seconds']:.0f} | {d['seconds'] / t['seconds']:.2f} |")


if __name__ == "__main__":
    main()
