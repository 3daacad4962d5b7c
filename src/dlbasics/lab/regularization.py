"""Experiment 7 - regularization: what each regularizer does to an over-fitting network.

Claim: a network large enough to memorize its training set - here including 30% wrong labels - fits the
training data far better than unseen data; regularizers shrink that train/validation gap, and the ones that
stop it memorizing the noise also raise its test accuracy.

Method: the setup of ``examples/dropout_curves.py``: 200 training digits (a fixed random subset of the
training split), 30% of them given a random label; a wide MLP (64-512-512-10, ReLU, no batch norm) trained with
Adam (lr 1e-3, batch 32) for 100 epochs. The same run with one change each: dropout 0.5 after each hidden layer;
weight decay (L2, λ = 0.01 on the weights, not on biases); batch normalization; MixUp (α = 0.4); early stopping
(patience 10 on the validation loss, best weights restored); an ensemble of 5 networks from different seeds
(probabilities averaged); and bagging (5 networks, each on a bootstrap resample). For each: accuracy on the
(noisy) training set, on the clean validation split and on the test split, and the gap train - validation;
means over 2 seeds (1 and 40 epochs with ``quick``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics import models, nn, optim
from dlbasics.data import DataLoader, MixUp, TensorDataset, datasets
from dlbasics.lab.base import Finding, command_for, new_figure, save_figure
from dlbasics.train import EarlyStopping, Run, evaluate, train_ensemble, train_run

NAME = "regularization"
TITLE = "Regularizers on an over-fitting MLP: dropout, weight decay, batch norm, MixUp, early stopping, ensembles"
CLAIM = ("A network that can memorize noisy training labels generalizes worse than it fits; regularizers narrow "
         "the train/validation gap, and those that stop the memorizing raise test accuracy.")

N_TRAIN, NOISE, WIDTH = 200, 0.3, 512
LR, BATCH = 1e-3, 32
DROPOUT, WEIGHT_DECAY, MIXUP_ALPHA, PATIENCE, MEMBERS = 0.5, 1e-2, 0.4, 10, 5

REGULARIZERS = {  # key -> how it is shown
    "none": "none",
    "dropout": f"dropout {DROPOUT}",
    "weight_decay": f"weight decay (L2 {WEIGHT_DECAY:g})",
    "batch_norm": "batch norm",
    "mixup": f"MixUp alpha={MIXUP_ALPHA}",
    "early_stopping": f"early stopping (patience {PATIENCE})",
    "ensemble": f"ensemble of {MEMBERS} seeds",
    "bagging": f"bagging ({MEMBERS} bootstrap)",
}


def noisy_subset(splits: Any, n: int = N_TRAIN, noise: float = NOISE, seed: int = 0) -> TensorDataset:
    """``n`` training digits, a fraction ``noise`` of them with a label drawn uniformly from the 10 classes."""
    x, y = splits.train.arrays
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))[:n]
    labels = y[idx].copy()
    flip = rng.random(n) < noise
    labels[flip] = rng.integers(0, 10, int(flip.sum()))
    return TensorDataset(x[idx], labels)


def builder(kind: str, epochs: int) -> Callable[[int], Run]:
    """``build_run(seed)`` for the plain run with regularizer ``kind`` added."""

    def build_run(seed: int) -> Run:
        model = models.create("mlp", in_features=64, num_classes=10, hidden=[WIDTH, WIDTH],
                              dropout=DROPOUT if kind == "dropout" else 0.0, batch_norm=kind == "batch_norm")
        params = optim.param_groups(model, WEIGHT_DECAY) if kind == "weight_decay" else model.parameters()
        return Run(model, nn.CrossEntropyLoss(), optim.Adam(params, lr=LR), epochs=epochs, batch_size=BATCH,
                   callbacks=[EarlyStopping(patience=PATIENCE)] if kind == "early_stopping" else [],
                   collate_fn=MixUp(MIXUP_ALPHA, 10, seed=seed) if kind == "mixup" else None)

    return build_run


def measure(kind: str, train_set: Any, splits: Any, epochs: int, seed: int) -> dict[str, float]:
    """Train the run (or the ensemble) once; its train / val / test accuracy and the gap."""
    build = builder("none" if kind in ("ensemble", "bagging") else kind, epochs)
    if kind in ("ensemble", "bagging"):
        model, _ = train_ensemble(build, train_set, splits.val, n=MEMBERS, seed=seed * MEMBERS,
                                  bootstrap=kind == "bagging")
    else:
        model = train_run(build, train_set, splits.val, seed=seed)[0].model

    def acc(data: Any) -> float:
        return evaluate(model, DataLoader(data, batch_size=512))["accuracy"]

    train, val, test = acc(train_set), acc(splits.val), acc(splits.test)
    return {"train": train, "val": val, "test": test, "gap": train - val}


def run(out_dir: Path, quick: bool = False, seed: int = 0) -> Finding:
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = datasets.digits()
    train_set = noisy_subset(splits, seed=seed)
    epochs, repeats = (40, 1) if quick else (100, 2)
    results: dict[str, dict[str, float]] = {}
    for kind in REGULARIZERS:
        per_seed = [measure(kind, train_set, splits, epochs, seed + r) for r in range(repeats)]
        results[kind] = {k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]}

    fig, (ax, tax) = new_figure(2, 1, figsize=(13, 9), gridspec_kw={"height_ratios": [3, 1.6]})
    labels = list(REGULARIZERS.values())
    pos = np.arange(len(labels))
    for i, (key, color) in enumerate((("train", "tab:gray"), ("val", "tab:blue"), ("test", "tab:green"))):
        name = {"train": "training (30% noisy labels)", "val": "validation", "test": "test"}[key]
        ax.bar(pos + (i - 1) * 0.27, [results[k][key] for k in REGULARIZERS], 0.27, color=color, label=name)
    for p, k in zip(pos, REGULARIZERS):
        top = max(results[k][key] for key in ("train", "val", "test"))
        ax.annotate(f"gap {results[k]['gap']:+.3f}", (p, top + 0.015), ha="center", fontsize=9)
    ax.axhline(results["none"]["test"], color="tab:green", ls=":", lw=1, label="test accuracy without regularizer")
    ax.set_xticks(pos, labels, rotation=15)
    ax.set_ylim(0.5, 1.17)
    ax.set_ylabel("accuracy")
    ax.set_title(f"MLP 64-{WIDTH}-{WIDTH}-10 on {N_TRAIN} digits with {NOISE:.0%} wrong labels, {epochs} epochs "
                 f"(mean of {repeats} seed{'s' if repeats > 1 else ''})")
    ax.legend(loc="upper center", ncol=4, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    tax.axis("off")
    rows = [[label, f"{results[k]['train']:.3f}", f"{results[k]['val']:.3f}", f"{results[k]['gap']:+.3f}",
             f"{results[k]['test']:.3f}"] for k, label in REGULARIZERS.items()]
    table = tax.table(cellText=rows, colLabels=["regularizer", "train acc", "val acc", "gap (train - val)",
                                                "test acc"], loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1, 1.4)
    figures = [save_figure(fig, out_dir, "regularizers")]

    numbers: dict[str, float | int | str] = {"epochs": epochs, "seeds": repeats, "n_train": N_TRAIN,
                                             "label_noise": NOISE}
    for k, r in results.items():
        numbers[f"gap_{k}"] = r["gap"]
        numbers[f"test_acc_{k}"] = r["test"]
    for k, r in results.items():
        numbers[f"train_acc_{k}"] = r["train"]
        numbers[f"val_acc_{k}"] = r["val"]
    others = [k for k in REGULARIZERS if k != "none"]
    smallest = min(others, key=lambda k: results[k]["gap"])
    best = max(others, key=lambda k: results[k]["test"])
    narrower = [REGULARIZERS[k] for k in others if results[k]["gap"] < results["none"]["gap"] - 0.01]
    summary = (
        f"Without a regularizer the MLP fits {results['none']['train']:.1%} of the noisy training labels but only "
        f"{results['none']['val']:.1%} of the validation digits: a gap of {results['none']['gap']:.3f}, test accuracy "
        f"{results['none']['test']:.1%}. "
        f"The gap is narrower by more than 0.01 with {', '.join(narrower) if narrower else 'none of them'}; "
        f"smallest with {REGULARIZERS[smallest]} ({results[smallest]['gap']:+.3f}). "
        f"Best test accuracy: {REGULARIZERS[best]} ({results[best]['test']:.1%}); dropout "
        f"{results['dropout']['test']:.1%}, weight decay {results['weight_decay']['test']:.1%}, batch norm "
        f"{results['batch_norm']['test']:.1%}, MixUp {results['mixup']['test']:.1%}, ensemble "
        f"{results['ensemble']['test']:.1%}, bagging {results['bagging']['test']:.1%}. "
        f"An ensemble averages networks that each saw every noisy label (gap {results['ensemble']['gap']:+.3f}); "
        f"bagging trains each member on a bootstrap resample, so the members disagree on the labels some of them "
        f"never saw (gap {results['bagging']['gap']:+.3f})."
    )
    return Finding(NAME, TITLE, CLAIM, numbers, figures, summary, command_for(NAME, out_dir, quick, seed),
                   time.perf_counter() - start)
