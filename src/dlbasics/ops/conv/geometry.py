"""What every lowering of a convolution shares: its sizes (``Geometry``), windows as a strided view, zero
padding, and the blocks that gathers work in.

Gathers (im2col) run in blocks of whole images, or of output rows of one image, of about ``BLOCK_BYTES`` of
columns, each block multiplied as soon as it is gathered: the block stays in the core's L2 cache instead of
streaming a kh kw times larger copy of the activation through memory, and backward gathers again from the padded
input instead of keeping the columns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

IntPair = int | Sequence[int]

# about one core's share of L2 (2 MiB a core here); the tests shrink it to 64 bytes so that every block edge is hit
BLOCK_BYTES = 1 << 20


def pair(v: IntPair, name: str) -> tuple[int, int]:
    t = (int(v), int(v)) if isinstance(v, int | np.integer) else tuple(int(a) for a in v)
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return t  # type: ignore[return-value]


def out_size(size: int, k: int, s: int, pad_total: int, d: int) -> int:
    return (size + pad_total - d * (k - 1) - 1) // s + 1


def windows(xp: np.ndarray, ho: int, wo: int, k: tuple[int, int], s: tuple[int, int],
            d: tuple[int, int]) -> np.ndarray:
    """The (N, Ho, Wo, kh, kw, C) view of a padded NHWC array: window (y, x) at offset (i, j). No copy."""
    sn, sh, sw, sc = xp.strides
    return as_strided(xp, (xp.shape[0], ho, wo, k[0], k[1], xp.shape[3]),
                      (sn, sh * s[0], sw * s[1], sh * d[0], sw * d[1], sc), writeable=False)


def pad_nhwc(xh: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """Zero-pad (top, bottom, left, right) an NHWC array (a view of the input when there is no padding)."""
    pt, pb, pl, pr = pads
    if not (pt or pb or pl or pr):
        return xh
    n, h, w, c = xh.shape
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c), xh.dtype)
    xp[:, pt:pt + h, pl:pl + w, :] = xh
    return xp


def blocks(n: int, ho: int, row_bytes: int, scale: int = 1) -> Iterator[tuple[slice, slice]]:
    """Yield (images, output rows) slices in M order, each with about scale * BLOCK_BYTES of columns."""
    budget = scale * BLOCK_BYTES
    per_image = ho * row_bytes
    if per_image <= budget:
        step = max(1, budget // per_image)
        for n0 in range(0, n, step):
            yield slice(n0, min(n, n0 + step)), slice(0, ho)
    else:
        rows = max(1, budget // row_bytes)
        for i in range(n):
            for y0 in range(0, ho, rows):
                yield slice(i, i + 1), slice(y0, min(ho, y0 + rows))


def block_buffer(n: int, ho: int, row_bytes: int, dtype: np.dtype, scale: int = 1) -> np.ndarray:
    """One flat buffer large enough for the largest of ``blocks(n, ho, row_bytes, scale)``."""
    return np.empty(min(n * ho * row_bytes, max(scale * BLOCK_BYTES, row_bytes)) // dtype.itemsize, dtype)


class Geometry(NamedTuple):
    """One conv's sizes: input (n, c, h, w), weight (o, c/groups, kh, kw), output (ho, wo), and its options."""

    n: int
    c: int
    h: int
    w: int
    o: int
    kh: int
    kw: int
    ho: int
    wo: int
    groups: int
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilation: tuple[int, int]
