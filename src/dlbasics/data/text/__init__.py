"""Text for sequence models: tokenizers, next-token windows, padding, and corpora (Tiny Shakespeare is bundled).

    import dlbasics as dl
    corpus = dl.data.text.shakespeare()               # train (1003854,), val (111540,) int64 ids; vocab_size 65
    for x, y in dl.data.text.RandomWindows(corpus.train, block_size=64, batch_size=32, seed=0):
        ...  # x, y: (32, 64) int64 Tensors, y is x shifted by one token
    val = dl.data.DataLoader(dl.data.text.TokenWindows(corpus.val, block_size=64), batch_size=32)
    corpus.tokenizer.decode(x[0])                     # the text of a window

Variable-length samples (sentences, translation pairs) batch with ``collate_fn=pad_collate``.
"""

from dlbasics.data.text.corpus import SHAKESPEARE_FILE, TextCorpus, shakespeare, text_file
from dlbasics.data.text.padding import pad_collate, pad_sequence
from dlbasics.data.text.tokenizers import (
    SPECIAL_TOKENS,
    TOKEN_PATTERN,
    TOKENIZERS,
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    load_tokenizer,
    tokenizer_from_dict,
)
from dlbasics.data.text.windows import RandomWindows, TokenWindows

__all__ = [
    "SHAKESPEARE_FILE", "SPECIAL_TOKENS", "TOKENIZERS", "TOKEN_PATTERN", "CharTokenizer", "RandomWindows",
    "TextCorpus", "TokenWindows", "Tokenizer", "WordTokenizer", "load_tokenizer", "pad_collate", "pad_sequence",
    "shakespeare", "text_file", "tokenizer_from_dict",
]
