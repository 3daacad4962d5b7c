"""Relation Networks: "A simple neural network module for relational reasoning", A. Santoro, D. Raposo, D. Barrett,
M. Malinowski, R. Pascanu, P. Battaglia and T. Lillicrap, NeurIPS 2017; FiLM from "FiLM: Visual Reasoning with a
General Conditioning Layer", E. Perez, F. Strub, H. de Vries, V. Dumoulin and A. Courville, AAAI 2018.

A relation network answers a question about a scene by looking at every pair of objects: RN(O, q) =
f(sum_{i,j} g(o_i, o_j, q)), where the "objects" are the cells of a CNN's last feature map tagged with their
coordinates. We average over the pairs instead of summing: the same function up to the scale of f's first layer, but
the logits start near zero - summed over 256 pairs they start with a standard deviation of about 8 (a cross-entropy
of 12 at step 0). Its baseline in the paper, CNN+MLP, reads the flattened feature map and the question with an MLP; both
share the CNN. With ``film``, every conv layer's normalized features are scaled and shifted by (gamma, beta), a linear
function of the question, so that the question steers what the CNN looks at from the first layer on.

Sized for 64 x 64 Sort-of-CLEVR: four 3x3 stride-2 conv-BN-ReLU layers of ``width`` channels (on the image with two
coordinate channels appended) to a 4 x 4 map: 16 objects. g's first layer on [o_i, o_j, q] is computed as
W_i o_i + W_j o_j + W_q q, the three parts broadcast over the 256 pairs (the same function, without building the
pairs' concatenation).
"""

from __future__ import annotations

import numpy as np

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.nn import functional as F
from dlbasics.ops import cat
from dlbasics.tensor import Tensor, float_input

PAPER = ("Santoro et al., A simple neural network module for relational reasoning (NeurIPS 2017); FiLM: Perez et al. "
         "(AAAI 2018)")
# 16,000 steps of 64 (image, question) pairs - 5 epochs of the paper's 9,800 scenes x 20 questions: with --film, the
# PyTorch twin of CNN+MLP reaches 0.996 non-relational and 0.934 relational there (docs/benchmarks.md)
RECIPE = {"steps": 16000, "batch_size": 64, "optimizer": "adam", "lr": 1e-3, "eval_every": 2000}


def coordinates(n: int, h: int, w: int, dtype: np.dtype) -> np.ndarray:
    """(n, 2, h, w): each position's x and y in [-1, 1]."""
    ys, xs = np.meshgrid(np.linspace(-1, 1, h, dtype=dtype), np.linspace(-1, 1, w, dtype=dtype), indexing="ij")
    return np.broadcast_to(np.stack([xs, ys])[None], (n, 2, h, w))


class QuestionCNN(nn.Module):
    """images (N, C, H, W) and questions (N, Q) -> features (N, width, H/16, W/16): four 3x3 stride-2 convs, each
    followed by batch norm, FiLM (with ``film``) and ReLU; the image gets two coordinate channels first."""

    def __init__(self, in_channels: int, question_size: int, width: int = 24, film: bool = False) -> None:
        super().__init__()
        self.width = width
        self.convs = nn.ModuleList([nn.Conv2d(in_channels + 2 if i == 0 else width, width, 3, stride=2, padding=1,
                                              bias=False) for i in range(4)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(width) for _ in range(4)])
        self.film = nn.ModuleList([nn.Linear(question_size, 2 * width) for _ in range(4)]) if film else None

    def forward(self, images: Tensor, questions: Tensor) -> Tensor:
        x = float_input(images)
        if x.ndim != 4 or x.shape[2] % 16 or x.shape[3] % 16:
            raise ValueError(f"relation_net: expected images (N, C, H, W) with H and W multiples of 16, got shape "
                             f"{tuple(x.shape)}")
        n, _, h, w = x.shape
        x = cat([x, Tensor._make(np.ascontiguousarray(coordinates(n, h, w, x.data.dtype)), False, None)], 1)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(x))
            if self.film is not None:  # x * (1 + gamma) + beta: starts near the identity
                gb = self.film[i](questions)
                x = x * (1.0 + gb[:, :self.width].reshape(n, self.width, 1, 1)) + gb[:, self.width:].reshape(
                    n, self.width, 1, 1)
            x = F.relu(x)
        return x


