"""Process-level tuning applied once at import.

glibc hands every allocation above M_MMAP_THRESHOLD (128 KiB by default) fresh pages from mmap and
returns them on free, so each large temporary of a training step is page-faulted in again: measured
here at 25-45% of a NumPy training step. Raising the mmap threshold and the trim threshold keeps freed
activation buffers in the heap for reuse. Linux/glibc only; elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> bool:
    """Raise glibc's mmap/trim thresholds; returns True when applied. Opt out with DLBASICS_NO_MALLOPT=1."""
    if not sys.platform.startswith("linux") or os.environ.get("DLBASICS_NO_MALLOPT"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):  # musl or no glibc: nothing to tune
        return False
    return bool(ok)
