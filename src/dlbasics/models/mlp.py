"""Multilayer perceptron.

Paper: "Learning representations by back-propagating errors", D. E. Rumelhart, G. E. Hinton and
R. J. Williams, Nature, 1986.
Idea: layers of weighted sums, each followed by a nonlinearity, trained end to end by propagating the
error gradient backwards; without the nonlinearities the whole stack would collapse into one linear map.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.tensor import Tensor

Activation = Literal["relu", "leaky_relu", "sigmoid", "tanh", "gelu"]  # the choices --activation offers
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU,
}


@register("mlp", paper="Rumelhart, Hinton & Williams, Learning representations by back-propagating errors (1986)",
          default_data="digits", summary="fully connected layers with a nonlinearity between them")
class MLP(nn.Module):
    """in_features -> hidden[0] -> ... -> hidden[-1] -> num_classes; each hidden layer is
    Linear [-> BatchNorm1d] -> activation [-> Dropout].   x (N, in_features) -> logits (N, num_classes).
    BatchNorm1d then ReLU is the fused ``BatchNormReLU1d`` (same parameters and state dict).
    The defaults are the lecture's assignment model: 128-64, ReLU, batch norm.
    """

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int] = (128, 64),
                 activation: Activation = "relu", dropout: float = 0.0, batch_norm: bool = True) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"mlp: unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"mlp: dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm and activation == "relu":
                # relu(batch_norm(x)) as one op (one pass fewer each way); the Identity holds the ReLU's slot,
                # so the layers keep the indices - the state-dict names - of Linear, BatchNorm1d, ReLU
                layers += [nn.BatchNormReLU1d(h), nn.Identity()]
            else:
                if batch_norm:
                    layers.append(nn.BatchNorm1d(h))
                layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)
        self.in_features = in_features

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim > 2:  # images (N, C, H, W) are flattened to vectors
            x = x.flatten(1)
        return self.layers(x)
