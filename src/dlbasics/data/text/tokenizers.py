"""Tokenizers: text -> token ids (int64, shape (N,)) and back.

``CharTokenizer`` is nanoGPT's character level (``shakespeare_char/prepare.py``): the vocabulary is the sorted set of
the characters of a text, one id per character. ``WordTokenizer`` splits text into words and punctuation marks,
keeps the words seen at least ``min_freq`` times, and puts the special tokens ``<pad> <unk> <bos> <eos>`` at ids
0..3, then any extra specials (BERT's ``<mask>``). ``PairTokenizer`` is the two word tokenizers of a translation
pair, source and target. All save to and load from JSON (no pickle), written atomically.

    tok = CharTokenizer.fit(text)
    ids = tok.encode("hello")        # (5,) int64
    tok.decode(ids) == "hello"
    tok.save("tokenizer.json"); load_tokenizer("tokenizer.json")
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dlbasics.errors import ConfigError, DataError, DataNotFoundError
from dlbasics.io import atomic_write_text
from dlbasics.tensor import Tensor

_FORMAT = 1
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
MASK_TOKEN = "<mask>"  # BERT's [MASK], an extra special: WordTokenizer.fit(texts, extra_specials=(MASK_TOKEN,))
# a word is a run of letters, digits or "_" (any script); every other non-space character is a token of its own,
# so "don't!" -> ["don", "'", "t", "!"] (as torchtext's basic_english splits apostrophes)
TOKEN_PATTERN = r"\w+|[^\w\s]"


def _shown(chars: str, limit: int = 80) -> str:
    """A vocabulary as one short line: its characters' repr, cut at ``limit``."""
    text = repr(chars)
    return text if len(text) <= limit else text[:limit] + "...'"


def _ids_array(ids: Any, who: str) -> np.ndarray:
    """``ids`` (a list, array or Tensor of one sequence) as a 1-D int64 array."""
    arr = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
    if arr.ndim > 1:
        raise ValueError(f"{who}.decode takes one sequence of ids (N,), got shape {arr.shape}; decode each row")
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"{who}.decode takes integer token ids, got dtype {arr.dtype}")
    return arr.reshape(-1).astype(np.int64, copy=False)


def _check_range(ids: np.ndarray, vocab_size: int, who: str) -> None:
    bad = np.flatnonzero((ids < 0) | (ids >= vocab_size))
    if bad.size:
        raise ValueError(f"{who}.decode: token id {ids[bad[0]]} (at position {bad[0]}) is outside the vocabulary "
                         f"0..{vocab_size - 1}")


class Tokenizer:
    """What the tokenizers share: ``vocab_size``, ``itos`` (id -> token) and ``stoi`` (token -> id), and saving
    as JSON. Subclasses give ``encode``, ``decode``, ``to_dict`` and ``from_dict``."""

    kind: ClassVar[str] = ""
    itos: list[str]
    stoi: dict[str, int]

    @property
    def vocab_size(self) -> int:
        """Number of token ids: the ids are 0..vocab_size - 1 (an embedding's ``num_embeddings``)."""
        return len(self.itos)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def decode(self, ids: Any) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Tokenizer:
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer to ``path`` as JSON (UTF-8), atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """The tokenizer ``save`` wrote to ``path``; DataError if the file holds another kind of tokenizer."""
        state = _read_json(path)
        if state.get("type") != cls.kind:
            raise DataError(f"{path} holds a {state.get('type')!r} tokenizer, not a {cls.kind!r} one; "
                            "load it with dl.data.text.load_tokenizer")
        return _from_file(cls, state, path)


def _read_json(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"no tokenizer file at {path}")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path} is not a tokenizer file (not UTF-8 JSON: {e})") from None
    except RecursionError:
        raise DataError(f"{path} is not a tokenizer file (JSON nested too deeply to read)") from None
    except OSError as e:  # e.g. no permission: the user's to fix, so one line, not a traceback
        raise DataError(f"{path}: cannot be read: {e.strerror or e}") from None
    if not isinstance(state, dict) or not isinstance(state.get("type"), str) or state["type"] not in TOKENIZERS:
        raise DataError(f"{path} is not a tokenizer file (no 'type' among {', '.join(TOKENIZERS)})")
    if state.get("format") != _FORMAT:
        raise DataError(f"{path}: tokenizer file format {state.get('format')!r}, this version reads {_FORMAT}")
    return state


