"""Heatmap pose estimation in the style of "Stacked Hourglass Networks for Human Pose Estimation", A. Newell, K. Yang
and J. Deng, ECCV 2016, and "Simple Baselines for Human Pose Estimation and Tracking", B. Xiao, H. Wu and Y. Wei,
ECCV 2018.

Each joint is a heatmap: the network predicts, per joint, a map that should be a small Gaussian at the joint's
position (sigma 2 heatmap pixels by default: sigma 1 learns far more slowly here), trained by mean squared error; the
joint is read back as the map's argmax, refined by a quarter pixel towards the higher neighbour in x and in y (Newell
et al.'s sub-pixel step).

Xiao et al.'s simple baseline, sized for 64 x 64 images: conv-BN-ReLU blocks down to stride 8, then two 4x4 transposed
convolutions (stride 2 each) back up to stride 2, and a 1x1 conv to one heatmap per joint (32 x 32 maps).
"""

from __future__ import annotations

import numpy as np

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.tensor import Tensor, float_input

PAPER = ("Newell, Yang & Deng, Stacked Hourglass Networks (ECCV 2016); Xiao, Wu & Wei, Simple Baselines for Human "
         "Pose Estimation and Tracking (ECCV 2018)")
RECIPE = {"steps": 400, "batch_size": 32, "optimizer": "adam", "lr": 2e-3, "eval_every": 100}
STRIDE = 2


def block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


def up(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class KeypointNet(nn.Module):
    """images (N, in_channels, H, W) -> heatmaps (N, num_joints, H/2, W/2); ``encode`` makes the target maps of
    keypoints (N, J, 2) in input pixels, ``decode`` reads keypoints back."""

    def __init__(self, in_channels: int, num_joints: int, width: int = 32, sigma: float = 2.0) -> None:
        super().__init__()
        self.num_joints, self.sigma = num_joints, float(sigma)
        self.backbone = nn.Sequential(*block(in_channels, width), *block(width, width, 2),  # stride 2
                                      *block(width, 2 * width, 2), *block(2 * width, 2 * width),  # stride 4
                                      *block(2 * width, 4 * width, 2), *block(4 * width, 4 * width))  # stride 8
        self.deconv = nn.Sequential(*up(4 * width, 2 * width), *up(2 * width, width))  # stride 2
        self.head = nn.Conv2d(width, num_joints, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = float_input(x)
        if x.ndim != 4 or x.shape[2] % 8 or x.shape[3] % 8:
            raise ValueError(f"keypoint_net: expected images (N, C, H, W) with H and W multiples of 8, got shape "
                             f"{tuple(x.shape)}")
        return self.head(self.deconv(self.backbone(x)))

    def encode(self, keypoints: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
        """Target heatmaps (N, J, h, w): exp(-d^2 / 2 sigma^2) around each joint, d measured in heatmap pixels from
        the joint's position (input pixels / STRIDE; pixel centres at +0.5)."""
        h, w = out_size
        ys = (np.arange(h, dtype=np.float32) + 0.5)[None, None, :, None]
        xs = (np.arange(w, dtype=np.float32) + 0.5)[None, None, None, :]
        kp = np.asarray(keypoints, np.float32) / STRIDE
        d2 = (xs - kp[..., 0, None, None]) ** 2 + (ys - kp[..., 1, None, None]) ** 2
        return np.exp(-d2 / (2 * self.sigma ** 2)).astype(np.float32)

    @staticmethod
    def decode(heatmaps: np.ndarray) -> np.ndarray:
        """Keypoints (N, J, 2) in input pixels from heatmaps (N, J, h, w): the argmax, moved a quarter pixel towards
        the higher of its two neighbours along x and along y (not on the border, where one neighbour is missing)."""
        heatmaps = np.asarray(heatmaps)
        n, j, h, w = heatmaps.shape
        flat = heatmaps.reshape(n, j, -1).argmax(-1)
        py, px = np.divmod(flat, w)
        ni, ji = np.meshgrid(np.arange(n), np.arange(j), indexing="ij")
        right = heatmaps[ni, ji, py, np.minimum(px + 1, w - 1)]
        left = heatmaps[ni, ji, py, np.maximum(px - 1, 0)]
        down = heatmaps[ni, ji, np.minimum(py + 1, h - 1), px]
        above = heatmaps[ni, ji, np.maximum(py - 1, 0), px]
        # no step on a border pixel: its outer neighbour is missing (as the hourglass code does)
        x = px + 0.5 + 0.25 * np.sign(right - left) * ((px > 0) & (px < w - 1))
        y = py + 0.5 + 0.25 * np.sign(down - above) * ((py > 0) & (py < h - 1))
        return (np.stack([x, y], -1) * STRIDE).astype(np.float32)


@register("keypoint_net", paper=PAPER, default_data="shapes-pose", task="pose", recipe=RECIPE,
          summary="heatmap pose estimation: conv blocks to stride 8, two transposed convs up to stride 2, MSE")
def keypoint_net(in_channels: int, num_classes: int, width: int = 32, sigma: float = 2.0) -> KeypointNet:
    """``num_classes`` is the number of joints (the data set's)."""
    return KeypointNet(in_channels, num_classes, width, sigma)


__all__ = ["STRIDE", "KeypointNet", "keypoint_net"]
