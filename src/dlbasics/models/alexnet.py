"""AlexNet, scaled to small images.

Paper: "ImageNet Classification with Deep Convolutional Neural Networks", A. Krizhevsky, I. Sutskever and
G. E. Hinton, NeurIPS, 2012.
Idea: a much deeper and wider LeNet - five conv layers and three fully connected ones - made trainable on
1.2M images by ReLUs (fast, non-saturating), overlapping max-pooling, local response normalization, and
dropout in the big fully connected layers to fight overfitting; trained on GPUs.

What is kept: the layer structure, in the paper's order - conv1 -> ReLU -> LRN -> overlapping max-pool,
conv2 -> ReLU -> LRN -> max-pool, conv3, conv4, conv5 (ReLU each) -> max-pool, then two hidden fully
connected layers with dropout 0.5 and the output layer; the LRN constants (size 5, alpha 1e-4, beta 0.75,
k 2) and the overlapping pools (kernel 3, stride 2).
What is scaled for 28x28 / 32x32 inputs and a laptop CPU:
- conv1 is 5x5, stride 1, padding 2 (the paper's 11x11 stride 4 would shrink a 28x28 image to 5x5 at once);
  conv2 5x5 padding 2 and conv3-5 3x3 padding 1 as the paper;
- widths 32-64-96-96-64 instead of 96-256-384-384-256 (one GPU's half of the paper's two-GPU split is
  48-128-192-192-128), hidden fully connected layers 512 wide instead of 4096;
- no split of the layers across two GPUs (one group, every map sees every map below).
"""

from __future__ import annotations

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.tensor import Tensor

WIDTHS = (32, 64, 96, 96, 64)  # conv1..conv5 (paper: 96, 256, 384, 384, 256)
HIDDEN = 512  # fc6, fc7 (paper: 4096)


def _pool(size: int) -> int:
    """Output size of the overlapping 3x3 stride-2 max-pool."""
    return (size - 3) // 2 + 1


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    if batch_norm:
        return nn.BatchNorm2d(channels)
    # the paper's b = a / (k + alpha * sum over 5 neighbouring maps of a^2)^beta with alpha = 1e-4;
    # LocalResponseNorm (as PyTorch's) divides its alpha by size, so it gets size * 1e-4
    return nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)


@register("alexnet", paper="Krizhevsky, Sutskever & Hinton, ImageNet Classification with Deep Convolutional "
          "Neural Networks (2012)", default_data="fashion-mnist",
          summary="5 conv layers with ReLU, LRN and overlapping max-pooling, 2 dropout fc layers (scaled down)")
class AlexNet(nn.Module):
    """x (N, in_channels, S, S) -> logits (N, num_classes); S = 28 -> 13 -> 6 -> 2 through the three pools,
    S = 32 -> 15 -> 7 -> 3.

    ``batch_norm=True`` puts BatchNorm2d where the LRN layers were (the modern replacement);
    ``dropout`` is the drop probability before each hidden fully connected layer (paper: 0.5).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, dropout: float = 0.5,
                 batch_norm: bool = False) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"alexnet: dropout must be in [0, 1), got {dropout}")
        final = _pool(_pool(_pool(image_size)))  # the convs keep the size; each pool shrinks it
        if final < 1:
            raise ValueError(f"alexnet: image_size {image_size} is too small; the three 3x3 stride-2 max-pools "
                             "need at least 15")
        c1, c2, c3, c4, c5 = WIDTHS
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=2), nn.ReLU(), _norm(c1, batch_norm),  # conv1 (N, c1, S, S)
            nn.MaxPool2d(3, stride=2),                                                   # (N, c1, S1, S1)
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), _norm(c2, batch_norm),           # conv2
            nn.MaxPool2d(3, stride=2),                                                   # (N, c2, S2, S2)
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),                                  # conv3
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(),                                  # conv4
            nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(),                                  # conv5
            nn.MaxPool2d(3, stride=2),                                                   # (N, c5, S3, S3)
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c5 * final * final, HIDDEN), nn.ReLU(),  # fc6
            nn.Dropout(dropout), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),              # fc7
            nn.Linear(HIDDEN, num_classes),                                         # fc8
        )
        self.image_size = image_size

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (N, 64, 2, 2) for 28x28 inputs, (N, 64, 3, 3) for 32x32
        x = x.flatten(1)  # (N, 64 * S3 * S3)
        return self.classifier(x)  # (N, num_classes)
