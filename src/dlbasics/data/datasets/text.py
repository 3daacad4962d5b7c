"""Text as language-modelling data: a corpus cut 90/10 (``dlbasics.data.text``) as windows of ``block_size``
token ids, each sample ``x = tokens[i:i+T]`` with target ``y = tokens[i+1:i+T+1]``, both (T,) int64.

Training draws from every window (stride 1, shuffled by the run's DataLoader: nanoGPT's random windows,
without replacement within an epoch, so a resumed run continues the exact order); validation reads the
non-overlapping windows once, so every validation token is predicted once.
"""

from __future__ import annotations

from dlbasics.data.dataset import DatasetInfo, Splits
from dlbasics.data.text import TextCorpus, TokenWindows
from dlbasics.data.text import shakespeare as _shakespeare
from dlbasics.data.text import text_file as _text_file
from dlbasics.errors import DataError


def windows(corpus: TextCorpus, block_size: int) -> Splits:
    """The corpus' training windows (every start) and validation windows (non-overlapping) of ``block_size``."""
    train = TokenWindows(corpus.train, block_size, stride=1)
    val = TokenWindows(corpus.val, block_size)
    info = DatasetInfo(corpus.name, "language_modeling", (block_size,), num_classes=corpus.vocab_size,
                       target_shape=(block_size,))
    return Splits(train, val, None, info, tokenizer=corpus.tokenizer)


def shakespeare(block_size: int = 64) -> Splits:
    """Tiny Shakespeare (1.1 MB, bundled), characters as tokens (65), as nanoGPT's shakespeare_char."""
    return windows(_shakespeare(), block_size)


def text(path: str, block_size: int = 64, tokenizer: str = "char") -> Splits:
    """Any UTF-8 text file (``--data text:PATH``), as characters or words (``tokenizer`` "char" or "word").

    DataError naming the file if it is empty, not UTF-8, or too short for one window in each split."""
    corpus = _text_file(path, tokenizer=tokenizer)
    short = min(len(corpus.train), len(corpus.val))
    if isinstance(block_size, int) and not isinstance(block_size, bool) and block_size >= 1 and short <= block_size:
        raise DataError(f"{path}: too short: its {len(corpus.text):,} characters give {len(corpus.train):,} training "
                        f"and {len(corpus.val):,} validation tokens, and a window of block_size {block_size} needs "
                        f"{block_size + 1} in each; use a longer text or a smaller block_size (--block-size)")
    return windows(corpus, block_size)


__all__ = ["shakespeare", "text", "windows"]
