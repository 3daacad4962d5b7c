"""Datasets by name: bundled (digits), generated (moons, circles, spirals, functions) and read from
files the user points to (MNIST, Fashion-MNIST in IDX format; CIFAR-10 in its binary version). None
downloads anything.

    splits = dl.data.datasets.load("digits")        # Splits(train, val, test, info)
    train, val, test = splits
    splits.info.in_features, splits.info.num_classes  # 64, 10
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from dlbasics.data.dataset import DatasetInfo, Splits
from dlbasics.data.datasets.bundled import (
    FUNCTIONS,
    circles,
    digits,
    function_regression,
    make_splits,
    moons,
    spirals,
    split_indices,
)
from dlbasics.data.datasets.cifar import (
    CIFAR10_CLASSES,
    channel_stats,
    cifar10,
    cifar10_augmentation,
    read_cifar_batch,
)
from dlbasics.data.datasets.idx import FASHION_MNIST_ROOT, fashion_mnist, mnist, read_idx

_LOADERS: dict[str, Callable[..., Splits]] = {
    "digits": digits,
    "moons": moons,
    "circles": circles,
    "spirals": spirals,
    **{fn: partial(function_regression, fn) for fn in FUNCTIONS},
    "mnist": mnist,
    "fashion-mnist": fashion_mnist,
    "cifar10": cifar10,
}


def available() -> list[str]:
    """The names ``load`` knows."""
    return list(_LOADERS)


# What the file-based data sets look like, so their shape is known without their files.
_FILE_INFO = {
    "mnist": DatasetInfo("mnist", "classification", (1, 28, 28), num_classes=10),
    "fashion-mnist": DatasetInfo("fashion-mnist", "classification", (1, 28, 28), num_classes=10),
    "cifar10": DatasetInfo("cifar10", "classification", (3, 32, 32), num_classes=10),
}


def describe(name: str) -> DatasetInfo:
    """The ``DatasetInfo`` of ``name`` (task, input shape, classes) without reading files; bundled and generated
    sets are built to find out (they are small)."""
    key = name.lower().replace("_", "-")
    return _FILE_INFO[key] if key in _FILE_INFO else load(key).info


def load(name: str, **kwargs: Any) -> Splits:
    """The dataset called ``name`` (see ``available()``), with its loader's keyword arguments, e.g.
    ``load("moons", noise=0.2)``, ``load("sin", n_samples=256)``, ``load("mnist", root="data/mnist")``,
    ``load("cifar10", root="data/cifar-10-batches-bin", augment=True)``.
    Names ignore case, and "_" equals "-"."""
    key = name.lower().replace("_", "-")
    if key not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(_LOADERS)}")
    return _LOADERS[key](**kwargs)


__all__ = [
    "CIFAR10_CLASSES",
    "FASHION_MNIST_ROOT",
    "FUNCTIONS",
    "DatasetInfo",
    "Splits",
    "available",
    "channel_stats",
    "cifar10",
    "cifar10_augmentation",
    "circles",
    "describe",
    "digits",
    "fashion_mnist",
    "function_regression",
    "load",
    "make_splits",
    "mnist",
    "moons",
    "read_cifar_batch",
    "read_idx",
    "spirals",
    "split_indices",
]
