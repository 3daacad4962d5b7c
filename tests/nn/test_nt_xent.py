"""NT-Xent (SimCLR's contrastive loss): values and gradients against a PyTorch twin of the same formula (torch has
none built in), float64 finite differences, and the loss's known values and invariances."""

import math
import warnings

import numpy as np
import pytest
import torch

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics.autograd import gradcheck
from dlbasics.nn import NTXentLoss


def torch_nt_xent(z1, z2, temperature, reduction="mean"):
    n = z1.shape[0]
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return torch.nn.functional.cross_entropy(sim, target, reduction=reduction)


def projections(n, d, seed=0, dtype=np.float32):
    g = np.random.default_rng(seed)
    return g.standard_normal((n, d)).astype(dtype), g.standard_normal((n, d)).astype(dtype)


@pytest.mark.parametrize(("n", "d", "tau"), [(1, 3, 0.5), (4, 8, 0.5), (7, 5, 1.0), (16, 32, 0.1), (64, 128, 0.2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_torch_twin(n, d, tau, reduction):
    a, b = projections(n, d, seed=n)
    z1, z2 = dl.tensor(a, requires_grad=True), dl.tensor(b, requires_grad=True)
    t1, t2 = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the -inf diagonal makes no nan or overflow on the way
        loss = F.nt_xent_loss(z1, z2, tau, reduction)
        g = np.random.default_rng(1).standard_normal(loss.shape).astype(np.float32)
        loss.backward(g)
    expected = torch_nt_xent(t1, t2, tau, reduction)
    expected.backward(torch.from_numpy(g))
    assert loss.dtype == np.float32 and loss.shape == tuple(expected.shape)
    np.testing.assert_allclose(loss.data, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z1.grad, t1.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(z2.grad, t2.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_module_is_the_function():
    a, b = projections(8, 6)
    loss = NTXentLoss(temperature=0.2)
    assert loss(dl.tensor(a), dl.tensor(b)).item() == F.nt_xent_loss(dl.tensor(a), dl.tensor(b), 0.2).item()
    assert NTXentLoss()(dl.tensor(a), dl.tensor(b)).item() == F.nt_xent_loss(dl.tensor(a), dl.tensor(b)).item()
    assert repr(NTXentLoss(0.1)) == "NTXentLoss(temperature=0.1)"
    assert NTXentLoss(0.1, reduction="none")(dl.tensor(a), dl.tensor(b)).shape == (16,)


@pytest.mark.parametrize(("n", "d", "tau"), [(1, 2, 0.5), (3, 4, 0.5), (5, 3, 0.1), (4, 6, 2.0)])
def test_gradcheck_float64(n, d, tau):
    a, b = projections(n, d, seed=10 + n, dtype=np.float64)
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=True), dl.tensor(b, dtype=dl.float64, requires_grad=True)]
    assert gradcheck(lambda z1, z2: F.nt_xent_loss(z1, z2, tau), inputs)
    assert gradcheck(lambda z1, z2: F.nt_xent_loss(z1, z2, tau, reduction="none"), inputs)
    assert all(t.grad.dtype == np.float64 for t in inputs)


@pytest.mark.parametrize("n", [1, 2, 5, 32])
@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_equal_projections_give_log_of_the_candidates(n, tau):
    """Every similarity is 1 / tau, so each row is a uniform choice among its 2N - 1 candidates."""
    z = np.tile(np.random.default_rng(0).standard_normal(7), (n, 1)).astype(np.float64)
    scaled = dl.tensor(3.0 * z, dtype=dl.float64)
    loss = F.nt_xent_loss(dl.tensor(z, dtype=dl.float64), scaled, tau)
    assert loss.item() == pytest.approx(math.log(2 * n - 1), abs=1e-12)


def test_perfect_positives_beat_random_pairs():
    a, b = projections(32, 16)
    same = F.nt_xent_loss(dl.tensor(a), dl.tensor(a.copy()), 0.5).item()
    rand = F.nt_xent_loss(dl.tensor(a), dl.tensor(b), 0.5).item()
    assert same < rand - 0.5
    assert rand == pytest.approx(math.log(63), abs=0.3)  # random directions: near the uniform choice
    # the lower the temperature, the more a perfect positive stands out
    sharp = F.nt_xent_loss(dl.tensor(a), dl.tensor(a.copy()), 0.05).item()
    assert sharp < same


def test_invariances():
    a, b = projections(10, 4, dtype=np.float64)
    loss = F.nt_xent_loss(dl.tensor(a, dtype=dl.float64), dl.tensor(b, dtype=dl.float64), 0.3).item()
    swapped = F.nt_xent_loss(dl.tensor(b, dtype=dl.float64), dl.tensor(a, dtype=dl.float64), 0.3).item()
    rescaled = F.nt_xent_loss(dl.tensor(2.5 * a, dtype=dl.float64), dl.tensor(0.1 * b, dtype=dl.float64), 0.3).item()
    p = np.random.default_rng(0).permutation(10)
    permuted = F.nt_xent_loss(dl.tensor(a[p], dtype=dl.float64), dl.tensor(b[p], dtype=dl.float64), 0.3).item()
    assert swapped == pytest.approx(loss, rel=1e-12)
    assert rescaled == pytest.approx(loss, rel=1e-12)
    assert permuted == pytest.approx(loss, rel=1e-12)


def test_gradient_descent_pulls_the_pairs_together():
    a, b = projections(16, 8, seed=3)
    z1, z2 = dl.tensor(a, requires_grad=True), dl.tensor(b, requires_grad=True)
    opt = dl.optim.SGD([z1, z2], lr=0.5)
    first = None
    for _ in range(50):
        opt.zero_grad()
        loss = F.nt_xent_loss(z1, z2, 0.5)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first - 1.0
    cos = (F.normalize(z1) * F.normalize(z2)).sum(dim=1).data
    assert cos.min() > 0.2 and cos.mean() > 0.5  # from random directions (cosines near 0)


def test_errors():
    a, b = projections(4, 3)
    with pytest.raises(ValueError, match=r"\(N, D\) of one shape"):
        F.nt_xent_loss(dl.tensor(a), dl.tensor(b[:3]))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        F.nt_xent_loss(dl.tensor(a[0]), dl.tensor(b[0]))
    with pytest.raises(ValueError, match="temperature"):
        F.nt_xent_loss(dl.tensor(a), dl.tensor(b), 0.0)
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(-1.0)
    with pytest.raises(ValueError, match="reduction"):
        F.nt_xent_loss(dl.tensor(a), dl.tensor(b), reduction="avg")


def test_normalize_basics():
    x = dl.tensor([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(F.normalize(x).data, [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(F.normalize(x, p=1.0).data, [[3 / 7, 4 / 7], [0.0, 0.0]])
    assert F.normalize(x).dtype == np.float32
    with pytest.raises(TypeError, match="floating"):
        F.normalize(dl.tensor([[1, 2]]))
