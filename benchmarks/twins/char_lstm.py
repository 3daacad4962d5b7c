"""dlbasics' ``models/char_lstm.py`` in PyTorch: the benchmark's peer and the parity tests' oracle."""

from __future__ import annotations

import torch
from torch import nn


class CharLSTM(nn.Module):
    def __init__(self, vocab_size: int, block_size: int, n_layer: int = 2, hidden_size: int = 256,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.block_size = block_size
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size, n_layer, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(idx))
        return self.head(out)


def char_lstm(vocab_size: int, block_size: int, n_layer: int = 2, hidden_size: int = 256,
              dropout: float = 0.0) -> CharLSTM:
    return CharLSTM(vocab_size, block_size, n_layer, hidden_size, dropout)
