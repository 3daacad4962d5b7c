"""``DataLoader``: a dataset cut into (shuffled) batches of Tensors, one NumPy fancy-index per batch.

Each epoch draws a fresh permutation from one generator, so epochs differ yet a run is reproducible
from its seed. Batches are fetched with the dataset's ``__getitems__`` when it has one (one call per
batch), else sample by sample, then turned into Tensors by ``collate_fn`` (``default_collate``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from dlbasics.data.dataset import StackedItems, _fetch
from dlbasics.rng import Seed, get_generator
from dlbasics.tensor import Tensor

Collate = Callable[[Sequence[Any]], Any]


def _to_tensor(arr: np.ndarray) -> Tensor:
    """dl's dtype policy for fresh NumPy data: floats -> float32, signed integers -> int64; no copy if
    the dtype is already right (uint8 and bool stay as they are)."""
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    elif kind == "i" and arr.dtype != np.int64:
        arr = arr.astype(np.int64)
    elif kind not in "fiub":
        raise TypeError(f"default_collate: cannot make a Tensor from arrays of dtype {arr.dtype}")
    return Tensor._make(arr, False, None)


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into batched Tensors, keeping the samples' structure.

    Arrays (...) -> Tensor (B, ...); Python/NumPy numbers -> Tensor (B,) (ints int64, floats float32);
    Tensors are stacked keeping their dtype; tuples, lists, named tuples and dicts are collated field by
    field; strings are returned as a list. ``StackedItems`` columns (already stacked by the dataset,
    which chose their dtypes) are wrapped as they are, with no copy.
    """
    if isinstance(batch, StackedItems):
        return tuple(Tensor._make(c, False, None) for c in batch.columns)
    if len(batch) == 0:
        raise ValueError("default_collate: cannot collate an empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor._make(np.stack([_same_shape(batch, t).data for t in batch]), False, None)
    if isinstance(elem, np.ndarray):
        return _to_tensor(np.stack([_same_shape(batch, a) for a in batch]))
    if isinstance(elem, bool | int | float | np.number | np.bool_):
        return _to_tensor(np.asarray(batch))
    if isinstance(elem, str | bytes):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, tuple | list):
        if any(len(sample) != len(elem) for sample in batch):
            counts = sorted({len(s) for s in batch})
            raise ValueError(f"default_collate: samples have different numbers of fields: {counts}")
        fields = [default_collate(list(samples)) for samples in zip(*batch)]
        if hasattr(elem, "_fields"):  # a named tuple
            return type(elem)(*fields)
        return tuple(fields) if isinstance(elem, tuple) else fields
    raise TypeError(
        f"default_collate: cannot batch samples of type {type(elem).__name__}; "
        "samples may be arrays, numbers, Tensors, or tuples/lists/dicts of them - or pass a collate_fn"
    )


def _same_shape(batch: Sequence[Any], x: Any) -> Any:
    if x.shape != batch[0].shape:
        shapes = sorted({tuple(b.shape) for b in batch})
        raise ValueError(f"default_collate: samples in a batch must have the same shape, got shapes {shapes}")
    return x


def dataset_collate(dataset: Any) -> Collate:
    """How ``dataset``'s samples make a batch: its ``collate_fn`` attribute, looked up through wrappers (a
    ``Subset``'s ``dataset``, a ``ConcatDataset``'s first part), else ``default_collate``."""
    while dataset is not None:
        if callable(getattr(dataset, "collate_fn", None)):
            return dataset.collate_fn
        inner = getattr(dataset, "datasets", None)
        dataset = inner[0] if inner else getattr(dataset, "dataset", None)
    return default_collate


