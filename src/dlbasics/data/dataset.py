"""Datasets: what a sample is and how to fetch many at once.

A map-style dataset has ``__len__`` and ``__getitem__(i)`` returning one sample (usually a tuple such as
``(x, y)``). It may also have ``__getitems__(indices)`` returning a whole batch at once, as in PyTorch: the
``DataLoader`` then makes one call per batch instead of one per sample. ``TensorDataset`` answers it
with one NumPy fancy-index per array, returned as ``StackedItems`` - a list of samples on the outside
(what a ``collate_fn`` expects), already-stacked columns on the inside (what makes collating free).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from dlbasics.rng import Seed, get_generator
from dlbasics.tensor import Tensor

Transform = Callable[[np.ndarray], np.ndarray]


class Dataset:
    """A map-style dataset: subclasses implement ``__getitem__(index)`` and ``__len__()``.

    Optionally ``__getitems__(indices)`` fetches a batch in one call; it returns a sequence of samples
    (a list, or ``StackedItems`` whose columns are already stacked).
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class StackedItems(Sequence):
    """A batch of samples whose fields are stored stacked: ``columns[k][i]`` is field ``k`` of sample ``i``.

    It behaves as the list of samples a ``collate_fn`` receives (``len``, ``items[i] -> tuple``), while
    ``default_collate`` wraps the columns directly, with no per-sample work.
    """

    __slots__ = ("columns",)

    def __init__(self, columns: Sequence[np.ndarray]) -> None:
        self.columns = tuple(columns)
        if not self.columns:
            raise ValueError("StackedItems needs at least one column")
        n = len(self.columns[0])
        if any(len(c) != n for c in self.columns):
            raise ValueError(f"StackedItems columns differ in length: {[c.shape for c in self.columns]}")

    def __len__(self) -> int:
        return len(self.columns[0])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return StackedItems([c[index] for c in self.columns])
        return tuple(c[index] for c in self.columns)

    def __repr__(self) -> str:
        return f"StackedItems({len(self)} samples, shapes {[c.shape for c in self.columns]})"


def _as_array(data: Any) -> np.ndarray:
    """Tensors keep their dtype (it was chosen); arrays follow dl's policy: floats -> float32, signed
    integers -> int64 (labels, indices, as ``torch``'s collate makes of Python ints); uint8 and bool stay."""
    if isinstance(data, Tensor):
        return data.data
    arr = np.asarray(data)
    if arr.dtype.kind == "f" and arr.dtype != np.float32:
        return arr.astype(np.float32)
    if arr.dtype.kind == "i" and arr.dtype != np.int64:
        return arr.astype(np.int64)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"TensorDataset holds numeric arrays, not dtype {arr.dtype}")
    return arr


def _check_index(index: Any, n: int, who: str) -> int:
    if not isinstance(index, int | np.integer):
        raise TypeError(f"{who} indices must be integers, not {type(index).__name__}; use __getitems__ for many")
    i = int(index)
    if not -n <= i < n:
        raise IndexError(f"{who} index {i} is out of range for {n} samples")
    return i + n if i < 0 else i


class TensorDataset(Dataset):
    """Samples are the rows of equally long arrays: ``ds[i] = (a[i], b[i], ...)``.

    Args:
        *tensors: arrays or Tensors sharing their first dimension N, e.g. ``x`` (N, ...) and ``y`` (N,).
        transform: applied to the first array (the inputs) - to one sample (...) in ``__getitem__`` and to
            a batch (B, ...) in ``__getitems__``, so it must accept both (the ones in ``data.transforms`` do).
    """

    def __init__(self, *tensors: Any, transform: Transform | None = None) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one array")
        arrays = tuple(_as_array(t) for t in tensors)
        if any(a.ndim == 0 for a in arrays):
            raise ValueError(f"TensorDataset arrays need a sample dimension; got shapes {[a.shape for a in arrays]}")
        if len({a.shape[0] for a in arrays}) != 1:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"TensorDataset: all arrays need the same first dimension (samples), got shapes {shapes}")
        self.arrays = arrays
        self.transform = transform

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        """The arrays as Tensors sharing their memory (PyTorch's attribute name)."""
        return tuple(Tensor._make(a, False, None) for a in self.arrays)

    def __len__(self) -> int:
        return self.arrays[0].shape[0]

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        i = _check_index(index, len(self), "TensorDataset")
        items = [a[i] for a in self.arrays]
        if self.transform is not None:
            items[0] = self.transform(items[0])
        return tuple(items)

    def __getitems__(self, indices: Sequence[int] | np.ndarray) -> StackedItems:
        """A batch with one fancy-index per array: ``columns[k]`` has shape (B, ...) of array ``k``."""
        idx = np.asarray(indices, dtype=np.intp)
        columns = [a[idx] for a in self.arrays]  # NumPy raises IndexError for an index out of range
        if self.transform is not None:
            columns[0] = self.transform(columns[0])
        return StackedItems(columns)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{a.shape} {a.dtype}" for a in self.arrays)
        extra = f", transform={self.transform!r}" if self.transform is not None else ""
        return f"TensorDataset({shapes}{extra})"


def _fetch(dataset: Any, indices: np.ndarray) -> Sequence:
    """Samples ``indices`` of ``dataset``: one ``__getitems__`` call when it has one, else one call each."""
    getitems = getattr(dataset, "__getitems__", None)
    if getitems is not None:
        return getitems(indices)
    return [dataset[int(i)] for i in indices]


