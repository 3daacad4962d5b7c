"""The linear probe: how good a frozen representation is, measured by the best linear classifier on top of it.

Self-supervised encoders (SimCLR, Chen et al. 2020) are judged this way: encode the labelled images once with
the frozen encoder, fit a multinomial logistic regression on the training features and report its test
accuracy; with few labels (``labels_per_class_subset``) it shows how much the representation saves.

    f_train, f_test = encode(model.encoder, x_train), encode(model.encoder, x_test)
    acc = linear_probe(f_train, y_train, f_test, y_test)
    few = labels_per_class_subset(y_train, 100, seed=0)
    acc_100 = linear_probe(f_train[few], y_train[few], f_test, y_test)

For reference, PyTorch + scikit-learn give 81.6% on raw Fashion-MNIST pixels with all labels, 77.9% with 100
per class.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from dlbasics.autograd.grad_mode import no_grad
from dlbasics.nn.module import Module
from dlbasics.rng import Seed, get_generator
from dlbasics.tensor import Tensor
from dlbasics.train.task import evaluating

__all__ = ["encode", "labels_per_class_subset", "linear_probe"]


def _plain(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _features(x: Any, who: str) -> np.ndarray:
    """(N, ...) features as a float64 matrix (N, D)."""
    a = _plain(x)
    if a.ndim < 1 or len(a) == 0:
        raise ValueError(f"linear_probe: {who} must be (N, ...) with N >= 1, got shape {a.shape}")
    return a.reshape(len(a), -1).astype(np.float64)


def _labels(y: Any, n: int, who: str) -> np.ndarray:
    a = _plain(y)
    if a.dtype.kind not in "iu" or a.shape != (n,):
        raise ValueError(f"linear_probe: {who} must be {n} class indices (int, shape ({n},)), got {a.dtype} "
                         f"{a.shape}")
    return a


def linear_probe(train_features: Any, train_labels: Any, test_features: Any, test_labels: Any, *,
                 max_iter: int = 1000, C: float = 1.0, seed: int = 0) -> float:
    """Test accuracy of a multinomial logistic regression (scikit-learn's ``LogisticRegression``, lbfgs, L2
    penalty with inverse strength ``C``) fit on the training features, both sets standardized with the
    training set's mean and standard deviation (``StandardScaler``).

    Features: arrays or Tensors (N, ...), flattened to (N, D); labels: (N,) class indices."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = _features(train_features, "train_features"), _features(test_features, "test_features")
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(f"linear_probe: train features have {x_train.shape[1]} dimensions, test features "
                         f"{x_test.shape[1]}")
    y_train = _labels(train_labels, len(x_train), "train_labels")
    y_test = _labels(test_labels, len(x_test), "test_labels")
    if len(np.unique(y_train)) < 2:
        raise ValueError("linear_probe: the training labels hold a single class; a classifier needs two or more")
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    clf.fit(scaler.transform(x_train), y_train)
    return float(clf.score(scaler.transform(x_test), y_test))


def labels_per_class_subset(labels: Any, n_per_class: int, seed: Seed = 0) -> np.ndarray:
    """Indices of ``n_per_class`` examples of every class in ``labels`` (N,), chosen at random without
    replacement by ``seed``, in ascending order (the data set's order): the few-label probe's training set."""
    y = _plain(labels)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"labels_per_class_subset: labels must be class indices (N,), got {y.dtype} {y.shape}")
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, int | np.integer) or n_per_class < 1:
        raise ValueError(f"labels_per_class_subset: n_per_class must be a positive integer, got {n_per_class!r}")
    classes, counts = np.unique(y, return_counts=True)
    short = counts < n_per_class
    if short.any():
        c, k = classes[short][0], counts[short][0]
        raise ValueError(f"labels_per_class_subset: class {c} has {k} examples, fewer than n_per_class={n_per_class}")
    # a random order, then grouped by class (stable): each class's first n are a uniform choice of n
    perm = get_generator(seed).permutation(len(y))
    grouped = perm[np.argsort(y[perm], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    take = (starts[:, None] + np.arange(n_per_class)[None, :]).reshape(-1)
    return np.sort(grouped[take]).astype(np.int64)


def _eval_mode(module_fn: Callable[..., Any]) -> AbstractContextManager:
    """Eval mode and no graph for a Module or a bound method of one (``model.features``); a plain function
    only gets no graph (it must put its model in eval mode itself)."""
    owner = module_fn if isinstance(module_fn, Module) else getattr(module_fn, "__self__", None)
    return evaluating(owner) if isinstance(owner, Module) else no_grad()


def encode(module_fn: Callable[..., Any], images: Any, batch_size: int = 512) -> np.ndarray:
    """``module_fn`` applied to ``images`` in batches of ``batch_size``, in eval mode (dropout off, BatchNorm's
    running statistics) and without a graph: the frozen features (N, ...) as one NumPy array.

    ``module_fn``: a Module, a bound method of one (``model.encoder_features``), or a function of a batch
    Tensor (then it is only run without a graph). ``images``: an array or Tensor (N, ...), or a data set whose
    samples are ``(x, y)`` or ``x`` (pass the one without augmentation: its transform runs here too)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"encode: batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(images, Tensor | np.ndarray):
        x = _plain(images)
        batches: Any = (Tensor._make(x[i:i + batch_size], False, None) for i in range(0, len(x), batch_size))
    else:
        from dlbasics.data.dataloader import DataLoader

        batches = (b[0] if isinstance(b, tuple | list) else b for b in DataLoader(images, batch_size=batch_size))
    out = []
    with _eval_mode(module_fn):
        for batch in batches:
            out.append(_plain(module_fn(batch)))
    if not out:
        raise ValueError("encode: no images to encode")
    return np.concatenate(out)
