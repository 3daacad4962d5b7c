"""Convolutions that compute only the gradients asked for, and the blocks their gathers run in.

The cases of convolution, transposed convolution, pooling, padding and local response norm live in one table,
``tests/oracle/test_conv_parity.py``: each runs PyTorch parity in float32 and float64 and, where smooth, the
finite-difference check (``test_gradients_match_finite_differences``); each fast lowering equals the reference
convolution, itself checked by finite differences (``tests/ops/test_conv_lowerings.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics.ops import conv as conv_ops

_rng = np.random.default_rng(8765)
LOWERINGS = ["toeplitz", "planar", "shifted", "shifted-one-pixel-per-row", "channels_last"]  # tests/conftest.py


def r(*shape: int) -> np.ndarray:
    return _rng.standard_normal(shape)


@pytest.mark.parametrize("wanted", ["x", "w", "b", "xw", "xb", "wb"])
def test_conv_transpose_computes_only_the_gradients_asked_for(wanted):
    arrays = {"x": r(2, 4, 3, 4), "w": r(4, 3, 3, 3), "b": r(6)}
    g = r(2, 6, 6, 8)

    def grads(trainable: str) -> dict[str, np.ndarray | None]:
        t = {k: dl.tensor(a, dtype=dl.float64, requires_grad=k in trainable) for k, a in arrays.items()}
        F.conv_transpose2d(t["x"], t["w"], t["b"], stride=2, padding=1, output_padding=1, groups=2).backward(
            dl.tensor(g, dtype=dl.float64))
        return {k: v.grad for k, v in t.items()}

    full, part = grads("xwb"), grads(wanted)
    for k in "xwb":
        if k in wanted:
            np.testing.assert_allclose(part[k], full[k], rtol=1e-12, atol=1e-12, err_msg=k)
        else:
            assert part[k] is None


@pytest.mark.parametrize("lowering", LOWERINGS)
@pytest.mark.parametrize("wanted", ["x", "w", "b", "xw", "xb", "wb"])
def test_conv_computes_only_the_gradients_asked_for(lowering, wanted, force_lowering):
    """With some of input, weight and bias frozen, each lowering's remaining gradients equal those of the
    all-trainable conv (each lowering has its own branches for dx, dW and db)."""
    force_lowering(lowering)
    arrays = {"x": r(2, 3, 6, 7), "w": r(4, 3, 3, 3), "b": r(4)}
    g = r(2, 4, 6, 7)

    def grads(trainable: str) -> dict[str, np.ndarray | None]:
        t = {k: dl.tensor(a, dtype=dl.float64, requires_grad=k in trainable) for k, a in arrays.items()}
        F.conv2d(t["x"], t["w"], t["b"], padding=1).backward(dl.tensor(g, dtype=dl.float64))
        return {k: v.grad for k, v in t.items()}

    full, part = grads("xwb"), grads(wanted)
    for k in "xwb":
        if k in wanted:
            np.testing.assert_allclose(part[k], full[k], rtol=1e-12, atol=1e-12, err_msg=k)
        else:
            assert part[k] is None


def test_conv_blocks_cover_the_output_once():
    geometry = conv_ops.geometry
    rows = list(geometry.blocks(5, 7, geometry.BLOCK_BYTES // 3))  # 3 rows per block
    cells = [(n, y) for ns, ys in rows for n in range(ns.start, ns.stop) for y in range(ys.start, ys.stop)]
    assert cells == [(n, y) for n in range(5) for y in range(7)]
    assert {ys.stop - ys.start for _, ys in rows} == {3, 1}