class Subset(Dataset):
    """The samples ``indices`` of ``dataset``, in that order: ``Subset(ds, idx)[k] = ds[idx[k]]``."""

    def __init__(self, dataset: Any, indices: Sequence[int] | np.ndarray) -> None:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"Subset indices must lie in [-{n}, {n}) for a dataset of {n} samples")
        self.dataset = dataset
        self.indices = np.where(idx < 0, idx + n, idx)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[_check_index(index, len(self), "Subset")])]

    def __getitems__(self, indices: Sequence[int] | np.ndarray) -> Sequence:
        return _fetch(self.dataset, self.indices[np.asarray(indices, dtype=np.intp)])

    def __repr__(self) -> str:
        return f"Subset({len(self)} of {len(self.dataset)} samples)"


class ConcatDataset(Dataset):
    """Datasets one after another: sample ``i`` comes from the dataset whose range holds ``i``."""

    def __init__(self, datasets: Sequence[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def _locate(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        which = np.searchsorted(self.cumulative_sizes, idx, side="right")  # (B,) dataset of each index
        starts = np.concatenate([[0], self.cumulative_sizes[:-1]])
        return which, idx - starts[which]

    def __getitem__(self, index: int) -> Any:
        i = _check_index(index, len(self), "ConcatDataset")
        which, local = self._locate(np.array([i]))
        return self.datasets[which[0]][int(local[0])]

    def __getitems__(self, indices: Sequence[int] | np.ndarray) -> Sequence:
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"ConcatDataset indices must lie in [0, {len(self)})")
        which, local = self._locate(idx)
        groups = [np.flatnonzero(which == d) for d in np.unique(which)]  # positions in the batch, per dataset
        parts = [_fetch(self.datasets[which[pos[0]]], local[pos]) for pos in groups]
        if len(parts) == 1:
            return parts[0]
        if all(isinstance(p, StackedItems) for p in parts) and len({len(p.columns) for p in parts}) == 1:
            # one concatenate per column, then undo the grouping with one permutation
            order = np.argsort(np.concatenate(groups), kind="stable")
            columns = zip(*(p.columns for p in parts))
            return StackedItems([np.concatenate(col)[order] for col in columns])
        out: list[Any] = [None] * len(idx)
        for pos, part in zip(groups, parts):
            for p, item in zip(pos, part):
                out[p] = item
        return out


def random_split(dataset: Any, lengths: Sequence[int | float], seed: Seed = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    ``lengths`` are sample counts adding up to ``len(dataset)``, or fractions adding up to 1; fractions
    are floored and the remaining samples dealt one each to the first subsets, as ``torch`` does.
    ``seed`` is an int or a ``numpy.random.Generator``; None uses dl's default generator.
    """
    n = len(dataset)
    counts = _split_counts(n, lengths)
    perm = get_generator(seed).permutation(n)
    bounds = np.cumsum([0, *counts])
    return [Subset(dataset, perm[a:b]) for a, b in itertools.pairwise(bounds)]


def _split_counts(n: int, lengths: Sequence[int | float]) -> list[int]:
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split needs at least one length")
    if any(v < 0 for v in lengths):
        raise ValueError(f"random_split lengths must be non-negative, got {lengths}")
    if all(isinstance(v, int | np.integer) for v in lengths):
        if sum(lengths) != n:
            raise ValueError(f"random_split lengths {lengths} add up to {sum(lengths)}, the dataset has {n} samples")
        return [int(v) for v in lengths]
    if not math.isclose(sum(lengths), 1.0, abs_tol=1e-6):
        raise ValueError(
            f"random_split lengths {lengths} must be sample counts adding up to {n} or fractions adding up to 1"
        )
    counts = [math.floor(n * f) for f in lengths]
    for i in range(n - sum(counts)):
        counts[i % len(counts)] += 1
    return counts


# ---- a dataset split three ways, and what it holds ------------------------------------------------------
@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    ``input_shape`` is one sample's shape, e.g. (64,) or (1, 28, 28); ``target_shape`` is () for class
    labels and (1,) for a scalar regression target. For language modelling a sample is a window of
    ``input_shape`` = (block_size,) token ids, its target the next token at each position (target_shape
    (block_size,)), and ``num_classes`` is the vocabulary's size.
    """

    name: str
    task: Literal["classification", "regression", "language_modeling", "translation", "masked_language_modeling",
                  "reinforcement_learning", "segmentation", "detection", "pose", "vqa"]
    input_shape: tuple[int, ...]
    num_classes: int | None = None
    target_shape: tuple[int, ...] = ()
    classes: tuple[str, ...] | None = None
    # images: the per-channel (mean, std) the inputs were standardized with after scaling pixels to [0, 1], so
    # that new images (``dlbasics predict``) can be prepared the same way; None if they were not
    pixel_normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    # options of a model that this data decides beyond the ones above, by the model builder's parameter name: a
    # translation set's {"src_vocab_size": ..., "tgt_vocab_size": ...}, text's {"max_len": ...}
    model_options: dict[str, Any] = field(default_factory=dict)

    @property
    def in_features(self) -> int:
        """Inputs per sample when flattened (the first Linear layer's in_features)."""
        return math.prod(self.input_shape)

    @property
    def out_features(self) -> int:
        """Outputs the model needs: one logit per class (per token of the vocabulary), or one value per target
        entry."""
        return self.num_classes if self.task != "regression" else math.prod(self.target_shape)


@dataclass(frozen=True)
class Splits:
    """Train, validation and test datasets plus their ``info``; unpacks like a tuple. Text sets also carry
    the ``tokenizer`` that made their token ids (a run folder saves it, ``dlbasics generate`` decodes with it).

        train, val, test = dl.data.datasets.digits()
        splits = dl.data.datasets.digits(); splits.info.num_classes  # 10
    """

    train: Any
    val: Any
    test: Any
    info: DatasetInfo
    tokenizer: Any = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.train, self.val, self.test))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> Any:
        return (self.train, self.val, self.test)[index]
