"""The MLP GAN and DCGAN against their PyTorch twins (``benchmarks/twins/gan.py``): one state dict, loaded by name,
gives the same images and logits, and the same weights after adversarial steps (both optimizers' trajectories);
plus the adversarial task's own promises: which network each update moves, and the non-saturating loss."""

import sys
from pathlib import Path

import numpy as np
import pytest

from dlbasics import models, optim
from dlbasics.tensor import Tensor
from dlbasics.train.adversarial import AdversarialTask, frozen, make_grid

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from twins import gan as twins  # noqa: E402

SMALL = {"gan": {"latent_dim": 8, "width": 16}, "dcgan": {"latent_dim": 8, "width": 8}}


def pair(name, size=12, dtype=np.float64):
    torch.manual_seed(0)
    tm = getattr(twins, name)(1, size, **SMALL[name]).to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = models.create(name, in_channels=1, image_size=size, **SMALL[name]).to(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return ours, tm


@pytest.mark.parametrize("name", ["gan", "dcgan"])
def test_generator_and_discriminator_match_the_twin_by_name(name):
    ours, tm = pair(name)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 8))
    images = ours.generate(z)
    t_images = tm.generate(torch.tensor(z))
    np.testing.assert_allclose(images.data, t_images.detach().numpy(), rtol=1e-9, atol=1e-9)
    assert images.shape == (4, 1, 12, 12) and images.data.min() >= 0 and images.data.max() <= 1
    logits, t_logits = ours.discriminate(images), tm.discriminate(t_images)
    np.testing.assert_allclose(logits.data, t_logits.detach().numpy(), rtol=1e-9, atol=1e-9)
    assert logits.shape == (4,)


@pytest.mark.parametrize("name", ["gan", "dcgan"])
def test_adversarial_steps_follow_the_twins_trajectory(name):
    """Three steps of D-then-G with Adam(2e-4, betas (0.5, 0.999)) on the same real images and noise: every weight
    and batch-norm statistic of both networks ends as the twin's."""
    ours, tm = pair(name)
    rng = np.random.default_rng(1)
    opt_g = optim.Adam(ours.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = optim.Adam(ours.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    task = AdversarialTask(ours, opt_g, opt_d)
    t_opt_g = torch.optim.Adam(tm.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    t_opt_d = torch.optim.Adam(tm.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    for _ in range(3):
        real, z = rng.uniform(0, 1, (6, 1, 12, 12)), rng.standard_normal((6, 8))
        ours.noise = lambda n, generator=None, z=z: Tensor(z)
        _, logs = task.training_step((real, np.zeros(6, np.int64)))
        loss_d, loss_g = twins.adversarial_step(tm, t_opt_g, t_opt_d, torch.tensor(real), torch.tensor(z))
        # rel 1e-7, not 1e-9: Adam's first updates are about lr * g / |g|, so the float64 rounding of a gradient near
        # zero (batch norm's, summed in another order) moves a weight by up to lr, and the next losses with it
        assert logs["loss_d"] == pytest.approx(loss_d, rel=1e-7) and logs["loss_g"] == pytest.approx(loss_g, rel=1e-7)
    state = ours.state_dict()
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(state[k], v.numpy(), rtol=1e-7, atol=1e-9, err_msg=k)


def test_each_update_moves_only_its_own_network():
    ours = models.create("gan", in_channels=1, image_size=8, latent_dim=4, width=8)
    g0 = {k: v.copy() for k, v in ours.generator.state_dict().items()}
    d0 = {k: v.copy() for k, v in ours.discriminator.state_dict().items()}
    task = AdversarialTask(ours, optim.SGD(ours.generator.parameters(), lr=0.0),
                           optim.SGD(ours.discriminator.parameters(), lr=0.1))
    task.training_step(np.random.default_rng(0).uniform(0, 1, (8, 1, 8, 8)).astype(np.float32))
    assert all(np.array_equal(g0[k], v) for k, v in ours.generator.state_dict().items())
    assert any(not np.array_equal(d0[k], v) for k, v in ours.discriminator.state_dict().items())
    assert all(p.requires_grad for p in ours.discriminator.parameters())  # frozen only inside the G step


def test_the_generator_step_is_the_non_saturating_loss():
    """loss_G = -mean log sigma(D(G(z))), read by the discriminator after its own update."""
    ours = models.create("gan", in_channels=1, image_size=8, latent_dim=4, width=8).to(np.float64)
    z = np.random.default_rng(2).standard_normal((5, 4))
    ours.noise = lambda n, generator=None: Tensor(z)
    task = AdversarialTask(ours, optim.SGD(ours.generator.parameters(), lr=0.0),
                           optim.SGD(ours.discriminator.parameters(), lr=0.05))
    _, logs = task.training_step(np.random.default_rng(3).uniform(0, 1, (5, 1, 8, 8)))
    d = ours.discriminate(ours.generate(z)).data  # G did not move (lr 0); D is the updated one
    assert logs["loss_g"] == pytest.approx(float(np.mean(np.log1p(np.exp(-d)))), rel=1e-9)


def test_frozen_turns_off_weight_gradients_and_restores_them():
    m = models.create("gan", in_channels=1, image_size=8, latent_dim=4, width=8)
    with frozen(m.discriminator):
        assert not any(p.requires_grad for p in m.discriminator.parameters())
        m.discriminate(m.generate(np.ones((2, 4), np.float32))).sum().backward()
        assert all(p.grad is None for p in m.discriminator.parameters())
        assert all(p.grad is not None for p in m.generator.parameters())
    assert all(p.requires_grad for p in m.discriminator.parameters())


def test_sample_is_seeded_and_in_the_unit_interval():
    m = models.create("dcgan", in_channels=1, image_size=8, latent_dim=4, width=4)
    a, b, c = m.sample(6, 0), m.sample(6, 0), m.sample(6, 1)
    assert a.shape == (6, 1, 8, 8) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1 and m.training


def test_make_grid_tiles_like_torchvision():
    images = np.random.default_rng(0).uniform(0, 1, (10, 1, 5, 5)).astype(np.float32)
    grid = make_grid(images, nrow=4, padding=2)
    assert grid.shape == (1, 3 * 7 + 2, 4 * 7 + 2)
    np.testing.assert_array_equal(grid[:, 2 + 7:2 + 7 + 5, 2 + 2 * 7:2 + 2 * 7 + 5], images[6])  # row 1, column 2


@pytest.mark.parametrize("name, size", [("dcgan", 30), ("gan", 0)])
def test_bad_image_sizes_are_one_line_errors(name, size):
    with pytest.raises(ValueError, match=name):
        models.create(name, in_channels=1, image_size=size)