class CNNMLP(nn.Module):
    """The paper's baseline: the CNN's features flattened and concatenated with the question, then an MLP.
    (images (N, C, 64, 64), questions (N, Q)) -> answer logits (N, num_classes)."""

    def __init__(self, in_channels: int, num_classes: int, question_size: int, width: int = 24, hidden_size: int = 256,
                 film: bool = False, image_size: int = 64) -> None:
        super().__init__()
        self.cnn = QuestionCNN(in_channels, question_size, width, film)
        cells = (image_size // 16) ** 2
        h = hidden_size
        self.mlp = nn.Sequential(nn.Linear(width * cells + question_size, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                 nn.Dropout(0.5), nn.Linear(h, num_classes))

    def forward(self, images: Tensor, questions: Tensor) -> Tensor:
        questions = float_input(questions)
        features = self.cnn(images, questions)
        return self.mlp(cat([features.reshape(features.shape[0], -1), questions], 1))


class RelationNet(nn.Module):
    """RN(O, q) = f(mean_ij g(o_i, o_j, q)) over the CNN's cells tagged with their coordinates.
    (images (N, C, 64, 64), questions (N, Q)) -> answer logits (N, num_classes)."""

    def __init__(self, in_channels: int, num_classes: int, question_size: int, width: int = 24, hidden_size: int = 256,
                 film: bool = False) -> None:
        super().__init__()
        self.cnn = QuestionCNN(in_channels, question_size, width, film)
        d, h = width + 2, hidden_size  # a cell's features and its (x, y)
        self.g_i, self.g_j = nn.Linear(d, h), nn.Linear(d, h, bias=False)
        self.g_q = nn.Linear(question_size, h, bias=False)
        self.g = nn.Sequential(nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.f = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Dropout(0.5), nn.Linear(h, num_classes))

    def forward(self, images: Tensor, questions: Tensor) -> Tensor:
        questions = float_input(questions)
        x = self.cnn(images, questions)
        n, c, h, w = x.shape
        coords = coordinates(n, h, w, x.data.dtype)
        objects = cat([x, Tensor._make(np.ascontiguousarray(coords), False, None)], 1)
        objects = objects.reshape(n, c + 2, h * w).transpose(1, 2)  # (N, K, d)
        k, hidden = h * w, self.g_q.out_features
        pairs = (self.g_i(objects).reshape(n, k, 1, hidden) + self.g_j(objects).reshape(n, 1, k, hidden)
                 + self.g_q(questions).reshape(n, 1, 1, hidden))  # (N, K, K, hidden): g's first layer for every pair
        relations = self.g(pairs.reshape(n * k * k, hidden)).reshape(n, k * k, hidden).mean(1)
        return self.f(relations)


@register("vqa_cnn_mlp", paper=PAPER, default_data="sort-of-clevr", task="vqa", recipe=RECIPE,
          summary="CNN (4 conv, coordinate channels, optional FiLM) + question -> MLP: Santoro et al.'s baseline")
def vqa_cnn_mlp(in_channels: int, num_classes: int, question_size: int, image_size: int, width: int = 24,
                hidden_size: int = 256, film: bool = False) -> CNNMLP:
    return CNNMLP(in_channels, num_classes, question_size, width, hidden_size, film, image_size)


@register("relation_net", paper=PAPER, default_data="sort-of-clevr", task="vqa", recipe=RECIPE,
          summary="Relation Network: g over all pairs of CNN cells (+ coordinates, + question), averaged, then f")
def relation_net(in_channels: int, num_classes: int, question_size: int, width: int = 24, hidden_size: int = 256,
                 film: bool = False) -> RelationNet:
    return RelationNet(in_channels, num_classes, question_size, width, hidden_size, film)


__all__ = ["CNNMLP", "QuestionCNN", "RelationNet", "coordinates", "relation_net", "vqa_cnn_mlp"]
