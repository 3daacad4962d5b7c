"""BERT in PyTorch, as dlbasics' ``models/bert.py`` builds it (torch.nn.TransformerEncoder of post-norm GELU layers,
the masked-LM head tied to the word embedding, the [CLS] classifier): the benchmark's peer and the parity tests'
oracle (same parameter names, so state dicts load by name)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class BertConfig:
    vocab_size: int
    max_len: int = 128
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 512
    dropout: float = 0.1
    type_vocab_size: int = 2
    pad_id: int = 0
    layer_norm_eps: float = 1e-12


def init_bert_weights(model: nn.Module, pad_id: int = 0) -> None:
    for name, p in model.named_parameters():
        if p.ndim > 1:
            nn.init.normal_(p, mean=0.0, std=0.02)
        elif name.endswith("bias"):
            nn.init.zeros_(p)
    for m in model.modules():
        if isinstance(m, BertEmbeddings):
            with torch.no_grad():
                m.word_embeddings.weight[pad_id] = 0.0


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_id)
        self.position_embeddings = nn.Embedding(config.max_len, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        pos = torch.arange(input_ids.size(1), dtype=torch.long)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(pos)
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.norm(x))


class BertModel(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        layer = nn.TransformerEncoderLayer(config.hidden_size, config.num_heads, config.intermediate_size,
                                           config.dropout, activation="gelu", layer_norm_eps=config.layer_norm_eps,
                                           batch_first=True, norm_first=False)
        # no nested tensors: padded positions keep their values, as dlbasics' encoder (and in training anyway)
        self.encoder = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            pad = input_ids == self.config.pad_id
        else:
            pad = torch.arange(input_ids.size(1))[None, :] >= lengths[:, None]
        return self.encoder(self.embeddings(input_ids, token_type_ids), src_key_padding_mask=pad)


class BertMLMHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.GELU()
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(self.activation(self.dense(h))))


class BertForMaskedLM(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.mlm = BertMLMHead(config)
        self.mlm.decoder.weight = self.bert.embeddings.word_embeddings.weight
        init_bert_weights(self, config.pad_id)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None,
                masked_positions: torch.Tensor | None = None) -> torch.Tensor:
        h = self.bert(input_ids, lengths, token_type_ids)
        if masked_positions is not None:
            h = h[masked_positions]
        return self.mlm(h)


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(h[:, 0]))


class BertForSequenceClassification(nn.Module):
    def __init__(self, config: BertConfig, num_classes: int) -> None:
        super().__init__()
        self.config, self.num_classes = config, num_classes
        self.bert = BertModel(config)
        self.pooler = BertPooler(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, num_classes)
        init_bert_weights(self, config.pad_id)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.dropout(self.pooler(self.bert(input_ids, lengths, token_type_ids))))


def bert(vocab_size: int, max_len: int, hidden_size: int = 128, num_layers: int = 2, num_heads: int = 2,
         intermediate_size: int = 512, dropout: float = 0.1, type_vocab_size: int = 2) -> BertForMaskedLM:
    return BertForMaskedLM(BertConfig(vocab_size, max_len, hidden_size, num_layers, num_heads, intermediate_size,
                                      dropout, type_vocab_size))


def bert_classifier(vocab_size: int, max_len: int, num_classes: int, hidden_size: int = 128, num_layers: int = 2,
                    num_heads: int = 2, intermediate_size: int = 512, dropout: float = 0.1,
                    type_vocab_size: int = 2) -> BertForSequenceClassification:
    return BertForSequenceClassification(BertConfig(vocab_size, max_len, hidden_size, num_layers, num_heads,
                                                    intermediate_size, dropout, type_vocab_size), num_classes)
