"""Loss modules - the **Loss** component: each wraps its function in ``nn.functional``.

MSE for regression, cross-entropy for classification, and negative log-likelihood - the loss of
maximum-likelihood estimation: minimising -sum log p(y_i | x_i) maximises the likelihood of the data.
"""

from __future__ import annotations

from typing import Any

from dlbasics.nn import functional as F
from dlbasics.nn.module import Module
from dlbasics.registry import Registry
from dlbasics.tensor import Tensor


def _buffer(x: Any) -> Tensor | None:
    return None if x is None else x if isinstance(x, Tensor) else Tensor(x)


# The losses a run chooses by name (``--loss nll``); the run layer adapts them to a classifier's logits.
LOSSES = Registry("loss")


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        F._check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


@LOSSES.register("mse")
class MSELoss(_Loss):
    """mean((input - target)^2): the maximum-likelihood loss under Gaussian noise."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


@LOSSES.register("cross_entropy")
class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits against class indices or probabilities (see ``F.cross_entropy``)."""

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)


@LOSSES.register("nll")
class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities against class indices (see ``F.nll_loss``)."""

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


@LOSSES.register("cross_entropy_dice")
class CrossEntropyDiceLoss(_Loss):
    """Cross-entropy plus the soft Dice loss (see ``F.dice_loss``): per-pixel likelihood and per-class overlap, a
    common pair for segmentation with small objects."""

    def __init__(self, dice_weight: float = 1.0) -> None:
        super().__init__()
        self.dice_weight = float(dice_weight)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(input, target) + self.dice_weight * F.dice_loss(input, target)


@LOSSES.register("huber")
class HuberLoss(_Loss):
    """0.5 d^2 for |d| <= delta, else delta (|d| - 0.5 delta) (see ``F.huber_loss``): DQN's TD loss."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = float(delta)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.huber_loss(input, target, self.reduction, self.delta)


class SmoothL1Loss(_Loss):
    """The Huber loss divided by ``beta`` (see ``F.smooth_l1_loss``)."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = float(beta)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits (see ``F.binary_cross_entropy_with_logits``)."""

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))
        self.register_buffer("pos_weight", _buffer(pos_weight))

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)


class NTXentLoss(_Loss):
    """SimCLR's NT-Xent loss of two views' projections z1, z2 (N, D) (see ``F.nt_xent_loss``): each of the 2N
    views must pick its partner out of the other 2N - 1 by cosine similarity / ``temperature``.

    Paper: "A Simple Framework for Contrastive Learning of Visual Representations", T. Chen, S. Kornblith,
    M. Norouzi and G. Hinton, ICML 2020. Not in ``LOSSES``: a run chooses those for a classifier's
    (logits, target), and this one compares two batches of projections."""

    def __init__(self, temperature: float = 0.5, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if not temperature > 0:
            raise ValueError(f"NTXentLoss: temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return F.nt_xent_loss(z1, z2, self.temperature, self.reduction)

    def extra_repr(self) -> str:
        base = super().extra_repr()
        return f"temperature={self.temperature}" + (f", {base}" if base else "")
