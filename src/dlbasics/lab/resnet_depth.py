"""ResNet depth: the degradation problem of deep plain networks, and how the shortcuts remove it.

Claim: with the same training budget a deeper *plain* network reaches a higher training loss than a
shallower one - not over-fitting but harder optimization, the "degradation problem" - while the same deeper
network with identity shortcuts (a ResNet) trains at least as well as its shallower twin (He, Zhang, Ren &
Sun 2015, Figures 1 and 6).

Method: the CIFAR ResNet layout of the paper (``dlbasics.models.resnet``: 3x3 conv, three stages of n basic
blocks, global average pooling, linear; depth 6n + 2, batch norm after every conv, shortcut option A) and its
plain twin (the same layers without the shortcuts), at depths 8 and 32 (n = 1 and 5), width 8 (stages of
8, 16, 32 channels). Data: 4,000 Fashion-MNIST training images (a fixed random subset), average-pooled 2x2 to
14x14 to keep it CPU-cheap. The four networks start from the same seed (plain and residual then have
identical initial weights: option A has no parameters) and see the same mini-batches in the same order:
SGD, lr 0.1, momentum 0.9 (the paper's optimizer; no weight decay or schedule in a run this short), batch 64,
300 steps (about 5 epochs). The training loss is the mean mini-batch loss over each 10 steps (train mode, as
the paper's curves); the final training loss is the mean of the last 5 of those (the last 50 steps); test
accuracy on 2,000 test images. ``quick``: 2,000 images, 100 steps, 1,000 test images.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import dlbasics as dl
from dlbasics import models, nn, optim
from dlbasics.data import DataLoader, TensorDataset
from dlbasics.data.datasets import fashion_mnist
from dlbasics.lab.base import Finding, command_for, new_figure, save_figure
from dlbasics.train import evaluate

NAME = "resnet-depth"
TITLE = "ResNet depth: deeper plain networks train worse, deeper residual networks do not"
CLAIM = ("With the same training budget a deeper plain network reaches a higher training loss than a shallower "
         "one (the degradation problem), while the deeper residual network trains at least as well as the "
         "shallower one.")
DATA = ("fashion-mnist",)  # not bundled: apt-get install dataset-fashion-mnist; lab all skips it when absent

DEPTHS = (8, 32)  # 6n + 2 with n = 1 and 5
WIDTH, BATCH, LR, MOMENTUM = 8, 64, 0.1, 0.9
LOG_EVERY, LAST = 10, 5  # a logged value = mean loss of 10 steps; the final loss = mean of the last 5 of them
SIZES = {False: {"n_train": 4000, "n_test": 2000, "steps": 300},
         True: {"n_train": 2000, "n_test": 1000, "steps": 100}}
KINDS = ("plain_shallow", "plain_deep", "res_shallow", "res_deep")
COLORS = {"shallow": "tab:blue", "deep": "tab:red"}


def downsample(images: np.ndarray) -> np.ndarray:
    """(N, 1, 28, 28) -> (N, 1, 14, 14): the mean of each 2x2 patch."""
    n, c, h, w = images.shape
    return images.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5)).astype(np.float32)


def load(n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n_train`` training and ``n_test`` test images of Fashion-MNIST (fixed random subsets), 14x14."""
    splits = fashion_mnist()
    rng = np.random.default_rng(seed)
    x, y = splits.train.arrays
    idx = rng.permutation(len(x))[:n_train]
    xt, yt = splits.test.arrays
    tidx = rng.permutation(len(xt))[:n_test]
    return downsample(x[idx]), y[idx], downsample(xt[tidx]), yt[tidx]


