"""dlbasics' ``models/centernet.py`` in PyTorch, with the same module structure and parameter/buffer names, and its
loss: CornerNet's Gaussian focal loss (``nn.functional.gaussian_focal_loss``), the masked L1 and the paper's
L = L_k + 0.1 L_size + L_off on the targets of dlbasics' ``CenterNet.encode``: the benchmark's peer and the parity
tests' oracle."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SIZE_WEIGHT, OFFSET_WEIGHT = 0.1, 1.0


def block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU())


def head(width: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, out, 1))


class CenterNet(nn.Module):
    """images (N, in_channels, H, W) -> (heatmap logits (N, C, H/4, W/4), size (N, 2, ...), offset (N, 2, ...))."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Sequential(block(in_channels, width // 2), block(width // 2, width, 2))  # stride 2
        self.down4 = nn.Sequential(block(width, width, 2), block(width, width))  # stride 4
        self.down8 = nn.Sequential(block(width, 2 * width, 2), block(2 * width, 2 * width))  # stride 8
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.fuse = block(width, width)
        self.heatmap, self.size, self.offset = head(width, num_classes), head(width, 2), head(width, 2)
        with torch.no_grad():
            self.heatmap[-1].bias.fill_(-2.19)  # log(0.1 / 0.9)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s4 = self.down4(self.stem(x))
        f = self.fuse(s4 + self.up(self.down8(s4)))
        return self.heatmap(f), self.size(f), self.offset(f)


def centernet(in_channels: int, num_classes: int, width: int = 32) -> CenterNet:
    return CenterNet(in_channels, num_classes, width)


def gaussian_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0,
                        beta: float = 4.0) -> torch.Tensor:
    """-1/N sum [(1 - p)^alpha log p at the N centres (y = 1); (1 - y)^beta p^alpha log(1 - p) elsewhere], with
    p = sigmoid(logits) and the logs from ``logsigmoid`` (finite for any logit)."""
    target = target.to(logits.dtype)
    pos = target.eq(1).to(logits.dtype)
    p = torch.sigmoid(logits)
    pos_term = (1 - p) ** alpha * F.logsigmoid(logits) * pos
    neg_term = p ** alpha * F.logsigmoid(-logits) * (1 - target) ** beta * (1 - pos)
    return -(pos_term + neg_term).sum() / pos.sum().clamp(min=1.0)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum |pred - target| over the positions where ``mask`` is 1, divided by their number (at least 1)."""
    return ((pred - target).abs() * mask).sum() / mask.sum().clamp(min=1.0)


def centernet_loss(outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                   targets: dict[str, np.ndarray]) -> tuple[torch.Tensor, dict[str, float]]:
    """focal(heatmap) + 0.1 L1(size at centres) + 1.0 L1(offset at centres), on the NumPy targets of dlbasics'
    ``CenterNet.encode``; returns the total and its three parts as floats."""
    heat, size, offset = outputs
    t = {k: torch.from_numpy(np.ascontiguousarray(v)).to(heat.dtype) for k, v in targets.items()}
    l_heat = gaussian_focal_loss(heat, t["heatmap"])
    l_size = masked_l1(size, t["size"], t["mask"])
    l_off = masked_l1(offset, t["offset"], t["mask"])
    total = l_heat + SIZE_WEIGHT * l_size + OFFSET_WEIGHT * l_off
    return total, {"heatmap": l_heat.item(), "size": l_size.item(), "offset": l_off.item()}
