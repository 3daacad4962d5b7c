"""The encoder-decoder: an LSTM reads the source sentence, another LSTM writes its translation.

Sutskever, Vinyals & Le, "Sequence to Sequence Learning with Neural Networks" (2014); Cho, van Merrienboer,
Gulcehre, Bahdanau, Bougares, Schwenk & Bengio, "Learning Phrase Representations using RNN Encoder-Decoder for
Statistical Machine Translation" (2014). Attention: Bahdanau, Cho & Bengio, "Neural Machine Translation by
Jointly Learning to Align and Translate" (2015); Luong, Pham & Manning, "Effective Approaches to Attention-based
Neural Machine Translation" (2015).

The idea: the encoder's final state is the whole source sentence as one vector, and the decoder, started from it,
predicts the target one word at a time, each from the words before it (teacher forcing: in training, the true
ones). Attention drops the one-vector bottleneck: at every step the decoder reads a weighted mean of all the
encoder's states, the weights saying which source words matter now - the alignment, learnt without labels.

    no attention:  s_t = LSTM(y_{t-1}, s_{t-1}),  s_0 = encoder's final state;   p(y_t) = softmax(W_o s_t)
    bahdanau:      e_tj = v^T tanh(W_a s_{t-1} + U_a h_j),  a_t = softmax_j(e_t),  c_t = sum_j a_tj h_j
                   s_t = LSTM([y_{t-1}; c_t], s_{t-1});      p(y_t) = softmax(W_o [s_t; c_t])
    luong:         s_t = LSTM(y_{t-1}, s_{t-1});  e_tj = s_t^T W_a h_j ("general"),  c_t = sum_j a_tj h_j
                   h~_t = tanh(W_c [c_t; s_t]);                p(y_t) = softmax(W_o h~_t)

Simplifications, the same in the PyTorch twin (``benchmarks/twins/seq2seq.py``): a unidirectional encoder for all
three (Bahdanau's is bidirectional), the decoder started from the encoder's final state, Bahdanau's deep maxout
output replaced by a linear layer on [s_t; c_t], and no input feeding for Luong's. Without attention and with
Luong's, the decoder LSTM runs over the whole target as one op in training; Bahdanau's feeds c_t, which depends
on s_{t-1}, into the LSTM, so it steps through the target with an LSTM cell.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from dlbasics import nn
from dlbasics.data.text.tokenizers import SPECIAL_TOKENS
from dlbasics.models.registry import register
from dlbasics.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from dlbasics.ops.movement import cat, stack
from dlbasics.tensor import Tensor

PAPER = ("Sutskever, Vinyals & Le, Sequence to Sequence Learning with Neural Networks (2014); Cho et al. (2014); "
         "Bahdanau, Cho & Bengio, Neural Machine Translation by Jointly Learning to Align and Translate (2015)")
ATTENTIONS = ("none", "bahdanau", "luong")
PAD = SPECIAL_TOKENS.index("<pad>")  # 0: the padding id of dlbasics' word tokenizers


def _ids(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor._make(np.asarray(x, dtype=np.int64), False, None)


def _lengths(x: Any) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.int64)


def _at(x: Tensor, positions: Any) -> Tensor:
    """x (B, T, D) at ``positions`` (B, T) bool -> (N, D); all of x if None."""
    return x if positions is None else x[np.asarray(positions, dtype=bool)]


def padding_mask(lengths: np.ndarray, length: int) -> np.ndarray:
    """(B, S) additive mask: 0 at each row's first ``lengths[b]`` positions, -inf at its padding."""
    return np.where(np.arange(length) < lengths[:, None], 0.0, -np.inf).astype(np.float32)


