"""Parallel text: (source, target) sentence pairs for translation, as strings.

``read_pairs(path)`` reads the tab-separated format of the PyTorch seq2seq tutorial (``eng-fra.txt``) and of the
Tatoeba / Anki exports (manythings.org/anki): one pair per line, ``English<TAB>Spanish[<TAB>attribution]``.

``bible_pairs()`` gives the verses that the King James Version (English, 1769) and the Reina-Valera 1909 (Spanish)
both have, matched by verse key ("Genesis 1:1"): 31,084 pairs, exported from Debian's SWORD modules with
``diatheke`` (about 5 s) the first time and cached as such a TSV file (the verse key as its third field).

    pairs = dl.data.text.bible_pairs()
    pairs[0]  # ('In the beginning God created the heaven and the earth.',
              #  'EN el principio crió Dios los cielos y la tierra.')
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from dlbasics.data.text.corpus import _decode, _read_bytes
from dlbasics.errors import DataError, DataNotFoundError
from dlbasics.io import atomic_write_text

BIBLE_MODULES = ("engKJV2006eb", "spaRV1909eb")  # SWORD module names: English (KJV), Spanish (Reina-Valera 1909)
BIBLE_RANGE = "Gen 1:1-Rev 22:21"
BIBLE_HINT = "apt-get install diatheke sword-text-kjv sword-text-sparv"
BIBLE_CACHE_FILE = "bible-en-es.tsv"
DIATHEKE = "diatheke"  # the program; tests point it elsewhere to play a machine without it

# diatheke -f plain writes one verse per line, "Book C:V: text" (books such as "I Samuel", "Revelation of John"),
# sometimes indented or opened by a pilcrow. The other lines are blank or Psalm titles ("A Psalm of David.", which
# this diatheke repeats before many later verses), never a verse's continuation, so they are skipped.
_VERSE = re.compile(r"^[ \t¶]*(\S.*?) (\d+):(\d+):(.*)$", re.MULTILINE)
# markup left in the plain text: Strong's numbers ("<G5547>", in the Spanish module), USFM character markers
# ("\nd " before the divine name in the English one) and paragraph marks
_MARKUP = re.compile(r"<[GH]\d+>|\\[a-z]+\*?|¶")


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The (source, target) pairs of the tab-separated file at ``path``, in file order.

    Each line holds ``source<TAB>target``, optionally more fields (Tatoeba's attribution) that are ignored; UTF-8,
    a byte-order mark allowed, blank lines skipped, each side's surrounding whitespace stripped.
    ``DataNotFoundError`` if there is no such file; ``DataError`` naming the file and line for a line with fewer
    than two fields or an empty side.
    """
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"no sentence-pairs file at {path}")
    if not path.is_file():
        raise DataNotFoundError(f"{path} is a folder, not a sentence-pairs file")
    pairs = []
    for number, line in enumerate(_decode(_read_bytes(path), str(path)).split("\n"), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise DataError(f"{path}, line {number}: one field, expected source<TAB>target[<TAB>attribution] "
                            f"(got {line[:60]!r})")
        src, tgt = fields[0].strip(), fields[1].strip()
        if not src or not tgt:
            raise DataError(f"{path}, line {number}: the {'source' if not src else 'target'} sentence is empty")
        pairs.append((src, tgt))
    return pairs


def write_pairs(path: str | os.PathLike, pairs: Iterable[tuple[str, ...]]) -> None:
    """Write ``pairs`` (source, target[, attribution]) to ``path`` in the format ``read_pairs`` reads, atomically."""
    lines = []
    for pair in pairs:
        if any("\t" in field or "\n" in field for field in pair):
            raise DataError(f"write_pairs: a field holds a tab or a line break, which the format cannot keep: {pair}")
        lines.append("\t".join(pair) + "\n")
    atomic_write_text(path, "".join(lines))


def cache_root(path: str | os.PathLike | None = None) -> Path:
    """Where data built on this machine is kept: ``path`` if given, else ``$DLBASICS_CACHE``, else
    ``~/.cache/dlbasics``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get("DLBASICS_CACHE") or Path.home() / ".cache" / "dlbasics")


def bible_availability(cache_dir: str | os.PathLike | None = None) -> str | None:
    """None if ``bible_pairs`` can work here (its cache exists, or diatheke and both modules are installed), else
    one line saying what to install. Cheap: it lists the installed modules, it does not export them."""
    if (cache_root(cache_dir) / BIBLE_CACHE_FILE).is_file():
        return None
    exe = shutil.which(DIATHEKE)
    if exe is None:
        return f"the English-Spanish Bible verses need the program diatheke and two SWORD modules: {BIBLE_HINT}"
    missing = [m for m in BIBLE_MODULES if m not in _installed_modules(exe)]
    if missing:
        return f"the SWORD module {' and '.join(missing)} is not installed: {BIBLE_HINT}"
    return None


def bible_pairs(cache_dir: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """(English, Spanish) verse pairs: every verse key both the KJV and the Reina-Valera 1909 have text for, in
    canonical order (the 18 verses the Spanish numbers into a neighbour, e.g. Numbers 12:16, are left out).

    Markup is removed (Strong's numbers, USFM markers, pilcrows) and whitespace collapsed; nothing else is
    changed. The first call exports both modules with diatheke (about 5 s) and caches the pairs in
    ``cache_root(cache_dir)/bible-en-es.tsv``; later calls read that file (delete it to export again).
    ``DataNotFoundError`` with the apt-get line if diatheke or a module is missing.
    """
    cache = cache_root(cache_dir) / BIBLE_CACHE_FILE
    if cache.is_file():
        return read_pairs(cache)
    if reason := bible_availability(cache_dir):
        raise DataNotFoundError(reason)
    english, spanish = _export(shutil.which(DIATHEKE), BIBLE_MODULES)
    keyed = [(english[k], spanish[k], k) for k in english if english[k] and spanish.get(k)]
    if not keyed:
        raise DataError(f"diatheke exported no verse that {' and '.join(BIBLE_MODULES)} share")
    write_pairs(cache, keyed)
    return [(en, es) for en, es, _ in keyed]


def _installed_modules(exe: str) -> set[str]:
    """The SWORD modules diatheke sees: its module list prints ``name : description`` lines."""
    done = subprocess.run([exe, "-b", "system", "-k", "modulelist"], capture_output=True, check=False)
    return {m.group(1) for m in re.finditer(r"^(\S+) : ", done.stdout.decode("utf-8", "replace"), re.MULTILINE)}


def _export(exe: str, modules: Iterable[str]) -> list[dict[str, str]]:
    """Each module's whole Bible as {verse key: cleaned text}, the exports running side by side."""
    procs = {m: subprocess.Popen([exe, "-b", m, "-f", "plain", "-k", BIBLE_RANGE], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE) for m in modules}
    out = []
    for module, proc in procs.items():
        stdout, stderr = proc.communicate()
        verses = {f"{book} {chapter}:{verse}": " ".join(_MARKUP.sub(" ", text).split())
                  for book, chapter, verse, text in _VERSE.findall(stdout.decode("utf-8", "replace"))}
        if proc.returncode != 0 or not verses:
            reason = stderr.decode("utf-8", "replace").strip().splitlines()[:1] or ["no verses in its output"]
            raise DataError(f"diatheke could not export the SWORD module {module}: {reason[0]}; {BIBLE_HINT}")
        out.append(verses)
    return out


__all__ = ["BIBLE_CACHE_FILE", "BIBLE_HINT", "BIBLE_MODULES", "bible_availability", "bible_pairs", "cache_root",
           "read_pairs", "write_pairs"]
