"""dlbasics' ``models/simclr.py`` and its NT-Xent step in PyTorch, with the same parameter names: the benchmark's peer
and the parity tests' oracle."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_block(c_in: int, c_out: int, pool: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    return [*layers, nn.MaxPool2d(2)] if pool else layers


class SimCLR(nn.Module):
    def __init__(self, in_channels: int = 1, width: int = 32, projection_dim: int = 64) -> None:
        super().__init__()
        self.feature_dim = 4 * width
        self.encoder = nn.Sequential(
            *conv_block(in_channels, width, pool=True),
            *conv_block(width, 2 * width, pool=True),
            *conv_block(2 * width, 4 * width, pool=False),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.projector = nn.Sequential(nn.Linear(self.feature_dim, self.feature_dim), nn.ReLU(),
                                       nn.Linear(self.feature_dim, projection_dim))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projector(self.features(images))


def simclr(in_channels: int = 1, width: int = 32, projection_dim: int = 64) -> SimCLR:
    return SimCLR(in_channels, width, projection_dim)


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """``F.nt_xent_loss``: cross-entropy of each view's cosine similarities / tau against its partner."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, target)


def contrastive_loss(model: SimCLR, v1: torch.Tensor, v2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """``ContrastiveTask.views_loss``: one forward pass over both views, NT-Xent of the halves."""
    z = model(torch.cat([v1, v2]))
    n = v1.shape[0]
    return nt_xent_loss(z[:n], z[n:], temperature)
