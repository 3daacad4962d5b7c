"""GPT: a decoder-only Transformer language model.

Radford, Narasimhan, Salimans & Sutskever, "Improving Language Understanding by Generative Pre-Training" (2018);
Radford, Wu, Child, Luan, Amodei & Sutskever, "Language Models are Unsupervised Multitask Learners" (2019).

The idea: stack Transformer blocks whose self-attention is causal - position t sees positions 0..t only - and
train them to predict every next token of raw text; the same weights then continue any prompt.

Written as Karpathy's nanoGPT ``model.py`` writes it (GPT-2's layout): token and learned position embeddings,
pre-norm blocks (x + attn(ln_1(x)), x + mlp(ln_2(x))), a GELU MLP four times as wide, a final LayerNorm, and an
output layer that shares its weight with the token embedding. The parameter names are nanoGPT's, so its
checkpoints' tensors map by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.ops.attention import attend
from dlbasics.tensor import Tensor

PAPER = ("Radford et al., Improving Language Understanding by Generative Pre-Training (2018); Language Models are "
         "Unsupervised Multitask Learners (2019)")


@dataclass
class GPTConfig:
    """nanoGPT's ``GPTConfig``; the defaults are its CPU recipe for Tiny Shakespeare (0.8M parameters)."""

    block_size: int = 64  # the longest context: the number of learned positions
    vocab_size: int = 65
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False  # biases in the Linear layers and LayerNorms (GPT-2 has them; nanoGPT's recipe not)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t attends to positions 0..t."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"GPT: n_embd {config.n_embd} must be a multiple of n_head {config.n_head}")
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v for all heads at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout, self.resid_dropout = config.dropout, nn.Dropout(config.dropout)
        self.n_head, self.n_embd = config.n_head, config.n_embd

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape  # batch, sequence length, embedding dimension (n_embd)
        hs = C // self.n_head
        qkv = self.c_attn(x).reshape(B, T, 3, self.n_head, hs).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
        # softmax(q k^T / sqrt(hs), causal) v for q, k, v = qkv[0], qkv[1], qkv[2], each (B, nh, T, hs); given packed,
        # the op writes their gradients into one array instead of three zero-padded slices' gradients
        y = attend([qkv], None, None, True, None, self.attn_dropout if self.training else 0.0, None,
                   packed=True)  # (B, nh, T, hs)
        y = y.permute(0, 2, 1, 3).reshape(B, T, C)  # the heads side by side again: (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise: Linear to 4 n_embd, GELU, Linear back."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """A pre-norm Transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """idx (B, T) token ids, T <= block_size -> logits (B, T, vocab_size) for the token after each position."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(config.vocab_size, config.n_embd),  # token embedding
            "wpe": nn.Embedding(config.block_size, config.n_embd),  # position embedding
            "drop": nn.Dropout(config.dropout),
            "h": nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            "ln_f": nn.LayerNorm(config.n_embd, bias=config.bias),
        })
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # weight tying (Press & Wolf, 2017): one matrix maps tokens to vectors and vectors back to token logits
        self.transformer["wte"].weight = self.lm_head.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by 1/sqrt(2 n_layer)
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: Any) -> Tensor:
        idx = idx if isinstance(idx, Tensor) else Tensor._make(np.asarray(idx, dtype=np.int64), False, None)
        length = idx.shape[1]  # idx (B, T)
        if length > self.config.block_size:
            raise ValueError(f"GPT: a sequence of {length} tokens is longer than block_size {self.config.block_size}")
        t = self.transformer
        pos = Tensor._make(np.arange(length, dtype=np.int64), False, None)  # (T,)
        x = t["drop"](t["wte"](idx) + t["wpe"](pos))  # (B, T, C) + (T, C)
        for block in t["h"]:
            x = block(x)
        return self.lm_head(t["ln_f"](x))  # (B, T, vocab_size)

    def generate(self, idx: Any, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: Any = None) -> np.ndarray:
        """idx (B, T0) continued by ``max_new_tokens`` sampled tokens -> (B, T0 + max_new_tokens)."""
        from dlbasics.train.language_model import generate

        return generate(self, idx, max_new_tokens, self.config.block_size, temperature, top_k, generator)


# nanoGPT's CPU recipe (its README: 4 layers, 4 heads, 128 dims, block 64, batch 12, 2000 iterations;
# train_shakespeare_char.py: AdamW lr 1e-3, beta2 0.99, warm-up 100, cosine to 1e-4, weight decay 0.1, clip 1.0)
RECIPE = {"steps": 2000, "batch_size": 12, "block_size": 64, "optimizer": "adamw", "lr": 1e-3, "betas": [0.9, 0.99],
          "weight_decay": 0.1, "scheduler": "cosine", "warmup": 100, "min_lr": 1e-4, "schedule_unit": "step",
          "clip_grad_norm": 1.0, "eval_every": 250}


@register("gpt", paper=PAPER, default_data="shakespeare", task="language_model", recipe=RECIPE,
          summary="decoder-only Transformer, nanoGPT's layout (4 layers x 4 heads x 128 by default)")
def gpt(vocab_size: int, block_size: int, n_layer: int = 4, n_head: int = 4, n_embd: int = 128, dropout: float = 0.0,
        bias: bool = False) -> GPT:
    return GPT(GPTConfig(block_size, vocab_size, n_layer, n_head, n_embd, dropout, bias))


__all__ = ["GPT", "Block", "CausalSelfAttention", "GPTConfig", "gpt"]
