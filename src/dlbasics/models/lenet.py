"""LeNet-5.

Paper: "Gradient-based learning applied to document recognition", Y. LeCun, L. Bottou, Y. Bengio and
P. Haffner, Proceedings of the IEEE, 1998.
Idea: let the network learn its own feature extractors: convolutions share one small detector across the
image, subsampling makes it tolerant to small shifts, and a few fully connected layers classify.

Layers as the paper names them, for its 32x32 input:
C1 6@28x28 (5x5 conv) -> S2 6@14x14 (2x2 subsampling) -> C3 16@10x10 (5x5 conv) -> S4 16@5x5 -> C5 120
-> F6 84 -> output. Differences from the paper, as in most modern re-implementations: S2/S4 are plain
average pools (the paper's have a trainable coefficient and bias per map), C3 sees all six S2 maps (the
paper's connection table is sparse), the activation is plain tanh (the paper's is 1.7159 tanh(2/3 a)),
C5 is written as the fully connected layer it is on a 5x5 map, and the output is a linear layer read by
cross-entropy instead of Euclidean RBF units.
"""

from __future__ import annotations

from typing import Literal

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.tensor import Tensor

Activation = Literal["tanh", "relu"]  # the choices --activation offers
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


@register("lenet5", paper="LeCun, Bottou, Bengio & Haffner, Gradient-based learning applied to document "
          "recognition (1998)", default_data="fashion-mnist",
          summary="two conv + subsampling stages, then 120-84-classes fully connected")
class LeNet5(nn.Module):
    """x (N, in_channels, S, S) -> logits (N, num_classes).

    C1 pads images smaller than the paper's 32x32 by 2, so a 28x28 image gives the paper's 28x28 C1 maps
    as a 32x32 one does unpadded; other sizes (at least 12) work too: the size reaching C5 is computed
    from ``image_size``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
                 activation: Activation = "tanh") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"lenet5: unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
        act = ACTIVATIONS[activation]
        padding = 2 if image_size < 32 else 0
        c1 = image_size + 2 * padding - 4  # 5x5 conv, stride 1
        s4 = (c1 // 2 - 4) // 2  # S2, C3, S4
        if s4 < 1:
            raise ValueError(f"lenet5: image_size {image_size} is too small; the maps vanish before C5 "
                             "(need at least 12)")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=padding), act(),  # C1 (N, 6, c1, c1)
            nn.AvgPool2d(2),                                        # S2 (N, 6, c1/2, c1/2)
            nn.Conv2d(6, 16, 5), act(),                             # C3 (N, 16, c1/2 - 4, c1/2 - 4)
            nn.AvgPool2d(2),                                        # S4 (N, 16, s4, s4)
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * s4 * s4, 120), act(),  # C5
            nn.Linear(120, 84), act(),            # F6
            nn.Linear(84, num_classes),           # output
        )
        self.image_size = image_size

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (N, 16, 5, 5) for 28x28 or 32x32 inputs
        x = x.flatten(1)  # (N, 16 * 5 * 5)
        return self.classifier(x)  # (N, num_classes)
