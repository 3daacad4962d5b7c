"""The GANs and SimCLR on Fashion-MNIST end to end, dlbasics beside its PyTorch twin (``benchmarks/twins``), each in its
own process, in one run: training time and quality side by side, both scored by the same dlbasics code.

    python benchmarks/bench_generative.py --model gan --steps 10000 --eval-at 2000 5000 10000
    python benchmarks/bench_generative.py --model dcgan --eval-at 1000 5000 --figure docs/figures/dcgan_samples.png
    python benchmarks/bench_generative.py --model simclr                     # its recipe: 10 epochs of 20,000 images

GANs: both sides train the zoo's recipe (batch 64, Adam 2e-4, betas (0.5, 0.999); D then G on every batch), dlbasics
through its one loop (``train_run``, the adversarial task), PyTorch with the same step
(``twins.gan.adversarial_step``). At each ``--eval-at`` step each side generates 2,000 images from the same fixed
noise (the time this takes is not counted), and the parent scores them against 2,000 test images with
``train.generative_metrics``: FD_clf, IS_clf, classes with >= 2%, largest class share, precision, recall; beside
the references (2,000 held-out validation images, and uniform noise).

SimCLR: both sides train 10 epochs of the same 20,000 images with the same augmentation code (``data.augment``,
NumPy, counted in both times), batch 256, Adam 1e-3, NT-Xent at tau 0.5; then the parent fits the linear probes on
each side's frozen features (``train.probe``), with all labels and with 100 per class, beside raw pixels and the
same encoder at its random initialization.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from workers import run_worker

HERE = Path(__file__).resolve().parent
THREADS = 2
EVAL_SAMPLES = 2000


def recipe(name: str) -> dict[str, Any]:
    from dlbasics.models.registry import info

    return info(name).recipe


def noise(latent_dim: int = 64) -> np.ndarray:
    """The fixed evaluation noise both sides generate from."""
    return np.random.default_rng(0).standard_normal((EVAL_SAMPLES, latent_dim), dtype=np.float32)


def images(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    from dlbasics.data import DataLoader

    x, y = next(iter(DataLoader(dataset, batch_size=len(dataset))))
    return x.data, y.data


# ---- GAN workers: train, and save 2,000 samples at each evaluation step -----------------------------------
def gan_torch(name: str, steps: int, eval_at: list[int], out: Path, seed: int) -> dict[str, Any]:
    import torch

    from dlbasics.data.datasets import fashion_mnist

    sys.path.insert(0, str(HERE))
    twins = __import__("twins.gan", fromlist=["gan"])
    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    r = recipe(name)
    x = torch.tensor(images(fashion_mnist().train)[0])
    model = getattr(twins, name)(1, 28)
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=r["lr"], betas=tuple(r["betas"]))
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=r["lr"], betas=tuple(r["betas"]))
    gen, batch, z_eval = torch.Generator().manual_seed(seed), r["batch_size"], torch.tensor(noise())
    step, seconds, samples = 0, 0.0, {}
    while step < steps:
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            start = time.perf_counter()
            real = x[order[i:i + batch]]
            twins.adversarial_step(model, opt_g, opt_d, real, torch.randn(len(real), model.latent_dim, generator=gen))
            seconds += time.perf_counter() - start
            step += 1
            if step in eval_at:
                model.eval()
                with torch.no_grad():
                    samples[f"step{step}"] = model.generate(z_eval).numpy()
                model.train()
            if step >= steps:
                break
    np.savez(out, **samples)
    return {"seconds": seconds}


def gan_dlbasics(name: str, steps: int, eval_at: list[int], out: Path, seed: int) -> dict[str, Any]:
    from dlbasics.data.datasets import fashion_mnist
    from dlbasics.train.callbacks import Callback
    from dlbasics.train.commands import _prepare
    from dlbasics.train.config import RunConfig
    from dlbasics.train.run import train_run
    from dlbasics.train.task import evaluating

    samples, spent = {}, [0.0]
    z_eval = noise()

    class Sample(Callback):  # at each row of the history: the steps in eval_at
        def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
            start = time.perf_counter()
            if int(logs["step"]) in eval_at:
                with evaluating(self.model):
                    samples[f"step{int(logs['step'])}"] = self.model.generate(z_eval).data
            spent[0] += time.perf_counter() - start

    every = int(np.gcd.reduce(eval_at))
    cfg, _, builder = _prepare(RunConfig.from_options(model=name, steps=steps, eval_every=every, seed=seed))
    start = time.perf_counter()
    train_run(builder, fashion_mnist().train, None, seed=cfg.seed, callbacks=[Sample()])
    seconds = time.perf_counter() - start - spent[0]
    np.savez(out, **samples)
    return {"seconds": seconds}


# ---- SimCLR workers: train, and save the frozen features of the train and test images ---------------------
def simclr_data(train_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from dlbasics.data.datasets import fashion_mnist

    splits = fashion_mnist(train_size=train_size)
    return (*images(splits.train), *images(splits.test))


def simclr_torch(epochs: int, train_size: int, out: Path, seed: int) -> dict[str, Any]:
    import torch

    from dlbasics.data.augment import simclr_augment

    sys.path.insert(0, str(HERE))
    twins = __import__("twins.simclr", fromlist=["simclr"])
    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    r = recipe("simclr")
    x, _, xt, _ = simclr_data(train_size)
    model = twins.simclr(1)
    opt = torch.optim.Adam(model.parameters(), lr=r["lr"])
    augment = simclr_augment(np.random.default_rng([seed, 3]))
    rng, batch = np.random.default_rng(seed), r["batch_size"]
    start = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            xb = x[order[i:i + batch]]
            loss = twins.contrastive_loss(model, torch.tensor(augment(xb)), torch.tensor(augment(xb)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        feats = [np.concatenate([model.features(torch.tensor(a[i:i + 1000])).numpy() for i in range(0, len(a), 1000)])
                 for a in (x, xt)]
    np.savez(out, train=feats[0], test=feats[1])
    return {"seconds": seconds}


def simclr_dlbasics(epochs: int, train_size: int, out: Path, seed: int) -> dict[str, Any]:
    from dlbasics.train.commands import _prepare
    from dlbasics.train.config import RunConfig
    from dlbasics.train.probe import encode
    from dlbasics.train.run import train_run

    cfg, splits, builder = _prepare(RunConfig.from_options(model="simclr", epochs=epochs, train_size=train_size,
                                                           seed=seed))
    start = time.perf_counter()
    run, _ = train_run(builder, splits.train, None, seed=cfg.seed)
    seconds = time.perf_counter() - start
    np.savez(out, train=encode(run.model.features, splits.train), test=encode(run.model.features, splits.test))
    return {"seconds": seconds}


# ---- the parent: run both, score both ----------------------------------------------------------------------
def in_process(argv: list[str]) -> dict[str, Any]:
    return run_worker(__file__, argv, THREADS)


def gan_report(args: argparse.Namespace, tmp: Path) -> list[str]:
    from dlbasics.data.datasets import fashion_mnist
    from dlbasics.train.generative_metrics import SampleEvaluator, reference_scores

    splits = fashion_mnist()
    test = images(splits.test)[0][:EVAL_SAMPLES]
    val = images(splits.val)[0][:EVAL_SAMPLES]
    scorer = SampleEvaluator(test)
    results, samples = {}, {}
    for lib in ("torch", "dlbasics"):
        out = tmp / f"{lib}.npz"
        results[lib] = in_process(["--worker", lib, "--model", args.model, "--steps", str(args.steps), "--seed",
                                   str(args.seed), "--eval-at", *map(str, args.eval_at), "--out", str(out)])
        samples[lib] = dict(np.load(out, allow_pickle=False))
    refs = reference_scores(val, test)
    keys = ("fd", "is", "classes", "largest_share", "precision", "recall")
    lines = [f"| samples ({args.model}, seed {args.seed}) | FD_clf | IS_clf | classes >= 2% | largest share | "
             "precision | recall |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, s in (("real vs real", refs["real"]), ("uniform noise", refs["noise"])):
        lines.append(f"| {name} | " + " | ".join(_fmt(s[k]) for k in keys) + " |")
    for step in args.eval_at:
        for lib, label in (("dlbasics", "dlbasics"), ("torch", "PyTorch")):
            s = scorer(samples[lib][f"step{step}"])
            lines.append(f"| {label}, {step:,} steps | " + " | ".join(_fmt(s[k]) for k in keys) + " |")
    d, t = results["dlbasics"]["seconds"], results["torch"]["seconds"]
    lines.append(f"\nTraining time for {args.steps:,} steps: dlbasics {d:.0f} s, PyTorch {t:.0f} s "
                 f"(ratio {d / t:.2f}).")
    if args.figure:
        figure(samples, args.eval_at[-1], args.model, Path(args.figure))
    return lines


def figure(samples: dict[str, dict[str, np.ndarray]], step: int, model: str, path: Path) -> None:
    """The first 64 samples of each side at ``step``, side by side."""
    import io

    from matplotlib.figure import Figure

    from dlbasics.io import atomic_write_bytes
    from dlbasics.train.adversarial import make_grid

    fig = Figure(figsize=(8, 4.3), layout="constrained")
    for ax, (lib, label) in zip(fig.subplots(1, 2), (("dlbasics", "dlbasics"), ("torch", "PyTorch twin"))):
        ax.imshow(make_grid(samples[lib][f"step{step}"][:64])[0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{label}, {model}, {step:,} steps")
        ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())


def simclr_report(args: argparse.Namespace, tmp: Path) -> list[str]:
    from dlbasics import manual_seed, models
    from dlbasics.train.probe import encode, labels_per_class_subset, linear_probe

    x, y, xt, yt = simclr_data(args.train_size)
    subset = labels_per_class_subset(y, 100, seed=0)

    def probes(h: np.ndarray, ht: np.ndarray) -> tuple[float, float]:
        return linear_probe(h, y, ht, yt), linear_probe(h[subset], y[subset], ht, yt)

    rows = {"raw pixels": probes(x.reshape(len(x), -1), xt.reshape(len(xt), -1))}
    manual_seed(args.seed)
    random_init = models.create("simclr", in_channels=1)
    rows["randomly initialised encoder"] = probes(encode(random_init.features, x), encode(random_init.features, xt))
    seconds = {}
    for lib, label in (("dlbasics", "SimCLR, dlbasics"), ("torch", "SimCLR, PyTorch twin")):
        out = tmp / f"{lib}.npz"
        seconds[lib] = in_process(["--worker", lib, "--model", "simclr", "--epochs", str(args.epochs),
                                   "--train-size", str(args.train_size), "--seed", str(args.seed),
                                   "--out", str(out)])["seconds"]
        f = np.load(out, allow_pickle=False)
        rows[label] = probes(f["train"], f["test"])
    lines = [f"| features ({args.train_size:,} training images, {args.epochs} epochs) | all labels | "
             "100 labels per class |", "|---|---:|---:|"]
    lines += [f"| {k} | {a:.1%} | {b:.1%} |" for k, (a, b) in rows.items()]
    d, t = seconds["dlbasics"], seconds["torch"]
    lines.append(f"\nTraining time: dlbasics {d:.0f} s, PyTorch {t:.0f} s (ratio {d / t:.2f}), augmentation included.")
    return lines


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="gan", choices=["gan", "dcgan", "simclr"])
    ap.add_argument("--steps", type=int, help="GANs: training steps (default the recipe's)")
    ap.add_argument("--eval-at", type=int, nargs="+", help="GANs: the steps to score (default the last)")
    ap.add_argument("--epochs", type=int, help="SimCLR: epochs (default the recipe's)")
    ap.add_argument("--train-size", type=int, help="SimCLR: training images (default the recipe's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--figure", help="GANs: write the last evaluation's samples of both sides to this PNG")
    ap.add_argument("--worker", choices=["torch", "dlbasics"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    r = recipe(args.model)
    args.steps = args.steps or r.get("steps")
    args.eval_at = sorted(args.eval_at or [args.steps]) if args.model != "simclr" else []
    args.epochs = args.epochs or r.get("epochs")
    args.train_size = args.train_size or r.get("train_size")
    if args.worker:
        out = Path(args.out)
        if args.model == "simclr":
            run = simclr_torch if args.worker == "torch" else simclr_dlbasics
            print(json.dumps(run(args.epochs, args.train_size, out, args.seed)))
        else:
            run = gan_torch if args.worker == "torch" else gan_dlbasics
            print(json.dumps(run(args.model, args.steps, args.eval_at, out, args.seed)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        report = simclr_report if args.model == "simclr" else gan_report
        print("\n".join(report(args, Path(tmp))))


if __name__ == "__main__":
    main()
