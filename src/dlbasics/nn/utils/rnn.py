"""Variable-length batches for the recurrent layers, as ``torch.nn.utils.rnn``: packed sequences.

A batch of sequences of different lengths is padded to the longest, but a recurrent layer must not run over the
padding: the outputs there are not data, and the final state of a short sequence must be the one at its own last
step. A ``PackedSequence`` says which rows are real at each step:

    lengths 4, 2, 1  ->  batch_sizes = [3, 2, 1, 1]    (rows active at t = 0, 1, 2, 3, the longest first)
    data = the active rows of each step, one step after the other: (sum(lengths), *)

    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, h_n = lstm(packed)                    # out: a PackedSequence; h_n at each sequence's last step
    y, lengths = pad_packed_sequence(out, batch_first=True)   # zeros past each length

``sorted_indices`` is the order that sorts the batch by length (longest first; None when it already was);
``unsorted_indices`` puts it back. All of it is differentiable: packing and unpacking move rows, and the gradient
moves them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from dlbasics.ops.movement import cat
from dlbasics.ops.recurrent import gather_rows, scatter_rows
from dlbasics.tensor import Tensor


class PackedSequence(NamedTuple):
    """data (sum of lengths, *): each step's active rows in turn; batch_sizes (T,) int64: rows active per step;
    sorted_indices / unsorted_indices (B,) int64: the batch's order sorted by length and back (None: sorted)."""

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None


def _ints(x: Any) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, Tensor) else x).astype(np.int64).reshape(-1)


def _tensor(a: np.ndarray) -> Tensor:
    return Tensor._make(np.asarray(a, np.int64), False, None)


def packed_rows(batch_sizes: np.ndarray, sorted_indices: np.ndarray | None, steps: int,
                batch_first: bool) -> np.ndarray:
    """For each row of packed data, its row in the padded batch flattened to (T B) rows, or (B T) if
    ``batch_first``; ``steps`` = T of the padded batch (at least len(batch_sizes))."""
    bs = np.asarray(batch_sizes, np.int64)
    b = bs[0] if bs.size else 0
    t = np.repeat(np.arange(bs.size), bs)  # the step of each packed row
    j = np.arange(t.size) - np.repeat(np.cumsum(bs) - bs, bs)  # its place in the (sorted) batch
    if sorted_indices is not None:
        j = np.asarray(sorted_indices)[j]
    return j * steps + t if batch_first else t * b + j


def _lengths_sorted(batch_sizes: np.ndarray) -> np.ndarray:
    """Each row's length, rows in sorted order: the steps with more than j rows active."""
    bs = np.asarray(batch_sizes)
    return (bs[:, None] > np.arange(bs[0] if bs.size else 0)).sum(0).astype(np.int64)


def pack_padded_sequence(input: Tensor, lengths: Any, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) - (B, T, *) if ``batch_first`` - whose sequence b is ``lengths[b]`` long.

    ``enforce_sorted``: the lengths must already be in decreasing order; pass False to have them sorted (the
    order is kept in ``sorted_indices`` and undone by ``pad_packed_sequence`` and the recurrent layers)."""
    if input.ndim < 2:
        raise ValueError(f"pack_padded_sequence: input must have a time and a batch dim, got shape {input.shape}")
    lens = _ints(lengths)
    steps, batch = (input.shape[1], input.shape[0]) if batch_first else (input.shape[0], input.shape[1])
    if lens.size != batch:
        raise ValueError(f"pack_padded_sequence: got {lens.size} lengths for a batch of {batch} "
                         f"(input {input.shape}, batch_first={batch_first})")
    if batch and lens.min() <= 0:
        raise RuntimeError(f"pack_padded_sequence: every length must be at least 1, got {lens.tolist()}")
    if batch and lens.max() > steps:
        raise RuntimeError(f"pack_padded_sequence: length {int(lens.max())} is longer than the input's {steps} steps "
                           f"(input {input.shape}, batch_first={batch_first})")
    if enforce_sorted:
        if np.any(np.diff(lens) > 0):
            raise RuntimeError(f"pack_padded_sequence: lengths {lens.tolist()} must be sorted in decreasing order "
                               "when enforce_sorted is True; pass enforce_sorted=False to have them sorted")
        order = None
    else:
        order = np.argsort(-lens, kind="stable")
    sorted_lens = lens if order is None else lens[order]
    batch_sizes = (sorted_lens[None, :] > np.arange(int(sorted_lens.max()) if batch else 0)[:, None]).sum(1)
    rows = packed_rows(batch_sizes, order, steps, batch_first)
    data = gather_rows(input.reshape(steps * batch, *input.shape[2:]), rows)
    if order is None:
        return PackedSequence(data, _tensor(batch_sizes))
    return PackedSequence(data, _tensor(batch_sizes), _tensor(order), _tensor(np.argsort(order)))


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, Tensor]:
    """Undo ``pack_padded_sequence``: (padded (T, B, *) or (B, T, *), lengths (B,) int64), in the batch's original
    order, ``padding_value`` past each length; T = the longest length, or ``total_length`` if given."""
    bs = _ints(sequence.batch_sizes)
    steps = bs.size
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"pad_packed_sequence: total_length {total_length} is shorter than the longest "
                             f"sequence ({steps} steps)")
        steps = total_length
    batch = int(bs[0]) if bs.size else 0
    order = None if sequence.sorted_indices is None else _ints(sequence.sorted_indices)
    rows = packed_rows(bs, order, steps, batch_first)
    data = sequence.data
    padded = scatter_rows(data, rows, steps * batch, padding_value)
    shape = (batch, steps) if batch_first else (steps, batch)
    lengths = _lengths_sorted(bs)
    if sequence.unsorted_indices is not None:
        lengths = lengths[_ints(sequence.unsorted_indices)]
    return padded.reshape(*shape, *data.shape[1:]), _tensor(lengths)


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences (L_i, *) directly (no padded batch in between)."""
    if not sequences:
        raise ValueError("pack_sequence: received an empty list of sequences")
    lens = np.array([s.shape[0] for s in sequences], np.int64)
    if lens.min() <= 0:
        raise RuntimeError(f"pack_sequence: every sequence needs at least one step, got lengths {lens.tolist()}")
    if enforce_sorted and np.any(np.diff(lens) > 0):
        raise RuntimeError(f"pack_sequence: lengths {lens.tolist()} must be sorted in decreasing order when "
                           "enforce_sorted is True; pass enforce_sorted=False to have them sorted")
    order = None if enforce_sorted else np.argsort(-lens, kind="stable")
    sorted_lens = lens if order is None else lens[order]
    batch_sizes = (sorted_lens[None, :] > np.arange(int(sorted_lens.max()))[:, None]).sum(1)
    starts = np.cumsum(lens) - lens  # where each sequence begins in their concatenation
    t = np.repeat(np.arange(batch_sizes.size), batch_sizes)
    j = np.arange(t.size) - np.repeat(np.cumsum(batch_sizes) - batch_sizes, batch_sizes)
    seq = j if order is None else order[j]
    data = gather_rows(cat(list(sequences), 0), starts[seq] + t)
    if order is None:
        return PackedSequence(data, _tensor(batch_sizes))
    return PackedSequence(data, _tensor(batch_sizes), _tensor(order), _tensor(np.argsort(order)))


__all__ = ["PackedSequence", "pack_padded_sequence", "pack_sequence", "packed_rows", "pad_packed_sequence"]
