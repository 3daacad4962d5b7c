"""dlbasics' ``models/seq2seq.py`` and ``models/transformer.py`` in PyTorch, with the same parameter names: the
translation benchmark's peers and the parity tests' oracles."""

from __future__ import annotations

import math

import torch
from torch import nn

PAD = 0


def _at(x: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
    """x (B, T, D) at the (B, T) bool ``positions`` -> (N, D): the output layer only where there is a loss."""
    return x if positions is None else x[positions]


def padding_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """(B, S) additive mask: 0 at real words, -inf at padding."""
    return torch.where(torch.arange(length)[None, :] < lengths[:, None], 0.0, float("-inf"))


class Seq2Seq(nn.Module):
    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int = 256, hidden_size: int = 256,
                 num_layers: int = 1, attention: str | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        self.attention = attention
        self.src_embedding = nn.Embedding(src_vocab_size, embed_dim, padding_idx=PAD)
        self.encoder = nn.LSTM(embed_dim, hidden_size, num_layers, batch_first=True,
                               dropout=dropout if num_layers > 1 else 0.0)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, embed_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        out_in = hidden_size
        if attention == "bahdanau":
            self.decoder = nn.LSTMCell(embed_dim + hidden_size, hidden_size)
            self.W_a = nn.Linear(hidden_size, hidden_size, bias=False)
            self.U_a = nn.Linear(hidden_size, hidden_size)
            self.v_a = nn.Linear(hidden_size, 1, bias=False)
            out_in = 2 * hidden_size
        else:
            self.decoder = nn.LSTM(embed_dim, hidden_size, num_layers, batch_first=True,
                                   dropout=dropout if num_layers > 1 else 0.0)
            if attention == "luong":
                self.W_a = nn.Linear(hidden_size, hidden_size, bias=False)
                self.W_c = nn.Linear(2 * hidden_size, hidden_size, bias=False)
        self.out = nn.Linear(out_in, tgt_vocab_size)

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> dict:
        emb = self.dropout(self.src_embedding(src))
        packed = nn.utils.rnn.pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        out, (h, c) = self.encoder(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        memory = {"states": states, "final": (h, c), "mask": padding_mask(lengths, src.shape[1])}
        if self.attention == "bahdanau":
            memory["keys"] = self.U_a(states)
        return memory

    def _attend(self, scores: torch.Tensor, memory: dict) -> torch.Tensor:
        weights = (scores + memory["mask"][:, None, :]).softmax(-1)
        return weights @ memory["states"]

    def forward(self, src: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        memory = self.encode(src, lengths)
        emb = self.dropout(self.tgt_embedding(tgt_in))
        if self.attention == "bahdanau":
            h, c = memory["final"][0][-1], memory["final"][1][-1]
            outs = []
            for t in range(emb.shape[1]):
                scores = self.v_a(torch.tanh(self.W_a(h)[:, None, :] + memory["keys"]))
                context = self._attend(scores.reshape(scores.shape[0], 1, -1), memory)[:, 0]
                h, c = self.decoder(torch.cat([emb[:, t], context], dim=1), (h, c))
                outs.append(torch.cat([h, context], dim=1))
            return self.out(self.dropout(_at(torch.stack(outs, dim=1), positions)))
        s, _ = self.decoder(emb, memory["final"])
        if self.attention == "luong":
            context = self._attend(self.W_a(s) @ memory["states"].transpose(1, 2), memory)
            s = torch.tanh(self.W_c(torch.cat([context, s], dim=2)))
        return self.out(self.dropout(_at(s, positions)))


def sinusoids(length: int, d_model: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    pe = torch.zeros(length, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[:d_model // 2])
    return pe.float()


class TransformerTranslator(nn.Module):
    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 256, nhead: int = 4,
                 num_layers: int = 3, dim_feedforward: int = 512, dropout: float = 0.1,
                 max_positions: int = 256) -> None:
        super().__init__()
        self.d_model = d_model
        self.src_embedding = nn.Embedding(src_vocab_size, d_model, padding_idx=PAD)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, d_model, padding_idx=PAD)
        self.transformer = nn.Transformer(d_model, nhead, num_layers, num_layers, dim_feedforward, dropout,
                                          batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, tgt_vocab_size)
        self.out.weight = self.tgt_embedding.weight
        for emb in (self.src_embedding, self.tgt_embedding):
            nn.init.normal_(emb.weight, 0.0, d_model ** -0.5)
            with torch.no_grad():
                emb.weight[PAD] = 0.0
        self.register_buffer("positions", sinusoids(max_positions, d_model), persistent=False)

    def _embed(self, embedding: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        return self.dropout(embedding(ids) * math.sqrt(self.d_model) + self.positions[:ids.shape[1]].to(
            embedding.weight.dtype))

    def forward(self, src: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        pad = torch.arange(src.shape[1])[None, :] >= lengths[:, None]
        memory = self.transformer.encoder(self._embed(self.src_embedding, src), src_key_padding_mask=pad)
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1], dtype=memory.dtype)
        x = self.transformer.decoder(self._embed(self.tgt_embedding, tgt_in), memory, tgt_mask=causal,
                                     tgt_is_causal=True, memory_key_padding_mask=pad)
        return self.out(_at(x, positions))


def seq2seq(src_vocab_size: int, tgt_vocab_size: int, **options) -> Seq2Seq:
    return Seq2Seq(src_vocab_size, tgt_vocab_size, **options)


def transformer(src_vocab_size: int, tgt_vocab_size: int, **options) -> TransformerTranslator:
    return TransformerTranslator(src_vocab_size, tgt_vocab_size, **options)
