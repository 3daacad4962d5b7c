"""The Vision Transformer: an image as a sequence of patches, read by a Transformer encoder.

Dosovitskiy, Beyer, Kolesnikov, Weissenborn, Zhai, Unterthiner, Dehghani, Minderer, Heigold, Gelly, Uszkoreit &
Houlsby, "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale" (2020).

The idea: cut the image into P x P patches, embed each linearly as a token, prepend a learned class token, add
learned position embeddings, and run pre-norm Transformer encoder blocks; the class token's final state, read by
an MLP head, classifies the image. No convolution's locality is built in - attention learns which patches matter.

    z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos            (N = HW / P^2 patches, E: (P^2 C, D))
    z_l = MSA(LN(z_{l-1})) + z_{l-1},  z_l = MLP(LN(z_l)) + z_l  (nn.TransformerEncoderLayer, norm_first)
    y = head(LN(z_L^0))

The patch embedding is a P x P convolution with stride P, which is the same linear map E applied to every patch.
The defaults are a small model for 28 x 28 Fashion-MNIST: patches of 7 (16 tokens), 64 dimensions, 4 blocks of 4
heads, MLP ratio 2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.nn import init
from dlbasics.ops.movement import cat
from dlbasics.tensor import Tensor, float_input

PAPER = "Dosovitskiy et al., An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale (2020)"


class ViT(nn.Module):
    """images (B, C, H, W) -> class logits (B, num_classes)."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, patch_size: int = 7, dim: int = 64,
                 depth: int = 4, heads: int = 4, mlp_ratio: float = 2.0, dropout: float = 0.0) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"vit: image_size {image_size} is not a multiple of patch_size {patch_size}")
        if dim % heads:
            raise ValueError(f"vit: dim {dim} is not a multiple of heads {heads}")
        self.patch_size, self.grid = patch_size, image_size // patch_size
        n = self.grid ** 2  # patches
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)  # E on every patch at once
        self.cls_token = nn.Parameter(Tensor(np.zeros((1, 1, dim), np.float32)))
        self.pos_embed = nn.Parameter(Tensor(np.zeros((1, n + 1, dim), np.float32)))
        init.trunc_normal_(self.pos_embed, std=0.02)  # as the reference implementation
        init.trunc_normal_(self.cls_token, std=0.02)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def tokens(self, images: Any) -> Tensor:
        """The encoder's input: the class token, then one token per patch, with positions: (B, 1 + N, D)."""
        x = float_input(images)
        b = x.shape[0]
        patches = self.patch_embed(x)  # (B, D, H/P, W/P)
        patches = patches.reshape(b, patches.shape[1], -1).transpose(1, 2)  # (B, N, D), patches in row order
        cls = self.cls_token.expand(b, 1, self.cls_token.shape[2])  # (B, 1, D)
        return self.dropout(cat([cls, patches], dim=1) + self.pos_embed)

    def forward(self, images: Any) -> Tensor:
        z = self.encoder(self.tokens(images))  # (B, 1 + N, D)
        return self.head(self.norm(z[:, 0]))  # the class token's state -> (B, num_classes)

    def cls_attention(self, images: Any) -> np.ndarray:
        """The last block's attention of the class token over the patches, averaged over heads: (B, H/P, W/P)."""
        from dlbasics.train.task import evaluating

        with evaluating(self):
            z = self.tokens(images)
            for layer in self.encoder.layers[:-1]:
                z = layer(z)
            last = self.encoder.layers[-1]
            h = last.norm1(z)  # pre-norm: the attention reads LN(z)
            _, weights = last.self_attn(h, h, h, need_weights=True, average_attn_weights=True)  # (B, 1+N, 1+N)
        return weights.data[:, 0, 1:].reshape(-1, self.grid, self.grid)


@register("vit", paper=PAPER, default_data="fashion-mnist",
          recipe={"epochs": 5, "batch_size": 128, "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05,
                  "scheduler": "cosine", "warmup": 200, "schedule_unit": "step", "clip_grad_norm": 1.0},
          summary="Vision Transformer: 7x7 patches of a 28x28 image, 4 pre-norm blocks x 64 dims, class token")
def vit(in_channels: int, image_size: int, num_classes: int, patch_size: int = 7, dim: int = 64, depth: int = 4,
        heads: int = 4, mlp_ratio: float = 2.0, dropout: float = 0.0) -> ViT:
    return ViT(in_channels, image_size, num_classes, patch_size, dim, depth, heads, mlp_ratio, dropout)


__all__ = ["ViT", "vit"]
