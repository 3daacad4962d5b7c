"""dlbasics' ``models/vit.py`` in PyTorch, with the same parameter names: the benchmark's peer and the parity
tests' oracle."""

from __future__ import annotations

import torch
from torch import nn


class ViT(nn.Module):
    def __init__(self, in_channels: int, image_size: int, num_classes: int, patch_size: int = 7, dim: int = 64,
                 depth: int = 4, heads: int = 4, mlp_ratio: float = 2.0, dropout: float = 0.0) -> None:
        super().__init__()
        n = (image_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b = images.shape[0]
        patches = self.patch_embed(images).flatten(2).transpose(1, 2)  # (B, N, D)
        x = torch.cat([self.cls_token.expand(b, -1, -1), patches], dim=1) + self.pos_embed
        z = self.encoder(self.dropout(x))
        return self.head(self.norm(z[:, 0]))


def vit(in_channels: int = 1, image_size: int = 28, num_classes: int = 10, **options) -> ViT:
    return ViT(in_channels, image_size, num_classes, **options)
