"""A character-level LSTM language model.

Hochreiter & Schmidhuber, "Long Short-Term Memory" (1997); Karpathy, "The Unreasonable Effectiveness of
Recurrent Neural Networks" (2015, char-rnn).

The idea: an LSTM reads the text one character at a time; its gated cell state carries what it has read so far,
so the hidden state at each position predicts the next character. Trained on windows of ``block_size``
characters from a zero state (truncated backpropagation through time), it continues text the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics import nn
from dlbasics.models.gpt import RECIPE as GPT_RECIPE
from dlbasics.models.registry import register
from dlbasics.tensor import Tensor

PAPER = ("Hochreiter & Schmidhuber, Long Short-Term Memory (1997); Karpathy, The Unreasonable Effectiveness of "
         "Recurrent Neural Networks (2015)")


class CharLSTM(nn.Module):
    """idx (B, T) token ids -> logits (B, T, vocab_size): embedding, ``n_layer`` LSTM layers, a linear read-out."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int = 2, hidden_size: int = 256,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.block_size = block_size  # the context generate() gives it: the length of the training windows
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size, n_layer, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, idx: Any) -> Tensor:
        idx = idx if isinstance(idx, Tensor) else Tensor._make(np.asarray(idx, dtype=np.int64), False, None)
        out, _ = self.lstm(self.embedding(idx))  # (B, T, hidden_size), from a zero state
        return self.head(out)  # (B, T, vocab_size)

    def generate(self, idx: Any, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: Any = None) -> np.ndarray:
        """idx (B, T0) continued by ``max_new_tokens`` sampled tokens -> (B, T0 + max_new_tokens)."""
        from dlbasics.train.language_model import generate

        return generate(self, idx, max_new_tokens, self.block_size, temperature, top_k, generator)


# GPT's recipe at char-rnn's learning rate, 2e-3: at GPT's 1e-3 the PyTorch twin ends 2000 steps at 1.707 nats, at
# 2e-3 at 1.630 (benchmarks/bench_recipes.py); the LSTM's gradients are smaller and it takes the larger steps well
RECIPE = {**GPT_RECIPE, "lr": 2e-3}


@register("char_lstm", paper=PAPER, default_data="shakespeare", task="language_model", recipe=RECIPE,
          summary="embedding, 2 LSTM layers x 256, linear read-out; GPT's recipe at lr 2e-3")
def char_lstm(vocab_size: int, block_size: int, n_layer: int = 2, hidden_size: int = 256,
              dropout: float = 0.0) -> CharLSTM:
    return CharLSTM(vocab_size, block_size, n_layer, hidden_size, dropout)


__all__ = ["CharLSTM", "char_lstm"]
