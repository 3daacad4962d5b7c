"""Saving and loading with no pickling: arrays go to a safetensors file, everything else (ints, floats,
strings, the nesting of dicts and lists) to a JSON skeleton stored in that file's metadata.

A flat ``{name: array}`` mapping - a model's ``state_dict()`` - is stored under its own names, so
``safetensors.torch.load_file(path)`` gives PyTorch the same state dict. Nested objects (a model and its
optimizer and the epoch in one checkpoint) store each array under its path, e.g. ``optimizer/state/0/exp_avg``.
Writes are atomic: a temp file in the same folder, fsync, then rename, so a crash never leaves a torn file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save as _st_save

from dlbasics.errors import CheckpointError
from dlbasics.tensor import Tensor

_META_KEY = "dlbasics"
_FORMAT = 1


def _state_of(obj: Any) -> Any:
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        return obj.state_dict()
    return obj


def _storable(a: np.ndarray | Tensor, path: str) -> np.ndarray:
    """A C-contiguous copy only where needed (``np.ascontiguousarray`` would turn 0-d into 1-d)."""
    a = a.data if isinstance(a, Tensor) else a
    if a.dtype.kind not in "biuf":
        raise TypeError(f"save: cannot store an array of dtype {a.dtype} at '{path}'")
    return a if a.flags.c_contiguous else a.copy(order="C")


def _encode(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """The JSON skeleton of ``obj``; arrays are moved into ``arrays`` and referenced by key."""
    if isinstance(obj, np.ndarray | Tensor):
        arrays[path] = _storable(obj, path)
        return {"__tensor__": path}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) for k in obj) and not any(k.startswith("__") for k in obj):
            return {k: _encode(v, f"{path}/{k}" if path else k, arrays) for k, v in obj.items()}
        return {"__items__": [[_key(k, path), _encode(v, f"{path}/{k}" if path else str(k), arrays)]
                              for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(obj)]
    raise TypeError(f"save: cannot store a {type(obj).__name__} at '{path or '/'}' (arrays, numbers, strings, "
                    "None, and dicts/lists/tuples of them)")


def _key(k: Any, path: str) -> Any:
    if isinstance(k, bool | int | float | str):
        return k
    raise TypeError(f"save: dict key {k!r} at '{path or '/'}' must be a str, int or float")


def _decode(node: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """The object of JSON skeleton ``node``; ValueError saying what is wrong if it is not one ``_encode`` makes."""
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if isinstance(node, dict):
        if "__tensor__" in node:
            return _array(node["__tensor__"], arrays)
        if "__tuple__" in node:
            return tuple(_decode(v, arrays) for v in _list(node["__tuple__"], "__tuple__"))
        if "__items__" in node:
            items = _list(node["__items__"], "__items__")
            if not all(isinstance(kv, list) and len(kv) == 2 and isinstance(kv[0], bool | int | float | str)
                       for kv in items):
                raise ValueError("an __items__ entry is not a [key, value] pair")
            return OrderedDict((k, _decode(v, arrays)) for k, v in items)
        return OrderedDict((k, _decode(v, arrays)) for k, v in node.items())
    return node


def _array(key: Any, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    if not isinstance(key, str) or key not in arrays:
        raise ValueError(f"the skeleton names an array {key!r} that the file does not hold")
    return arrays[key]


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{what} holds a {type(value).__name__}, not a list")
    return value


def _check_header_length(path: Path) -> None:
    """Refuse a file whose first 8 bytes (the little-endian length of its JSON header) promise more than the
    file holds, before safetensors reads anything: ValueError saying so."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
    if len(head) < 8:
        raise ValueError(f"{size} bytes, too short for the 8-byte header length a safetensors file begins with")
    n = int.from_bytes(head, "little")
    if n > size - 8:
        raise ValueError(f"its header length says {n:,} bytes of JSON, but the file holds {size - 8:,} bytes "
                         "after it: truncated or not a safetensors file")


def _one_line(e: BaseException, limit: int = 300) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_png(fig: Any, path: str | os.PathLike, dpi: int = 100) -> None:
    """A matplotlib ``Figure`` saved as a PNG at ``path``, atomically; no "Software" stamp, so the same figure gives
    the same bytes on every machine."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save(obj: Any, path: str | os.PathLike) -> None:
    """Save a state dict, a ``Module``/``Optimizer`` (its state dict) or a nested dict of them to ``path``.

    Example: ``dl.save({"model": model, "optimizer": opt, "epoch": 3}, "ckpt.safetensors")``.
    """
    obj = _state_of(obj)
    if isinstance(obj, Mapping):
        obj = {k: _state_of(v) for k, v in obj.items()}
    arrays: dict[str, np.ndarray] = {}
    flat = isinstance(obj, Mapping) and all(
        isinstance(k, str) and isinstance(v, np.ndarray | Tensor) for k, v in obj.items()
    )
    if flat:  # plain names, readable by safetensors.torch.load_file as a state dict
        for k, v in obj.items():
            arrays[k] = _storable(v, k)
        skeleton: Any = {"__flat__": list(arrays)}
    else:
        skeleton = _encode(obj, "", arrays)
    meta = {_META_KEY: json.dumps({"format": _FORMAT, "skeleton": skeleton})}
    atomic_write_bytes(path, _st_save(arrays, metadata=meta))


def load(path: str | os.PathLike) -> Any:
    """Load what ``save`` wrote: arrays come back as ``numpy.ndarray``, dicts as ``OrderedDict``.

    A safetensors file written elsewhere (e.g. by PyTorch) loads as a flat ``{name: array}`` dict.
    ``FileNotFoundError`` if there is no file; ``CheckpointError`` (a ``ValueError``) naming the file and what
    is wrong if it is not a safetensors file, is truncated, or holds a corrupt dlbasics skeleton. Memory
    stays within the file's size: the header length is checked against it before anything is read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load: no such file: {path}")
    try:
        _check_header_length(path)
        with safe_open(str(path), framework="np") as f:
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a Mapping
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types (and numpy's, for a dtype it lacks)
        raise CheckpointError(f"{path} is not a readable safetensors file ({_one_line(e)})") from None
    if _META_KEY not in meta:
        return OrderedDict(arrays)
    try:
        info = json.loads(meta[_META_KEY])
        if not isinstance(info, dict) or "skeleton" not in info:
            raise ValueError(f"no skeleton in its {_META_KEY!r} metadata")
        skeleton = info["skeleton"]
        if isinstance(skeleton, dict) and "__flat__" in skeleton:
            return OrderedDict((k, _array(k, arrays)) for k in _list(skeleton["__flat__"], "__flat__"))
        return _decode(skeleton, arrays)
    except (ValueError, RecursionError) as e:  # json.JSONDecodeError is a ValueError; RecursionError: too deep
        raise CheckpointError(f"{path}: its {_META_KEY!r} metadata is corrupt ({_one_line(e)})") from None
