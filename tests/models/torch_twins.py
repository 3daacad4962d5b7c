"""What the parity tests of the PyTorch twins share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlbasics import optim


def randomize_batch_norm(module: Any) -> Any:
    """Random affine parameters and running statistics in every BatchNorm2d of a torch module (in place), so that
    eval mode is not the identity normalisation; returns the module."""
    import torch

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    return module


def follow_adam(ours: Any, twin: Any, losses: Callable[[int], tuple[Any, Any]], steps: int = 3,
                lr: float = 1e-2) -> None:
    """Adam steps on dlbasics' model and its twin side by side, ``losses(step)`` giving (our loss, the twin's loss) of
    that step's batch: the losses agree at every step and every tensor of the state dicts after the last."""
    import numpy as np
    import pytest
    import torch

    opt, t_opt = optim.Adam(ours.parameters(), lr=lr), torch.optim.Adam(twin.parameters(), lr=lr)
    for step in range(steps):
        loss, t_loss = losses(step)
        for o, lo in ((opt, loss), (t_opt, t_loss)):
            o.zero_grad()
            lo.backward()
            o.step()
        assert loss.item() == pytest.approx(t_loss.item(), rel=1e-9)
    state = ours.state_dict()
    for k, v in twin.state_dict().items():
        np.testing.assert_allclose(state[k], v.detach().numpy(), rtol=1e-7, atol=1e-9, err_msg=k)
