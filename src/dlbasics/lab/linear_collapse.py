"""Stacked linear layers collapse into one: depth without a nonlinearity buys nothing.

Claim: x -> W_K(...(W_2(W_1 x + b_1) + b_2)...) + b_K equals the single map x -> W x + b with
W = W_K ... W_2 W_1 and b = W_K(...(W_2 b_1 + b_2)...) + b_K, so a deep linear network can only draw a
straight decision boundary; one nonlinearity between two layers is what lets a network bend it.
Method: four ``nn.Linear`` layers (2-16-16-16-2) are multiplied out into one (W, b) and their outputs
compared, before and after training. On two-moons and XOR, the deep linear stack, a plain linear classifier
and an MLP with one ReLU hidden layer (64 units) are trained the same way (full-batch Adam, cross-entropy)
and their test accuracies and decision regions compared.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np

import dlbasics as dl
from dlbasics import nn, optim
from dlbasics.data.dataset import DatasetInfo, Splits
from dlbasics.data.datasets import make_splits, moons
from dlbasics.lab.base import Finding, command_for, new_figure, save_figure, train_full_batch

NAME = "linear-collapse"
TITLE = "Linear layers collapse: a deep linear network is one linear map"
CLAIM = ("A stack of linear layers without activations equals a single linear layer, so it classifies no better "
         "than a linear classifier; one nonlinearity is what makes depth useful.")

DEPTH, WIDTH, HIDDEN = 4, 16, 64
MODELS = {"linear": "linear classifier (1 layer)", "deep_linear": f"{DEPTH} linear layers, no activation",
          "relu_mlp": f"1 ReLU hidden layer ({HIDDEN})"}


def deep_linear(depth: int = DEPTH, width: int = WIDTH, in_features: int = 2, out_features: int = 2) -> nn.Sequential:
    sizes = [in_features] + [width] * (depth - 1) + [out_features]
    return nn.Sequential(*(nn.Linear(a, b) for a, b in itertools.pairwise(sizes)))


def collapse(stack: nn.Sequential) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) of the one linear map a stack of Linear layers computes: W ← W_k W, b ← W_k b + b_k (float64)."""
    first = stack[0]
    W, b = np.eye(first.in_features), np.zeros(first.in_features)
    for layer in stack:
        Wk = layer.weight.data.astype(np.float64)
        bk = layer.bias.data.astype(np.float64) if layer.bias is not None else 0.0
        W, b = Wk @ W, Wk @ b + bk
    return W, b


def collapse_diff(stack: nn.Sequential, x: np.ndarray) -> float:
    """max |stack(x) - (x Wᵀ + b)| over the rows of x, with (W, b) = collapse(stack)."""
    W, b = collapse(stack)
    with dl.no_grad():
        out = stack(dl.tensor(x)).data.astype(np.float64)
    return float(np.abs(out - (x.astype(np.float64) @ W.T + b)).max())


def xor(n_samples: int = 400, noise: float = 0.35, seed: int = 0) -> Splits:
    """Four Gaussian blobs at (±1, ±1); class 1 where exactly one coordinate of the centre is positive."""
    rng = np.random.default_rng(seed)
    centres = rng.choice(np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]), size=n_samples)
    x = centres + noise * rng.standard_normal((n_samples, 2))
    y = (centres[:, 0] * centres[:, 1] < 0).astype(np.int64)
    info = DatasetInfo("xor", "classification", (2,), num_classes=2)
    return make_splits(x.astype(np.float32), y, info, seed=seed)


def build(kind: str, seed: int) -> nn.Module:
    dl.manual_seed(seed)
    if kind == "linear":
        return nn.Sequential(nn.Linear(2, 2))
    if kind == "deep_linear":
        return deep_linear()
    return nn.Sequential(nn.Linear(2, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 2))


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with dl.no_grad():
        return float(np.mean(model(dl.tensor(x)).data.argmax(axis=1) == y))


