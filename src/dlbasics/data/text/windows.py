"""Next-token windows over one long sequence of token ids (N,): what a language model trains on.

A window starting at i is ``x = tokens[i : i+T]`` and ``y = tokens[i+1 : i+T+1]``, both (T,) int64 with
T = ``block_size``: y[t] is the token that follows x[:t+1]. ``TokenWindows`` is a map-style ``Dataset`` of
windows at fixed starts (every ``stride`` tokens; non-overlapping by default, for evaluation); ``RandomWindows``
draws batches of windows at random starts, as nanoGPT's ``get_batch`` does, yielding ``(x, y)`` Tensors of shape
(B, T) int64 - what a ``DataLoader`` over ``TokenWindows`` yields too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from dlbasics.data.dataset import Dataset, StackedItems, _check_index
from dlbasics.errors import ConfigError, DataError
from dlbasics.rng import Seed, _plain_state, get_generator
from dlbasics.tensor import Tensor


def _tokens(tokens: Any, block_size: Any, who: str) -> np.ndarray:
    """``tokens`` as a 1-D int64 array holding at least one window of ``block_size`` (+1 for the shifted target)."""
    if isinstance(block_size, bool) or not isinstance(block_size, int | np.integer) or block_size < 1:
        raise ConfigError(f"{who}: block_size must be a whole number >= 1, got {block_size!r}")
    arr = np.asarray(tokens.data if isinstance(tokens, Tensor) else tokens)
    if arr.ndim != 1:
        raise DataError(f"{who}: tokens must be one sequence of token ids (N,), got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise DataError(f"{who}: tokens must be integer token ids, got dtype {arr.dtype}")
    if len(arr) < block_size + 1:
        raise DataError(f"{who}: {len(arr)} tokens hold no window of block_size {block_size} (a window needs "
                        f"block_size + 1 = {block_size + 1} tokens: the inputs and the next token)")
    return arr.astype(np.int64, copy=False)


def _gather(tokens: np.ndarray, starts: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """x, y (B, T) of the windows at ``starts`` (B,)."""
    idx = starts[:, None] + np.arange(block_size)  # (B, T)
    return tokens[idx], tokens[idx + 1]


class TokenWindows(Dataset):
    """Windows at starts 0, stride, 2*stride, ...: item i is ``(x, y) = (tokens[s:s+T], tokens[s+1:s+T+1])`` with
    s = i * stride, each (T,) int64.

    There are ``(N - 1 - T) // stride + 1`` windows: the last one ends where the next would run out of tokens, so
    up to ``stride - 1`` tokens at the end are not predicted (as a ``DataLoader`` with ``drop_last``).

    Args:
        tokens: the token ids (N,) (an array, list or Tensor of integers), N >= block_size + 1.
        block_size: T, the context length.
        stride: tokens between window starts; default ``block_size`` (non-overlapping windows that predict every
            token once: an evaluation pass), 1 for every window.
    """

    def __init__(self, tokens: Any, block_size: int, stride: int | None = None) -> None:
        self.tokens = _tokens(tokens, block_size, "TokenWindows")
        self.block_size = int(block_size)
        stride = self.block_size if stride is None else stride
        if isinstance(stride, bool) or not isinstance(stride, int | np.integer) or stride < 1:
            raise ConfigError(f"TokenWindows: stride must be None or a whole number >= 1, got {stride!r}")
        self.stride = int(stride)

    def __len__(self) -> int:
        return (len(self.tokens) - 1 - self.block_size) // self.stride + 1

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        s = _check_index(index, len(self), "TokenWindows") * self.stride
        return self.tokens[s:s + self.block_size], self.tokens[s + 1:s + self.block_size + 1]

    def __getitems__(self, indices: Any) -> StackedItems:
        """A batch of windows with one gather: columns x, y (B, T) int64."""
        idx = np.asarray(indices, dtype=np.int64)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexError(f"TokenWindows index {bad} is out of range for {n} windows")
        return StackedItems(_gather(self.tokens, np.where(idx < 0, idx + n, idx) * self.stride, self.block_size))

    def __repr__(self) -> str:
        return (f"TokenWindows({len(self)} windows of {self.block_size} over {len(self.tokens)} tokens, "
                f"stride={self.stride})")


class RandomWindows:
    """Batches of windows at random starts, as nanoGPT's ``get_batch``: each batch draws ``batch_size`` starts
    uniformly from 0..N-T-1 (with replacement) and yields ``(x, y)``, Tensors (B, T) int64.

    Iterating yields ``num_batches`` batches (one "epoch"), or without end when it is None (a run with a budget in
    steps stops it). ``state_dict()`` / ``load_state_dict()`` resume exactly: the next ``iter()`` continues with
    the batch that came next.

    Args:
        tokens: the token ids (N,), N >= block_size + 1.
        block_size: T, the context length.
        batch_size: B, windows per batch.
        seed: int or ``numpy.random.Generator``, owned for the object's life; None draws from dl's default generator
            (``dl.manual_seed``), whose state is then the caller's to save (a training run's checkpoint does).
        num_batches: batches per pass; None: endless.
    """

    def __init__(self, tokens: Any, block_size: int, batch_size: int, seed: Seed = None,
                 num_batches: int | None = None) -> None:
        self.tokens = _tokens(tokens, block_size, "RandomWindows")
        self.block_size = int(block_size)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ConfigError(f"RandomWindows: batch_size must be a whole number >= 1, got {batch_size!r}")
        if num_batches is not None and (isinstance(num_batches, bool) or not isinstance(num_batches, int | np.integer)
                                        or num_batches < 1):
            raise ConfigError(f"RandomWindows: num_batches must be None or a whole number >= 1, got {num_batches!r}")
        self.batch_size = int(batch_size)
        self.num_batches = None if num_batches is None else int(num_batches)
        self._generator = None if seed is None else get_generator(seed)
        self._yielded = 0  # batches of this pass handed out so far
        self._resume: int | None = None

    def __len__(self) -> int:
        if self.num_batches is None:
            raise TypeError("RandomWindows without num_batches is endless and has no len()")
        return self.num_batches

    def get_batch(self) -> tuple[Tensor, Tensor]:
        """One batch ``(x, y)``, each (B, T) int64: the next draw of the generator."""
        g = get_generator(self._generator)
        # nanoGPT: torch.randint(len(data) - block_size, (batch_size,)), starts 0..N-T-1 so y's last index is N-1
        starts = g.integers(0, len(self.tokens) - self.block_size, size=self.batch_size)  # (B,)
        x, y = _gather(self.tokens, starts, self.block_size)
        return Tensor._make(x, False, None), Tensor._make(y, False, None)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        start, self._resume = (self._resume or 0), None
        self._yielded = start
        return self._batches()

    def _batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        while self.num_batches is None or self._yielded < self.num_batches:
            batch = self.get_batch()
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The generator's state now (None when drawing from dl's default generator) and the batches of this pass
        handed out: JSON-ready."""
        state = None if self._generator is None else self._generator.bit_generator.state
        return {"generator": state, "batches": self._yielded}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``: the next ``iter()`` yields the batch that followed it."""
        saved = state.get("generator")
        if saved is not None:
            if self._generator is None:
                raise ValueError("RandomWindows.load_state_dict: the state holds a generator but this object draws "
                                 "from dl's default generator; build it with the seed it was built with")
            self._generator.bit_generator.state = _plain_state(dict(saved))
        self._resume = int(state.get("batches", 0))

    def __repr__(self) -> str:
        n = "endless" if self.num_batches is None else f"num_batches={self.num_batches}"
        return (f"RandomWindows(batch_size={self.batch_size}, block_size={self.block_size} over {len(self.tokens)} "
                f"tokens, {n})")
