"""SimCLR: an image encoder learned from unlabelled images by telling each image's two random views apart from the rest.

Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual Representations" (2020).

The idea: augment every image of a batch twice; encode each view (h = f(x)), project it (z = g(h)), and train f and g
so that each view's nearest neighbour among the batch's 2N - 1 other views, by cosine similarity, is its partner
(the NT-Xent loss, ``F.nt_xent_loss``). No label is used. Then g is thrown away and the frozen h, read by a linear
classifier (the linear probe, ``train.probe``), shows how much the encoder learned about the classes.

The encoder here is sized for 28 x 28 greyscale images: three 3x3 conv-BN-ReLU blocks (32, 64, 128 channels; the
first two followed by 2x2 max-pooling) and global average pooling, h of 128 dimensions; the projection head is the
paper's MLP, Linear-ReLU-Linear, to 64 dimensions.
"""

from __future__ import annotations

from typing import Any

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.tensor import Tensor, float_input

PAPER = ("Chen, Kornblith, Norouzi & Hinton, A Simple Framework for Contrastive Learning of Visual Representations "
         "(2020)")
RECIPE = {"epochs": 10, "batch_size": 256, "optimizer": "adam", "lr": 1e-3, "train_size": 20_000}


def conv_block(c_in: int, c_out: int, pool: bool) -> list[nn.Module]:
    """3x3 conv (no bias: BN's shift is the bias) -> BN -> ReLU (-> 2x2 max-pool)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    return [*layers, nn.MaxPool2d(2)] if pool else layers


class SimCLR(nn.Module):
    """images (N, C, H, W) -> projections z (N, projection_dim); ``features(images)`` -> h (N, width * 4), the
    representation the linear probe reads."""

    def __init__(self, in_channels: int = 1, width: int = 32, projection_dim: int = 64) -> None:
        super().__init__()
        if width < 1 or projection_dim < 1:
            raise ValueError(f"simclr: width and projection_dim must be positive, got {width} and {projection_dim}")
        self.feature_dim = 4 * width
        self.encoder = nn.Sequential(
            *conv_block(in_channels, width, pool=True),  # (w, H/2, W/2)
            *conv_block(width, 2 * width, pool=True),  # (2w, H/4, W/4)
            *conv_block(2 * width, 4 * width, pool=False),  # (4w, H/4, W/4)
            nn.AdaptiveAvgPool2d(1), nn.Flatten())  # h: (4w,)
        self.projector = nn.Sequential(nn.Linear(self.feature_dim, self.feature_dim), nn.ReLU(),
                                       nn.Linear(self.feature_dim, projection_dim))

    def features(self, images: Any) -> Tensor:
        return self.encoder(float_input(images))

    def forward(self, images: Any) -> Tensor:
        return self.projector(self.features(images))


@register("simclr", paper=PAPER, default_data="fashion-mnist", task="contrastive", recipe=RECIPE,
          summary="3 conv-BN-ReLU blocks (32-64-128) + MLP projection head, NT-Xent on two augmented views")
def simclr(in_channels: int, width: int = 32, projection_dim: int = 64) -> SimCLR:
    return SimCLR(in_channels, width, projection_dim)


__all__ = ["SimCLR", "simclr"]
