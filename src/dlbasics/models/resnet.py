"""ResNet, the CIFAR family.

Paper: "Deep Residual Learning for Image Recognition", K. He, X. Zhang, S. Ren and J. Sun, CVPR 2016
(arXiv 2015).
Idea: let a stack of layers learn a residual F(x) and add it to its input, y = relu(F(x) + x); an identity
is then as easy as F = 0, and the shortcut carries the signal and its gradient through hundreds of layers,
so a deeper network no longer trains worse than a shallower one, as a "plain" stack does.

The CIFAR networks of the paper's section 4.2: a 3x3 conv with 16 filters, then three stages of n residual
blocks with 16, 32, 64 filters on 32x32, 16x16, 8x8 maps (the first block of stages 2 and 3 halves the map
with stride 2), global average pooling and a fully connected layer: 6n + 2 weighted layers (20, 32, 44, 56,
110). When a block changes the shape, shortcut "A" subsamples x with stride 2 and pads the new channels
with zeros (no parameters, the paper's CIFAR choice); "B" projects with a 1x1 conv + BN. ``plain=True``
removes every shortcut and leaves the same layers: the paper's plain baselines. 28x28 inputs (Fashion-MNIST)
go 28 -> 14 -> 7 the same way.

The bottleneck block (1x1 reduce, 3x3, 1x1 expand by 4) is the paper's block for ImageNet ResNet-50/101/152;
with it the CIFAR layout has 3 layers per block, depth = 9n + 2 (ResNet-164 of He et al., 2016).
"""

from __future__ import annotations

from typing import Literal, get_args

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.nn import functional as F
from dlbasics.tensor import Tensor

PAPER = "He, Zhang, Ren & Sun, Deep Residual Learning for Image Recognition (2015)"
Shortcut = Literal["A", "B"]  # the choices --shortcut offers: zero-padding (A) or projection (B)
Block = Literal["basic", "bottleneck"]  # the choices --block offers
SHORTCUTS = get_args(Shortcut)


