"""Readers of files against hostile files (hypothesis): each reader, given a valid file that is then mutated
(bytes flipped, cut short, junk appended, header fields overwritten with huge or negative values, its JSON
rewritten) or pure random bytes, either returns a well-formed result or raises the library's own exception for
that reader (``DataError``, ``CheckpointError``, ``ConfigError``) in one line that names the file. Anything else -
``IndexError``, ``struct.error``, ``UnicodeDecodeError``, ``KeyError``, ``MemoryError``, ``zlib.error`` ... - fails.

A lying header must be refused before the reader allocates what it claims: the regression tests at the end
check that with ``tracemalloc``. A hang would stop the whole run: ``faulthandler`` dumps the stacks and exits
if a test of this file takes more than a few minutes, and each example is timed.
"""

from __future__ import annotations

import faulthandler
import gzip
import json
import re
import struct
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import dlbasics as dl
from dlbasics.data import datasets as D
from dlbasics.data.datasets import text as text_sets
from dlbasics.data.datasets.cifar import read_cifar_classes
from dlbasics.data.datasets.idx import IDX_DTYPES, load_idx_splits
from dlbasics.data.text import (
    CharTokenizer,
    PairTokenizer,
    TextCorpus,
    Tokenizer,
    WordTokenizer,
    load_tokenizer,
    read_pairs,
    text_file,
)
from dlbasics.errors import CheckpointError, ConfigError, DataError, RunFolderError
from dlbasics.train.checkpoint import read_checkpoint, write_checkpoint
from dlbasics.train.config import RunConfig, read_toml
from tests.data.test_datasets import CODES, write_idx


