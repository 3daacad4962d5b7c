"""DataLoader and default_collate: batch counts, coverage, order, reproducibility, dtypes, collate paths."""

import itertools
from collections import namedtuple

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.data import DataLoader, Dataset, StackedItems, TensorDataset, default_collate


def id_dataset(n=23):
    """x holds each sample's id, so a batch tells which samples it carries."""
    return TensorDataset(np.arange(n, dtype=np.float64)[:, None] * np.ones((1, 3)), np.arange(n))


def ids(loader):
    return [y.numpy().tolist() for _, y in loader]


def flat(batches):
    return list(itertools.chain.from_iterable(batches))


class NoBatchDataset(Dataset):
    """Only __getitem__ and __len__, returning dicts."""

    def __init__(self, n):
        self.n = n
        self.calls = 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.calls += 1
        return {"x": np.full((2, 2), float(i)), "y": i, "name": f"s{i}"}


@pytest.mark.parametrize(("n", "batch_size", "drop_last", "expected"), [
    (23, 5, False, [5, 5, 5, 5, 3]),
    (23, 5, True, [5, 5, 5, 5]),
    (20, 5, True, [5, 5, 5, 5]),
    (20, 5, False, [5, 5, 5, 5]),
    (3, 8, False, [3]),
    (3, 8, True, []),
    (0, 4, False, []),
])
def test_batch_count_and_sizes(n, batch_size, drop_last, expected):
    loader = DataLoader(id_dataset(n), batch_size=batch_size, drop_last=drop_last, shuffle=True, seed=0)
    assert len(loader) == len(expected)
    assert [len(b) for b in ids(loader)] == expected
    assert loader.batch_size == batch_size and loader.drop_last == drop_last and len(loader.dataset) == n


def test_every_sample_once_per_epoch_and_epochs_differ():
    loader = DataLoader(id_dataset(), batch_size=4, shuffle=True, seed=0)
    first, second = ids(loader), ids(loader)
    for epoch in (first, second):
        assert sorted(flat(epoch)) == list(range(23))
    assert first != second


def test_same_seed_same_order():
    a = DataLoader(id_dataset(), batch_size=4, shuffle=True, seed=7)
    b = DataLoader(id_dataset(), batch_size=4, shuffle=True, seed=np.random.default_rng(7))
    c = DataLoader(id_dataset(), batch_size=4, shuffle=True, seed=8)
    ea = [ids(a), ids(a)]
    assert ea == [ids(b), ids(b)]  # every epoch repeats
    assert ea[0] != ids(c)


def test_default_generator_follows_manual_seed():
    loader = DataLoader(id_dataset(), batch_size=4, shuffle=True)
    dl.manual_seed(5)
    a = ids(loader)
    dl.manual_seed(5)
    assert ids(loader) == a


def test_no_shuffle_keeps_the_original_order():
    loader = DataLoader(id_dataset(), batch_size=6)
    assert flat(ids(loader)) == list(range(23))
    assert ids(loader) == ids(loader)


def test_batches_are_tensors_of_the_policy_dtypes():
    x, y = next(iter(DataLoader(id_dataset(), batch_size=4)))
    assert isinstance(x, dl.Tensor) and isinstance(y, dl.Tensor)
    assert x.dtype == dl.float32 and x.shape == (4, 3)
    assert y.dtype == dl.int64 and y.shape == (4,)
    assert not x.requires_grad
    np.testing.assert_array_equal(x.numpy()[:, 0], [0, 1, 2, 3])


def test_the_batched_path_fetches_once_per_batch(monkeypatch):
    ds = id_dataset()

    def no_single_items(self, index):
        raise AssertionError("the loader must use __getitems__, not one __getitem__ per sample")

    calls = []
    original = TensorDataset.__getitems__
    monkeypatch.setattr(TensorDataset, "__getitem__", no_single_items)
    monkeypatch.setattr(TensorDataset, "__getitems__", lambda self, idx: calls.append(len(idx)) or original(self, idx))
    assert len(ids(DataLoader(ds, batch_size=10))) == 3
    assert calls == [10, 10, 3]


def test_a_dataset_without_getitems_is_collated_per_item():
    ds = NoBatchDataset(7)
    batches = list(DataLoader(ds, batch_size=3, shuffle=True, seed=1))
    assert ds.calls == 7
    assert [b["x"].shape for b in batches] == [(3, 2, 2), (3, 2, 2), (1, 2, 2)]
    first = batches[0]
    assert first["x"].dtype == dl.float32 and first["y"].dtype == dl.int64  # float64 -> float32, int -> int64
    np.testing.assert_array_equal(first["x"].numpy()[:, 0, 0], first["y"].numpy())
    assert first["name"] == [f"s{i}" for i in first["y"].numpy()]
    assert sorted(flat(b["y"].numpy().tolist() for b in batches)) == list(range(7))


