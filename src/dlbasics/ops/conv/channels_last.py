"""The general lowering: NHWC im2col in cache-sized blocks, one GEMM per block (batched over groups).

**When**: grouped convolutions (depthwise ones included), which no other lowering supports, and wherever another
lowering is forced but does not apply. Shifted reuses its pieces (dW for many channels) and the transposed
convolution its col2im.

**Why faster than the reference** (``reference.py``, the same products): windows are gathered from an NHWC view of
the padded input into one reused buffer of about ``BLOCK_BYTES`` at a time, each block multiplied at once while
it is in cache, so the kh kw times larger columns are never all in memory, and backward gathers again instead of
keeping them. The product cols @ W (kh kw C, O) is already NHWC; it is returned as an NCHW *view* of that buffer,
so the next conv's NCHW -> NHWC transpose is free and a stack of convs never reorders memory. dW = cols^T dy;
dcols = dy W^T goes back by one strided add per kernel offset (col2im without ``np.add.at``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dlbasics.ops._layout import per_channel
from dlbasics.ops.conv.geometry import Geometry, block_buffer, blocks, pad_nhwc, windows


class _Im2col:
    """Gathers blocks of windows of a padded NHWC array into one reused buffer, as the (groups, rows,
    kh kw C/g) matrices of the per-group GEMMs; the column order (i, j, c) matches ``weight_matrix``."""

    def __init__(self, xp: np.ndarray, out_hw: tuple[int, int], k: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int], groups: int) -> None:
        self.win = windows(xp, *out_hw, k, stride, dilation)  # (N, Ho, Wo, kh, kw, C)
        self.g, self.k = groups, k[0] * k[1] * (xp.shape[3] // groups)
        self.row_bytes = out_hw[1] * self.k * groups * xp.itemsize
        self.buf = block_buffer(xp.shape[0], out_hw[0], self.row_bytes, xp.dtype)

    def blocks(self) -> Iterator[tuple[slice, slice, slice, np.ndarray]]:
        """Yield (images, rows, M range, cols (g, rows, K)); cols lives in the shared buffer until the next."""
        n, ho, wo, kh, kw, c = self.win.shape
        g = self.g
        for ns, ys in blocks(n, ho, self.row_bytes):
            nb, yb = ns.stop - ns.start, ys.stop - ys.start
            rows = nb * yb * wo
            src = self.win[ns, ys]
            if g == 1:
                cols = self.buf[:rows * self.k].reshape(1, nb, yb, wo, kh, kw, c)
                np.copyto(cols[0], src)
            else:  # (g, rows, kh, kw, C/g): each group's columns contiguous
                cols = self.buf[:rows * self.k * g].reshape(g, nb, yb, wo, kh, kw, c // g)
                np.copyto(cols, src.reshape(nb, yb, wo, kh, kw, g, c // g).transpose(5, 0, 1, 2, 3, 4, 6))
            m0 = (ns.start * ho + ys.start) * wo
            yield ns, ys, slice(m0, m0 + rows), cols.reshape(g, rows, self.k)


def weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """(O, C/g, kh, kw) -> (g, kh kw C/g, O/g): rows in the columns' (i, j, c) order."""
    o, cg, kh, kw = w.shape
    return w.reshape(groups, o // groups, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(groups, kh * kw * cg,
                                                                                      o // groups)


def correlate(xp: np.ndarray, wm: np.ndarray, out_hw: tuple[int, int], k: tuple[int, int],
              stride: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
    """The (N Ho Wo, O) correlation of a padded NHWC array with weights ``weight_matrix``: blockwise im2col,
    each block one (batched over groups) GEMM written straight into its rows of the output."""
    g, _, og = wm.shape
    im = _Im2col(xp, out_hw, k, stride, dilation, g)
    out = np.empty((xp.shape[0] * out_hw[0] * out_hw[1], g * og), xp.dtype)
    for _, _, mr, cols in im.blocks():
        if g == 1:
            np.matmul(cols[0], wm[0], out=out[mr])
        else:
            np.matmul(cols, wm, out=out[mr].reshape(-1, g, og).transpose(1, 0, 2))
    return out


class ChannelsLast:
    """NHWC im2col in blocks, one GEMM per block (batched over groups); see the module docstring."""

    def __init__(self, geo: Geometry) -> None:
        self.geo = geo

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, keep_input: bool) -> np.ndarray:
        geo = self.geo
        xp = pad_nhwc(x.transpose(0, 2, 3, 1), geo.pads)
        self.wm = weight_matrix(w, geo.groups)
        out = correlate(xp, self.wm, (geo.ho, geo.wo), (geo.kh, geo.kw), geo.stride, geo.dilation)
        if b is not None:
            per_channel(np.add, out, b, out)
        self.xp = xp if keep_input else None  # the padded input, not its columns: backward gathers again
        self.padded = xp.shape
        return out.reshape(geo.n, geo.ho, geo.wo, geo.o).transpose(0, 3, 1, 2)

    def grads(self, grad: np.ndarray, need_x: bool, need_w: bool, need_b: bool):
        """(dx NCHW view, dW (O, C/g, kh, kw), db) for dy (N, O, Ho, Wo) of any layout."""
        geo = self.geo
        m, o = geo.n * geo.ho * geo.wo, geo.o
        gm = np.ascontiguousarray(grad.transpose(0, 2, 3, 1)).reshape(m, o)  # free when dy is NHWC already
        gx = gw = gb = None
        if need_w:
            gw = self.weight_grad(gm)
        if need_b:
            gb = np.ones(m, gm.dtype) @ gm  # BLAS: both cores, unlike NumPy's column sum
        if need_x:
            gx = self._input_grad(gm).transpose(0, 3, 1, 2)
        return gx, gw, gb

    def weight_grad(self, gm: np.ndarray) -> np.ndarray:
        """dW (O, C/g, kh, kw) for dy as the (N Ho Wo, O) matrix gm (the input kept by ``forward``)."""
        _, c, _, _, o, kh, kw, _, _, g = self.geo[:10]
        return self._weight_grad(gm).reshape(g, kh, kw, c // g, o // g).transpose(0, 4, 3, 1, 2).reshape(
            o, c // g, kh, kw)

    def _weight_grad(self, gm: np.ndarray) -> np.ndarray:
        """dW = cols^T dy, summed over blocks of re-gathered columns: (g, kh kw C/g, O/g)."""
        geo = self.geo
        g, og = geo.groups, geo.o // geo.groups
        im = _Im2col(self.xp, (geo.ho, geo.wo), (geo.kh, geo.kw), geo.stride, geo.dilation, g)
        dwm = np.zeros((g, im.k, og), gm.dtype)
        part = np.empty_like(dwm)
        for _, _, mr, cols in im.blocks():
            gb = gm[mr].reshape(-1, g, og).transpose(1, 0, 2)
            dwm += np.matmul(cols.transpose(0, 2, 1), gb, out=part)
        return dwm

    def _input_grad(self, gm: np.ndarray) -> np.ndarray:
        """col2im, the adjoint of the gather: dcols = dy W^T per block, added back by one strided add per kernel offset
        (kh * kw adds, no np.add.at), then the padding is dropped. Returns NHWC."""
        n, c, h, wd, o, kh, kw, ho, wo, g, (sh, sw), pads, (dh, dw) = self.geo
        cg = c // g
        dxp = np.zeros(self.padded, gm.dtype)
        wt = self.wm.transpose(0, 2, 1)  # (g, O/g, K)
        row_bytes = wo * kh * kw * c * gm.itemsize
        buf = block_buffer(n, ho, row_bytes, gm.dtype)
        for ns, ys in blocks(n, ho, row_bytes):
            nb, yb = ns.stop - ns.start, ys.stop - ys.start
            m0 = (ns.start * ho + ys.start) * wo
            rows = nb * yb * wo
            gb = gm[m0:m0 + rows].reshape(rows, g, o // g).transpose(1, 0, 2)
            dcols = buf[:rows * kh * kw * c].reshape(nb, yb, wo, kh, kw, c)
            if g == 1:
                np.matmul(gb, wt, out=dcols.reshape(1, rows, kh * kw * c))
            else:  # (g, rows, kh kw C/g) -> the (rows, kh, kw, g, C/g) order of the adds
                np.copyto(dcols.reshape(rows, kh, kw, g, cg).transpose(3, 0, 1, 2, 4),
                          np.matmul(gb, wt).reshape(g, rows, kh, kw, cg))
            for i in range(kh):
                r0 = ys.start * sh + i * dh
                rows_sl = slice(r0, r0 + sh * (yb - 1) + 1, sh)
                for j in range(kw):
                    dxp[ns, rows_sl, j * dw:j * dw + sw * (wo - 1) + 1:sw, :] += dcols[:, :, :, i, j]
        pt, _, pl, _ = pads
        return dxp[:, pt:pt + h, pl:pl + wd, :]
