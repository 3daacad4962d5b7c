"""The planar lowering: windows gathered from zero-padded (H, W) planes, for convolutions with few input channels.

**When**: stride 1, no groups, and few input channels on images not much wider than the output (``Planar.pays``):
the CIFAR stem, 3 -> 16 channels. Its output is laid out for the next conv: channels-last when that one would not be
planar (the stem feeding ResNet's shifted convs), planes otherwise.

**Why faster than the reference**: an NHWC window run is only kw C values long (5 for LeNet's first layer), so
gathering NHWC windows copies tiny pieces. From planes, each window offset is one run of Ho Wp values: cols
(C kh kw, N Ho Wp) is kh kw C long copies, every output row computed over the full padded width Wp (the extra
columns are dropped). Then out^T (O, N Ho Wp) = W (O, C kh kw) @ cols, with PyTorch's weight layout as it is.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dlbasics.ops._blas import gemm, matmul_split
from dlbasics.ops._layout import axis_order, empty_in_order, per_channel
from dlbasics.ops.conv.geometry import Geometry, block_buffer, blocks

# planar blocks are larger: its GEMMs have few rows (O) and its col2im adds one slab per kernel offset and block,
# so per-call costs, not cache misses, dominate at BLOCK_BYTES
PLANAR_SCALE = 8


class Planar:
    """Windows gathered from zero-padded (H, W) planes as runs
    of Ho * Wp values, out^T (O, N Ho Wp) = W (O, C kh kw) @ cols, the Wp - Wo extra columns dropped.

    The planes get one spare row below the padding, so the last window's run (which reaches (kw - 1) d past
    the padded plane) stays inside its own plane; what it reads there only feeds dropped columns."""

    def __init__(self, geo: Geometry) -> None:
        self.geo = geo
        pt, pb, pl, pr = geo.pads
        self.hp, self.wp = geo.h + pt + pb + (1 if geo.kw > 1 else 0), geo.w + pl + pr
        self.run = geo.ho * self.wp  # one output plane, over-computed to the full padded width
        # the output in the layout a next conv with this kernel on O channels wants: channels-last where that conv
        # would not be planar (the ResNet stem feeding 16-channel convs), else planes (LeNet's 1 -> 6)
        self.channels_last = not Planar.pays(geo._replace(c=geo.o))

    @staticmethod
    def supports(geo: Geometry) -> bool:
        return geo.stride == (1, 1) and geo.groups == 1

    @staticmethod
    def pays(geo: Geometry) -> bool:
        """Where NHWC runs (kw C values) would be short and the extra columns few."""
        return geo.kw * geo.c < 32 and geo.w + geo.pads[2] + geo.pads[3] <= 1.5 * geo.wo

    def _planes(self, a: np.ndarray) -> np.ndarray:
        """(C, N, Hp Wp) view of a planes array (N, C, Hp, Wp) stored N- or C-major."""
        return a.reshape(a.shape[0], a.shape[1], -1) if a.flags.c_contiguous else \
            a.transpose(1, 0, 2, 3).reshape(a.shape[1], a.shape[0], -1).transpose(1, 0, 2)

    def _gather_blocks(self, xp: np.ndarray):
        """Yield (images, cols (C kh kw, nb Ho Wp)) blocks from padded planes, in one reused buffer."""
        geo, it = self.geo, xp.itemsize
        planes = self._planes(xp).transpose(1, 0, 2)  # (C, N, Hp Wp)
        win = as_strided(planes, (geo.c, geo.kh, geo.kw, geo.n, self.run),
                         (planes.strides[0], geo.dilation[0] * self.wp * it, geo.dilation[1] * it,
                          planes.strides[1], it), writeable=False)
        k = geo.c * geo.kh * geo.kw
        buf = block_buffer(geo.n, 1, k * self.run * it, xp.dtype, PLANAR_SCALE)
        for ns, _ in blocks(geo.n, 1, k * self.run * it, PLANAR_SCALE):
            nb = ns.stop - ns.start
            cols = buf[:k * nb * self.run].reshape(geo.c, geo.kh, geo.kw, nb, self.run)
            np.copyto(cols, win[:, :, :, ns])
            yield ns, cols.reshape(k, nb * self.run)

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, keep_input: bool) -> np.ndarray:
        geo = self.geo
        pt, _, pl, _ = geo.pads
        # planes in the input's own order of N and C (C-major after a planar conv), so the copy keeps runs
        self.order = (1, 0, 2, 3) if axis_order(x)[:2] == (1, 0) else (0, 1, 2, 3)
        xp = empty_in_order((geo.n, geo.c, self.hp, self.wp), self.order, x.dtype)
        xp.fill(0)
        xp[:, :, pt:pt + geo.h, pl:pl + geo.w] = x
        self.w2 = w.reshape(geo.o, -1)  # (O, C kh kw): PyTorch's layout is already the row order (c, i, j)
        out = self._by_positions(np.empty(self._full_shape(), x.dtype))
        gathered = []
        for ns, cols in self._gather_blocks(xp):
            gemm(self.w2, cols, out[:, ns.start * self.run:ns.stop * self.run], beta=0.0)
            gathered.append((ns, cols))
        # dW needs the columns again: when they were one block (at most PLANAR_SCALE * BLOCK_BYTES), keep them
        # rather than gather again; else keep the padded input
        self.saved = None if not keep_input else gathered if len(gathered) == 1 else xp
        if b is not None:
            if self.channels_last:
                per_channel(np.add, out.T, b, out.T)
            else:
                out += b[:, None]
        return self._from_full(out)

    def _full_shape(self) -> tuple[int, ...]:
        """The output buffer over every padded column: (N, Ho, Wp, O) channels-last, else (O, N, Ho, Wp)."""
        geo = self.geo
        return (geo.n, geo.ho, self.wp, geo.o) if self.channels_last else (geo.o, geo.n, geo.ho, self.wp)

    def _by_positions(self, full: np.ndarray) -> np.ndarray:
        """The (O, N Ho Wp) matrix of a ``_full_shape`` buffer (a transposed view when channels-last)."""
        return full.reshape(-1, self.geo.o).T if self.channels_last else full.reshape(self.geo.o, -1)

    def _nchw(self, full: np.ndarray) -> np.ndarray:
        """The (N, O, Ho, Wp) view of a ``_full_shape`` buffer, every padded column included."""
        return full.transpose(0, 3, 1, 2) if self.channels_last else full.transpose(1, 0, 2, 3)

    def _from_full(self, out: np.ndarray) -> np.ndarray:
        """The NCHW view of the real output columns of a ``_by_positions`` matrix."""
        full = out.T.reshape(self._full_shape()) if self.channels_last else out.reshape(self._full_shape())
        return self._nchw(full)[:, :, :, :self.geo.wo]

    def grads(self, grad: np.ndarray, need_x: bool, need_w: bool, need_b: bool):
        geo = self.geo
        gfull = np.empty(self._full_shape(), grad.dtype)  # dy in the output's layout, zero in the dropped columns
        view = self._nchw(gfull)
        view[:, :, :, geo.wo:] = 0
        view[:, :, :, :geo.wo] = grad
        gflat = self._by_positions(gfull)  # (O, N Ho Wp)
        gx = gw = gb = None
        if need_b:
            gb = gflat @ np.ones(gflat.shape[1], grad.dtype)
        if need_w:
            gw = np.zeros_like(self.w2.T)
            part = np.empty_like(gw)
            saved = self.saved
            for ns, cols in saved if isinstance(saved, list) else self._gather_blocks(saved):
                # dW^T = cols dy^T, the reduction over both cores
                matmul_split(cols, gflat[:, ns.start * self.run:ns.stop * self.run].T, part)
                gw += part
            gw = gw.T.reshape(geo.o, geo.c, geo.kh, geo.kw)
        if need_x:
            gx = self._col2im(gflat)
        return gx, gw, gb

    def _col2im(self, gflat: np.ndarray) -> np.ndarray:
        """dcols = W^T dy per block, each kernel offset's (C, nb, Ho Wp) slab added back into the planes at its
        shift (kh * kw adds of long runs); the dropped columns of dy are zero, so they add nothing."""
        geo = self.geo
        dxp = empty_in_order((geo.n, geo.c, self.hp, self.wp), self.order, gflat.dtype)
        dxp.fill(0)
        planes = self._planes(dxp).transpose(1, 0, 2)  # (C, N, Hp Wp), a view
        k = geo.c * geo.kh * geo.kw
        row_bytes = k * self.run * gflat.itemsize
        buf = block_buffer(geo.n, 1, row_bytes, gflat.dtype, PLANAR_SCALE)
        wt = self.w2.T
        for ns, _ in blocks(geo.n, 1, row_bytes, PLANAR_SCALE):
            nb = ns.stop - ns.start
            dcols = buf[:k * nb * self.run].reshape(k, nb * self.run)
            gemm(wt, gflat[:, ns.start * self.run:ns.stop * self.run], dcols, beta=0.0)
            dcols = dcols.reshape(geo.c, geo.kh, geo.kw, nb, self.run)
            for i in range(geo.kh):
                for j in range(geo.kw):
                    s = i * geo.dilation[0] * self.wp + j * geo.dilation[1]
                    planes[:, ns, s:s + self.run] += dcols[:, i, j]
        pt, _, pl, _ = geo.pads
        return dxp[:, :, pt:pt + geo.h, pl:pl + geo.w]
