"""Translation data: sentence pairs as token ids, source -> target.

A sample is ``(src, tgt)``, two int64 1-D arrays: ``src`` (S,) = the source's tokens + ``<eos>``, ``tgt`` (T,) =
``<bos>`` + the target's tokens + ``<eos>``; the data set's ``collate_fn`` pads a batch with id 0 into
``((src (B, S), src_lengths (B,)), (tgt (B, T), tgt_lengths (B,)))``. A model trained by teacher forcing reads
``tgt[:, :-1]`` and predicts ``tgt[:, 1:]``: p(y | x) = prod_t p(y_t | y_<t, x).

Preparation (as the PyTorch seq2seq tutorial's, with punctuation split off by ``WordTokenizer.tokenize``): both
sides lowercased and cut into word and punctuation tokens. Pairs that are the same after that are kept once
(first occurrence), *before* splitting, so that no test pair was seen in training (161 of the Bible's 5,453 short
pairs repeat one, such as "And the LORD spake unto Moses, saying,"). Each side's vocabulary is fitted on the
training pairs only, words seen at least ``min_freq`` times; the rest encode as ``<unk>``. BLEU is scored against
``references``, the target token strings before that mapping, so a rare word of a reference still counts.

    splits = dl.data.datasets.load("bible-en-es")   # 4,792 / 250 / 250 pairs of <= 15 words
    (src, src_lengths), (tgt, tgt_lengths) = next(iter(dl.data.DataLoader(splits.train, batch_size=64)))
    splits.info.model_options   # {"src_vocab_size": ..., "tgt_vocab_size": ...}
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dlbasics.data.dataset import Dataset, DatasetInfo, Splits, _check_index
from dlbasics.data.datasets.bundled import split_indices
from dlbasics.data.text import PairTokenizer, WordTokenizer, bible_pairs, pad_collate, read_pairs
from dlbasics.errors import ConfigError, DataError


class TranslationPairs(Dataset):
    """Sentence pairs as ``(src (S,), tgt (T,))`` int64 id arrays, batched by ``pad_collate``.

    Args:
        sources, targets: the pairs' two sides as space-joined tokens (``" ".join(WordTokenizer.tokenize(text))``).
        tokenizer: the ``PairTokenizer`` whose vocabularies map them to ids.

    Besides the samples it keeps ``sources`` and ``references`` (the token strings, rare words intact: what BLEU
    is scored against, in this data set's order) and ``tokenizer`` (to decode a model's translations).
    """

    collate_fn = staticmethod(pad_collate)  # the DataLoader's default for this data set; pad id 0

    def __init__(self, sources: Sequence[str], targets: Sequence[str], tokenizer: PairTokenizer) -> None:
        if len(sources) != len(targets):
            raise DataError(f"TranslationPairs: {len(sources)} source sentences for {len(targets)} targets")
        self.tokenizer = tokenizer
        self.sources, self.references = list(sources), list(targets)
        self.src = [tokenizer.encode_src(s) for s in self.sources]  # each (S_i,) int64, ending in <eos>
        self.tgt = [tokenizer.encode_tgt(t) for t in self.references]  # each (T_i,), <bos> ... <eos>

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        i = _check_index(index, len(self), "TranslationPairs")
        return self.src[i], self.tgt[i]

    @property
    def max_src_len(self) -> int:
        """The longest source in ids, ``<eos>`` included (0 for no pairs)."""
        return max((len(s) for s in self.src), default=0)

    @property
    def max_tgt_len(self) -> int:
        """The longest target in ids, ``<bos>`` and ``<eos>`` included (0 for no pairs)."""
        return max((len(t) for t in self.tgt), default=0)

    def __repr__(self) -> str:
        return f"TranslationPairs({len(self)} pairs, {self.tokenizer!r})"


def prepare_pairs(pairs: Sequence[tuple[str, str]], max_words: int | None = None) -> list[tuple[str, str]]:
    """The pairs as lowercased, space-joined word and punctuation tokens, those with more than ``max_words``
    whitespace-separated words on either side (counted in the raw text) left out, each distinct pair once in its
    first position."""
    if max_words is not None and (isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1):
        raise ConfigError(f"max_words must be None or a whole number >= 1, got {max_words!r}")
    splitter = WordTokenizer([])
    kept = [(s, t) for s, t in pairs if max_words is None or (len(s.split()) <= max_words
                                                             and len(t.split()) <= max_words)]
    prepared = [(" ".join(splitter.tokenize(s)), " ".join(splitter.tokenize(t))) for s, t in kept]
    return list(dict.fromkeys(p for p in prepared if p[0] and p[1]))  # dicts keep the first occurrence's order


def translation_splits(pairs: Sequence[tuple[str, str]], name: str, n_test: int = 250, n_val: int = 250,
                       seed: int = 0, min_freq: int = 2, max_words: int | None = None) -> Splits:
    """Train / val / test ``TranslationPairs`` of ``pairs`` (source, target), prepared by ``prepare_pairs``.

    ``n_test`` and ``n_val`` pairs are drawn at random (fixed by ``seed``), the rest train; each side's vocabulary
    is fitted on the training pairs with ``min_freq``. ``info``: task "translation", ``input_shape`` (longest
    source,), ``target_shape`` (longest target,) in ids over all splits, ``num_classes`` the target vocabulary,
    ``model_options`` {"src_vocab_size", "tgt_vocab_size"}; ``tokenizer``: the ``PairTokenizer``.
    """
    for option, value in (("n_test", n_test), ("n_val", n_val)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ConfigError(f"{option} must be a whole number of pairs >= 0, got {value!r}")
    prepared = prepare_pairs(pairs, max_words)
    if not prepared:
        raise DataError(f"{name}: no sentence pairs" + (f" of at most {max_words} words" if max_words else ""))
    train_idx, val_idx, test_idx = split_indices(len(prepared), None, val=int(n_val), test=int(n_test), seed=seed)
    train_pairs = [prepared[i] for i in train_idx]
    tokenizer = PairTokenizer(WordTokenizer.fit([s for s, _ in train_pairs], min_freq=min_freq),
                              WordTokenizer.fit([t for _, t in train_pairs], min_freq=min_freq))

    def subset(idx: np.ndarray) -> TranslationPairs:
        return TranslationPairs([prepared[i][0] for i in idx], [prepared[i][1] for i in idx], tokenizer)

    train, val, test = subset(train_idx), subset(val_idx), subset(test_idx)
    info = DatasetInfo(name, "translation", (max(d.max_src_len for d in (train, val, test)),),
                       num_classes=tokenizer.tgt_vocab_size,
                       target_shape=(max(d.max_tgt_len for d in (train, val, test)),),
                       model_options={"src_vocab_size": tokenizer.src_vocab_size,
                                      "tgt_vocab_size": tokenizer.tgt_vocab_size})
    return Splits(train, val, test, info, tokenizer=tokenizer)


def bible_en_es(n_test: int = 250, n_val: int = 250, seed: int = 0, min_freq: int = 2,
                max_words: int | None = 15) -> Splits:
    """English -> Spanish Bible verses (KJV / Reina-Valera 1909, ``dlbasics.data.text.bible_pairs``), those with at
    most ``max_words`` words on both sides: 5,453 pairs, 5,292 distinct, split 4,792 / 250 / 250. Vocabularies
    with min_freq 2: 2,956 English and 3,308 Spanish tokens, specials included (5,417 and 8,144 with min_freq 1,
    most of the added words seen once)."""
    return translation_splits(bible_pairs(), "bible-en-es", n_test=n_test, n_val=n_val, seed=seed,
                              min_freq=min_freq, max_words=max_words)


def pairs(path: str, n_test: int = 250, n_val: int = 250, seed: int = 0, min_freq: int = 2,
          max_words: int | None = None) -> Splits:
    """Any tab-separated pairs file (``--data pairs:PATH``): ``source<TAB>target[<TAB>attribution]`` per line, as
    the PyTorch tutorial's ``eng-fra.txt`` and the Tatoeba / Anki exports."""
    return translation_splits(read_pairs(path), Path(path).name, n_test=n_test, n_val=n_val, seed=seed,
                              min_freq=min_freq, max_words=max_words)


__all__ = ["PairTokenizer", "TranslationPairs", "bible_en_es", "pairs", "prepare_pairs", "translation_splits"]
