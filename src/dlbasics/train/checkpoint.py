"""The checkpoint file of a run: the loop's whole state in one safetensors file, written so that a crash at
any moment leaves either the previous checkpoint or the new one, never a torn file that is taken for one.

Writing: a temporary file in the same folder, fsync, rename over the old checkpoint, fsync of the folder
(so the rename itself survives a power cut). Reading: safetensors checks its header against the file's
length, so a file cut short is refused; leftover temporary files of a killed writer are ignored (and
removed by ``clean_temporary``). No pickle: arrays in safetensors, the rest as JSON in its metadata.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dlbasics.errors import CheckpointError
from dlbasics.io import load, save


def write_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically replace ``path`` with ``state`` and make the rename durable."""
    path = Path(path)
    save(state, path)  # temp file + fsync + rename (dlbasics.io)
    fsync_dir(path.parent)


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (a rename into it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The state in checkpoint ``path``; ``CheckpointError`` if there is none or it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: the run was stopped before its first checkpoint, or it is "
                              "not a run folder")
    try:
        state = load(path)
    except CheckpointError:
        raise  # names the file and what is wrong with it
    except (ValueError, OSError) as e:  # OSError: e.g. no permission to read it
        raise CheckpointError(f"{path} is not a readable checkpoint ({e})") from None
    if not isinstance(state, dict) or "position" not in state:
        raise CheckpointError(f"{path} is not a checkpoint of a training loop (no position)")
    return state


def clean_temporary(folder: str | Path, name: str = "checkpoint.safetensors") -> list[Path]:
    """Remove the temporary files a killed writer of ``name`` left in ``folder``; returns them."""
    leftovers = sorted(Path(folder).glob(f".{name}.*.tmp"))
    for p in leftovers:
        p.unlink(missing_ok=True)
    return leftovers
