"""dlbasics' ``models/keypoint_net.py`` in PyTorch, with the same module structure and parameter/buffer names (so one
state dict loads by name into either), and its loss: the mean squared error of the heatmaps against the targets of
dlbasics' ``KeypointNet.encode`` (NumPy, shared by both sides): the benchmark's peer and the parity tests' oracle."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


def up(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class KeypointNet(nn.Module):
    """images (N, in_channels, H, W) -> heatmaps (N, num_joints, H/2, W/2); H and W multiples of 8."""

    def __init__(self, in_channels: int, num_joints: int, width: int = 32) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.backbone = nn.Sequential(*block(in_channels, width), *block(width, width, 2),  # stride 2
                                      *block(width, 2 * width, 2), *block(2 * width, 2 * width),  # stride 4
                                      *block(2 * width, 4 * width, 2), *block(4 * width, 4 * width))  # stride 8
        self.deconv = nn.Sequential(*up(4 * width, 2 * width), *up(2 * width, width))  # stride 2
        self.head = nn.Conv2d(width, num_joints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.deconv(self.backbone(x)))


def keypoint_net(in_channels: int, num_classes: int, width: int = 32) -> KeypointNet:
    """``num_classes`` is the number of joints, as in dlbasics' zoo entry."""
    return KeypointNet(in_channels, num_classes, width)


def pose_loss(heatmaps: torch.Tensor, target: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``F.mse_loss`` of the heatmaps against the target maps (a NumPy array from ``encode`` is converted to the
    heatmaps' dtype)."""
    target = torch.as_tensor(np.ascontiguousarray(target) if isinstance(target, np.ndarray) else target)
    return F.mse_loss(heatmaps, target.to(heatmaps.dtype))
