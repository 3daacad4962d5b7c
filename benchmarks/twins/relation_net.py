"""dlbasics' ``models/relation_net.py`` in PyTorch (CNN+MLP and the Relation Network of Santoro et al. 2017, with
optional FiLM), with the same parameter names: the peer of ``benchmarks/bench_vqa.py`` (which calibrated the
Sort-of-CLEVR recipe with it) and the parity tests' oracle."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def coordinates(n: int, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, dtype=dtype), torch.linspace(-1, 1, w, dtype=dtype),
                            indexing="ij")
    return torch.stack([xs, ys])[None].expand(n, 2, h, w)


class QuestionCNN(nn.Module):
    def __init__(self, in_channels: int, question_size: int, width: int = 24, film: bool = False) -> None:
        super().__init__()
        self.width = width
        self.convs = nn.ModuleList([nn.Conv2d(in_channels + 2 if i == 0 else width, width, 3, stride=2, padding=1,
                                              bias=False) for i in range(4)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(width) for _ in range(4)])
        self.film = nn.ModuleList([nn.Linear(question_size, 2 * width) for _ in range(4)]) if film else None

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        x = torch.cat([images, coordinates(n, h, w, images.dtype)], 1)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(x))
            if self.film is not None:
                gb = self.film[i](questions)
                x = x * (1.0 + gb[:, :self.width, None, None]) + gb[:, self.width:, None, None]
            x = F.relu(x)
        return x


class CNNMLP(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, question_size: int = 11, width: int = 24,
                 hidden_size: int = 256, film: bool = False, image_size: int = 64) -> None:
        super().__init__()
        self.cnn = QuestionCNN(in_channels, question_size, width, film)
        h = hidden_size
        self.mlp = nn.Sequential(nn.Linear(width * (image_size // 16) ** 2 + question_size, h), nn.ReLU(),
                                 nn.Linear(h, h), nn.ReLU(), nn.Dropout(0.5), nn.Linear(h, num_classes))

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        f = self.cnn(images, questions)
        return self.mlp(torch.cat([f.flatten(1), questions], 1))


class RelationNet(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, question_size: int = 11, width: int = 24,
                 hidden_size: int = 256, film: bool = False) -> None:
        super().__init__()
        self.cnn = QuestionCNN(in_channels, question_size, width, film)
        d, h = width + 2, hidden_size
        self.g_i, self.g_j = nn.Linear(d, h), nn.Linear(d, h, bias=False)
        self.g_q = nn.Linear(question_size, h, bias=False)
        self.g = nn.Sequential(nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.f = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Dropout(0.5), nn.Linear(h, num_classes))

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        x = self.cnn(images, questions)
        n, _, h, w = x.shape
        objects = torch.cat([x, coordinates(n, h, w, x.dtype)], 1).flatten(2).transpose(1, 2)  # (N, K, d)
        k = h * w
        pairs = self.g_i(objects)[:, :, None] + self.g_j(objects)[:, None] + self.g_q(questions)[:, None, None]
        return self.f(self.g(pairs.reshape(n * k * k, -1)).reshape(n, k * k, -1).mean(1))
