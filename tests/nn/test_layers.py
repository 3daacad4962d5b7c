"""Layers and loss modules against torch.nn: same weights and inputs give the same outputs and gradients."""

import numpy as np
import pytest
import torch

import dlbasics as dl
from dlbasics import nn

RTOL, ATOL = 1e-5, 1e-6


def copy_weights(dl_module, torch_module):
    """Load torch's weights into the dlbasics module: the state_dict names must be the same."""
    sd = {k: v.detach().numpy() for k, v in torch_module.state_dict().items()}
    assert list(sd) == list(dl_module.state_dict()), "state_dict keys differ from torch's"
    dl_module.load_state_dict(sd)


def run_both(dl_module, torch_module, x, target=None, loss=None):
    copy_weights(dl_module, torch_module)
    xd = dl.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yd, yt = dl_module(xd), torch_module(xt)
    np.testing.assert_allclose(yd.data, yt.detach().numpy(), rtol=RTOL, atol=ATOL)
    g = np.random.default_rng(1).standard_normal(yd.shape).astype(np.float32)
    yd.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    tparams = dict(torch_module.named_parameters())
    for name, p in dl_module.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7), (7,)])
def test_linear(bias, shape):
    run_both(nn.Linear(7, 4, bias=bias), torch.nn.Linear(7, 4, bias=bias), _x(*shape))


def test_mlp_gradients_equal_pytorch():
    dlm = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
    tm = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.Tanh(),
                             torch.nn.Linear(16, 3))
    run_both(dlm, tm, _x(10, 6))


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.ReLU(),
        lambda m: m.LeakyReLU(0.2),
        lambda m: m.Sigmoid(),
        lambda m: m.Tanh(),
        lambda m: m.GELU(),
        lambda m: m.GELU(approximate="tanh"),
        lambda m: m.Softmax(dim=1),
        lambda m: m.LogSoftmax(dim=-1),
        lambda m: m.Identity(),
        lambda m: m.Flatten(),
        lambda m: m.Flatten(0, 1),
        lambda m: m.Dropout(0.5).eval(),
    ],
)
def test_activation_and_shape_layers(make):
    run_both(make(nn), make(torch.nn), _x(4, 3, 5))


@pytest.mark.parametrize(
    "make, target",
    [
        (lambda m: m.MSELoss(), _x(6, 4, seed=2)),
        (lambda m: m.MSELoss(reduction="sum"), _x(6, 4, seed=2)),
        (lambda m: m.CrossEntropyLoss(), np.array([0, 3, 1, 2, 3, 0])),
        (lambda m: m.CrossEntropyLoss(label_smoothing=0.2, ignore_index=1), np.array([0, 3, 1, 2, 3, 0])),
        (lambda m: m.CrossEntropyLoss(reduction="none"), np.array([0, 3, 1, 2, 3, 0])),
        (lambda m: m.NLLLoss(), np.array([0, 3, 1, 2, 3, 0])),
        (lambda m: m.BCEWithLogitsLoss(), (np.arange(24).reshape(6, 4) % 2).astype(np.float32)),
    ],
)
def test_loss_modules(make, target):
    x = _x(6, 4)
    xd, xt = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ld = make(nn)(xd, dl.tensor(target))
    lt = make(torch.nn)(xt, torch.tensor(target))
    np.testing.assert_allclose(ld.data, lt.detach().numpy(), rtol=RTOL, atol=ATOL)
    ld.sum().backward()
    lt.sum().backward()
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_weighted_losses_and_their_state_dicts():
    w = np.array([1.0, 2.0, 0.5, 3.0], np.float32)
    x, t = _x(6, 4), np.array([0, 3, 1, 2, 3, 0])
    for name in ("CrossEntropyLoss", "NLLLoss"):
        ld = getattr(nn, name)(weight=w)(dl.tensor(x), dl.tensor(t))
        lt = getattr(torch.nn, name)(weight=torch.tensor(w))(torch.tensor(x), torch.tensor(t))
        np.testing.assert_allclose(ld.item(), lt.item(), rtol=RTOL)
        assert list(getattr(nn, name)(weight=w).state_dict()) == list(getattr(torch.nn, name)(
            weight=torch.tensor(w)).state_dict())


def test_default_init_distribution_matches_pytorch():
    """Same formula, different generator: the two weight distributions agree in range and spread."""
    torch.manual_seed(0)
    dl.manual_seed(0)
    wd, wt = nn.Linear(256, 128).weight.data, torch.nn.Linear(256, 128).weight.detach().numpy()
    assert abs(np.abs(wd).max() - np.abs(wt).max()) < 1e-3
    assert abs(wd.std() - wt.std()) < 0.02 * wt.std()
