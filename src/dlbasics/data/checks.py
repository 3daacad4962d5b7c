"""Checks that data can be trained on, run once before training rather than discovered after an hour of it:
no empty split, no NaN or inf, every class label in range, a batch size that fits the training split.

Each failure raises ``DataError`` (or ``ConfigError`` for an option) with one line that names the split, how
many values are bad and where the first one is. Only ``TensorDataset`` splits are looked into (their arrays
are at hand); other datasets are skipped, as reading them would mean fetching every sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics.data.dataset import Splits, TensorDataset
from dlbasics.errors import ConfigError, DataError

# rows per np.isfinite call are chosen so a block holds about this many values: the boolean temporary stays
# ~1 MB however large the split (60,000 x 784 float32 is checked in ~15 ms)
_BLOCK_VALUES = 1 << 20


def labels_out_of_range(labels: np.ndarray, num_classes: int) -> str | None:
    """None if every label lies in 0..num_classes - 1, else e.g. "40 of 60000 labels lie outside 0..9
    (first: 200 at index 17)"."""
    labels = np.asarray(labels).reshape(-1)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if not bad.size:
        return None
    return (f"{bad.size} of {labels.size} labels lie outside 0..{num_classes - 1} "
            f"(first: {labels[bad[0]]} at index {bad[0]})")


def _non_finite(array: np.ndarray) -> tuple[int, int] | None:
    """(count of NaN or inf values, index of the first sample holding one), or None if all are finite."""
    rows = array.reshape(len(array), -1)  # (N, values per sample)
    step = max(1, _BLOCK_VALUES // max(1, rows.shape[1]))
    count, first = 0, -1
    for start in range(0, len(rows), step):  # a loop over blocks of samples, not over samples
        bad = ~np.isfinite(rows[start:start + step])
        n = int(np.count_nonzero(bad))
        if n:
            if first < 0:
                first = start + int(np.flatnonzero(bad.any(axis=1))[0])
            count += n
    return (count, first) if count else None


def _field(k: int) -> str:
    return ("inputs", "targets")[k] if k < 2 else f"array {k}"


def check_splits(splits: Splits) -> None:
    """Raise ``DataError`` if ``splits`` cannot be trained on: an empty train split (or an empty val or test
    split when there is one: None means none), NaN or inf in a floating array of a split, or - for
    classification - a label outside 0..num_classes - 1. Splits that are not a ``TensorDataset`` are only
    checked for emptiness."""
    info = splits.info
    for split, dataset in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        if dataset is None and split != "train":
            continue
        if dataset is None or (hasattr(dataset, "__len__") and len(dataset) == 0):  # an environment has no len
            raise DataError(f"{info.name}: the {split} split is empty (0 samples)")
        if not isinstance(dataset, TensorDataset):
            continue
        for k, array in enumerate(dataset.arrays):
            if array.dtype.kind == "f" and (found := _non_finite(array)):
                count, first = found
                raise DataError(f"{info.name}: the {split} split has {count} NaN or inf values in its "
                                f"{_field(k)} (first in sample {first})")
        if info.task == "classification" and info.num_classes is not None and len(dataset.arrays) > 1:
            labels = dataset.arrays[1]
            if labels.dtype.kind in "iu" and (problem := labels_out_of_range(labels, info.num_classes)):
                raise DataError(f"{info.name}: the {split} split: {problem}")


def check_batch_size(batch_size: Any, n_train: int, option: str = "--batch-size") -> None:
    """Raise ``ConfigError`` unless ``batch_size`` is a whole number in 1..n_train; ``option`` is how the
    caller named it (the flag, the TOML key or the Python argument)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise ConfigError(f"{option} must be a whole number of samples, got {batch_size!r}")
    if batch_size < 1:
        raise ConfigError(f"{option} {batch_size} must be at least 1")
    if batch_size > n_train:
        # with drop_last every batch would be dropped; without it every "batch" is the whole split
        raise ConfigError(f"{option} {batch_size} is larger than the training split ({n_train} samples); "
                          f"use at most {n_train}")


__all__ = ["check_batch_size", "check_splits", "labels_out_of_range"]
