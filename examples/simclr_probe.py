"""What SimCLR's encoder learned without labels: linear-probe accuracy against the number of labels per class, for
the trained encoder, the same encoder at its random initialization, and the raw pixels (the README's figure).

    dlbasics train --model simclr --out runs/simclr         # the zoo's recipe: 10 epochs of 20,000 images
    python examples/simclr_probe.py runs/simclr             # writes docs/figures/simclr_probe.png

Each point is a logistic regression on standardized frozen features (``train.probe.linear_probe``) fit on the first
N labelled training images of each class (the run's own training images) and scored on the 10,000 test images.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from dlbasics import manual_seed, models
from dlbasics.data import DataLoader
from dlbasics.train import load_model, open_run
from dlbasics.train.config import load_data
from dlbasics.train.probe import encode, labels_per_class_subset, linear_probe

LABELS_PER_CLASS = (10, 30, 100, 300, 1000)


def main(run_dir: str, out: str = "docs/figures/simclr_probe.png") -> None:
    run = open_run(run_dir)
    splits = load_data(run.config)
    (x, y), (xt, yt) = (next(iter(DataLoader(s, batch_size=len(s)))) for s in (splits.train, splits.test))
    x, y, xt, yt = x.data, y.data, xt.data, yt.data
    manual_seed(run.config.seed)
    random_init = models.create("simclr", **run.config.model.options)
    features = {"SimCLR encoder": load_model(run).features, "same encoder, random init": random_init.features}
    sets = {name: (encode(f, x), encode(f, xt)) for name, f in features.items()}
    sets["raw pixels"] = (x.reshape(len(x), -1), xt.reshape(len(xt), -1))
    counts = [n for n in LABELS_PER_CLASS if n <= np.bincount(y).min()]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, (h, ht) in sets.items():
        acc = [linear_probe(h[s], y[s], ht, yt) for s in (labels_per_class_subset(y, n, seed=0) for n in counts)]
        acc.append(linear_probe(h, y, ht, yt))
        print(name, " ".join(f"{a:.3f}" for a in acc), flush=True)
        ax.plot([*counts, len(y) // 10], acc, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images per class (the last point: all)")
    ax.set_ylabel("linear-probe test accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("SimCLR on Fashion-MNIST: a linear probe of frozen features", fontsize=10)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