class DataLoader:
    """Iterate over ``dataset`` in batches of Tensors.

    Args:
        dataset: map-style: ``len(dataset)`` and ``dataset[i]``, optionally ``dataset.__getitems__(indices)``.
        batch_size: samples per batch; the last batch may be smaller unless ``drop_last``.
        shuffle: a new random order every epoch.
        drop_last: drop the last, incomplete batch.
        collate_fn: turns the list of samples of one batch into the batch. Default: the dataset's own
            ``collate_fn`` attribute if it has one (variable-length text pads its samples: ``pad_collate``), else
            ``default_collate``: a dataset of ``(x, y)`` pairs with x (...) float and y int gives
            ``(x (B, ...) float32, y (B,) int64)``.
        seed: int or ``numpy.random.Generator`` for shuffling; None draws from dl's default generator
            (set by ``dl.manual_seed``) at the start of each epoch.
        num_replicas, rank: data-parallel training on ``num_replicas`` processes: ``batch_size`` is the global
            batch, which every process draws alike (the same seed gives the same order everywhere), and this
            process gets its ``rank``-th share of each batch (``np.array_split`` of it into ``num_replicas``
            contiguous parts, sizes differing by at most one). ``batch_share`` is (this share's size, the
            global batch's) for the batch just handed out: the weight of this rank's mean in the global mean.
            A last batch with fewer samples than processes is dropped, as no share may be empty.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 collate_fn: Collate | None = None, seed: Seed = None, num_replicas: int = 1, rank: int = 0) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader needs a map-style dataset with __len__ and __getitem__, "
                            f"got {type(dataset).__name__}")
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int | np.integer) or num_replicas < 1:
            raise ValueError(f"num_replicas must be a positive integer, got {num_replicas!r}")
        if isinstance(rank, bool) or not isinstance(rank, int | np.integer) or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be an integer in 0 .. {num_replicas - 1} (num_replicas {num_replicas}), "
                             f"got {rank!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn: Collate = dataset_collate(dataset) if collate_fn is None else collate_fn
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.batch_share = (self.batch_size, self.batch_size)
        # an int seed becomes one generator for the loader's life: each epoch's permutation is its next draw
        self._generator = None if seed is None else get_generator(seed)
        self._epoch_state: dict[str, Any] | None = None  # the shuffling generator's state when this epoch began
        self._yielded = 0  # batches of this epoch handed out so far
        self._resume: dict[str, Any] | None = None

    def __len__(self) -> int:
        n = len(self.dataset)
        full, tail = divmod(n, self.batch_size)
        return full + (tail > 0 and not self.drop_last and tail >= self.num_replicas)

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        start, resume, self._resume = 0, self._resume, None
        if not self.shuffle:
            order = np.arange(n)
        elif resume is None:
            # the permutation is drawn here, when the epoch starts, not at the first batch
            g = get_generator(self._generator)
            self._epoch_state = g.bit_generator.state
            order = g.permutation(n)
        else:  # the epoch a checkpoint was taken in: the same permutation, from the state it was drawn with
            g = np.random.Generator(type(get_generator(self._generator).bit_generator)())
            g.bit_generator.state = self._epoch_state = resume["epoch_state"]
            order = g.permutation(n)
            if self._generator is not None:  # our own generator goes on from where that draw left it
                self._generator.bit_generator.state = g.bit_generator.state
        if resume is not None:
            start = int(resume["batches"])
        tail = n % self.batch_size
        stop = n - tail if self.drop_last or tail < self.num_replicas else n
        self._yielded = start
        return self._batches(order, start * self.batch_size, stop)

    def _batches(self, order: np.ndarray, first: int, stop: int) -> Iterator[Any]:
        for start in range(first, stop, self.batch_size):
            indices = order[start:start + self.batch_size]
            if self.num_replicas > 1:
                share = np.array_split(indices, self.num_replicas)[self.rank]
                self.batch_share, indices = (len(share), len(indices)), share
            batch = self.collate_fn(_fetch(self.dataset, indices))
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """Where this epoch is: the shuffling generator's state when it began and the batches handed out, so
        that ``load_state_dict`` makes the next ``iter()`` continue the same epoch with the next batch (as
        torchdata's ``StatefulDataLoader``). Other random state (a ``collate_fn``'s, the dataset's transforms')
        is the caller's to save."""
        return {"epoch_state": self._epoch_state, "batches": self._yielded}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.shuffle and state.get("epoch_state") is None and state.get("batches"):
            raise ValueError("DataLoader.load_state_dict: a shuffled epoch needs the generator state it began with")
        self._resume = {"epoch_state": state.get("epoch_state"), "batches": int(state.get("batches", 0))}

    def __repr__(self) -> str:
        shard = f", rank {self.rank} of {self.num_replicas}" if self.num_replicas > 1 else ""
        return (f"DataLoader({len(self.dataset)} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}{shard})")