def test_collate_fn_receives_the_list_of_items():
    seen = []

    def collate(items):
        seen.append(len(items))
        xs = np.stack([item[0] for item in items])  # per-sample view, PyTorch semantics
        return xs.sum(), [int(item[1]) for item in items]

    loader = DataLoader(id_dataset(10), batch_size=4, collate_fn=collate)
    out = list(loader)
    assert seen == [4, 4, 2]
    assert out[0][1] == [0, 1, 2, 3] and out[0][0] == pytest.approx(3 * (0 + 1 + 2 + 3))
    assert loader.collate_fn is collate
    assert DataLoader(id_dataset()).collate_fn is default_collate


def test_collate_fn_can_build_on_default_collate():
    """How a batch-level augmentation (MixUp) plugs in: collate first, then transform the Tensors."""

    def scale_inputs(items):
        x, y = default_collate(items)
        return x * 2, y

    x, y = next(iter(DataLoader(id_dataset(), batch_size=5, collate_fn=scale_inputs)))
    np.testing.assert_array_equal(x.numpy()[:, 0], [0, 2, 4, 6, 8])
    assert y.dtype == dl.int64


def test_transforms_run_on_whole_batches_in_the_loader():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    ds = TensorDataset(x, np.array([0, 1]), transform=dl.data.transforms.RandomHorizontalFlip(p=1.0, seed=0))
    xb, _ = next(iter(DataLoader(ds, batch_size=2)))
    np.testing.assert_array_equal(xb.numpy(), x[..., ::-1])


def test_default_collate_structures():
    Pair = namedtuple("Pair", ["a", "b"])
    out = default_collate([Pair(np.zeros(2), 1.5), Pair(np.ones(2), 2.5)])
    assert isinstance(out, Pair) and out.a.shape == (2, 2) and out.b.dtype == dl.float32
    t = default_collate([dl.tensor([1.0, 2.0], dtype=dl.float64), dl.tensor([3.0, 4.0], dtype=dl.float64)])
    assert t.dtype == dl.float64 and t.shape == (2, 2)  # an explicit Tensor dtype is kept
    assert default_collate([[1, 2.0], [3, 4.0]])[0].dtype == dl.int64
    assert default_collate([True, False]).dtype == dl.bool_
    stacked = default_collate(StackedItems([np.zeros((3, 2), np.float32), np.arange(3)]))
    assert isinstance(stacked, tuple) and stacked[0].shape == (3, 2)
    with pytest.raises(ValueError, match=r"same shape.*\(2,\).*\(3,\)"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="collate_fn"):
        default_collate([object(), object()])
    with pytest.raises(ValueError, match="empty"):
        default_collate([])


def test_default_collate_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    items = [{"x": np.random.default_rng(i).random((2, 3)).astype(np.float32), "y": (i, np.int64(i % 2))}
             for i in range(4)]
    ours, theirs = default_collate(items), torch_collate(items)
    np.testing.assert_array_equal(ours["x"].numpy(), theirs["x"].numpy())
    for a, b in zip(ours["y"], theirs["y"]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert str(b.dtype) == f"torch.{a.dtype}" and b.dtype == torch.int64


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(id_dataset(), batch_size=0)
    with pytest.raises(TypeError, match="map-style"):
        DataLoader(iter(range(3)))


# ---- state: where an epoch is, for exact resume ----------------------------------------------------------
def _batches(loader, n=None):
    import itertools

    return [x.data.copy() for x, _ in itertools.islice(loader, n)]  # islice fetches no batch beyond the n-th


@pytest.mark.parametrize("seed", [7, None])
def test_a_loader_continues_an_epoch_from_its_state(seed):
    from dlbasics.data import DataLoader, TensorDataset

    ds = TensorDataset(np.arange(50, dtype=np.float32)[:, None], np.zeros(50, dtype=np.int64))
    dl.manual_seed(1)
    ref = DataLoader(ds, batch_size=8, shuffle=True, seed=seed)
    whole = _batches(ref) + _batches(ref)  # two epochs
    dl.manual_seed(1)
    cut = DataLoader(ds, batch_size=8, shuffle=True, seed=seed)
    head = _batches(cut, 3)
    state = cut.state_dict()
    assert state["batches"] == 3
    default = dl.default_generator().bit_generator.state
    again = DataLoader(ds, batch_size=8, shuffle=True, seed=0 if seed is not None else None)
    again._generator = None if seed is None else np.random.default_rng(12345)  # another state: it is restored
    again.load_state_dict(state)
    dl.default_generator().bit_generator.state = default
    tail = _batches(again)
    assert all(np.array_equal(a, b) for a, b in zip(head + tail, whole[: len(head + tail)]))
    assert len(head + tail) == 7  # the rest of the first epoch
    if seed is not None:  # its own generator goes on: the next epoch is the reference's second one
        assert all(np.array_equal(a, b) for a, b in zip(_batches(again), whole[7:]))


def test_loader_state_needs_the_epochs_generator_state():
    from dlbasics.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(np.zeros((4, 1), dtype=np.float32)), batch_size=2, shuffle=True, seed=0)
    with pytest.raises(ValueError, match="needs the generator state it began with"):
        loader.load_state_dict({"epoch_state": None, "batches": 1})
