"""Tiny Shakespeare (bundled) and text files: the nanoGPT split, tokenizers, and the errors for bad files."""

from pathlib import Path

import numpy as np
import pytest

from dlbasics.data.text import SHAKESPEARE_FILE, CharTokenizer, WordTokenizer, shakespeare, text_file
from dlbasics.errors import ConfigError, DataError, DataNotFoundError

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "tinyshakespeare.txt"


def test_bundled_file_is_tiny_shakespeare():
    assert SHAKESPEARE_FILE.is_file() and SHAKESPEARE_FILE.stat().st_size == 1115394
    if SHARED.is_file():
        assert SHAKESPEARE_FILE.read_bytes() == SHARED.read_bytes()


def test_shakespeare_as_nanogpt_shakespeare_char():
    corpus = shakespeare()
    # nanoGPT's prepare.py, on the file itself
    with open(SHAKESPEARE_FILE) as f:
        data = f.read()
    n = len(data)
    chars = sorted(set(data))
    assert n == len(corpus.text) == 1115394 and corpus.text == data
    assert corpus.vocab_size == len(chars) == 65 and corpus.tokenizer.itos == chars
    assert len(corpus.train) == len(data[:int(n * 0.9)]) == 1003854
    assert len(corpus.val) == len(data[int(n * 0.9):]) == 111540
    assert corpus.train.dtype == corpus.val.dtype == np.int64
    stoi = {ch: i for i, ch in enumerate(chars)}
    assert corpus.train[:1000].tolist() == [stoi[c] for c in data[:1000]]
    assert corpus.val[-1000:].tolist() == [stoi[c] for c in data[-1000:]]
    assert corpus.tokenizer.decode(corpus.val) == data[int(n * 0.9):]


def test_text_file_char_and_word(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Hello there, world!\nHello again.\r\nGood bye.", encoding="utf-8")
    corpus = text_file(path)
    assert corpus.text == "Hello there, world!\nHello again.\nGood bye."  # newlines as text mode reads them
    assert len(corpus.train) == int(len(corpus.text) * 0.9) and isinstance(corpus.tokenizer, CharTokenizer)
    words = text_file(path, tokenizer="word", val_fraction=0.3)
    assert isinstance(words.tokenizer, WordTokenizer)
    # the cut moves to a space, so train and val hold whole words; val words unseen in train are <unk>
    assert words.tokenizer.decode(words.train) == "hello there , world ! hello again ."
    assert words.tokenizer.decode(words.val) == "<unk> <unk> ."
    given = CharTokenizer.fit("abcdefghijklmnopqrstuvwxyzHG ,.!\n")
    assert text_file(path, tokenizer=given).tokenizer is given


def test_text_file_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="no text file at"):
        text_file(tmp_path / "missing.txt")
    with pytest.raises(DataNotFoundError, match="is a folder"):
        text_file(tmp_path)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8 text: byte 0xe9 at offset 3") as e:
        text_file(latin)
    assert "\n" not in str(e.value)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        text_file(empty)
    ok = tmp_path / "ok.txt"
    ok.write_text("abc", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown tokenizer 'bpe'; choose one of char, word"):
        text_file(ok, tokenizer="bpe")
    with pytest.raises(ConfigError, match="val_fraction"):
        text_file(ok, val_fraction=1.0)
