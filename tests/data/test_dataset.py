"""Dataset, TensorDataset, Subset, ConcatDataset and random_split: contents, batching and errors."""

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.data import ConcatDataset, Dataset, StackedItems, Subset, TensorDataset, random_split


def make_xy(n=10, d=3):
    x = np.arange(n * d, dtype=np.float64).reshape(n, d)
    y = np.arange(n, dtype=np.int32) % 3
    return x, y


class ListDataset(Dataset):
    """A dataset without __getitems__: one Python object per sample."""

    def __init__(self, n, offset=0):
        self.n, self.offset = n, offset

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.full(2, i + self.offset, dtype=np.float32), i + self.offset


# ---- TensorDataset ----------------------------------------------------------------------------------
def test_tensor_dataset_items_follow_the_dtype_policy():
    x, y = make_xy()
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    item = ds[4]
    assert isinstance(item, tuple) and len(item) == 2
    assert item[0].dtype == np.float32 and item[0].shape == (3,)  # float64 arrays become float32
    np.testing.assert_array_equal(item[0], x[4])
    assert np.asarray(item[1]).dtype == np.int64 and item[1] == y[4]  # int32 labels become int64
    assert ds[-1][1] == y[-1]
    assert all(isinstance(t, dl.Tensor) for t in ds.tensors)


def test_tensor_dataset_keeps_an_explicit_tensor_dtype():
    x = dl.tensor(np.ones((4, 2)), dtype=dl.float64)
    ds = TensorDataset(x, dl.tensor([0, 1, 0, 1]))
    assert ds[0][0].dtype == np.float64
    assert ds.arrays[0] is x.data  # no copy


def test_tensor_dataset_rejects_unequal_first_dims_naming_the_shapes():
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4,\)"):
        TensorDataset(np.zeros((5, 3)), np.zeros(4))
    with pytest.raises(ValueError):
        TensorDataset()
    with pytest.raises(ValueError, match="sample dimension"):
        TensorDataset(np.float32(3.0))


def test_tensor_dataset_index_errors():
    ds = TensorDataset(*make_xy(5))
    with pytest.raises(IndexError, match="out of range"):
        ds[5]
    with pytest.raises(IndexError):
        ds[-6]
    with pytest.raises(TypeError, match="__getitems__"):
        ds[1:3]
    with pytest.raises(IndexError):
        ds.__getitems__([0, 7])


def test_getitems_is_one_fancy_index_per_array():
    x, y = make_xy()
    ds = TensorDataset(x, y)
    idx = np.array([7, 2, 2, 9])
    batch = ds.__getitems__(idx)
    assert isinstance(batch, StackedItems) and len(batch) == 4
    np.testing.assert_array_equal(batch.columns[0], x[idx].astype(np.float32))
    np.testing.assert_array_equal(batch.columns[1], y[idx])
    # seen from outside, it is the list of samples a collate_fn expects
    for k, i in enumerate(idx):
        np.testing.assert_array_equal(batch[k][0], ds[i][0])
        assert batch[k][1] == ds[i][1]
    assert len(batch[1:3]) == 2


def test_tensor_dataset_transform_applies_to_inputs_per_sample_and_per_batch():
    x, y = make_xy()
    calls = []

    def double(a):
        calls.append(a.shape)
        return a * 2

    ds = TensorDataset(x, y, transform=double)
    np.testing.assert_array_equal(ds[3][0], 2 * x[3])
    assert ds[3][1] == y[3]  # targets untouched
    batch = ds.__getitems__([1, 5])
    np.testing.assert_array_equal(batch.columns[0], 2 * x[[1, 5]])
    np.testing.assert_array_equal(batch.columns[1], y[[1, 5]])
    assert calls[-1] == (2, 3)  # one call for the whole batch


def test_dataset_base_requires_the_protocol():
    with pytest.raises(NotImplementedError):
        len(Dataset())
    with pytest.raises(NotImplementedError):
        Dataset()[0]


