"""Sentence pairs: the tab-separated reader on files written here, and the Bible verse pairs - their parsing on a
stand-in diatheke that prints what the real one does, their cache, and (slow) the real export."""

import shutil
import stat
import subprocess

import pytest

from dlbasics.data.text import pairs as P
from dlbasics.data.text import read_pairs, write_pairs
from dlbasics.errors import DataError, DataNotFoundError


# ---- read_pairs ------------------------------------------------------------------------------------------------
def test_reads_the_pytorch_tutorial_format(tmp_path):
    path = tmp_path / "eng-spa.txt"
    path.write_text("Go.\tVe.\nRun!\t¡Corre!\n\nWho?\t¿Quién?\n", encoding="utf-8")
    assert read_pairs(path) == [("Go.", "Ve."), ("Run!", "¡Corre!"), ("Who?", "¿Quién?")]


def test_reads_tatoeba_exports_with_attribution_bom_and_crlf(tmp_path):
    path = tmp_path / "spa.txt"
    lines = ["Go.\tVe.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #4986655 (cueyayotl)",
             "  Hi.  \tHola.\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123 (CM)", "   "]
    path.write_bytes("\ufeff".encode() + "\r\n".join(lines).encode("utf-8") + b"\r\n")
    assert read_pairs(path) == [("Go.", "Ve."), ("Hi.", "Hola.")]