class PadShortcut(nn.Module):
    """Option A: identity with stride-``stride`` subsampling and zero-padded extra channels (no parameters).
    x (N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"shortcut A pads channels with zeros; it cannot go from {in_channels} to "
                             f"{out_channels} channels (use shortcut 'B')")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]  # (N, C_in, H / s, W / s)
        extra = self.out_channels - self.in_channels
        # pad dims from the last: (W left, W right, H top, H bottom, C front, C back), zeros on both sides
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))  # (N, C_out, H / s, W / s)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def _shortcut(in_channels: int, out_channels: int, stride: int, kind: str) -> nn.Module:
    """Identity when the shape is kept; otherwise option A (zero padding) or B (1x1 conv projection + BN)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind == "A":
        return PadShortcut(in_channels, out_channels, stride)
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """y = relu(BN(conv3x3(relu(BN(conv3x3(x))))) + shortcut(x)); two weighted layers.
    x (N, C_in, H, W) -> (N, planes, H / stride, W / stride)."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1, shortcut: Shortcut = "A",
                 plain: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNormReLU2d(planes)  # BN then ReLU as one op; a BatchNorm2d's parameters
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = None if plain else _shortcut(in_channels, planes, stride, shortcut)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x))  # relu(BN(conv(x)))
        out = self.bn2(self.conv2(out))  # F(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # F(x) + x
        return out.relu()


class Bottleneck(nn.Module):
    """y = relu(BN(conv1x1 up(relu(BN(conv3x3(relu(BN(conv1x1 down(x)))))))) + shortcut(x)); three weighted
    layers, the 3x3 working on ``planes`` channels and the output ``4 * planes``.
    x (N, C_in, H, W) -> (N, 4 * planes, H / stride, W / stride)."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, shortcut: Shortcut = "A",
                 plain: bool = False) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNormReLU2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)  # stride on the 3x3
        self.bn2 = nn.BatchNormReLU2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = None if plain else _shortcut(in_channels, out_channels, stride, shortcut)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x))  # relu(BN(conv(x)))
        out = self.bn2(self.conv2(out))
        out = self.bn3(self.conv3(out))  # F(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # F(x) + x
        return out.relu()


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """The CIFAR ResNet (or its plain twin).   x (N, in_channels, S, S) -> logits (N, num_classes).

    ``depth`` counts the weighted layers: 6n + 2 with basic blocks, 9n + 2 with bottlenecks; ``width`` is
    the first stage's width (16 in the paper), doubled in each of the two following stages.
    Init as torchvision: convs kaiming_normal_(mode="fan_out", nonlinearity="relu"), BN weight 1 and
    bias 0, the fully connected layer as nn.Linear. A BN directly followed by a ReLU is one
    ``nn.BatchNormReLU2d`` (the same parameters and state dict names as a BatchNorm2d).
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, in_channels: int = 3, image_size: int = 32,
                 block: Block = "basic", width: int = 16, shortcut: Shortcut = "A", plain: bool = False) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"resnet: unknown block {block!r}; choose from {', '.join(BLOCKS)}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"resnet: unknown shortcut {shortcut!r}; choose from {', '.join(SHORTCUTS)}")
        per_block = 2 if block == "basic" else 3
        if depth < 3 * per_block + 2 or (depth - 2) % (3 * per_block):
            valid = ", ".join(str(3 * per_block * n + 2) for n in range(1, 5))
            raise ValueError(f"resnet: depth must be {3 * per_block}n + 2 with {block} blocks ({valid}, ...), "
                             f"got {depth}")
        if width < 1:
            raise ValueError(f"resnet: width must be positive, got {width}")
        if image_size < 4:
            raise ValueError(f"resnet: image_size must be at least 4 (two stride-2 stages), got {image_size}")
        n = (depth - 2) // (3 * per_block)
        Block = BLOCKS[block]
        self.depth, self.plain, self.image_size = depth, plain, image_size
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)  # (N, width, S, S)
        self.bn1 = nn.BatchNormReLU2d(width)
        channels = width
        stages = []
        for i, stride in enumerate((1, 2, 2)):  # maps S, S/2, S/4
            blocks = []
            for j in range(n):
                blocks.append(Block(channels, width * 2**i, stride if j == 0 else 1, shortcut, plain))
                channels = width * 2**i * Block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages  # (N, w, S, S), (N, 2w, S/2, S/2), (N, 4w, S/4, S/4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn1(self.conv1(x))  # relu(BN(conv(x))), (N, w, S, S)
        x = self.layer1(x)  # (N, w * e, S, S), e = the block's expansion
        x = self.layer2(x)  # (N, 2w * e, S/2, S/2)
        x = self.layer3(x)  # (N, 4w * e, S/4, S/4)
        x = self.pool(x)  # (N, 4w * e, 1, 1)
        x = x.flatten(1)  # (N, 4w * e)
        return self.fc(x)  # (N, num_classes)


@register("resnet", paper=PAPER, default_data="cifar10",
          summary="CIFAR ResNet of any depth 6n+2 (basic) or 9n+2 (bottleneck); plain=True drops the shortcuts")
def resnet(depth: int = 20, plain: bool = False, block: Block = "basic", width: int = 16, shortcut: Shortcut = "A",
           num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> ResNet:
    """The general builder: ``resnet(depth=110)``, ``resnet(depth=164, block="bottleneck")``, ..."""
    return ResNet(depth, num_classes, in_channels, image_size, block, width, shortcut, plain)


# The paper's CIFAR-10 table (section 4.2): 0.27M, 0.46M, 0.66M, 0.85M parameters.
@register("resnet20", paper=PAPER, default_data="cifar10", summary="20 layers (n = 3), 0.27M parameters")
def resnet20(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, shortcut: Shortcut = "A") -> ResNet:
    return ResNet(20, num_classes, in_channels, image_size, shortcut=shortcut)


@register("resnet32", paper=PAPER, default_data="cifar10", summary="32 layers (n = 5), 0.46M parameters")
def resnet32(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, shortcut: Shortcut = "A") -> ResNet:
    return ResNet(32, num_classes, in_channels, image_size, shortcut=shortcut)


@register("resnet44", paper=PAPER, default_data="cifar10", summary="44 layers (n = 7), 0.66M parameters")
def resnet44(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, shortcut: Shortcut = "A") -> ResNet:
    return ResNet(44, num_classes, in_channels, image_size, shortcut=shortcut)


@register("resnet56", paper=PAPER, default_data="cifar10", summary="56 layers (n = 9), 0.85M parameters")
def resnet56(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, shortcut: Shortcut = "A") -> ResNet:
    return ResNet(56, num_classes, in_channels, image_size, shortcut=shortcut)


@register("plain20", paper=PAPER, default_data="cifar10", summary="resnet20's layers without the shortcuts")
def plain20(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> ResNet:
    return ResNet(20, num_classes, in_channels, image_size, plain=True)


@register("plain32", paper=PAPER, default_data="cifar10", summary="resnet32's layers without the shortcuts")
def plain32(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> ResNet:
    return ResNet(32, num_classes, in_channels, image_size, plain=True)


@register("plain44", paper=PAPER, default_data="cifar10", summary="resnet44's layers without the shortcuts")
def plain44(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> ResNet:
    return ResNet(44, num_classes, in_channels, image_size, plain=True)


@register("plain56", paper=PAPER, default_data="cifar10", summary="resnet56's layers without the shortcuts")
def plain56(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> ResNet:
    return ResNet(56, num_classes, in_channels, image_size, plain=True)
