"""What the parity tests of the PyTorch twins share."""

from __future__ import annotations

from typing import Any


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
