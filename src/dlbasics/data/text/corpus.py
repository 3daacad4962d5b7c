"""Text corpora as token ids: a UTF-8 file (or the bundled Tiny Shakespeare) read, tokenized and cut in two.

``text_file(path)`` and ``shakespeare()`` return a ``TextCorpus``: the raw ``text``, the ``tokenizer``, and the
``train`` / ``val`` token ids, 1-D int64 arrays (N_train,), (N_val,), cut as nanoGPT's ``shakespeare_char/prepare.py``
cuts: the first 90% of the characters for training, the last 10% for validation. For Tiny Shakespeare (1,115,394
characters, 65 distinct) that is 1,003,854 and 111,540 tokens.

    corpus = dl.data.text.shakespeare()
    windows = dl.data.text.RandomWindows(corpus.train, block_size=256, batch_size=64, seed=0)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlbasics.data.text.tokenizers import TOKENIZERS, CharTokenizer, Tokenizer, WordTokenizer
from dlbasics.errors import ConfigError, DataError, DataNotFoundError

# shipped inside the package (package-data in pyproject.toml), so a wheel install has it without the internet
SHAKESPEARE_FILE = Path(__file__).with_name("tinyshakespeare.txt")


@dataclass(frozen=True)
class TextCorpus:
    """A text and its token ids, cut into a training and a validation part.

    ``train`` (N_train,) and ``val`` (N_val,) are int64 token ids of the text's first and last part;
    ``tokenizer`` turns ids back into text (``tokenizer.decode(corpus.val[:100])``).
    """

    name: str
    text: str
    tokenizer: Tokenizer
    train: np.ndarray
    val: np.ndarray

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def __repr__(self) -> str:
        return (f"TextCorpus({self.name!r}, {len(self.text):,} characters, vocab_size={self.vocab_size}, "
                f"train={len(self.train):,} tokens, val={len(self.val):,} tokens)")


def _decode(data: bytes, source: str) -> str:
    """UTF-8 bytes as text, newlines as Python's text mode reads them (what nanoGPT's ``open(path).read()`` gives)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{source} is not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start} "
                        f"({e.reason}); convert it, e.g. iconv -f latin1 -t utf-8") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _corpus(name: str, text: str, tokenizer: str | Tokenizer, val_fraction: float,
            source: str | None = None) -> TextCorpus:
    """The corpus of ``text``; its errors name ``source`` (the file), else ``name``."""
    if not text:
        raise DataError(f"{source or name} is empty: there is no text to train on")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, int | float) or not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be a number in [0, 1), got {val_fraction!r}")
    cut = int(len(text) * (1 - val_fraction))  # nanoGPT: data[:int(n*0.9)], data[int(n*0.9):]
    is_char = tokenizer == "char" or isinstance(tokenizer, CharTokenizer)
    if not is_char:  # move the cut to a space so that no word is split between train and val
        space = re.compile(r"\s").search(text, cut)
        cut = space.start() if space else len(text)
    if cut == 0:
        raise DataError(f"{source or name}: {len(text)} characters leave no training text with "
                        f"val_fraction={val_fraction}")
    train_text, val_text = text[:cut], text[cut:]
    if isinstance(tokenizer, Tokenizer):
        tok = tokenizer
    elif tokenizer == "char":
        tok = CharTokenizer.fit(text)  # all of the text, as nanoGPT: a character only in val still gets an id
    elif tokenizer == "word":
        tok = WordTokenizer.fit(train_text)  # words seen only in val are <unk>, as words of new text would be
    else:
        raise ConfigError(f"unknown tokenizer {tokenizer!r}; choose one of {', '.join(TOKENIZERS)}, or pass a "
                          "CharTokenizer or WordTokenizer")
    return TextCorpus(name, text, tok, tok.encode(train_text), tok.encode(val_text))


def text_file(path: str | os.PathLike, tokenizer: str | Tokenizer = "char", val_fraction: float = 0.1) -> TextCorpus:
    """The UTF-8 text file at ``path`` as a ``TextCorpus``: the first ``1 - val_fraction`` of its characters for
    training, the rest for validation.

    ``tokenizer``: "char" (a ``CharTokenizer`` fitted on the whole text, as nanoGPT), "word" (a ``WordTokenizer``
    fitted on the training part, the cut moved forward to the next whitespace), or a tokenizer already built.
    ``DataNotFoundError`` if there is no such file, ``DataError`` if it is empty or not UTF-8.
    """
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"no text file at {path}")
    if not path.is_file():
        raise DataNotFoundError(f"{path} is a folder, not a text file")
    return _corpus(path.name, _decode(_read_bytes(path), str(path)), tokenizer, val_fraction, str(path))


def _read_bytes(path: Path) -> bytes:
    """The bytes of file ``path``; an unreadable file (no permission, ...) is a one-line ``DataError`` naming it."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot be read: {e.strerror or e}") from None


def shakespeare(tokenizer: str | Tokenizer = "char", val_fraction: float = 0.1) -> TextCorpus:
    """Tiny Shakespeare (Karpathy's char-rnn corpus, 1,115,394 characters), bundled with the package.

    With the defaults, as nanoGPT's ``shakespeare_char``: vocab_size 65, train 1,003,854 and val 111,540 token ids.
    """
    if not SHAKESPEARE_FILE.is_file():
        raise DataNotFoundError(f"the bundled Tiny Shakespeare is missing ({SHAKESPEARE_FILE}); reinstall dlbasics")
    return _corpus("shakespeare", _decode(SHAKESPEARE_FILE.read_bytes(), str(SHAKESPEARE_FILE)), tokenizer,
                   val_fraction)
