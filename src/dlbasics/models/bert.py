"""BERT: a bidirectional Transformer encoder, pre-trained by filling in masked words, then fine-tuned.

Devlin, Chang, Lee & Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"
(2018).

The idea: a language model that sees only the left context cannot use the right one; hide 15% of the words
instead and predict them from both sides (the masked language model), then reuse the encoder for any task with a
small head on the first position, [CLS].

    h = Encoder(LayerNorm(E_word[x] + E_pos[i] + E_type[s]))          (B, L, d), post-norm layers, GELU MLP
    p(x_i | x with i masked) = softmax(E_word · LayerNorm(GELU(W h_i)) + b)       the MLM head, tied to E_word
    p(class | x) = softmax(W_c tanh(W_p h_0))                                     the [CLS] classifier

Built on ``nn.TransformerEncoder`` of post-norm ``nn.TransformerEncoderLayer`` (as BERT, and as Vaswani et al.);
padding is masked out of attention by a key padding mask made from the sequences' lengths. The defaults are
BERT-Tiny's shape (Turc, Chang, Lee & Toutanova 2019: 2 layers, 128 dims, 2 heads, feed-forward 512), 0.4M
parameters beside the embeddings. Both heads hold the encoder as ``bert``, so a pre-trained
``BertForMaskedLM``'s ``bert.*`` weights load into a ``BertForSequenceClassification`` by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.nn.layers.transformer import TransformerEncoder, TransformerEncoderLayer
from dlbasics.tensor import Tensor

PAPER = ("Devlin et al., BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding (2018)")


@dataclass
class BertConfig:
    """The shape of a BERT, in Hugging Face's words; the defaults are BERT-Tiny's (BERT-Base: 768, 12, 12, 3072)."""

    vocab_size: int
    max_len: int = 128  # the longest input: the number of learned positions
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 512  # the width of each layer's feed-forward MLP
    dropout: float = 0.1  # on the embeddings, the attention weights and after every sublayer, as BERT
    type_vocab_size: int = 2  # segments: sentence A and sentence B
    pad_id: int = 0
    layer_norm_eps: float = 1e-12  # BERT's

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"BERT: hidden_size {self.hidden_size} must be a multiple of num_heads {self.num_heads}")


def _ids(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor._make(np.asarray(x, dtype=np.int64), False, None)


def _array(x: Any) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def init_bert_weights(model: nn.Module, pad_id: int = 0) -> None:
    """BERT's initialisation: every weight matrix and embedding N(0, 0.02^2), biases 0, LayerNorms (1, 0) as they
    are, the padding token's embedding 0 (a tied weight is initialised once)."""
    for name, p in model.named_parameters():
        if p.ndim > 1:
            nn.init.normal_(p, mean=0.0, std=0.02)
        elif name.endswith("bias"):
            nn.init.zeros_(p)
    for m in model.modules():
        if isinstance(m, BertEmbeddings):
            m.word_embeddings.weight.data[pad_id] = 0.0


class BertEmbeddings(nn.Module):
    """input_ids (B, L), token_type_ids (B, L) or None (all sentence A) -> (B, L, hidden):
    dropout(LayerNorm(word + position + segment embedding))."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_id)
        self.position_embeddings = nn.Embedding(config.max_len, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.max_len = config.max_len

    def forward(self, input_ids: Tensor, token_type_ids: Any = None) -> Tensor:
        length = input_ids.shape[1]
        if length > self.max_len:
            raise ValueError(f"BERT: a sequence of {length} tokens is longer than max_len {self.max_len}")
        pos = Tensor._make(np.arange(length, dtype=np.int64), False, None)  # (L,)
        # no segments given: every position is sentence A, one (L,) lookup that broadcasts over the batch
        types = _ids(np.zeros(length, np.int64) if token_type_ids is None else token_type_ids)  # (L,) or (B, L)
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos) + self.token_type_embeddings(types)
        return self.dropout(self.norm(x))  # (B, L, hidden)


class BertModel(nn.Module):
    """The encoder: input_ids (B, L) with lengths (B,) -> hidden states (B, L, hidden).

    Positions at or past a row's length are padding: no position attends to them. Without ``lengths`` the padding
    is where input_ids == pad_id. ``token_type_ids`` (B, L) are segment ids (None: all 0)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        # post-norm, as BERT: x = LayerNorm(x + sublayer(x))
        layer = TransformerEncoderLayer(config.hidden_size, config.num_heads, config.intermediate_size,
                                        config.dropout, activation="gelu", layer_norm_eps=config.layer_norm_eps,
                                        batch_first=True, norm_first=False)
        self.encoder = TransformerEncoder(layer, config.num_layers)

    def padding_mask(self, input_ids: Tensor, lengths: Any = None) -> np.ndarray:
        """(B, L) bool, True at padding (the key padding mask's convention)."""
        b, length = input_ids.shape
        if lengths is None:
            return input_ids.data == self.config.pad_id
        lengths = _array(lengths).astype(np.int64)
        if lengths.shape != (b,):
            raise ValueError(f"BERT: lengths of shape {lengths.shape} do not fit input_ids of shape {(b, length)}; "
                             f"expected ({b},)")
        return np.arange(length) >= lengths[:, None]  # (B, L)

    def forward(self, input_ids: Any, lengths: Any = None, token_type_ids: Any = None) -> Tensor:
        input_ids = _ids(input_ids)
        if input_ids.ndim != 2:
            raise ValueError(f"BERT: input_ids must be (B, L) token ids, got shape {input_ids.shape}")
        x = self.embeddings(input_ids, token_type_ids)  # (B, L, hidden)
        return self.encoder(x, src_key_padding_mask=self.padding_mask(input_ids, lengths))  # (B, L, hidden)