class Seq2Seq(nn.Module):
    """src (B, S) token ids with their lengths (B,), tgt_in (B, T) = <bos> y_1 .. y_{T-1} -> logits (B, T, V_tgt).

    Decoding (``dlbasics.train.decoding``) goes through ``encode``, ``start``, ``step`` and ``select``."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int = 256, hidden_size: int = 256,
                 num_layers: int = 1, attention: str | None = "none", dropout: float = 0.1) -> None:
        super().__init__()
        attention = "none" if attention is None else attention
        if attention not in ATTENTIONS:
            raise ValueError(f"seq2seq: unknown attention {attention!r}; choose from {', '.join(ATTENTIONS)}")
        if attention == "bahdanau" and num_layers != 1:
            raise ValueError(f"seq2seq: the bahdanau decoder is one LSTM cell; num_layers must be 1, got {num_layers}")
        self.attention = attention
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.src_embedding = nn.Embedding(src_vocab_size, embed_dim, padding_idx=PAD)
        self.encoder = nn.LSTM(embed_dim, hidden_size, num_layers, batch_first=True,
                               dropout=dropout if num_layers > 1 else 0.0)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, embed_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        out_in = hidden_size
        if attention == "bahdanau":
            self.decoder = nn.LSTMCell(embed_dim + hidden_size, hidden_size)
            self.W_a = nn.Linear(hidden_size, hidden_size, bias=False)  # the decoder state's part of the score
            self.U_a = nn.Linear(hidden_size, hidden_size)  # the encoder states' part, computed once per sentence
            self.v_a = nn.Linear(hidden_size, 1, bias=False)
            out_in = 2 * hidden_size
        else:
            self.decoder = nn.LSTM(embed_dim, hidden_size, num_layers, batch_first=True,
                                   dropout=dropout if num_layers > 1 else 0.0)
            if attention == "luong":
                self.W_a = nn.Linear(hidden_size, hidden_size, bias=False)
                self.W_c = nn.Linear(2 * hidden_size, hidden_size, bias=False)
        self.out = nn.Linear(out_in, tgt_vocab_size)
        self.last_attention: np.ndarray | None = None  # (B, T, S): the weights of the last forward or step

    # ---- the encoder ----
    def encode(self, src: Any, src_lengths: Any) -> dict[str, Any]:
        """The source read once: ``states`` (B, S, H), the final (h, c) (L, B, H) each, the padding ``mask``
        (B, S) and, for Bahdanau, ``keys`` = U_a h_j (B, S, H)."""
        src, lengths = _ids(src), _lengths(src_lengths)
        emb = self.dropout(self.src_embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        out, (h, c) = self.encoder(packed)  # h, c: (L, B, H) at each sentence's last word
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (B, S, H)
        memory = {"states": states, "final": (h, c), "mask": padding_mask(lengths, src.shape[1])}
        if self.attention == "bahdanau":
            memory["keys"] = self.U_a(states)
        return memory

    def _attend(self, scores: Tensor, memory: dict[str, Any]) -> Tensor:
        """Context vectors from scores (B, T, S): a = softmax over the source words (padding masked), c = a h."""
        weights = (scores + memory["mask"][:, None, :]).softmax(-1)  # (B, T, S)
        self.last_attention = weights.data
        return weights @ memory["states"]  # (B, T, H)

    def _bahdanau_step(self, y_emb: Tensor, state: tuple[Tensor, Tensor], memory: dict[str, Any]
                       ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One step: y_emb (B, E) and s_{t-1} -> (W_o's input [s_t; c_t] (B, 2H), s_t)."""
        s_prev = state[0]  # (B, H)
        scores = self.v_a((self.W_a(s_prev)[:, None, :] + memory["keys"]).tanh())  # (B, S, 1)
        context = self._attend(scores.reshape(scores.shape[0], 1, -1), memory)[:, 0]  # (B, H)
        h, c = self.decoder(cat([y_emb, context], dim=1), state)
        return cat([h, context], dim=1), (h, c)

    def _readout(self, s: Tensor, memory: dict[str, Any]) -> Tensor:
        """What W_o reads from the decoder states s (B, T, H): s, or Luong's h~ = tanh(W_c [c; s])."""
        if self.attention != "luong":
            return s
        context = self._attend(self.W_a(s) @ memory["states"].transpose(1, 2), memory)  # scores (B, T, S)
        return self.W_c(cat([context, s], dim=2)).tanh()

    # ---- training: teacher forcing ----
    def forward(self, src: Any, src_lengths: Any, tgt_in: Any, positions: Any = None) -> Tensor:
        """Logits (B, T, V); with ``positions`` (B, T) bool, only those positions' logits (N, V), in row-major
        order: the output layer, the largest product, skips the padding (a third of it on the Bible verses)."""
        memory = self.encode(src, src_lengths)
        emb = self.dropout(self.tgt_embedding(_ids(tgt_in)))  # (B, T, E)
        if self.attention == "bahdanau":
            state = self.start(memory)
            outs = []
            weights = []
            for t in range(emb.shape[1]):
                o, state = self._bahdanau_step(emb[:, t], state, memory)
                outs.append(o)
                weights.append(self.last_attention[:, 0])
            self.last_attention = np.stack(weights, axis=1)  # (B, T, S)
            return self.out(self.dropout(_at(stack(outs, dim=1), positions)))  # (B, T, V) or (N, V)
        s, _ = self.decoder(emb, memory["final"])  # (B, T, H)
        return self.out(self.dropout(_at(self._readout(s, memory), positions)))

    # ---- decoding, one token at a time ----
    def start(self, memory: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """The decoder's first state: the encoder's final one ((B, H) each for the Bahdanau cell)."""
        h, c = memory["final"]
        return (h[-1], c[-1]) if self.attention == "bahdanau" else (h, c)

    def step(self, memory: dict[str, Any], tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        """tokens (B, t) so far -> log p(next token) (B, V) and the new state (only the last token is read)."""
        emb = self.tgt_embedding(tokens[:, -1:])  # (B, 1, E)
        if self.attention == "bahdanau":
            o, state = self._bahdanau_step(emb[:, 0], state, memory)
        else:
            s, state = self.decoder(emb, state)  # (B, 1, H)
            o = self._readout(s, memory)[:, 0]
        return self.out(o).log_softmax(-1), state

    def select(self, memory: dict[str, Any], state: Any, rows: np.ndarray) -> tuple[dict[str, Any], Any]:
        """Rows ``rows`` of the memory and the state (beam search copies hypotheses)."""
        batch_dim = 0 if self.attention == "bahdanau" else 1  # nn.LSTM's states are (L, B, H)
        picked = {k: (v[rows] if k != "final" else tuple(s[:, rows] for s in v)) for k, v in memory.items()}
        state = tuple(s[rows] if batch_dim == 0 else s[:, rows] for s in state)
        return picked, state


@register("seq2seq", paper=PAPER, default_data="bible-en-es", task="translation",
          recipe={"epochs": 40, "batch_size": 64, "optimizer": "adam", "lr": 1e-3, "clip_grad_norm": 1.0},
          summary="LSTM encoder-decoder, optionally with Bahdanau or Luong attention (--attention)")
def seq2seq(src_vocab_size: int, tgt_vocab_size: int, embed_dim: int = 256, hidden_size: int = 256,
            num_layers: int = 1, attention: Literal["none", "bahdanau", "luong"] = "none",
            dropout: float = 0.1) -> Seq2Seq:
    return Seq2Seq(src_vocab_size, tgt_vocab_size, embed_dim, hidden_size, num_layers, attention, dropout)


__all__ = ["ATTENTIONS", "Seq2Seq", "padding_mask", "seq2seq"]
