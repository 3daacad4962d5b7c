"""SimCLR against its PyTorch twin (``benchmarks/twins/simclr.py``): one state dict, loaded by name, gives the same
projections, features and NT-Xent gradients; the contrastive task's step is NT-Xent of two views in one pass."""

import sys
from pathlib import Path

import numpy as np
import pytest

from dlbasics import models, optim
from dlbasics.train.contrastive import ContrastiveTask

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from twins import simclr as twins  # noqa: E402


def handing_out(*views):
    """An "augmentation" that returns ``views`` one after another, whatever it is given."""
    it = iter(views)
    return lambda x: next(it)


def pair(dtype=np.float64):
    torch.manual_seed(0)
    tm = twins.simclr(1, width=4, projection_dim=8).to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = models.create("simclr", in_channels=1, width=4, projection_dim=8).to(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return ours, tm


def test_projections_features_and_gradients_match_the_twin_by_name():
    ours, tm = pair()
    rng = np.random.default_rng(0)
    v1, v2 = rng.uniform(0, 1, (2, 5, 1, 12, 12))
    task = ContrastiveTask(ours, None)
    loss = task.views_loss(ours, v1, handing_out(v1, v2))  # the "augmentation" hands out v1, then v2
    t_loss = twins.contrastive_loss(tm, torch.tensor(v1), torch.tensor(v2))
    assert float(loss.item()) == pytest.approx(t_loss.item(), rel=1e-9)
    loss.backward()
    t_loss.backward()
    grads = dict(ours.named_parameters())
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(grads[name].grad, p.grad.numpy(), rtol=1e-7, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(ours.features(v1).data, tm.features(torch.tensor(v1)).detach().numpy(), rtol=1e-9)
    assert ours.features(v1).shape == (5, 16)


def test_steps_follow_the_twins_trajectory_and_views_are_resumable():
    ours, tm = pair()
    opt = optim.Adam(ours.parameters(), lr=1e-3)
    t_opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
    rng = np.random.default_rng(1)
    for _ in range(3):
        v1, v2 = rng.uniform(0, 1, (2, 6, 1, 12, 12))
        task = ContrastiveTask(ours, opt)
        task.optimize(task.views_loss(ours, v1, handing_out(v1, v2)), opt)
        t_opt.zero_grad()
        twins.contrastive_loss(tm, torch.tensor(v1), torch.tensor(v2)).backward()
        t_opt.step()
    state = ours.state_dict()
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(state[k], v.numpy(), rtol=1e-7, atol=1e-9, err_msg=k)


def test_the_augmentation_generators_are_in_the_task_state():
    model = models.create("simclr", in_channels=1, width=4, projection_dim=8)
    x = np.random.default_rng(0).uniform(0, 1, (4, 1, 28, 28)).astype(np.float32)
    a = ContrastiveTask(model, optim.SGD(model.parameters(), lr=0.0), seed=5)
    a.augment(x)
    saved = a.state_dict()
    b = ContrastiveTask(model, optim.SGD(model.parameters(), lr=0.0), seed=5)
    b.load_state_dict(saved)
    np.testing.assert_array_equal(a.augment(x), b.augment(x))  # the next draws agree
    assert len(saved["augment"]) == 5
