"""TokenWindows and RandomWindows: the one-token shift, counts, the last window, seeding and exact resume."""

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.data import DataLoader
from dlbasics.data.text import RandomWindows, TokenWindows
from dlbasics.errors import ConfigError, DataError

TOKENS = np.arange(100, 150, dtype=np.int64)  # token k is 100 + k, so a window tells where it starts


# ---- TokenWindows ----------------------------------------------------------------------------------------------
def test_windows_are_shifted_by_one():
    ds = TokenWindows(TOKENS, block_size=8)
    x, y = ds[2]
    assert x.dtype == y.dtype == np.int64 and x.shape == y.shape == (8,)
    assert x.tolist() == TOKENS[16:24].tolist() and y.tolist() == TOKENS[17:25].tolist()


@pytest.mark.parametrize(("n", "block", "stride", "count"), [
    (50, 8, None, 6),   # starts 0..40; 48 + 8 would need token 56
    (9, 8, None, 1),    # exactly one window: block + 1 tokens
    (50, 8, 1, 42),     # every start 0..41
    (50, 10, 3, 14),    # starts 0, 3, ..., 39
])
def test_window_count_and_last_window(n, block, stride, count):
    tokens = TOKENS[:n]
    ds = TokenWindows(tokens, block, stride=stride)
    assert len(ds) == count
    x, y = ds[-1]
    start = (count - 1) * (block if stride is None else stride)
    assert x.tolist() == tokens[start:start + block].tolist()
    assert y.tolist() == tokens[start + 1:start + block + 1].tolist()
    assert start + block + 1 <= n < start + (block if stride is None else stride) + block + 1
    with pytest.raises(IndexError, match=f"index {count} is out of range for {count}"):
        ds[count]


def test_windows_batch_through_the_dataloader_as_int64_tensors():
    ds = TokenWindows(TOKENS, block_size=4)
    batches = list(DataLoader(ds, batch_size=5))
    assert len(batches) == 3  # 12 windows
    x, y = batches[0]
    assert isinstance(x, dl.Tensor) and x.dtype == np.int64 and x.shape == (5, 4)
    assert np.array_equal(x.numpy()[:, 1:], y.numpy()[:, :-1])
    rows = np.concatenate([b[0].numpy() for b in batches])
    assert np.array_equal(rows, np.stack([ds[i][0] for i in range(len(ds))]))
    assert np.array_equal(ds.__getitems__([-1])[0][0], ds[11][0])


def test_windows_bad_arguments():
    with pytest.raises(DataError, match=r"8 tokens hold no window of block_size 8 .* 9 tokens"):
        TokenWindows(TOKENS[:8], 8)
    with pytest.raises(ConfigError, match="block_size must be"):
        TokenWindows(TOKENS, 0)
    with pytest.raises(ConfigError, match="stride must be"):
        TokenWindows(TOKENS, 4, stride=0)
    with pytest.raises(DataError, match=r"shape \(5, 10\)"):
        TokenWindows(TOKENS.reshape(5, 10), 4)
    with pytest.raises(DataError, match="integer token ids"):
        TokenWindows(TOKENS.astype(np.float32), 4)


# ---- RandomWindows ---------------------------------------------------------------------------------------------
def test_random_windows_shapes_dtype_and_shift():
    batches = list(RandomWindows(TOKENS, block_size=8, batch_size=16, seed=0, num_batches=20))
    assert len(batches) == 20
    starts = []
    for x, y in batches:
        assert isinstance(x, dl.Tensor) and x.dtype == y.dtype == np.int64 and x.shape == y.shape == (16, 8)
        x, y = x.numpy(), y.numpy()
        assert np.array_equal(y, x + 1)  # consecutive tokens
        assert np.array_equal(x, x[:, :1] + np.arange(8))
        starts.append(x[:, 0] - 100)
    starts = np.concatenate(starts)
    # nanoGPT draws starts in 0..N-T-1, so the last target is the last token
    assert starts.min() >= 0 and starts.max() <= len(TOKENS) - 8 - 1
    assert set(starts.tolist()) == set(range(len(TOKENS) - 8))  # 320 draws reach all 42 starts


def test_random_windows_are_reproducible_from_the_seed():
    def draw(seed):
        return [x.numpy() for x, _ in RandomWindows(TOKENS, 4, 3, seed=seed, num_batches=5)]

    assert all(np.array_equal(a, b) for a, b in zip(draw(7), draw(7)))
    assert not all(np.array_equal(a, b) for a, b in zip(draw(7), draw(8)))
    g = np.random.default_rng(7)
    starts = g.integers(0, len(TOKENS) - 4, size=3)
    assert np.array_equal(draw(7)[0][:, 0], TOKENS[starts])


def test_random_windows_resume_exactly_mid_stream():
    full = [x.numpy() for x, _ in RandomWindows(TOKENS, 4, 3, seed=1, num_batches=10)]
    first = RandomWindows(TOKENS, 4, 3, seed=1, num_batches=10)
    it = iter(first)
    for _ in range(4):
        next(it)
    state = first.state_dict()
    assert state["batches"] == 4
    again = RandomWindows(TOKENS, 4, 3, seed=1, num_batches=10)
    again.load_state_dict(state)
    rest = [x.numpy() for x, _ in again]
    assert len(rest) == 6 and all(np.array_equal(a, b) for a, b in zip(rest, full[4:]))
    # the original goes on the same way, and the next pass starts from a full count again
    assert all(np.array_equal(next(it)[0].numpy(), b) for b in full[4:6])
    assert len(list(again)) == 10


def test_random_windows_state_survives_a_checkpoint(tmp_path):
    """The state dict goes through dl.save/load (as in a run's checkpoint) and still resumes exactly."""
    loader = RandomWindows(TOKENS, 4, 3, seed=2)
    it = iter(loader)
    next(it)
    dl.save({"loader": loader.state_dict()}, tmp_path / "ckpt.safetensors")
    expected = [next(it)[0].numpy() for _ in range(3)]
    resumed = RandomWindows(TOKENS, 4, 3, seed=2)
    resumed.load_state_dict(dl.load(tmp_path / "ckpt.safetensors")["loader"])
    it2 = iter(resumed)
    assert all(np.array_equal(next(it2)[0].numpy(), e) for e in expected)


def test_random_windows_endless_and_default_generator():
    endless = RandomWindows(TOKENS, 4, 2, seed=0)
    with pytest.raises(TypeError, match="endless"):
        len(endless)
    it = iter(endless)
    for _ in range(50):
        next(it)
    dl.manual_seed(3)
    a = next(iter(RandomWindows(TOKENS, 4, 2)))[0].numpy()
    dl.manual_seed(3)
    b = next(iter(RandomWindows(TOKENS, 4, 2)))[0].numpy()
    assert np.array_equal(a, b)
    assert RandomWindows(TOKENS, 4, 2).state_dict()["generator"] is None


def test_random_windows_bad_arguments():
    with pytest.raises(ConfigError, match="batch_size"):
        RandomWindows(TOKENS, 4, 0)
    with pytest.raises(ConfigError, match="num_batches"):
        RandomWindows(TOKENS, 4, 2, num_batches=0)
    with pytest.raises(DataError, match="hold no window"):
        RandomWindows(TOKENS[:4], 4, 2)