class BertMLMHead(nn.Module):
    """Hidden states (N, hidden) or (B, L, hidden) -> logits over the vocabulary (N, V) or (B, L, V):
    decoder(LayerNorm(GELU(dense(h)))), the decoder's weight being the word embedding (tied) with its own bias."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.GELU()
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)  # its weight is tied by BertForMaskedLM

    def forward(self, h: Tensor) -> Tensor:
        return self.decoder(self.norm(self.activation(self.dense(h))))


class BertForMaskedLM(nn.Module):
    """input_ids (B, L), lengths (B,) -> logits (B, L, vocab_size): the word at each position, seen from both sides.

    With ``masked_positions`` (B, L) bool, only the logits at those positions, (N, vocab_size) in row-major order:
    the output layer, a product with the whole vocabulary, then costs 15% of the full one (BERT's own pre-training
    code gathers the masked positions before its head the same way)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.mlm = BertMLMHead(config)
        # tied (Press & Wolf, 2017): a word's input vector also scores it as the output
        self.mlm.decoder.weight = self.bert.embeddings.word_embeddings.weight
        init_bert_weights(self, config.pad_id)

    def forward(self, input_ids: Any, lengths: Any = None, token_type_ids: Any = None,
                masked_positions: Any = None) -> Tensor:
        h = self.bert(input_ids, lengths, token_type_ids)  # (B, L, hidden)
        if masked_positions is not None:
            chosen = _array(masked_positions).astype(bool)
            if chosen.shape != h.shape[:2]:
                raise ValueError(f"BERT: masked_positions of shape {chosen.shape} do not fit input_ids of shape "
                                 f"{h.shape[:2]}")
            h = h[chosen]  # (N, hidden), the chosen positions row by row
        return self.mlm(h)  # (B, L, V) or (N, V)


class BertPooler(nn.Module):
    """Hidden states (B, L, hidden) -> (B, hidden): tanh(dense(h[:, 0])), the [CLS] position's summary."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, h: Tensor) -> Tensor:
        return self.activation(self.dense(h[:, 0]))  # (B, hidden)


class BertForSequenceClassification(nn.Module):
    """input_ids (B, L), lengths (B,) -> class logits (B, num_classes), from the first position ([CLS], <bos>)."""

    def __init__(self, config: BertConfig, num_classes: int) -> None:
        super().__init__()
        self.config, self.num_classes = config, num_classes
        self.bert = BertModel(config)
        self.pooler = BertPooler(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, num_classes)
        init_bert_weights(self, config.pad_id)

    def forward(self, input_ids: Any, lengths: Any = None, token_type_ids: Any = None) -> Tensor:
        pooled = self.pooler(self.bert(input_ids, lengths, token_type_ids))  # (B, hidden)
        return self.classifier(self.dropout(pooled))  # (B, num_classes)


# BERT pre-trained with Adam at 1e-4 (betas 0.9, 0.999), weight decay 0.01, 10k warm-up steps then linear decay, batch
# 256; this 0.4M-parameter encoder on a small corpus takes a larger step, 1e-3 (as nanoGPT's models of this size),
# with 10% of the steps of warm-up - post-norm layers need it - and a cosine down to a tenth
RECIPE = {"steps": 3000, "batch_size": 64, "optimizer": "adamw", "lr": 1e-3, "betas": [0.9, 0.999],
          "weight_decay": 0.01, "scheduler": "cosine", "warmup": 300, "min_lr": 1e-4, "schedule_unit": "step",
          "clip_grad_norm": 1.0, "eval_every": 500}

# Fine-tuning as the paper's (AdamW, weight decay 0.01, warm-up, a few epochs, batch 32), at 3e-4, the largest rate of
# the grid Turc et al. fine-tune BERT-Tiny with (1e-4, 3e-4, 3e-5, 5e-5): the small model takes large steps, and a
# classifier trained from scratch needs them
CLASSIFIER_RECIPE = {"epochs": 5, "batch_size": 32, "optimizer": "adamw", "lr": 3e-4, "betas": [0.9, 0.999],
                     "weight_decay": 0.01, "scheduler": "cosine", "warmup": 50, "schedule_unit": "step",
                     "clip_grad_norm": 1.0}


@register("bert", paper=PAPER, default_data="pretraining", task="masked_lm", recipe=RECIPE, finetune="bert_classifier",
          summary="bidirectional Transformer encoder with the masked-LM head, BERT-Tiny's shape (2 layers x 128)")
def bert(vocab_size: int, max_len: int, hidden_size: int = 128, num_layers: int = 2, num_heads: int = 2,
         intermediate_size: int = 512, dropout: float = 0.1, type_vocab_size: int = 2) -> BertForMaskedLM:
    return BertForMaskedLM(BertConfig(vocab_size, max_len, hidden_size, num_layers, num_heads, intermediate_size,
                                      dropout, type_vocab_size))


@register("bert_classifier", paper=PAPER, default_data="tweets", recipe=CLASSIFIER_RECIPE,
          summary="BERT's encoder with a classifier on the [CLS] position; loads a pre-trained bert's bert.* weights")
def bert_classifier(vocab_size: int, max_len: int, num_classes: int, hidden_size: int = 128, num_layers: int = 2,
                    num_heads: int = 2, intermediate_size: int = 512, dropout: float = 0.1,
                    type_vocab_size: int = 2) -> BertForSequenceClassification:
    return BertForSequenceClassification(BertConfig(vocab_size, max_len, hidden_size, num_layers, num_heads,
                                                    intermediate_size, dropout, type_vocab_size), num_classes)


__all__ = ["BertConfig", "BertEmbeddings", "BertForMaskedLM", "BertForSequenceClassification", "BertMLMHead",
           "BertModel", "BertPooler", "bert", "bert_classifier", "init_bert_weights"]
