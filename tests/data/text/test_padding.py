"""pad_sequence and pad_collate against torch.nn.utils.rnn.pad_sequence."""

from functools import partial

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.data import DataLoader
from dlbasics.data.text import pad_collate, pad_sequence

SEQS = [np.array([5, 6, 7]), np.array([8]), np.array([9, 10, 11, 12, 13]), np.array([], dtype=np.int64)]


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, padding_side):
    torch = pytest.importorskip("torch")
    ours = pad_sequence(SEQS, batch_first=batch_first, padding_value=-1, padding_side=padding_side)
    theirs = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(s) for s in SEQS], batch_first=batch_first,
                                             padding_value=-1, padding_side=padding_side)
    assert ours.dtype == np.int64 and ours.flags.c_contiguous
    np.testing.assert_array_equal(ours, theirs.numpy())


def test_pad_sequence_trailing_dims_match_torch():
    torch = pytest.importorskip("torch")
    seqs = [np.random.default_rng(i).standard_normal((n, 3)).astype(np.float32) for i, n in enumerate((2, 4, 1))]
    ours = pad_sequence(seqs)
    theirs = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(s) for s in seqs])
    assert ours.shape == (4, 3, 3) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs.numpy())


def test_pad_collate_sequences():
    padded, lengths = pad_collate([[1, 2, 3], np.array([4]), dl.tensor(np.array([5, 6]))], pad_id=0)
    assert isinstance(padded, dl.Tensor) and padded.dtype == lengths.dtype == np.int64
    assert padded.numpy().tolist() == [[1, 2, 3], [4, 0, 0], [5, 6, 0]]
    assert lengths.numpy().tolist() == [3, 1, 2]
    time_major, _ = pad_collate([[1, 2], [3]], pad_id=9, batch_first=False)
    assert time_major.numpy().tolist() == [[1, 3], [2, 9]]  # (L, B)
    left, _ = pad_collate([[1, 2], [3]], padding_side="left")
    assert left.numpy().tolist() == [[1, 2], [0, 3]]


def test_pad_collate_pairs_and_labels_through_a_dataloader():
    torch = pytest.importorskip("torch")
    pairs = [(np.arange(n), np.arange(10, 10 + m)) for n, m in [(3, 5), (1, 2), (4, 1), (2, 2)]]
    loader = DataLoader(pairs, batch_size=4, collate_fn=partial(pad_collate, pad_id=-1))
    (src, src_len), (tgt, tgt_len) = next(iter(loader))
    assert src.shape == (4, 4) and tgt.shape == (4, 5)
    assert src_len.numpy().tolist() == [3, 1, 4, 2] and tgt_len.numpy().tolist() == [5, 2, 1, 2]
    for ours, k in ((src, 0), (tgt, 1)):
        theirs = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(p[k]) for p in pairs], batch_first=True,
                                                 padding_value=-1)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    (tokens, lengths), labels = pad_collate([(np.array([1, 2]), 1), (np.array([3]), 0)])
    assert tokens.numpy().tolist() == [[1, 2], [3, 0]] and lengths.numpy().tolist() == [2, 1]
    assert labels.dtype == np.int64 and labels.numpy().tolist() == [1, 0]


def test_pad_errors():
    with pytest.raises(ValueError, match="empty list"):
        pad_sequence([])
    with pytest.raises(ValueError, match="agree after their length dimension"):
        pad_sequence([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="padding_side"):
        pad_sequence(SEQS, padding_side="middle")
    with pytest.raises(ValueError, match="different numbers of fields"):
        pad_collate([(np.array([1]), 0), (np.array([1]), 0, 0)])
    with pytest.raises(TypeError, match="sequences of token ids"):
        pad_collate([3, 4])