def fuzz(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


SECONDS_PER_EXAMPLE = 10  # each reader reads a few kB: anything near this is a reader that loops or thrashes


@pytest.fixture(autouse=True)
def watchdog():
    """A hang gives a traceback of every thread and ends the run, instead of waiting forever."""
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def holds(read: Callable[[Path], Any], path: Path, errors: type[Exception] | tuple[type[Exception], ...],
          well_formed: Callable[[Any], None]) -> Exception | None:
    """The property: ``read(path)`` returns what ``well_formed`` accepts, or raises one of ``errors`` in one
    line that names the file. Any other exception propagates and fails the test. Returns the error, if any."""
    start = time.perf_counter()
    try:
        result, error = read(path), None
    except errors as e:
        result, error = None, e
    assert time.perf_counter() - start < SECONDS_PER_EXAMPLE, f"{read.__name__} took too long on {path}"
    if error is None:
        well_formed(result)
        event("read")
        return None
    message = str(error)
    assert str(path) in message, f"the message does not name {path}: {message}"
    assert "\n" not in message, f"not one line: {message!r}"
    words = re.findall(r"[A-Za-z]{3,}", message.replace(str(path), ""))[:4]
    event(f"refused: {type(error).__name__}: {' '.join(words)}")  # pytest --hypothesis-show-statistics
    return error


# ---- mutations ------------------------------------------------------------------------------------------------
# values to overwrite a header field with (a field: offset, negative from the end, size in bytes, byte order)
HUGE_OR_NEGATIVE = (0, 1, 2, 7, 255, 256, 10**9, 2**31 - 1, 2**31, 2**32 - 1, 2**60, 2**63, 2**64 - 1, -1, -2**31)


@st.composite
def field_values(draw, size: int) -> bytes:
    value = draw(st.sampled_from(HUGE_OR_NEGATIVE) | st.integers(-(2 ** (8 * size - 1)), 2 ** (8 * size) - 1))
    return (value % 2 ** (8 * size)).to_bytes(size, "big")  # negative values as their two's complement


@st.composite
def mutated(draw, valid: bytes, fields: tuple[tuple[int, int, str], ...] = ()) -> bytes:
    """``valid`` with one to three mutations, or (sometimes) random bytes of about its size."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=min(2 * len(valid) + 16, 4096)))
    data = bytearray(valid)
    kinds = ["flip", "truncate", "extend", "splice"] + ["field"] * (2 * bool(fields))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(kinds))
        if kind == "flip" and data:
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif kind == "extend":
            data += draw(st.binary(min_size=1, max_size=64))
        elif kind == "splice" and data:  # a run of bytes replaced by others of another length
            start = draw(st.integers(0, len(data) - 1))
            end = draw(st.integers(start, min(len(data), start + 16)))
            data[start:end] = draw(st.binary(max_size=16))
        elif kind == "field":
            offset, size, order = draw(st.sampled_from(fields))
            raw = draw(field_values(size))
            if len(data) >= abs(offset) + size:
                data[offset:offset + size or None] = raw if order == "big" else raw[::-1]
    return bytes(data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["__tensor__", "__tuple__", "__items__", "__flat__", "F32", "BF16", "F8_E4M3", "C64", "I64",
                       "char", "word", "pair", "<pad>"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["__tensor__", "__tuple__", "__items__", "__flat__", "type", "vocab", "unk", "lower",
                         "specials", "src", "tgt", "dtype", "shape", "data_offsets"]) | st.text(max_size=6),
        inner, max_size=3),
    max_leaves=8)


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) of a JSON tree: the places a value can be replaced."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    out = []
    for key, value in items:
        out.append((node, key))
        out += _slots(value)
    return out


@st.composite
def mutated_json(draw, tree: Any) -> Any:
    """A deep copy of JSON ``tree`` with one to three values replaced by others, or removed."""
    tree = json.loads(json.dumps(tree))
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(tree)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        if draw(st.booleans()) and isinstance(container, dict):
            del container[key]
        else:
            container[key] = draw(JSON_VALUES)
    return tree


# ---- 1. IDX, raw and gzipped ------------------------------------------------------------------------------------
IDX_ARRAYS = [np.arange(6, dtype=np.uint8) % 10, np.arange(60, dtype=np.uint8).reshape(3, 4, 5),
              np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3), np.arange(-4, 4, dtype=np.int16),
              np.arange(4, dtype=np.float64).reshape(1, 2, 2)]


def idx_fields(array: np.ndarray) -> tuple[tuple[int, int, str], ...]:
    """The magic number's type and ndim bytes and each big-endian uint32 size."""
    return ((2, 1, "big"), (3, 1, "big"), *((4 + 4 * i, 4, "big") for i in range(array.ndim)))


@st.composite
def idx_files(draw) -> tuple[bytes, bytes | None]:
    """(the file's bytes, its IDX bytes if known): raw, gzipped after the mutation, or mutated once gzipped."""
    array = draw(st.sampled_from(IDX_ARRAYS))
    valid = (bytes([0, 0, CODES[array.dtype.type], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
             + array.astype(array.dtype.newbyteorder(">")).tobytes())
    idx = draw(mutated(valid, idx_fields(array)))
    layer = draw(st.sampled_from(["raw", "gzip inner", "gzip outer"]))
    if layer == "raw":
        return idx, idx
    if layer == "gzip inner":
        return gzip.compress(idx, mtime=0), idx
    # the gzip header's flags, and the trailer's CRC and decompressed size (a lying ISIZE)
    return draw(mutated(gzip.compress(idx, mtime=0), ((3, 1, "big"), (-8, 4, "little"), (-4, 4, "little")))), None


def idx_well_formed(idx: bytes | None) -> Callable[[np.ndarray], None]:
    def check(array: np.ndarray) -> None:
        assert isinstance(array, np.ndarray) and array.dtype.isnative and array.flags.writeable
        if idx is not None:  # the shape and dtype the header says, and exactly the bytes after it
            dtype, header = IDX_DTYPES[idx[2]], 4 + 4 * idx[3]
            assert array.dtype == dtype.newbyteorder("=") and array.shape == struct.unpack(f">{idx[3]}I", idx[4:header])
            assert array.astype(dtype).tobytes() == idx[header:]  # the values, bit for bit
    return check


@fuzz(500)
@given(case=idx_files())
def test_idx_reader_on_mutated_and_random_files(folder, case):
    data, idx = case
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(data)
    holds(D.read_idx, path, DataError, idx_well_formed(idx))


def _mnist_folder(root: Path) -> Path:
    root.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for part, n in (("train", 60), ("t10k", 20)):
        write_idx(root / f"{part}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 4, 4), dtype=np.uint8), gz=True)
        write_idx(root / f"{part}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 10, gz=True)
    return root


@fuzz(100)
@given(data=st.data())
def test_idx_splits_on_a_mutated_file_of_the_four(folder, data):
    root = _mnist_folder(folder / "mnist")
    name = data.draw(st.sampled_from(sorted(p.name for p in root.iterdir())))
    inner = gzip.decompress((root / name).read_bytes())
    ndim = inner[3]
    # labels flipped to another class keep each class at 3 or more of its 6 training samples, which the
    # stratified split needs; a label out of range is refused by the reader
    inner = data.draw(mutated(inner, ((2, 1, "big"), (3, 1, "big"), *((4 + 4 * i, 4, "big") for i in range(ndim)))))
    (root / name).write_bytes(gzip.compress(inner, mtime=0))

    def read(path: Path) -> Any:
        return load_idx_splits(path.parent, "mnist", tuple(str(i) for i in range(10)), val_size=0.2)

    def well_formed(splits: Any) -> None:
        x, y = splits.train.arrays
        assert x.ndim == 4 and x.dtype == np.float32 and y.dtype == np.int64 and len(x) == len(y)
        assert y.min() >= 0 and y.max() <= 9

    holds(read, root / name, DataError, well_formed)


# ---- 2. CIFAR-10 binary -----------------------------------------------------------------------------------------
def cifar_bytes(n: int = 2) -> bytes:
    rng = np.random.default_rng(0)
    records = rng.integers(0, 256, (n, 3073), dtype=np.uint8)
    records[:, 0] = np.arange(n) % 10
    return records.tobytes()


def cifar_well_formed(data: bytes) -> Callable[[Any], None]:
    def check(result: Any) -> None:
        images, labels = result
        n = len(data) // 3073
        assert images.shape == (n, 3, 32, 32) and images.dtype == np.uint8 and n * 3073 == len(data)
        assert labels.dtype == np.int64 and labels.tolist() == list(data[::3073])
        assert labels.min() >= 0 and labels.max() <= 9
    return check


@fuzz(200)
@given(data=mutated(cifar_bytes(), ((0, 1, "big"), (3073, 1, "big"))))
def test_cifar_batch_reader_on_mutated_and_random_files(folder, data):
    path = folder / "data_batch_1.bin"
    path.write_bytes(data)
    holds(D.read_cifar_batch, path, DataError, cifar_well_formed(data))


CIFAR_META = "\n".join(D.CIFAR10_CLASSES).encode() + b"\n\n"


def classes_well_formed(names: Any) -> None:
    assert isinstance(names, tuple) and len(names) == 10
    assert all(isinstance(n, str) and n and n == n.strip() and "\n" not in n for n in names)


@fuzz(150)
@given(data=mutated(CIFAR_META))
def test_cifar_class_names_on_mutated_and_random_files(folder, data):
    path = folder / "batches.meta.txt"
    path.write_bytes(data)
    holds(read_cifar_classes, path, DataError, classes_well_formed)


# ---- 3. safetensors checkpoints and their JSON skeleton --------------------------------------------------------
def checkpoint_state() -> dict[str, Any]:
    return {"position": {"step": 3, "epoch": 1}, "model": {"w": np.arange(6, dtype=np.float32).reshape(2, 3),
                                                           "b": np.zeros(3, np.float64)},
            "optimizer": [np.arange(4, dtype=np.int64), (1, 2.5, None)], "rng": {1: "x", 2.5: [True]}}


def split_safetensors(data: bytes) -> tuple[dict[str, Any], bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


def join_safetensors(header: dict[str, Any], body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + body


@st.composite
def safetensors_files(draw, valid: bytes) -> bytes:
    """Bytes mutated, the JSON header rewritten (dtypes, shapes, offsets, metadata), the JSON skeleton inside
    the metadata rewritten, or the header length overwritten; the data then sometimes cut short."""
    header, body = split_safetensors(valid)
    how = draw(st.sampled_from(["bytes", "header", "skeleton"]))
    if how == "bytes":
        return draw(mutated(valid, ((0, 8, "little"), (0, 4, "little"), (4, 4, "little"))))
    if how == "header":
        header = draw(mutated_json(header))
    else:
        meta = header.get("__metadata__", {})
        meta["dlbasics"] = json.dumps(draw(mutated_json(json.loads(meta["dlbasics"]))))
    data = join_safetensors(header, body)
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return data


def _arrays_and_values(node: Any) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _arrays_and_values(value)
    elif isinstance(node, list | tuple):
        for value in node:
            _arrays_and_values(value)
    else:
        assert node is None or isinstance(node, np.ndarray | bool | int | float | str), type(node)


def loaded_well_formed(state: Any) -> None:
    """What ``save`` can write: arrays and plain values in dicts, lists and tuples (a bare value too)."""
    _arrays_and_values(state)


def checkpoint_well_formed(state: Any) -> None:
    assert isinstance(state, dict) and "position" in state
    _arrays_and_values(state)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("valid") / "checkpoint.safetensors"
    write_checkpoint(path, checkpoint_state())
    return path.read_bytes()


@fuzz(500)
@given(data=st.data())
def test_load_on_mutated_and_random_safetensors_files(folder, checkpoint_bytes, data):
    path = folder / "model.safetensors"
    path.write_bytes(data.draw(safetensors_files(checkpoint_bytes)))
    holds(dl.load, path, CheckpointError, loaded_well_formed)


@fuzz(200)
@given(data=st.data())
def test_read_checkpoint_on_mutated_and_random_files(folder, checkpoint_bytes, data):
    path = folder / "checkpoint.safetensors"
    path.write_bytes(data.draw(safetensors_files(checkpoint_bytes)))
    holds(read_checkpoint, path, CheckpointError, checkpoint_well_formed)


# ---- 4. TOML run configs ----------------------------------------------------------------------------------------
RUN_TOML = """seed = 3
task = "supervised"

[data]
name = "digits"
batch_size = 32

[model]
name = "mlp"
hidden = [16, 8]
batch_norm = true
dropout = 0.1

[algorithm]
optimizer = "sgd"
lr = 0.1
momentum = 0.9
scheduler = "cosine"

[budget]
epochs = 2
"""
TOML_VALUES = ('"x"', '""', "-1", "0", "1e400", "-inf", "nan", "9223372036854775807", "-9223372036854775808",
               "0x7fffffff", "[1, \"a\"]", "[]", "[[1], [2]]", "{a = 1}", "{}", "1979-05-27", "07:32:00",
               "1979-05-27T07:32:00Z", "true", "false", "0.0", "1e-400", '"digits"', '"mlp"', '"adam"', "[-1]",
               "'''multi\nline'''")


@st.composite
def toml_files(draw) -> bytes:
    """A value of another type or sign, a key renamed or doubled, a section repeated, or bytes mutated."""
    how = draw(st.sampled_from(["value", "key", "line", "bytes"]))
    lines = RUN_TOML.splitlines()
    assigned = [i for i, line in enumerate(lines) if " = " in line]
    i = draw(st.sampled_from(assigned))
    key, _ = lines[i].split(" = ", 1)
    if how == "value":
        lines[i] = f"{key} = {draw(st.sampled_from(TOML_VALUES))}"
    elif how == "key":
        lines[i] = lines[i].replace(key, draw(st.sampled_from(["", "x", "lr", "name", "data", "model.name", '"a b"',
                                                                "batch-size", "epochs", key + "." + key])), 1)
    elif how == "line":
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(
            [lines[i], "[data]", "[model]", "[[data]]", "[nope]", "data = 3", "[budget.epochs]", "x = 1", "="])))
    text = "\n".join(lines).encode()
    return draw(mutated(text)) if how == "bytes" else text


def toml_well_formed(result: Any) -> None:
    loaded, written = result
    assert isinstance(loaded, dict) and isinstance(written, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in written.items())


@fuzz(300)
@given(data=toml_files())
def test_read_toml_on_mutated_and_random_files(folder, data):
    path = folder / "run.toml"
    path.write_bytes(data)
    holds(read_toml, path, ConfigError, toml_well_formed)


@fuzz(200)
@given(data=toml_files())
def test_run_config_from_mutated_toml(folder, data):
    path = folder / "run.toml"
    path.write_bytes(data)

    def well_formed(config: Any) -> None:
        assert isinstance(config, RunConfig)
        json.loads(config.to_json())

    holds(RunConfig.from_toml, path, ConfigError, well_formed)


# ---- 5. tokenizers, text corpora, sentence pairs ----------------------------------------------------------------
def _tokenizers() -> list[Tokenizer]:
    word = WordTokenizer.fit("the cat sat on the mat", extra_specials=("<mask>",))
    return [CharTokenizer.fit("hello, world"), CharTokenizer.fit("abc", unk="<unk>"), word,
            PairTokenizer(word, WordTokenizer.fit("le chat"))]


TOKENIZER_FILES = [json.dumps(t.to_dict(), ensure_ascii=False, indent=1).encode() for t in _tokenizers()]


@st.composite
def tokenizer_files(draw) -> bytes:
    valid = draw(st.sampled_from(TOKENIZER_FILES))
    if draw(st.booleans()):
        return draw(mutated(valid))
    return json.dumps(draw(mutated_json(json.loads(valid)))).encode()


def tokenizer_well_formed(tok: Any) -> None:
    assert isinstance(tok, Tokenizer) and tok.vocab_size == len(tok.stoi)
    assert all(isinstance(t, str) for t in tok.itos)


@fuzz(400)
@given(data=tokenizer_files(), how=st.sampled_from(["any", "char", "word", "pair"]))
def test_tokenizer_reader_on_mutated_and_random_files(folder, data, how):
    path = folder / "tokenizer.json"
    path.write_bytes(data)
    read = load_tokenizer if how == "any" else {"char": CharTokenizer, "word": WordTokenizer,
                                                 "pair": PairTokenizer}[how].load
    holds(read, path, DataError, tokenizer_well_formed)


TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "Caf\u00e9 \u00e0 la cr\u00e8me \u2014 \u6f22\u5b57 \U0001f600\r\n").encode()


@fuzz(200)
@given(data=mutated(TEXT), tokenizer=st.sampled_from(["char", "word"]))
def test_text_corpus_on_mutated_and_random_files(folder, data, tokenizer):
    path = folder / "corpus.txt"
    path.write_bytes(data)

    def well_formed(corpus: Any) -> None:
        assert isinstance(corpus, TextCorpus) and corpus.text
        for ids in (corpus.train, corpus.val):
            assert ids.dtype == np.int64 and ids.ndim == 1
            assert ids.size == 0 or 0 <= ids.min() <= ids.max() < corpus.vocab_size

    holds(lambda p: text_file(p, tokenizer=tokenizer), path, DataError, well_formed)


@fuzz(150)
@given(data=mutated(TEXT), tokenizer=st.sampled_from(["char", "word"]), block_size=st.sampled_from([1, 4, 16]))
def test_text_data_set_on_mutated_and_random_files(folder, data, tokenizer, block_size):
    path = folder / "corpus.txt"
    path.write_bytes(data)

    def well_formed(splits: Any) -> None:
        x, y = splits.train[0]
        assert x.shape == y.shape == (block_size,) and len(splits.val) >= 1

    holds(lambda p: text_sets.text(str(p), block_size, tokenizer), path, DataError, well_formed)


PAIRS = ("Go.\tVe.\nRun!\t\u00a1Corre!\tCC-BY 2.0 (France) Attribution: tatoeba.org\n\n"
         "Who?\t\u00bfQui\u00e9n?\n").encode()


def pairs_well_formed(pairs: Any) -> None:
    assert isinstance(pairs, list)
    for src, tgt in pairs:
        assert src and tgt and src == src.strip() and tgt == tgt.strip()
        assert "\t" not in src + tgt and "\n" not in src + tgt


@fuzz(200)
@given(data=mutated(PAIRS))
def test_sentence_pairs_on_mutated_and_random_files(folder, data):
    path = folder / "pairs.tsv"
    path.write_bytes(data)
    holds(read_pairs, path, DataError, pairs_well_formed)


# ---- 6. a run folder: its config.json and tokenizer.json (what evaluate, predict, generate and --resume read) -----
@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """A finished run folder of a tiny character model (config.json and tokenizer.json both written)."""
    from dlbasics.train import commands

    out = tmp_path_factory.mktemp("runs") / "lm"
    cfg = RunConfig.from_options(model="char_lstm", hidden_size=8, n_layer=1, steps=2, eval_every=2,
                                 block_size=8, batch_size=2)
    commands.train(cfg, out=out, verbose=0)
    return out


def run_well_formed(run: Any) -> None:
    assert run.kind in ("train", "cv", "ensemble", "tune", "compress") and run.config is not None


def _open_run(file: Path) -> Any:
    from dlbasics.train.rundir import open_run

    return open_run(file.parent)


def _run_tokenizer(file: Path) -> Any:
    from dlbasics.train.rundir import load_tokenizer

    return load_tokenizer(file.parent)


@pytest.mark.parametrize("name, read, error, well_formed", [
    ("config.json", _open_run, RunFolderError, run_well_formed),
    ("tokenizer.json", _run_tokenizer, DataError, tokenizer_well_formed),
])
@fuzz(150)
@given(data=st.data())
def test_a_run_folder_with_a_mutated_file(folder, text_run, data, name, read, error, well_formed):
    """A copy of the run (its small files) whose ``name`` is mutated: as a JSON tree, or as bytes."""
    import shutil

    valid = (text_run / name).read_bytes()
    mutant = json.dumps(data.draw(mutated_json(json.loads(valid)))).encode() if data.draw(st.booleans()) else \
        data.draw(mutated(valid))
    copy = folder / "run"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(text_run, copy, ignore=shutil.ignore_patterns("*.safetensors", "*.png"))
    (copy / name).write_bytes(mutant)
    holds(read, copy / name, error, well_formed)


# ---- lying headers: refused before anything of their size is allocated ------------------------------------------
MB = 2**20


def peak_allocation(read: Callable[[], Any], error: type[Exception], match: str) -> int:
    """Bytes allocated at the peak while ``read()`` raises ``error`` matching ``match``."""
    tracemalloc.start()
    try:
        with pytest.raises(error, match=match):
            read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_an_idx_header_claiming_a_billion_images_is_refused_without_allocating_them(tmp_path, gz):
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 10**9, 28, 28)
    payload = header + bytes(1024)
    path = tmp_path / ("big-idx3-ubyte.gz" if gz else "big-idx3-ubyte")
    path.write_bytes(gzip.compress(payload) if gz else payload)
    start = time.perf_counter()
    peak = peak_allocation(lambda: D.read_idx(path), DataError,
                           rf"{path.name}: truncated: IDX header says shape \(1000000000, 28, 28\) of uint8 "
                           r"\(784,000,000,000 bytes of data\) but the (decompressed )?file holds 1,024 bytes of data")
    assert peak < 50 * MB and time.perf_counter() - start < 5


@pytest.mark.parametrize("shape, message", [
    ((0, 2**32 - 1, 2**32 - 1), r"shape \(0, 4294967295, 4294967295\), which no array can hold"),  # empty, too big
    ((1,) * 65, "65 dimensions, which no array can hold"),  # past NumPy's limit
])
def test_an_idx_header_no_array_can_hold_is_a_data_error(tmp_path, shape, message):
    """Found by the fuzzer: NumPy's own ValueError ("array is too big", "maximum supported dimension") came
    through, naming no file."""
    path = tmp_path / "odd-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape))
    with pytest.raises(DataError, match=rf"odd-idx3-ubyte: impossible IDX header: {message}"):
        D.read_idx(path)


def test_a_gzip_bomb_after_an_idx_header_is_not_decompressed_past_what_the_header_says(tmp_path):
    # a header of 1,000 images of 28x28 (784 kB), then 100 MB of zeros in a 100 kB file: the reader stops one
    # byte past the 784 kB instead of decompressing the lot
    path = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 1000, 28, 28))
        for _ in range(100):
            f.write(bytes(MB))
    assert path.stat().st_size < MB
    peak = peak_allocation(lambda: D.read_idx(path), DataError,
                           r"bomb-idx3-ubyte\.gz: has extra bytes: IDX header says shape \(1000, 28, 28\) of uint8 "
                           r"\(784,000 bytes of data\) but the decompressed file holds more")
    assert peak < 10 * MB


def test_a_safetensors_header_length_of_2_to_the_60_is_refused_without_allocating(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    dl.save({"w": np.zeros(3, np.float32)}, path)
    path.write_bytes((2**60).to_bytes(8, "little") + path.read_bytes()[8:])
    for read in (dl.load, read_checkpoint):
        peak = peak_allocation(lambda: read(path), CheckpointError,  # noqa: B023 - called at once
                               r"checkpoint\.safetensors is not a readable safetensors file \(its header length "
                               r"says 1,152,921,504,606,846,976 bytes of JSON, but the file holds \d+ bytes")
        assert peak < 50 * MB


def test_safetensors_shapes_that_overflow_or_disagree_with_the_offsets(tmp_path):
    path = tmp_path / "model.safetensors"
    for shape, offsets in (([2**40, 2**40], [0, 24]), ([7], [0, 24]), ([-1], [0, 24]), ([6], [0, 2**62])):
        header = {"w": {"dtype": "F32", "shape": shape, "data_offsets": offsets}}
        path.write_bytes(join_safetensors(header, bytes(24)))
        with pytest.raises(CheckpointError, match=r"model\.safetensors is not a readable safetensors file"):
            dl.load(path)


def test_a_skeleton_naming_a_missing_array_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    write_checkpoint(path, {"position": {"step": 1}, "w": np.zeros(2, np.float32)})
    header, body = split_safetensors(path.read_bytes())
    header["__metadata__"]["dlbasics"] = json.dumps({"format": 1, "skeleton": {"position": {"__tensor__": "nope"}}})
    path.write_bytes(join_safetensors(header, body))
    with pytest.raises(CheckpointError, match=r"checkpoint\.safetensors: its 'dlbasics' metadata is corrupt \(the "
                                              r"skeleton names an array 'nope' that the file does not hold\)"):
        read_checkpoint(path)


def test_a_toml_dotted_key_of_thousands_of_parts_is_refused_before_parsing(tmp_path):
    # tomllib would take gigabytes: its memory grows with the square of the number of parts
    path = tmp_path / "run.toml"
    path.write_text("lr = 0.1\n" + "a." * 100_000 + "b = 1\n")
    peak = peak_allocation(lambda: read_toml(path), ConfigError,
                           r"run\.toml: not valid TOML for a run \(line 2: a dotted key of more than 15 parts")
    assert peak < 50 * MB


@pytest.mark.parametrize("text", ["a = " + "[" * 100_000, "a = " + "{b = " * 100_000], ids=["arrays", "tables"])
def test_toml_and_json_nested_a_hundred_thousand_deep(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"run\.toml: not valid TOML \(values nested too deeply to read\)"):
        read_toml(path)
    path = tmp_path / "tokenizer.json"
    path.write_text("[" * 100_000)
    with pytest.raises(DataError, match=r"tokenizer\.json is not a tokenizer file \(JSON nested too deeply"):
        load_tokenizer(path)


def test_the_messages_users_see(tmp_path):
    """The lines of docs/errors.md's "Tested elsewhere" rows for these readers."""
    idx = tmp_path / "train-images-idx3-ubyte"
    write_idx(idx, np.zeros((4, 3, 3), np.uint8))
    idx.write_bytes(idx.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated: IDX header says shape \(4, 3, 3\) of "
                                        r"uint8 \(36 bytes of data\) but the file holds 31 bytes of data"):
        D.read_idx(idx)
    cifar = tmp_path / "data_batch_1.bin"
    cifar.write_bytes(cifar_bytes()[:-1])
    with pytest.raises(DataError, match=r"data_batch_1\.bin: 6145 bytes is not a positive multiple of the "
                                        r"3073-byte CIFAR-10 record"):
        D.read_cifar_batch(cifar)
    ckpt = tmp_path / "checkpoint.safetensors"
    write_checkpoint(ckpt, checkpoint_state())
    ckpt.write_bytes(ckpt.read_bytes()[:-7])
    with pytest.raises(CheckpointError, match=r"checkpoint\.safetensors is not a readable safetensors file \("):
        read_checkpoint(ckpt)
    toml = tmp_path / "run.toml"
    toml.write_bytes(b"lr = 0.1\xff\n")
    with pytest.raises(ConfigError, match=r"--config .*run\.toml: not valid TOML \(not UTF-8: byte 0xff at offset 8"):
        read_toml(toml)
    vocab = tmp_path / "tokenizer.json"
    vocab.write_text(json.dumps({"type": "char", "format": 1, "vocab": ["a", "bc"], "unk": None}))
    with pytest.raises(DataError, match=r"tokenizer\.json: not a valid char tokenizer file: CharTokenizer: every "
                                        r"vocabulary entry must be one character, got 'bc'"):
        load_tokenizer(vocab)
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"abc")
    with pytest.raises(DataError, match=r"corpus\.txt: too short: its 3 characters give 2 training and 1 validation "
                                        r"tokens, and a window of block_size 64 needs 65 in each"):
        text_sets.text(str(corpus))
    pairs = tmp_path / "pairs.tsv"
    pairs.write_bytes(b"Go.\tVe.\n\xe9t\xe9\tsummer\n")
    with pytest.raises(DataError, match=r"pairs\.tsv is not UTF-8 text: byte 0xe9 at offset 8"):
        read_pairs(pairs)