# ---- Subset and ConcatDataset -------------------------------------------------------------------------
def test_subset_maps_indices_and_batches_through_the_parent():
    x, y = make_xy()
    ds = TensorDataset(x, y)
    sub = Subset(ds, [8, 1, 4])
    assert len(sub) == 3
    assert sub[0][1] == y[8] and sub[-1][1] == y[4]
    batch = sub.__getitems__([2, 0])
    assert isinstance(batch, StackedItems)  # the parent's batched path is kept
    np.testing.assert_array_equal(batch.columns[1], y[[4, 8]])
    with pytest.raises(IndexError):
        Subset(ds, [10])
    plain = Subset(ListDataset(6), [5, 0])
    assert [item[1] for item in plain.__getitems__([0, 1])] == [5, 0]


def test_concat_dataset_items_and_batches():
    a = TensorDataset(np.zeros((3, 2)), np.array([0, 1, 2]))
    b = TensorDataset(np.ones((4, 2)), np.array([3, 4, 5, 6]))
    cat = ConcatDataset([a, b])
    assert len(cat) == 7 and cat.cumulative_sizes == [3, 7]
    assert [int(cat[i][1]) for i in range(7)] == list(range(7))
    assert cat[-1][1] == 6
    idx = [6, 0, 3, 2, 5]
    batch = cat.__getitems__(idx)
    assert isinstance(batch, StackedItems)
    np.testing.assert_array_equal(batch.columns[1], idx)  # order of the request, not grouped by dataset
    np.testing.assert_array_equal(batch.columns[0][:, 0], [1, 0, 1, 0, 1])
    assert (a + b)[4][1] == 4


def test_concat_dataset_mixing_dataset_kinds():
    cat = ConcatDataset([TensorDataset(np.zeros((2, 2)), np.array([0, 1])), ListDataset(3, offset=2)])
    batch = cat.__getitems__([4, 0, 2])
    assert [int(item[1]) for item in batch] == [4, 0, 2]
    with pytest.raises(ValueError):
        ConcatDataset([])


# ---- random_split ----------------------------------------------------------------------------------
@pytest.mark.parametrize("lengths", [[7, 3], [0.7, 0.3], [5, 0, 5], [0.33, 0.33, 0.34]])
def test_random_split_sizes_disjoint_and_covering(lengths):
    ds = TensorDataset(np.arange(10.0))
    parts = random_split(ds, lengths, seed=0)
    assert len(parts) == len(lengths)
    assert sum(len(p) for p in parts) == 10
    seen = np.concatenate([p.indices for p in parts])
    assert sorted(seen.tolist()) == list(range(10))  # disjoint and covering
    if all(isinstance(v, int) for v in lengths):
        assert [len(p) for p in parts] == lengths


def test_random_split_fraction_sizes_match_torch():
    tud = pytest.importorskip("torch.utils.data")
    for n, fractions in [(10, [0.33, 0.33, 0.34]), (7, [0.5, 0.5]), (101, [0.8, 0.1, 0.1]), (3, [0.25, 0.75])]:
        ours = [len(p) for p in random_split(TensorDataset(np.zeros(n)), fractions, seed=0)]
        theirs = [len(p) for p in tud.random_split(range(n), fractions)]
        assert ours == theirs, (n, fractions)


def test_random_split_is_reproducible_from_its_seed():
    ds = TensorDataset(np.arange(50.0))
    a = random_split(ds, [0.5, 0.5], seed=3)
    b = random_split(ds, [0.5, 0.5], seed=np.random.default_rng(3))
    c = random_split(ds, [0.5, 0.5], seed=4)
    np.testing.assert_array_equal(a[0].indices, b[0].indices)
    assert not np.array_equal(a[0].indices, c[0].indices)
    dl.manual_seed(1)
    d = random_split(ds, [25, 25])
    dl.manual_seed(1)
    e = random_split(ds, [25, 25])
    np.testing.assert_array_equal(d[1].indices, e[1].indices)


def test_random_split_errors():
    ds = TensorDataset(np.arange(10.0))
    with pytest.raises(ValueError, match="add up to 9"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError, match="fractions"):
        random_split(ds, [0.5, 0.4])
    with pytest.raises(ValueError, match="non-negative"):
        random_split(ds, [12, -2])