def run(out_dir: Path, quick: bool = False, seed: int = 0) -> Finding:
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = 300 if quick else 1000
    data = {"moons": moons(n_samples=600 if quick else 1000, noise=0.1, seed=seed),
            "xor": xor(n_samples=300 if quick else 600, seed=seed)}
    probe = np.random.default_rng(seed).uniform(-3, 3, (1000, 2)).astype(np.float32)

    diffs = [collapse_diff(build("deep_linear", seed), probe)]  # at init
    results: dict[str, dict[str, tuple[nn.Module, float]]] = {}
    for dname, splits in data.items():
        xtr, ytr = splits.train.arrays
        xte, yte = splits.test.arrays
        results[dname] = {}
        for kind in MODELS:
            model = build(kind, seed)
            opt = optim.Adam(model.parameters(), lr=0.01)
            train_full_batch(model, nn.CrossEntropyLoss(), dl.tensor(xtr), dl.tensor(ytr), opt, steps)
            results[dname][kind] = (model, accuracy(model, xte, yte))
            if kind == "deep_linear":
                diffs.append(collapse_diff(model, np.vstack([probe, xte])))

    W, _ = collapse(results["moons"]["deep_linear"][0])
    numbers: dict[str, float | int | str] = {"collapse_max_diff": max(diffs)}
    for dname, suffix in (("moons", ""), ("xor", "_xor")):
        for kind in MODELS:
            numbers[f"acc_{kind}{suffix}"] = results[dname][kind][1]
    numbers |= {"deep_linear_params": sum(p.numel() for p in results["moons"]["deep_linear"][0].parameters()),
                "collapsed_params": W.size + W.shape[0], "steps": steps}

    fig, axes = new_figure(2, 3, figsize=(14, 9))
    for row, (dname, splits) in enumerate(data.items()):
        xte, yte = splits.test.arrays
        lo, hi = xte.min(axis=0) - 0.6, xte.max(axis=0) + 0.6
        g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
        grid = np.stack([g1.ravel(), g2.ravel()], axis=1).astype(np.float32)
        for col, (kind, label) in enumerate(MODELS.items()):
            model, acc = results[dname][kind]
            with dl.no_grad():
                p1 = dl.softmax(model(dl.tensor(grid)), 1).data[:, 1].reshape(g1.shape)
            ax = axes[row, col]
            ax.contourf(g1, g2, p1, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.55)
            ax.contour(g1, g2, p1, levels=[0.5], colors="k", linewidths=1.5)
            for c, color in ((0, "tab:blue"), (1, "tab:red")):
                ax.scatter(*xte[yte == c].T, s=10, color=color, edgecolors="white", linewidths=0.3,
                           label=f"class {c} (test)")
            ax.set(title=f"{dname}: {label}\ntest accuracy {acc:.1%}", xlabel="x₁", ylabel="x₂")
            if col == 0:
                ax.legend(loc="lower left", fontsize=8)
    fig.suptitle("Decision regions (colour: p(class 1), black line: boundary). Without a nonlinearity, "
                 "4 layers draw the same straight line as 1.")
    figures = [save_figure(fig, out_dir, "decision_boundaries")]

    summary = (
        f"A stack of {DEPTH} `nn.Linear` layers (2-{WIDTH}-{WIDTH}-{WIDTH}-2, "
        f"{numbers['deep_linear_params']} parameters) multiplied out into one 2x2 matrix and bias "
        f"({numbers['collapsed_params']} parameters) gives the same outputs to "
        f"**{numbers['collapse_max_diff']:.1e}** (float32 rounding), before and after training.\n\n"
        f"Trained the same way ({steps} full-batch Adam steps), the deep linear net reaches "
        f"**{numbers['acc_deep_linear']:.1%}** test accuracy on two-moons - the linear classifier's "
        f"{numbers['acc_linear']:.1%} - while one ReLU hidden layer reaches **{numbers['acc_relu_mlp']:.1%}**. "
        f"On XOR the linear models are at chance ({numbers['acc_linear_xor']:.1%} and "
        f"{numbers['acc_deep_linear_xor']:.1%}); the ReLU MLP gets {numbers['acc_relu_mlp_xor']:.1%}."
    )
    return Finding(NAME, TITLE, CLAIM, numbers, figures, summary, command_for(NAME, out_dir, quick, seed),
                   time.perf_counter() - start)
