"""Where a trained Vision Transformer looks: its class token's attention over the 7x7 patches of Fashion-MNIST test
images (the README's figure).

    dlbasics train --model vit --out runs/vit               # the zoo's recipe: 5 epochs, about 100 s here
    python examples/vit_attention.py runs/vit               # writes docs/figures/vit_attention.png

Each image is shown with the last block's attention of the class token over its 16 patches (averaged over the
heads, ``ViT.cls_attention``) laid over it: the share of its attention that each 7x7 patch receives.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from dlbasics.data import DataLoader
from dlbasics.data.datasets import fashion_mnist
from dlbasics.data.datasets.idx import FASHION_MNIST_CLASSES
from dlbasics.train import load_model


def main(run_dir: str, out: str = "docs/figures/vit_attention.png", n: int = 6) -> None:
    model = load_model(run_dir)
    images, labels = next(iter(DataLoader(fashion_mnist().test, batch_size=n)))  # the first n test images
    x, y = images.data, labels.data
    maps = model.cls_attention(x)  # (n, 4, 4)
    pred = model(x).data.argmax(axis=1)
    fig, axes = plt.subplots(1, n, figsize=(2 * n, 2.4))
    for i, ax in enumerate(axes):
        ax.imshow(x[i, 0], cmap="gray")
        grid = maps[i] / maps[i].max()
        ax.imshow(np.kron(grid, np.ones((7, 7))), cmap="inferno", alpha=0.5, vmin=0, vmax=1)
        ax.set_title(f"{FASHION_MNIST_CLASSES[pred[i]]}\n(true: {FASHION_MNIST_CLASSES[y[i]]})", fontsize=8)
        ax.axis("off")
    fig.suptitle("ViT: the class token's attention over the patches (last block)", fontsize=10)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
