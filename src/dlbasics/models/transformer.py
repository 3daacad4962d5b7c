"""The Transformer: an encoder-decoder for translation built on attention alone.

Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser & Polosukhin, "Attention Is All You Need" (2017).

The idea: no recurrence - every position of the source attends to every other in each encoder layer, and every
position of the target to the target words before it and to the whole source in each decoder layer; word order
comes from sinusoidal position signals added to the embeddings. All positions train in parallel.

    x_i = sqrt(d) E[w_i] + PE_i,   PE_(i, 2k) = sin(i / 10000^(2k/d)),  PE_(i, 2k+1) = cos(i / 10000^(2k/d))
    p(y_t | y_<t, x) = softmax(E_tgt · decoder(y_<t, encoder(x))_t)

Built on ``nn.Transformer`` (post-norm layers, as the paper; ReLU feed-forward); the output layer shares its weight
with the target embedding, as the paper shares its embeddings (its source and target share one BPE vocabulary;
ours are two word vocabularies, so the source keeps its own). The defaults are a small model for small data:
3 + 3 layers of 256 dims, 4 heads, feed-forward 512 wide.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.models.seq2seq import PAD, _at, _ids, _lengths
from dlbasics.nn import init
from dlbasics.nn.layers.transformer import Transformer
from dlbasics.ops.movement import cat
from dlbasics.tensor import Tensor

PAPER = "Vaswani et al., Attention Is All You Need (2017)"


def sinusoids(length: int, d_model: int) -> np.ndarray:
    """(length, d_model) position signals: sin at even columns, cos at odd ones, wavelengths 2 pi .. 10000 2 pi."""
    pos = np.arange(length)[:, None]
    freq = np.exp(-math.log(10000.0) * np.arange(0, d_model, 2) / d_model)  # 1 / 10000^(2k/d)
    pe = np.zeros((length, d_model), np.float32)
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq[:d_model // 2])
    return pe


class TransformerTranslator(nn.Module):
    """src (B, S) token ids with their lengths (B,), tgt_in (B, T) = <bos> y_1 .. y_{T-1} -> logits (B, T, V_tgt).

    Decoding (``dlbasics.train.decoding``) goes through ``encode``, ``start``, ``step`` and ``select``."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 256, nhead: int = 4,
                 num_layers: int = 3, dim_feedforward: int = 512, dropout: float = 0.1,
                 max_positions: int = 256) -> None:
        super().__init__()
        self.d_model, self.max_positions, self.num_layers = d_model, max_positions, num_layers
        self.src_embedding = nn.Embedding(src_vocab_size, d_model, padding_idx=PAD)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, d_model, padding_idx=PAD)
        self.transformer = Transformer(d_model, nhead, num_layers, num_layers, dim_feedforward, dropout,
                                       batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, tgt_vocab_size)
        self.out.weight = self.tgt_embedding.weight  # tied: the output layer scores words by their embeddings
        for emb in (self.src_embedding, self.tgt_embedding):  # N(0, 1/d): scaled by sqrt(d) they enter at unit size
            init.normal_(emb.weight, 0.0, d_model ** -0.5)
            emb.weight.data[PAD] = 0.0
        self.register_buffer("positions", Tensor(sinusoids(max_positions, d_model)), persistent=False)

    def _embed(self, embedding: nn.Embedding, ids: Tensor, start: int = 0) -> Tensor:
        """sqrt(d) E[ids] + PE at positions start, start + 1, ..., dropped out: (B, L) -> (B, L, d)."""
        end = start + ids.shape[1]
        if end > self.max_positions:
            raise ValueError(f"transformer: a sequence of {end} tokens is longer than max_positions="
                             f"{self.max_positions}")
        return self.dropout(embedding(ids) * math.sqrt(self.d_model) + self.positions[start:end])

    def encode(self, src: Any, src_lengths: Any) -> dict[str, Any]:
        """The encoded source (B, S, d) and its key padding mask (B, S), True at padding."""
        src, lengths = _ids(src), _lengths(src_lengths)
        pad = np.arange(src.shape[1]) >= lengths[:, None]  # (B, S)
        memory = self.transformer.encoder(self._embed(self.src_embedding, src), src_key_padding_mask=pad)
        return {"memory": memory, "pad": pad}

    def _decode(self, memory: dict[str, Any], tgt_in: Tensor) -> Tensor:
        """Decoder outputs (B, T, d) for tgt_in (B, T), each position seeing the target up to itself."""
        causal = Transformer.generate_square_subsequent_mask(tgt_in.shape[1])  # (T, T)
        return self.transformer.decoder(self._embed(self.tgt_embedding, tgt_in), memory["memory"], tgt_mask=causal,
                                        tgt_is_causal=True, memory_key_padding_mask=memory["pad"])

    def forward(self, src: Any, src_lengths: Any, tgt_in: Any, positions: Any = None) -> Tensor:
        """Logits (B, T, V); with ``positions`` (B, T) bool, only those positions' logits (N, V)."""
        return self.out(_at(self._decode(self.encode(src, src_lengths), _ids(tgt_in)), positions))

    # ---- decoding, one token at a time: only the newest position runs through the decoder ----
    def start(self, memory: dict[str, Any]) -> list[Tensor]:
        """No decoder inputs seen yet (the state holds, per layer, its inputs at the positions decoded so far)."""
        return []

    def step(self, memory: dict[str, Any], tokens: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """tokens (B, t) so far -> log p(next token) (B, V), running the last token alone through each layer.

        With the causal mask a position's layer outputs never change once computed, so the earlier positions'
        inputs to each layer are kept (``state``: (B, t - 1, d) per layer, a "KV cache") and the new position
        attends to them and itself: t rows of work per step instead of t^2 - the same numbers as ``forward``."""
        t = tokens.shape[1]
        x = self._embed(self.tgt_embedding, tokens[:, -1:], start=t - 1)  # (B, 1, d)
        seen = []
        for layer, before in zip(self.transformer.decoder.layers, state or [None] * self.num_layers, strict=True):
            keys = x if before is None else cat([before, x], dim=1)  # (B, t, d): the layer's inputs so far
            seen.append(keys)
            x = layer.norm1(x + layer.dropout1(layer.self_attn(x, keys, keys, need_weights=False)[0]))
            x = layer.norm2(x + layer._mha_block(x, memory["memory"], None, memory["pad"], False))
            x = layer.norm3(x + layer._ff_block(x))
        x = self.transformer.decoder.norm(x)
        return self.out(x[:, 0]).log_softmax(-1), seen

    def select(self, memory: dict[str, Any], state: list[Tensor], rows: np.ndarray
               ) -> tuple[dict[str, Any], list[Tensor]]:
        return {"memory": memory["memory"][rows], "pad": memory["pad"][rows]}, [s[rows] for s in state]


@register("transformer", paper=PAPER, default_data="bible-en-es", task="translation",
          recipe={"epochs": 40, "batch_size": 64, "optimizer": "adam", "lr": 5e-4, "betas": [0.9, 0.98],
                  "scheduler": "cosine", "warmup": 400, "schedule_unit": "step", "clip_grad_norm": 1.0},
          summary="the encoder-decoder of Attention Is All You Need, on nn.Transformer (3+3 layers x 256)")
def transformer(src_vocab_size: int, tgt_vocab_size: int, d_model: int = 256, nhead: int = 4, num_layers: int = 3,
                dim_feedforward: int = 512, dropout: float = 0.1, max_positions: int = 256) -> TransformerTranslator:
    return TransformerTranslator(src_vocab_size, tgt_vocab_size, d_model, nhead, num_layers, dim_feedforward, dropout,
                                 max_positions)


__all__ = ["TransformerTranslator", "sinusoids", "transformer"]