def build(depth: int, plain: bool, seed: int) -> nn.Module:
    """The CIFAR ResNet (or its plain twin) of ``depth`` for 1 x 14 x 14 inputs; same seed, same weights."""
    dl.manual_seed(seed)
    return models.create("resnet", depth=depth, plain=plain, width=WIDTH, num_classes=10, in_channels=1,
                         image_size=14)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, steps: int, seed: int) -> list[float]:
    """SGD with momentum for ``steps`` mini-batches (epochs of a seeded shuffle: every network gets the same
    batches); the mean training loss of each ``LOG_EVERY`` steps."""
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    order = np.empty(0, dtype=np.int64)
    logged, window = [], []
    model.train()
    for _ in range(steps):
        if len(order) < BATCH:
            order = np.concatenate([order, rng.permutation(len(x))])
        idx, order = order[:BATCH], order[BATCH:]
        loss = loss_fn(model(dl.tensor(x[idx])), dl.tensor(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        window.append(float(loss.item()))
        if len(window) == LOG_EVERY:
            logged.append(float(np.mean(window)))
            window = []
    return logged


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """The GEMMs here are skinny (8-32 output channels): BLAS threads cost more than they give, and on a busy
    machine they spin against other processes (10x slower measured on 2 shared cores). One thread for the
    duration, if threadpoolctl is there."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run(out_dir: Path, quick: bool = False, seed: int = 0) -> Finding:
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    size = SIZES[bool(quick)]
    x, y, xt, yt = load(size["n_train"], size["n_test"], seed)
    test_loader = DataLoader(TensorDataset(xt, yt), batch_size=500)
    curves: dict[str, list[float]] = {}
    final: dict[str, float] = {}
    test_acc: dict[str, float] = {}
    seconds: dict[str, float] = {}
    with one_blas_thread():
        for kind in KINDS:
            family, which = kind.split("_")
            depth = DEPTHS[0] if which == "shallow" else DEPTHS[1]
            t = time.perf_counter()
            model = build(depth, family == "plain", seed)
            curves[kind] = train(model, x, y, size["steps"], seed)
            final[kind] = float(np.mean(curves[kind][-LAST:]))
            test_acc[kind] = float(evaluate(model, test_loader)["accuracy"])
            seconds[kind] = time.perf_counter() - t

    def label(kind: str) -> str:
        family, which = kind.split("_")
        depth = DEPTHS[0] if which == "shallow" else DEPTHS[1]
        return f"{'plain' if family == 'plain' else 'ResNet'}-{depth} (final {final[kind]:.3f})"

    steps_axis = np.arange(1, len(curves[KINDS[0]]) + 1) * LOG_EVERY
    fig, axes = new_figure(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, family, title in ((axes[0], "plain", "plain networks"), (axes[1], "res", "residual networks (ResNet)")):
        for which in ("shallow", "deep"):
            kind = f"{family}_{which}"
            ax.plot(steps_axis, curves[kind], color=COLORS[which], ls="--" if family == "plain" else "-", lw=1.8,
                    label=label(kind))
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel(f"training loss (mean of {LOG_EVERY} mini-batches)")
    fig.suptitle(f"Fashion-MNIST, {size['n_train']} images at 14x14, width {WIDTH}, SGD lr {LR} momentum "
                 f"{MOMENTUM}, batch {BATCH}, {size['steps']} steps, seed {seed}")
    figures = [save_figure(fig, out_dir, "training_loss")]

    degradation_plain = final["plain_deep"] - final["plain_shallow"]
    degradation_res = final["res_deep"] - final["res_shallow"]
    numbers: dict[str, float | int | str] = {
        "depth_shallow": DEPTHS[0], "depth_deep": DEPTHS[1], "width": WIDTH, "image_size": 14,
        "n_train": size["n_train"], "n_test": size["n_test"], "steps": size["steps"], "batch": BATCH,
        "optimizer": f"SGD lr {LR} momentum {MOMENTUM}",
    }
    numbers.update({f"train_loss_{k}": final[k] for k in KINDS})
    numbers["degradation_plain"] = degradation_plain
    numbers["degradation_res"] = degradation_res
    numbers.update({f"test_acc_{k}": test_acc[k] for k in KINDS})
    numbers.update({f"seconds_{k}": seconds[k] for k in KINDS})
    d0, d1 = DEPTHS
    summary = (
        f"After {size['steps']} steps the plain {d1}-layer network is at training loss "
        f"{final['plain_deep']:.3f}, the plain {d0}-layer one at {final['plain_shallow']:.3f}: the deeper plain "
        f"network trains worse by {degradation_plain:+.3f}, although it could copy the shallower one and set its "
        f"extra layers to the identity. With shortcuts the {d1}-layer ResNet reaches {final['res_deep']:.3f} "
        f"against {final['res_shallow']:.3f} for ResNet-{d0} ({degradation_res:+.3f}): depth no longer hurts. "
        f"Test accuracy ({size['n_test']} images): plain-{d0} {test_acc['plain_shallow']:.1%}, plain-{d1} "
        f"{test_acc['plain_deep']:.1%}, ResNet-{d0} {test_acc['res_shallow']:.1%}, ResNet-{d1} "
        f"{test_acc['res_deep']:.1%}. Plain and residual networks of a depth start from the same weights and see "
        f"the same batches; images are Fashion-MNIST average-pooled to 14x14."
    )
    return Finding(NAME, TITLE, CLAIM, numbers, figures, summary, command_for(NAME, out_dir, quick, seed),
                   time.perf_counter() - start)