def _from_file(cls: type[Tokenizer], state: dict[str, Any], path: str | os.PathLike) -> Tokenizer:
    """``cls.from_dict(state)`` for the state read from ``path``: a vocabulary that cannot be built (an entry of
    the wrong type, a duplicate, ...) is a ``DataError`` naming the file."""
    try:
        return cls.from_dict(state)
    except (ConfigError, DataError) as e:
        raise DataError(f"{path}: not a valid {cls.kind} tokenizer file: {e}") from None


def _list_of(state: dict[str, Any], key: str, who: str, default: Any = None) -> list[Any]:
    """``state[key]``, which must be a list (``default`` if it is missing and one is given)."""
    value = state.get(key, default)
    if not isinstance(value, list | tuple):
        raise DataError(f"{who}: {key!r} must be a list, got {type(value).__name__}")
    return list(value)


# ---- characters ------------------------------------------------------------------------------------------------
class CharTokenizer(Tokenizer):
    """One id per character: ``itos[i]`` is the character of id i.

    Args:
        chars: the vocabulary in id order, each a single character (``fit`` gives the sorted characters of a text).
        unk: None (default): encoding a character outside the vocabulary raises ``DataError`` naming it. A string
            (e.g. ``"?"`` or ``"<unk>"``): such characters map to its id, and it decodes back to that string; it is
            appended to the vocabulary unless it is already one of ``chars``, so the ids of ``chars`` do not move.
    """

    kind = "char"

    def __init__(self, chars: Iterable[str], unk: str | None = None) -> None:
        itos = list(chars)
        bad = [c for c in itos if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ConfigError(f"CharTokenizer: every vocabulary entry must be one character, got {bad[0]!r}")
        if len(set(itos)) != len(itos):
            dup = next(c for c, n in Counter(itos).items() if n > 1)
            raise ConfigError(f"CharTokenizer: character {dup!r} appears twice in the vocabulary")
        if unk is not None and (not isinstance(unk, str) or not unk):
            raise ConfigError(f"CharTokenizer: unk must be None or a non-empty string, got {unk!r}")
        if unk is not None and unk not in itos:
            itos.append(unk)
        self.itos = itos
        self.stoi = {c: i for i, c in enumerate(itos)}
        self.unk = unk
        self.unk_id: int | None = None if unk is None else self.stoi[unk]
        # encode looks characters up by code point with one searchsorted over the sorted code points
        single = [(ord(c), i) for i, c in enumerate(itos) if len(c) == 1]
        single.sort()
        self._codes = np.array([cp for cp, _ in single], dtype=np.uint32)  # (V,) sorted code points
        self._code_ids = np.array([i for _, i in single], dtype=np.int64)  # (V,) their ids
        # decode maps ids to code points in one gather when every entry is one character (a "<unk>" is not)
        self._id_codes = (np.array([ord(c) for c in itos], dtype=np.uint32)
                          if all(len(c) == 1 for c in itos) else None)

    @classmethod
    def fit(cls, text: str, unk: str | None = None) -> CharTokenizer:
        """The tokenizer of ``text``'s characters, sorted by code point (nanoGPT: ``sorted(list(set(data)))``)."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.fit takes a str, got {type(text).__name__}")
        if not text:
            raise DataError("CharTokenizer.fit: the text is empty, so there are no characters to build a vocabulary of")
        return cls(sorted(set(text)), unk=unk)

    def encode(self, text: str) -> np.ndarray:
        """Token ids (N,) int64 of the N characters of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.encode takes a str, got {type(text).__name__}")
        cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)  # (N,) code points
        if len(self._codes):
            pos = np.minimum(np.searchsorted(self._codes, cps), len(self._codes) - 1)
            found = self._codes[pos] == cps
            ids = self._code_ids[pos]
        else:  # a vocabulary of only a multi-character unk
            found, ids = np.zeros(len(cps), dtype=bool), np.zeros(len(cps), dtype=np.int64)
        if not found.all():
            if self.unk_id is None:
                first = int(np.flatnonzero(~found)[0])
                ch = text[first]
                valid = "".join(c for c in self.itos if len(c) == 1)
                raise DataError(f"character {ch!r} (U+{ord(ch):04X}) at position {first} is not in the vocabulary "
                                f"of {len(valid)} characters {_shown(valid)}; fit the tokenizer on a text that has "
                                "it, or build it with unk='?'")
            ids[~found] = self.unk_id
        return ids

    def decode(self, ids: Any) -> str:
        """The text of token ids ``ids`` (N,) (a list, array or Tensor)."""
        arr = _ids_array(ids, "CharTokenizer")
        _check_range(arr, self.vocab_size, "CharTokenizer")
        if self._id_codes is not None:
            return self._id_codes[arr].tobytes().decode("utf-32-le", "surrogatepass")
        return "".join(self.itos[i] for i in arr.tolist())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"type": "char", "format": 1, "vocab": [...], "unk": ...}``."""
        chars = self.itos if self.unk is None or self.unk_id != len(self.itos) - 1 else self.itos[:-1]
        return {"type": self.kind, "format": _FORMAT, "vocab": list(chars), "unk": self.unk}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> CharTokenizer:
        return cls(_list_of(state, "vocab", "CharTokenizer"), unk=state.get("unk"))

    def __repr__(self) -> str:
        unk = "" if self.unk is None else f", unk={self.unk!r}"
        return f"CharTokenizer(vocab_size={self.vocab_size}{unk})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and self.itos == other.itos and self.unk == other.unk


# ---- words -----------------------------------------------------------------------------------------------------
class WordTokenizer(Tokenizer):
    """Words and punctuation marks as tokens, after the special tokens ``<pad> <unk> <bos> <eos>`` (ids 0..3) and any
    extra specials (ids 4, 5, ...).

    A text is split with ``TOKEN_PATTERN``: runs of letters/digits and single punctuation marks, so
    ``"Hello, world!"`` -> ``["hello", ",", "world", "!"]``. Words outside the vocabulary encode as ``<unk>``. Text
    never encodes as a special token: a literal ``"<mask>"`` splits as ``"<", "mask", ">"``.

    Args:
        words: the vocabulary after the special tokens, in id order; ``fit`` builds it from texts.
        lower: lowercase text before splitting it (then every word of ``words`` must be lowercase).
        extra_specials: special tokens after the four fixed ones, e.g. ``("<mask>",)`` for masked-language-model
            pre-training (BERT): ids 4.. in this order, the words after them.
    """

    kind = "word"
    pad_token, unk_token, bos_token, eos_token = SPECIAL_TOKENS
    mask_token = MASK_TOKEN
    _pattern = re.compile(TOKEN_PATTERN)

    def __init__(self, words: Iterable[str], lower: bool = True, extra_specials: Sequence[str] = ()) -> None:
        if isinstance(extra_specials, str):  # "<mask>" would otherwise be five specials "<", "m", ...
            raise ConfigError(f"WordTokenizer: extra_specials takes a sequence of tokens, e.g. ({extra_specials!r},), "
                              f"got the string {extra_specials!r}")
        extras = list(extra_specials)
        for t in extras:
            if not isinstance(t, str) or not t:
                raise ConfigError(f"WordTokenizer: special tokens must be non-empty strings, got {t!r}")
            if t in SPECIAL_TOKENS:
                raise ConfigError(f"WordTokenizer: {t!r} is one of the fixed special tokens {', '.join(SPECIAL_TOKENS)}"
                                  " (ids 0..3); leave it out of extra_specials")
        if len(set(extras)) != len(extras):
            dup = next(t for t, n in Counter(extras).items() if n > 1)
            raise ConfigError(f"WordTokenizer: special token {dup!r} appears twice in extra_specials")
        specials = (*SPECIAL_TOKENS, *extras)
        words = list(words)
        for w in words:
            if not isinstance(w, str) or not w:
                raise ConfigError(f"WordTokenizer: vocabulary entries must be non-empty strings, got {w!r}")
            if w in specials:
                raise ConfigError(f"WordTokenizer: {w!r} is a special token (ids 0..{len(specials) - 1} are "
                                  f"{', '.join(specials)}); leave it out of words")
            if lower and w != w.lower():
                raise ConfigError(f"WordTokenizer: word {w!r} has capitals but lower=True lowercases every text, so it "
                                  "could never match; lowercase it or pass lower=False")
        if len(set(words)) != len(words):
            dup = next(w for w, n in Counter(words).items() if n > 1)
            raise ConfigError(f"WordTokenizer: word {dup!r} appears twice in the vocabulary")
        self.lower = bool(lower)
        self.specials: tuple[str, ...] = specials
        self.itos = [*specials, *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        # encode looks tokens up among the words only, so no text can produce a special token, whatever its spelling
        self._word_ids = {w: i for i, w in enumerate(words, start=len(specials))}

    @classmethod
    def fit(cls, texts: str | Iterable[str], lower: bool = True, min_freq: int = 1, max_size: int | None = None,
            extra_specials: Sequence[str] = ()) -> WordTokenizer:
        """The vocabulary of ``texts`` (one string or many): words seen at least ``min_freq`` times, the most
        frequent first (ties in token order, so the same texts give the same ids), at most ``max_size`` of them
        (not counting the special tokens, as in torchtext's ``Vocab``; None: no limit), after the four special
        tokens and ``extra_specials``."""
        if isinstance(min_freq, bool) or not isinstance(min_freq, int | np.integer) or min_freq < 1:
            raise ConfigError(f"WordTokenizer.fit: min_freq must be a whole number >= 1, got {min_freq!r}")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int | np.integer)
                                     or max_size < 0):
            raise ConfigError(f"WordTokenizer.fit: max_size must be None or a whole number >= 0, got {max_size!r}")
        splitter = cls([], lower=lower, extra_specials=extra_specials)
        counts: Counter[str] = Counter()
        for text in [texts] if isinstance(texts, str) else texts:
            counts.update(splitter.tokenize(text))
        for special in splitter.specials:  # a literal "<unk>" in a text splits as "<", "unk", ">"; never a word
            counts.pop(special, None)
        ranked = sorted((item for item in counts.items() if item[1] >= min_freq), key=lambda kv: (-kv[1], kv[0]))
        if max_size is not None:
            ranked = ranked[:max_size]
        return cls([w for w, _ in ranked], lower=lower, extra_specials=extra_specials)

    @property
    def extra_specials(self) -> tuple[str, ...]:
        """The special tokens after ``<pad> <unk> <bos> <eos>``, in id order (ids 4, 5, ...)."""
        return self.specials[len(SPECIAL_TOKENS):]

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def bos_id(self) -> int:
        return 2

    @property
    def eos_id(self) -> int:
        return 3

    @property
    def mask_id(self) -> int:
        """The id of ``<mask>`` (masked-language-model pre-training); ConfigError if this tokenizer has none."""
        if MASK_TOKEN not in self.extra_specials:
            raise ConfigError(f"this WordTokenizer has no {MASK_TOKEN} token (its special tokens are "
                              f"{', '.join(self.specials)}); fit it with extra_specials=({MASK_TOKEN!r},)")
        return self.stoi[MASK_TOKEN]

    @property
    def special_ids(self) -> tuple[int, ...]:
        """The ids that stand for no word: ``<pad>``, ``<bos>``, ``<eos>`` and the extra specials (0, 2, 3, 4, ...),
        in id order. ``<unk>`` (1) is not among them: it stands for a word that was there. These are the ids
        ``decode(skip_special=True)`` drops and a masked language model never masks."""
        return (self.pad_id, *range(self.bos_id, len(self.specials)))

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` as strings: ``"Don't stop!"`` -> ``["don", "'", "t", "stop", "!"]``."""
        if not isinstance(text, str):
            raise TypeError(f"WordTokenizer takes a str, got {type(text).__name__}")
        return self._pattern.findall(text.lower() if self.lower else text)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        """Token ids (N,) int64 of ``text``, unknown words as ``unk_id``; ``<bos>`` / ``<eos>`` around them if asked."""
        get, unk = self._word_ids.get, self.unk_id
        ids = [get(t, unk) for t in self.tokenize(text)]
        if add_bos:
            ids.insert(0, self.bos_id)
        if add_eos:
            ids.append(self.eos_id)
        return np.array(ids, dtype=np.int64)

    def decode(self, ids: Any, skip_special: bool = True) -> str:
        """The tokens of ``ids`` (N,) joined by single spaces (so ``"Hello, world"`` comes back as
        ``"hello , world"``). ``skip_special`` drops the ``special_ids`` (``<pad>``, ``<bos>``, ``<eos>``, the extra
        specials); ``<unk>`` always shows, as it stands for a word that was there."""
        arr = _ids_array(ids, "WordTokenizer")
        _check_range(arr, self.vocab_size, "WordTokenizer")
        if skip_special:
            arr = arr[(arr == self.unk_id) | (arr >= len(self.specials))]
        itos = self.itos
        return " ".join(itos[i] for i in arr.tolist())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"type": "word", "format": 1, "lower": ..., "specials": [...], "vocab": [words...]}``."""
        return {"type": self.kind, "format": _FORMAT, "lower": self.lower, "specials": list(self.specials),
                "vocab": self.itos[len(self.specials):]}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> WordTokenizer:
        """The tokenizer ``to_dict`` described; ``specials`` must begin with ``<pad> <unk> <bos> <eos>`` (files
        written before extra specials existed hold just those four)."""
        specials = _list_of(state, "specials", "WordTokenizer", SPECIAL_TOKENS)
        if specials[:len(SPECIAL_TOKENS)] != list(SPECIAL_TOKENS):
            raise DataError(f"WordTokenizer: special tokens {specials} do not begin with {list(SPECIAL_TOKENS)}")
        lower = state.get("lower", True)
        if not isinstance(lower, bool):
            raise DataError(f"WordTokenizer: 'lower' must be true or false, got {lower!r}")
        return cls(_list_of(state, "vocab", "WordTokenizer"), lower=lower,
                   extra_specials=specials[len(SPECIAL_TOKENS):])

    def __repr__(self) -> str:
        extra = f", extra_specials={self.extra_specials}" if self.extra_specials else ""
        return f"WordTokenizer(vocab_size={self.vocab_size}, lower={self.lower}{extra})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, WordTokenizer) and self.itos == other.itos and self.lower == other.lower
                and self.specials == other.specials)


# ---- translation pairs -----------------------------------------------------------------------------------------
class PairTokenizer(Tokenizer):
    """The two vocabularies of a translation pair: ``src`` reads the source language, ``tgt`` writes the target.

    ``encode_src(text)`` gives the encoder's input, the source tokens then ``<eos>``; ``encode_tgt(text)`` the
    decoder's, ``<bos>`` + target tokens + ``<eos>``; ``decode_tgt(ids)`` turns a translation back into
    space-joined tokens. ``encode`` and ``decode`` are ``encode_src`` and ``decode_tgt`` (a translator reads
    source text and writes target text); ``vocab_size`` is the target's (the model's output classes).
    """

    kind = "pair"

    def __init__(self, src: WordTokenizer, tgt: WordTokenizer) -> None:
        for side, tok in (("src", src), ("tgt", tgt)):
            if not isinstance(tok, WordTokenizer):
                raise ConfigError(f"PairTokenizer: {side} must be a WordTokenizer, got {type(tok).__name__}")
        self.src, self.tgt = src, tgt
        self.itos, self.stoi = tgt.itos, tgt.stoi

    @property
    def src_vocab_size(self) -> int:
        return self.src.vocab_size

    @property
    def tgt_vocab_size(self) -> int:
        return self.tgt.vocab_size

    def encode_src(self, text: str) -> np.ndarray:
        """Source ids (S,) int64: the tokens of ``text`` then ``<eos>``."""
        return self.src.encode(text, add_eos=True)

    def encode_tgt(self, text: str) -> np.ndarray:
        """Target ids (T,) int64: ``<bos>``, the tokens of ``text``, ``<eos>``."""
        return self.tgt.encode(text, add_bos=True, add_eos=True)

    def decode_src(self, ids: Any, skip_special: bool = True) -> str:
        return self.src.decode(ids, skip_special=skip_special)

    def decode_tgt(self, ids: Any, skip_special: bool = True) -> str:
        """Target ids (T,) as space-joined tokens, ``<bos>``/``<eos>``/``<pad>`` dropped (the text BLEU scores)."""
        return self.tgt.decode(ids, skip_special=skip_special)

    def encode(self, text: str) -> np.ndarray:
        return self.encode_src(text)

    def decode(self, ids: Any) -> str:
        return self.decode_tgt(ids)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"type": "pair", "format": 1, "src": {word tokenizer}, "tgt": {word tokenizer}}``."""
        return {"type": self.kind, "format": _FORMAT, "src": self.src.to_dict(), "tgt": self.tgt.to_dict()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> PairTokenizer:
        sides = []
        for side in ("src", "tgt"):
            part = state.get(side)
            if not isinstance(part, dict) or part.get("type") != WordTokenizer.kind:
                raise DataError(f"PairTokenizer: its {side!r} entry is not a word tokenizer description")
            sides.append(WordTokenizer.from_dict(part))
        return cls(*sides)

    def __repr__(self) -> str:
        return f"PairTokenizer(src_vocab_size={self.src_vocab_size}, tgt_vocab_size={self.tgt_vocab_size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PairTokenizer) and self.src == other.src and self.tgt == other.tgt


TOKENIZERS: dict[str, type[Tokenizer]] = {"char": CharTokenizer, "word": WordTokenizer, "pair": PairTokenizer}


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """The tokenizer saved at ``path``, of whichever kind it is."""
    state = _read_json(path)
    return _from_file(TOKENIZERS[state["type"]], state, path)


def tokenizer_from_dict(state: dict[str, Any]) -> Tokenizer:
    """The tokenizer ``to_dict`` described (e.g. kept in a run's JSON config)."""
    kind = state.get("type") if isinstance(state, dict) else None
    if kind not in TOKENIZERS:
        raise DataError(f"not a tokenizer description: type {kind!r}, expected one of {', '.join(TOKENIZERS)}")
    return TOKENIZERS[kind].from_dict(state)

