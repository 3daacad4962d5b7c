"""BERT's masking (``data/text/masking.py``) on a large synthetic batch: 15% of the words chosen, 80/10/10 of them
masked/replaced/kept, never a special or padding position, random words never special, labels -100 elsewhere,
seeded."""

import numpy as np
import pytest

from dlbasics.data.text.masking import IGNORE_INDEX, mask_tokens

V, MASK, SPECIAL = 50, 4, range(5)


def _corpus(b=2000, length=64, seed=0):
    """Rows: <bos>, words 5..49 with some <unk> 1 and <eos> 3 among them, padded with 0 past random lengths."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, V, (b, length))
    ids[rng.random((b, length)) < 0.05] = 1
    ids[:, 0] = 2
    lengths = rng.integers(20, length + 1, b)
    ids[np.arange(b), lengths - 1] = 3
    ids[np.arange(length) >= lengths[:, None]] = 0
    return ids, lengths


def test_fifteen_percent_of_the_words_chosen_and_eighty_ten_ten_of_them():
    ids, lengths = _corpus()
    inputs, labels = mask_tokens(ids, lengths, mask_id=MASK, vocab_size=V, special_ids=SPECIAL, generator=0)
    assert inputs.shape == labels.shape == ids.shape and inputs.dtype == labels.dtype == np.int64
    chosen = labels != IGNORE_INDEX
    words = (np.arange(ids.shape[1]) < lengths[:, None]) & (ids >= 5)
    assert not (chosen & ~words).any()  # never a special token, never padding
    assert abs(chosen.sum() / words.sum() - 0.15) < 0.005
    per_row = chosen.sum(1)
    assert (per_row == np.rint(0.15 * words.sum(1))).all()  # exactly round(p n) in every row
    np.testing.assert_array_equal(labels[chosen], ids[chosen])
    np.testing.assert_array_equal(inputs[~chosen], ids[~chosen])  # what is not chosen is not touched
    masked, kept = inputs[chosen] == MASK, inputs[chosen] == ids[chosen]
    swapped = ~masked & ~kept
    n = chosen.sum()
    # a random word equals the original with probability 1/45: "kept" holds 10% + 10%/45 of the chosen
    assert abs(masked.sum() / n - 0.8) < 0.01 and abs(kept.sum() / n - 0.1 - 0.1 / 45) < 0.01
    assert abs(swapped.sum() / n - 0.1 * 44 / 45) < 0.01
    assert inputs[chosen][swapped].min() >= 5 and inputs[chosen][swapped].max() < V  # random words, not special
    assert len(np.unique(inputs[chosen][swapped])) == 45  # drawn from every word


def test_every_sequence_with_a_word_gets_at_least_one_and_one_without_gets_none():
    ids = np.array([[2, 7, 3, 0, 0], [2, 3, 0, 0, 0], [2, 9, 9, 9, 3]])
    lengths = np.array([3, 2, 5])
    for seed in range(20):
        _, labels = mask_tokens(ids, lengths, mask_id=MASK, vocab_size=V, special_ids=SPECIAL, p=0.15,
                                generator=seed)
        chosen = labels != IGNORE_INDEX
        assert chosen.sum(1).tolist() == [1, 0, 1]  # round(0.15 * 3) = 0 -> 1; no word, nothing to choose
        assert chosen[0, 1] and not chosen[:, [0, 4]].any()


def test_seeded_and_without_lengths_padding_is_special():
    ids, lengths = _corpus(b=50, seed=1)
    a = mask_tokens(ids, lengths, mask_id=MASK, vocab_size=V, special_ids=SPECIAL, generator=3)
    b = mask_tokens(ids, None, mask_id=MASK, vocab_size=V, special_ids=SPECIAL, generator=np.random.default_rng(3))
    for x, y in zip(a, b):  # padding is id 0, special: the same choice with or without lengths
        np.testing.assert_array_equal(x, y)
    c = mask_tokens(ids, lengths, mask_id=MASK, vocab_size=V, special_ids=SPECIAL, generator=4)
    assert (a[1] != c[1]).any()


def test_bad_arguments_are_one_line_errors_naming_them():
    ids, lengths = _corpus(b=4)
    with pytest.raises(ValueError, match=r"lengths of shape \(3,\) do not fit ids of shape \(4, 64\)"):
        mask_tokens(ids, lengths[:3], mask_id=MASK, vocab_size=V, special_ids=SPECIAL)
    with pytest.raises(ValueError, match=r"mask_id 7 must be one of the special ids \[0, 1, 2, 3, 4\]"):
        mask_tokens(ids, lengths, mask_id=7, vocab_size=V, special_ids=SPECIAL)
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\], got 0"):
        mask_tokens(ids, lengths, mask_id=MASK, vocab_size=V, special_ids=SPECIAL, p=0)
    with pytest.raises(ValueError, match=r"ids must be \(B, L\) integer token ids, got shape \(64,\)"):
        mask_tokens(ids[0], lengths, mask_id=MASK, vocab_size=V, special_ids=SPECIAL)
