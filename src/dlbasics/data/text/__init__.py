"""Text for sequence models: tokenizers, next-token windows, padding, and corpora (Tiny Shakespeare is bundled).

    import dlbasics as dl
    corpus = dl.data.text.shakespeare()               # train (1003854,), val (111540,) int64 ids; vocab_size 65
    for x, y in dl.data.text.RandomWindows(corpus.train, block_size=64, batch_size=32, seed=0):
        ...  # x, y: (32, 64) int64 Tensors, y is x shifted by one token
    val = dl.data.DataLoader(dl.data.text.TokenWindows(corpus.val, block_size=64), batch_size=32)
    corpus.tokenizer.decode(x[0])                     # the text of a window

Variable-length samples (sentences, translation pairs) batch with ``collate_fn=pad_collate``. Parallel text for
translation: ``read_pairs(path)`` (tab-separated, as the PyTorch tutorial and Tatoeba) and ``bible_pairs()``
(English/Spanish verses from Debian's SWORD modules). Masked-language-model inputs: ``mask_tokens`` (BERT's
15%, replaced 80/10/10).
"""

from dlbasics.data.text.corpus import SHAKESPEARE_FILE, TextCorpus, shakespeare, text_file
from dlbasics.data.text.masking import IGNORE_INDEX, mask_tokens
from dlbasics.data.text.padding import pad_collate, pad_sequence
from dlbasics.data.text.pairs import (
    BIBLE_HINT,
    BIBLE_MODULES,
    bible_availability,
    bible_pairs,
    cache_root,
    read_pairs,
    write_pairs,
)
from dlbasics.data.text.tokenizers import (
    MASK_TOKEN,
    SPECIAL_TOKENS,
    TOKEN_PATTERN,
    TOKENIZERS,
    CharTokenizer,
    PairTokenizer,
    Tokenizer,
    WordTokenizer,
    load_tokenizer,
    tokenizer_from_dict,
)
from dlbasics.data.text.windows import RandomWindows, TokenWindows

__all__ = [
    "BIBLE_HINT", "BIBLE_MODULES", "IGNORE_INDEX", "MASK_TOKEN", "SHAKESPEARE_FILE", "SPECIAL_TOKENS", "TOKENIZERS",
    "TOKEN_PATTERN", "CharTokenizer", "PairTokenizer", "RandomWindows", "TextCorpus", "TokenWindows", "Tokenizer",
    "WordTokenizer", "bible_availability", "bible_pairs", "cache_root", "load_tokenizer", "mask_tokens",
    "pad_collate", "pad_sequence", "read_pairs", "shakespeare", "text_file", "tokenizer_from_dict", "write_pairs",
]