def test_a_line_with_one_field_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("Go.\tVe.\n\nRun! Corre!\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path.name}, line 3: one field, expected source<TAB>target") as e:
        read_pairs(path)
    assert "\n" not in str(e.value)
    path.write_text("Go.\tVe.\nRun!\t \n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: the target sentence is empty"):
        read_pairs(path)
    path.write_bytes(b"Go.\tV\xe9.\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_pairs(path)


def test_missing_file_or_folder(tmp_path):
    with pytest.raises(DataNotFoundError, match="no sentence-pairs file at"):
        read_pairs(tmp_path / "none.txt")
    with pytest.raises(DataNotFoundError, match="is a folder"):
        read_pairs(tmp_path)


def test_write_pairs_round_trip(tmp_path):
    pairs = [("In the beginning.", "En el principio."), ("¿Quién?", "Who?")]
    write_pairs(tmp_path / "sub" / "p.tsv", [(*pairs[0], "Genesis 1:1"), pairs[1]])
    assert read_pairs(tmp_path / "sub" / "p.tsv") == pairs
    with pytest.raises(DataError, match="tab or a line break"):
        write_pairs(tmp_path / "q.tsv", [("a\tb", "c")])


def test_cache_root(monkeypatch, tmp_path):
    assert P.cache_root(tmp_path) == tmp_path
    monkeypatch.setenv("DLBASICS_CACHE", str(tmp_path / "env"))
    assert P.cache_root() == tmp_path / "env"
    monkeypatch.delenv("DLBASICS_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert P.cache_root() == tmp_path / "home" / ".cache" / "dlbasics"


# ---- bible_pairs on a stand-in diatheke --------------------------------------------------------------------------
# what diatheke -f plain prints: indented keys, pilcrows, Psalm titles between verses, Strong's numbers and USFM
# markers in the text, a verse one module leaves empty, the module's name last
ENGLISH = """Genesis 1:1: In the beginning God created the heaven and the earth.
Genesis 1:2: ¶ And the \\nd LORD said,  Let there be light.  \n
A Psalm of David.
   I Samuel 23:29: ¶ And David went up from thence.
Numbers 12:16: And afterward the people removed.
Revelation of John 22:21: The grace of our Lord Jesus Christ be with you all. Amen.\x20\x20
(engKJV2006eb)
"""
SPANISH = """Genesis 1:1: EN el principio crió Dios los cielos y la tierra.
Genesis 1:2: Y dijo Dios: Sea la luz.
I Samuel 23:29: Entonces David subió de allí.
Numbers 12:16:\x20
Revelation of John 22:21: La gracia de nuestro Señor Jesucristo <G5547> sea con todos vosotros. Amén.
(spaRV1909eb)
"""
EXPECTED = [
    ("In the beginning God created the heaven and the earth.", "EN el principio crió Dios los cielos y la tierra."),
    ("And the LORD said, Let there be light.", "Y dijo Dios: Sea la luz."),
    ("And David went up from thence.", "Entonces David subió de allí."),
    ("The grace of our Lord Jesus Christ be with you all. Amen.",
     "La gracia de nuestro Señor Jesucristo sea con todos vosotros. Amén."),
]


@pytest.fixture
def fake_diatheke(tmp_path, monkeypatch):
    """A diatheke that knows both modules and prints ENGLISH / SPANISH; returns the file that logs its calls."""
    (tmp_path / "eng.txt").write_text(ENGLISH, encoding="utf-8")
    (tmp_path / "spa.txt").write_text(SPANISH, encoding="utf-8")
    log = tmp_path / "calls.log"
    exe = tmp_path / "diatheke"
    exe.write_text(f"""#!/bin/sh
echo "$*" >> {log}
case "$2" in
  system) printf 'Biblical Texts:\\nengKJV2006eb : King James Version\\nspaRV1909eb : Reina Valera 1909\\n' ;;
  engKJV2006eb) cat {tmp_path / "eng.txt"} ;;
  spaRV1909eb) cat {tmp_path / "spa.txt"} ;;
esac
""", encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(P, "DIATHEKE", str(exe))
    return log


def test_bible_pairs_matches_keys_removes_markup_and_caches(tmp_path, fake_diatheke):
    cache = tmp_path / "cache"
    assert P.bible_availability(cache) is None
    assert P.bible_pairs(cache) == EXPECTED
    assert (cache / P.BIBLE_CACHE_FILE).read_text(encoding="utf-8").splitlines()[0].endswith("\tGenesis 1:1")
    assert "-b engKJV2006eb -f plain -k Gen 1:1-Rev 22:21" in fake_diatheke.read_text()
    calls = len(fake_diatheke.read_text().splitlines())
    assert P.bible_pairs(cache) == EXPECTED  # from the cache: diatheke is not run again
    assert len(fake_diatheke.read_text().splitlines()) == calls


def test_without_diatheke_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "DIATHEKE", "no-such-diatheke-program")
    reason = P.bible_availability(tmp_path)
    assert reason.endswith("apt-get install diatheke sword-text-kjv sword-text-sparv") and "\n" not in reason
    with pytest.raises(DataNotFoundError) as e:
        P.bible_pairs(tmp_path)
    assert str(e.value) == reason
    write_pairs(tmp_path / P.BIBLE_CACHE_FILE, EXPECTED)  # a cache needs no diatheke
    assert P.bible_availability(tmp_path) is None and P.bible_pairs(tmp_path) == EXPECTED


def test_a_missing_module_is_named(tmp_path, fake_diatheke):
    text = (tmp_path / "diatheke").read_text(encoding="utf-8").replace("spaRV1909eb : Reina Valera 1909\\n", "")
    (tmp_path / "diatheke").write_text(text, encoding="utf-8")
    reason = P.bible_availability(tmp_path / "cache")
    assert reason.startswith("the SWORD module spaRV1909eb is not installed: apt-get install diatheke")


# ---- the real export -----------------------------------------------------------------------------------------------
def _modules_installed() -> bool:
    exe = shutil.which("diatheke")
    if exe is None:
        return False
    out = subprocess.run([exe, "-b", "system", "-k", "modulelist"], capture_output=True, text=True).stdout
    return all(m in out for m in P.BIBLE_MODULES)


@pytest.mark.slow
@pytest.mark.skipif(not _modules_installed(), reason="needs apt-get install diatheke sword-text-kjv sword-text-sparv")
def test_the_real_export(tmp_path):
    pairs = P.bible_pairs(tmp_path)  # about 5 s
    assert len(pairs) == 31084
    assert pairs[0] == EXPECTED[0] and pairs[-1] == EXPECTED[-1]
    assert sum(len(en.split()) <= 15 and len(es.split()) <= 15 for en, es in pairs) == 5453
    assert not any("<G" in es or "<H" in es or "\\" in en or "¶" in en for en, es in pairs)
    assert P.bible_pairs(tmp_path) == pairs
