"""MixUp: the mixed batch is the convex combination the paper defines, targets are probabilities, seeded."""

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.data import DataLoader, MixUp, Subset, TensorDataset, datasets
from dlbasics.data.mixup import mixup


def batch(n=16, d=5, c=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, c, n)


def test_mixup_is_the_convex_combination_with_the_drawn_lam():
    x, y = batch()
    xm, ym, lam, perm = mixup(x, y, alpha=0.4, num_classes=4, rng=0)
    assert 0.0 <= lam <= 1.0 and sorted(perm) == list(range(16))
    assert xm.dtype == np.float32 and xm.shape == (16, 5)
    assert ym.dtype == np.float32 and ym.shape == (16, 4)
    np.testing.assert_allclose(xm.data, lam * x.astype(np.float64) + (1 - lam) * x[perm], rtol=1e-6, atol=1e-6)
    onehot = np.eye(4)
    np.testing.assert_allclose(ym.data, lam * onehot[y] + (1 - lam) * onehot[y[perm]], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ym.data.sum(1), 1.0, atol=1e-6)
    # the same generator state draws lam first, then the permutation
    g = np.random.default_rng(0)
    assert lam == g.beta(0.4, 0.4) and np.array_equal(perm, g.permutation(16))


def test_mixup_is_reproducible_from_its_seed():
    x, y = batch()
    a, b, c = (mixup(x, y, 1.0, 4, rng=s) for s in (7, 7, 8))
    assert a[2] == b[2] and np.array_equal(a[0].data, b[0].data) and np.array_equal(a[1].data, b[1].data)
    assert a[2] != c[2]
    dl.manual_seed(3)
    d = mixup(x, y, 1.0, 4)
    dl.manual_seed(3)
    assert mixup(x, y, 1.0, 4)[2] == d[2]  # rng=None draws from dl's default generator


def test_lam_follows_beta_alpha_alpha():
    x, y = batch(n=2)
    g = np.random.default_rng(0)
    lams = {a: np.array([mixup(x, y, a, 4, rng=g)[2] for _ in range(2000)]) for a in (0.2, 2.0)}
    for a, lam in lams.items():
        assert abs(lam.mean() - 0.5) < 0.03  # Beta(a, a) is symmetric about 1/2
        assert abs(lam.var() - 1 / (4 * (2 * a + 1))) < 0.02  # Var = 1 / (4 (2a + 1))
    middle = {a: np.mean((lam > 0.1) & (lam < 0.9)) for a, lam in lams.items()}
    assert middle[0.2] < 0.5 < middle[2.0]  # small alpha: mostly one of the two examples


def test_soft_targets_pass_through_and_stay_distributions():
    x, y = batch()
    smoothed = (0.9 * np.eye(4)[y] + 0.1 / 4).astype(np.float32)
    _, ym, lam, perm = mixup(x, smoothed, 0.4, 4, rng=1)
    np.testing.assert_allclose(ym.data, lam * smoothed + (1 - lam) * smoothed[perm], rtol=1e-6)
    np.testing.assert_allclose(ym.data.sum(1), 1.0, atol=1e-6)


@pytest.mark.parametrize("alpha", [0, -1.0, float("nan"), float("inf"), True, "1"])
def test_alpha_must_be_positive(alpha):
    x, y = batch()
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        mixup(x, y, alpha, 4)
    with pytest.raises(ValueError, match="MixUp: alpha"):
        MixUp(alpha, 4)


def test_bad_inputs_and_targets_are_named():
    x, y = batch()
    with pytest.raises(TypeError, match="float"):
        mixup(x.astype(np.int64), y, 1.0, 4)
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        mixup(x, y, 1.0, 3)
    with pytest.raises(ValueError, match=r"class indices of shape \(16,\)"):
        mixup(x, y[:5], 1.0, 4)
    with pytest.raises(ValueError, match="num_classes"):
        MixUp(1.0, 0)


def test_mixup_as_collate_fn():
    x, y = batch(n=40)
    ds = TensorDataset(x, y)
    loader = DataLoader(ds, batch_size=16, shuffle=True, seed=0, collate_fn=MixUp(0.4, 4, seed=1))
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(16, 5), (16, 5), (8, 5)]
    for xb, yb in batches:
        assert xb.dtype == np.float32 and yb.dtype == np.float32 and yb.shape == (len(xb), 4)
        np.testing.assert_allclose(yb.data.sum(1), 1.0, atol=1e-6)
    # same seeds, same batches
    again = list(DataLoader(ds, batch_size=16, shuffle=True, seed=0, collate_fn=MixUp(0.4, 4, seed=1)))
    for (a, b), (c, d) in zip(batches, again):
        assert np.array_equal(a.data, c.data) and np.array_equal(b.data, d.data)
    # the loader's unmixed batch, mixed with the last lam and perm, is what MixUp returned
    mix = MixUp(0.4, 4, seed=1)
    order = np.random.default_rng(0).permutation(40)[:16]
    xb, _ = mix(ds.__getitems__(order))
    np.testing.assert_allclose(xb.data, mix.last_lam * x[order] + (1 - mix.last_lam) * x[order][mix.last_perm],
                               rtol=1e-6, atol=1e-6)


def test_mixup_collates_sample_lists_too():
    x, y = batch(n=10)
    samples = [(x[i], int(y[i])) for i in range(10)]  # a plain list dataset: default_collate stacks samples
    xb, yb = MixUp(1.0, 4, seed=0)(samples)
    assert xb.shape == (10, 5) and yb.shape == (10, 4)
    with pytest.raises(ValueError, match=r"MixUp: expected batches of \(inputs, targets\)"):
        MixUp(1.0, 4)([x[i] for i in range(3)])


def test_mixup_with_a_subset_of_digits():
    sp = datasets.digits()
    sub = Subset(sp.train, np.arange(64))
    xb, yb = next(iter(DataLoader(sub, batch_size=64, collate_fn=MixUp(0.2, 10, seed=0))))
    assert xb.shape == (64, 64) and yb.shape == (64, 10)
    assert float(xb.data.min()) >= 0.0 and float(xb.data.max()) <= 1.0  # convex combinations of [0, 1] pixels
