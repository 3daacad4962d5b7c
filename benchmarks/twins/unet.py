"""dlbasics' ``models/unet.py`` in PyTorch, with the same module structure and parameter/buffer names (so one
state dict loads by name into either), and ``nn.functional.dice_loss``: the benchmark's peer and the parity tests'
oracle."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class ConvBlock(nn.Sequential):
    """Two 3x3 conv -> BN -> ReLU (bias-free convs under batch norm; with a bias and no BN otherwise)."""

    def __init__(self, c_in: int, c_out: int, batch_norm: bool = True) -> None:
        layers: list[nn.Module] = []
        for c in (c_in, c_out):
            layers.append(nn.Conv2d(c, c_out, 3, padding=1, bias=not batch_norm))
            layers += [nn.BatchNorm2d(c_out), nn.ReLU()] if batch_norm else [nn.ReLU()]
        super().__init__(*layers)


class UNet(nn.Module):
    """images (N, in_channels, H, W) -> logits (N, num_classes, H, W); H and W divisible by 2^(levels - 1)."""

    def __init__(self, in_channels: int, num_classes: int, widths: Sequence[int] = (16, 32, 64),
                 batch_norm: bool = True) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        self.levels = len(widths)
        self.down = nn.ModuleList([ConvBlock(c_in, c, batch_norm)
                                   for c_in, c in zip([in_channels, *widths[:-1]], widths)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(len(widths) - 1))])
        self.merge = nn.ModuleList([ConvBlock(2 * widths[i], widths[i], batch_norm)
                                    for i in reversed(range(len(widths) - 1))])
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < self.levels - 1:
                skips.append(x)
                x = self.pool(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([skip, up(x)], 1))
        return self.head(x)


def unet(in_channels: int, num_classes: int, widths: Sequence[int] = (16, 32, 64), batch_norm: bool = True) -> UNet:
    return UNet(in_channels, num_classes, widths, batch_norm)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """The soft Dice loss of logits (N, C, ...) against class indices (N, ...): 1 - mean_c (2 sum p_c y_c + eps) /
    (sum p_c + sum y_c + eps), p = softmax over C, y one-hot, each sum over the batch and the positions."""
    c = logits.shape[1]
    p = logits.softmax(1).transpose(0, 1).reshape(c, -1)
    y = F.one_hot(target, c).movedim(-1, 0).reshape(c, -1).to(logits.dtype)
    inter = (p * y).sum(1)
    denom = p.sum(1) + y.sum(1)
    return 1.0 - ((2.0 * inter + eps) / (denom + eps)).mean()
