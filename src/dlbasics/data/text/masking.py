"""BERT's masking: which words a masked language model must fill in, and what it sees in their place.

Devlin et al. (2018), section 3.1: choose 15% of a sequence's words; of those, 80% become ``<mask>``, 10% a random
word and 10% stay as they are - so the model cannot tell which visible words are the ones it is scored on, and
must keep a good representation of every word, not only of ``<mask>``. The labels are the original ids at the
chosen positions and -100 elsewhere, the ``ignore_index`` of ``nn.CrossEntropyLoss``: the loss counts the chosen
positions only.

    inputs, labels = mask_tokens(tokens, lengths, mask_id=4, vocab_size=5000, special_ids=range(5), generator=rng)

How many: as BERT's ``create_pretraining_data.py``, each sequence gets exactly round(p n) chosen positions, n its
number of candidates (words: neither padding nor a special token), and at least one if it has any - every
sequence is scored, and a short tweet is not left unmasked by chance as independent draws per word would leave it
(the choice of RoBERTa's and Hugging Face's collator, which do not force one). So the fraction is p up to rounding,
a little more on very short sequences.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from dlbasics.rng import Seed, get_generator
from dlbasics.tensor import Tensor

IGNORE_INDEX = -100  # the label of a position the loss skips (nn.CrossEntropyLoss's default ignore_index)


def _array(x: Any) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def mask_tokens(ids: Any, lengths: Any, *, mask_id: int, vocab_size: int, special_ids: Iterable[int],
                p: float = 0.15, generator: Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """ids (B, L) token ids, right-padded past ``lengths`` (B,) (None: no padding) -> (inputs, labels), both
    (B, L) int64.

    Chosen: round(p n_b) of row b's n_b candidate positions (at least one if n_b > 0), uniformly; a candidate is
    a position before the row's length whose id is not in ``special_ids``. Of the chosen, with probability 0.8
    the input is ``mask_id``, 0.1 a word drawn uniformly from the non-special ids below ``vocab_size``, 0.1 the
    original. labels = ids at the chosen positions, -100 elsewhere. Every draw comes from ``generator`` (a seed
    or ``numpy.random.Generator``), the same number of draws for every batch of one shape.
    """
    ids = _array(ids)
    if ids.ndim != 2 or (ids.size and ids.dtype.kind not in "iu"):
        raise ValueError(f"mask_tokens: ids must be (B, L) integer token ids, got shape {ids.shape} and dtype "
                         f"{ids.dtype}")
    if not 0.0 < p <= 1.0:
        raise ValueError(f"mask_tokens: p must be in (0, 1], got {p}")
    special = np.unique(np.asarray(list(special_ids), dtype=np.int64))
    if not 0 <= mask_id < vocab_size or mask_id not in special:
        raise ValueError(f"mask_tokens: mask_id {mask_id} must be one of the special ids {special.tolist()}, "
                         f"below vocab_size {vocab_size}")
    words = np.setdiff1d(np.arange(vocab_size), special)  # the ids a random replacement may take
    if words.size == 0:
        raise ValueError(f"mask_tokens: every id below vocab_size {vocab_size} is special; there are no words")
    b, length = ids.shape
    real = np.ones((b, length), bool)
    if lengths is not None:
        lengths = _array(lengths).astype(np.int64)
        if lengths.shape != (b,):
            raise ValueError(f"mask_tokens: lengths of shape {lengths.shape} do not fit ids of shape {ids.shape}; "
                             f"expected ({b},)")
        real = np.arange(length) < lengths[:, None]  # (B, L)
    candidate = real & ~np.isin(ids, special)  # (B, L)
    n = candidate.sum(axis=1)  # (B,)
    k = np.minimum(np.maximum(np.rint(p * n).astype(np.int64), 1), n)  # (B,) how many to choose in each row

    g = get_generator(generator)
    keys, action, replacement = g.random((b, length)), g.random((b, length)), g.integers(0, words.size, (b, length))
    # a random order of each row's candidates (the rest after them): choosing its first k is choosing k uniformly
    keys = np.where(candidate, keys, 2.0)
    order = np.argsort(keys, axis=1, kind="stable")  # (B, L)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(length)[None, :].repeat(b, 0), axis=1)  # rank[b, order[b, j]] = j
    chosen = rank < k[:, None]  # (B, L)

    inputs = ids.astype(np.int64, copy=True)
    inputs[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    inputs[swap] = words[replacement[swap]]
    labels = np.where(chosen, ids, IGNORE_INDEX).astype(np.int64)
    return inputs, labels


__all__ = ["IGNORE_INDEX", "mask_tokens"]
