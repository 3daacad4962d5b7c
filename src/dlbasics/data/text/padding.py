"""Padding sequences of different lengths into one batch.

``pad_sequence`` is PyTorch's ``torch.nn.utils.rnn.pad_sequence`` on arrays: sequences (L_i, *) -> (B, L, *) with
``batch_first`` else (L, B, *), L the longest, the rest filled with ``padding_value`` (on the right by default).
``pad_collate`` is a ``collate_fn`` for a ``DataLoader`` over variable-length samples: it pads the token ids and
returns the lengths beside them, as Tensors like ``default_collate``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from dlbasics.data.dataloader import _to_tensor, default_collate
from dlbasics.tensor import Tensor


def _array(seq: Any) -> np.ndarray:
    return seq.data if isinstance(seq, Tensor) else np.asarray(seq)


def pad_sequence(sequences: Sequence[Any], batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: Literal["right", "left"] = "right") -> np.ndarray:
    """Stack sequences (L_i, *) into (B, L, *) if ``batch_first`` else (L, B, *), L = max L_i, padding with
    ``padding_value`` on ``padding_side``. The dtype is the sequences' common dtype (token ids stay integers).

    Same layout and defaults as ``torch.nn.utils.rnn.pad_sequence``; the arguments may be arrays, lists or Tensors,
    the result is a NumPy array.
    """
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'right' or 'left', got {padding_side!r}")
    arrays = [_array(s) for s in sequences]
    if not arrays:
        raise ValueError("pad_sequence: received an empty list of sequences")
    if any(a.ndim == 0 for a in arrays):
        raise ValueError("pad_sequence: sequences need a length dimension (L, *), got a scalar")
    trailing = {a.shape[1:] for a in arrays}
    if len(trailing) > 1:
        raise ValueError(f"pad_sequence: sequences must agree after their length dimension, got shapes "
                         f"{sorted({a.shape for a in arrays})}")
    lengths = [len(a) for a in arrays]
    longest = max(lengths)
    # an empty list is float64 to NumPy; it must not turn a batch of token ids into floats
    dtype = np.result_type(*([a for a in arrays if a.size] or arrays))
    out = np.full((len(arrays), longest, *arrays[0].shape[1:]), padding_value, dtype=dtype)
    for row, a in zip(out, arrays):
        if padding_side == "right":
            row[:len(a)] = a
        elif len(a):
            row[longest - len(a):] = a
    return out if batch_first else np.ascontiguousarray(np.swapaxes(out, 0, 1))  # (B, L, *) or (L, B, *)


def _padded(field: Sequence[Any], pad_id: int, batch_first: bool, padding_side: str) -> tuple[Tensor, Tensor]:
    padded = pad_sequence(field, batch_first=batch_first, padding_value=pad_id, padding_side=padding_side)
    lengths = np.array([len(_array(s)) for s in field], dtype=np.int64)
    return _to_tensor(padded), Tensor._make(lengths, False, None)


def _is_sequence(x: Any) -> bool:
    return isinstance(x, list) or (isinstance(x, np.ndarray | Tensor) and x.ndim >= 1)


def pad_collate(batch: Sequence[Any], pad_id: int = 0, batch_first: bool = True,
                padding_side: Literal["right", "left"] = "right") -> Any:
    """Collate variable-length samples into padded Tensors plus their lengths.

    - samples that are sequences of token ids (arrays, lists or Tensors of length L_i) ->
      ``(padded (B, L) int64, lengths (B,) int64)``; (L, B) if not ``batch_first``.
    - samples that are tuples, e.g. ``(src, tgt)`` pairs -> one entry per field: a sequence field gives its
      ``(padded, lengths)`` pair, a scalar field (a class label) its ``default_collate`` (B,), so ``(src, tgt)``
      -> ``((src (B, S), src_lengths (B,)), (tgt (B, T), tgt_lengths (B,)))`` and ``(tokens, label)`` ->
      ``((tokens (B, L), lengths (B,)), labels (B,))``.

    Pass it to a DataLoader as ``collate_fn=pad_collate`` (or ``functools.partial(pad_collate, pad_id=tok.pad_id)``).
    """
    if len(batch) == 0:
        raise ValueError("pad_collate: cannot collate an empty batch")
    elem = batch[0]
    if _is_sequence(elem):
        return _padded(batch, pad_id, batch_first, padding_side)
    if isinstance(elem, tuple):
        if any(not isinstance(s, tuple) or len(s) != len(elem) for s in batch):
            raise ValueError("pad_collate: samples have different numbers of fields: "
                             f"{sorted({len(s) if isinstance(s, tuple) else 1 for s in batch})}")
        fields = []
        for k, field in enumerate(zip(*batch)):
            if _is_sequence(field[0]):
                fields.append(_padded(field, pad_id, batch_first, padding_side))
            elif isinstance(field[0], tuple | dict):
                raise TypeError(f"pad_collate: field {k} of a sample is a {type(field[0]).__name__}; fields may be "
                                "sequences of token ids or scalars")
            else:
                fields.append(default_collate(list(field)))
        return tuple(fields)
    raise TypeError(f"pad_collate: samples must be sequences of token ids (arrays, lists, Tensors) or tuples of them, "
                    f"got {type(elem).__name__}")
