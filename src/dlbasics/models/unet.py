"""U-Net: "U-Net: Convolutional Networks for Biomedical Image Segmentation", O. Ronneberger, P. Fischer and T. Brox,
MICCAI 2015.

A contracting path of conv blocks and 2x2 max-pooling sees more context at each level; an expanding path of 2x2
transposed convolutions brings the resolution back, and at each level concatenates the contracting path's features
of the same size (the skip connections), so the per-pixel prediction has both the context and the exact position.

Sized for the 64 x 64 shapes world: widths 16-32-64 (three levels, two poolings), each block two 3x3 conv-BN-ReLU
(padded, so the output has the input's size - the paper's convs are unpadded - and with batch norm, which the paper
predates), and a 1x1 conv to one logit per class and pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.ops import cat
from dlbasics.tensor import Tensor, float_input

PAPER = "Ronneberger, Fischer & Brox, U-Net: Convolutional Networks for Biomedical Image Segmentation (MICCAI 2015)"
RECIPE = {"epochs": 5, "batch_size": 32, "optimizer": "adam", "lr": 1e-3}


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
        if len(widths) < 2 or any(w < 1 for w in widths):
            raise ValueError(f"unet: widths must be at least two positive channel counts, got {widths}")
        self.levels = len(widths)
        self.down = nn.ModuleList([ConvBlock(c_in, c, batch_norm)
                                   for c_in, c in zip([in_channels, *widths[:-1]], widths)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(len(widths) - 1))])
        self.merge = nn.ModuleList([ConvBlock(2 * widths[i], widths[i], batch_norm)
                                    for i in reversed(range(len(widths) - 1))])
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = float_input(x)
        step = 2 ** (self.levels - 1)
        if x.ndim != 4 or x.shape[2] % step or x.shape[3] % step:
            raise ValueError(f"unet: expected images (N, C, H, W) with H and W divisible by {step}, got shape "
                             f"{tuple(x.shape)}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < self.levels - 1:
                skips.append(x)
                x = self.pool(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(cat([skip, up(x)], 1))
        return self.head(x)


@register("unet", paper=PAPER, default_data="shapes-seg", task="segmentation", recipe=RECIPE,
          summary="U-Net 16-32-64: conv-BN-ReLU blocks, max-pool down, 2x2 transposed conv up, skip concatenation")
def unet(in_channels: int, num_classes: int, widths: Sequence[int] = (16, 32, 64), batch_norm: bool = True) -> UNet:
    return UNet(in_channels, num_classes, widths, batch_norm)


__all__ = ["ConvBlock", "UNet", "unet"]
