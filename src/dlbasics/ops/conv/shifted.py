"""The shifted lowering: a convolution without groups as kh kw accumulating GEMMs on shifted rows, no im2col.

**When**: every convolution without groups that neither Toeplitz nor Planar pays for: ResNet's and VGG-like 3 x 3
stages, strided ones included (through phase images), and the transposed convolutions without groups.

**Why faster than the reference**: nothing is gathered. With the NHWC input laid out as rows with zero gaps between
image rows and between images, window offset (i, j) of every output position is one and the same row shift, so
each of the kh kw terms is a GEMM on a contiguous slice of the input, accumulated in place through BLAS's beta
(``ops/_blas.py``): the input is read kh kw times from cache-friendly slices instead of being copied kh kw times.
The class docstring has the index arithmetic; docs/benchmarks.md the measured gains.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dlbasics.ops._blas import BATCH_MIN_WORK, gemm, gemm_batch, matmul_split, threads
from dlbasics.ops._layout import per_channel
from dlbasics.ops.conv import geometry
from dlbasics.ops.conv.channels_last import ChannelsLast
from dlbasics.ops.conv.geometry import Geometry

# up to this many (C x O) weights per kernel offset, dW is kh kw reductions over the rows; above, ChannelsLast's
# blocked gathers win
SHIFTED_WEIGHT_GRAD_MAX = 32 * 32
# with at most this many channels in and out, two neighbouring pixels share each GEMM row: 1.33x the multiplies,
# but OpenBLAS runs 32-wide GEMMs much faster than 16-wide ones (docs/benchmarks.md)
PAIR_MAX_CHANNELS = 16


class Shifted(ChannelsLast):
    """No groups: the convolution as kh * kw accumulating GEMMs on shifted rows of the input, with no im2col.

    Stride 1. The input is stored NHWC with zero gaps, flattened to rows: each image row is followed by zero
    pixels and each image by zero rows, and one gap serves as the bottom (right) padding of one image (row) and
    the top (left) padding of the next, so it needs only max(pads) zeros, not their sum. With p = (n Hq + y) Wq
    + x the position of output (n, y, x) in that pitch (Hq >= H + max(pad_top, pad_bottom), Wq likewise) and
    the image starting at xf[base], base = pad_top Wq + pad_left, the offsets cancel:
        out[p] = sum_ij xf[p + s_ij] @ W_ij,   s_ij = d_h i Wq + d_w j,   W_ij = w[:, :, i, j]^T (C, O),
    computed for every p; those in the gaps are dropped: (Hq Wq) / (Ho Wo) extra work, 1.06x at 32x32 and 1.27x
    at 8x8 with pad 1 (the separate padding of each image cost 1.13x and 1.56x). Each term is a contiguous slice,
    so each GEMM reads the activation in place and accumulates through BLAS's beta (ops/_blas.py). With dy_full
    zero off the output positions, dx is the adjoint, dxf[p + s_ij] += dy_full[p] @ W_ij^T, and
    dW_ij = xf[s_ij:]^T dy_full: small outputs summed over every position. The positions are cut into blocks of
    about ``BLOCK_BYTES`` and all (block, tap) products go to one batched call, each core keeping its block in
    cache through the taps (_blas.gemm_batch); one block is split over the cores instead (_blas.matmul_split).
    Above ``SHIFTED_WEIGHT_GRAD_MAX`` (C x O) weights per offset, dW gathers in blocks as ChannelsLast does,
    from the padded view ``xp`` of the same rows.

    Stride s > 1 (polyphase): input row s y + d i - pad_top is row y + q_i of the phase image of rows
    = d i - pad_top (mod s), q_i = floor((d i - pad_top) / s); likewise for columns. So the s_h s_w phase images
    (every s-th row and column, from each start), stored one after another in the output's pitch, make each tap
    a contiguous shift again: the same GEMMs, on 1 / (s_h s_w) of the input each, and no gather; dx is scattered
    back from the phases once.

    Few channels (``PAIR_MAX_CHANNELS``, stride 1, unless ``pair_pixels=False``): in forward and dx, f = 2
    neighbouring pixels share one GEMM row (a free reshape of xf with Wq even). Output pixel f P + a reads pixel
    f P + a + s_ij, which lies in row P + (a + s_ij) // f at b = (a + s_ij) % f; the taps that land in the same row
    shift form one term with a (f C, f O) weight whose (b, a) block is W_ij: for a 3-wide kernel 2 kh GEMMs of
    twice the width instead of kh kw."""

    def __init__(self, geo: Geometry, pair_pixels: bool = True) -> None:
        super().__init__(geo)
        pt, _, pl, _ = geo.pads
        (sh, sw), (dh, dw) = geo.stride, geo.dilation
        pairs = pair_pixels and geo.stride == (1, 1) and dw == 1 and max(geo.c, geo.o) <= PAIR_MAX_CHANNELS
        self.f = f = 2 if pairs else 1
        taps_h = [divmod(dh * i - pt, sh) for i in range(geo.kh)]  # (offset q in output rows, phase)
        taps_w = [divmod(dw * j - pl, sw) for j in range(geo.kw)]
        qh, qw = [q for q, _ in taps_h], [q for q, _ in taps_w]
        # the pitch holds the tallest phase plus the zeros read above it, and every output row plus what it reads
        # below; the same across; each gap serves both its neighbours
        self.hq = max(-(-geo.h // sh) - min(qh), geo.ho + max(qh), geo.ho)
        self.wq = -(-max(-(-geo.w // sw) - min(qw), geo.wo + max(qw), geo.wo) // f) * f
        self.rows = geo.n * self.hq * self.wq
        self.phases = sorted({(ph, pw) for _, ph in taps_h for _, pw in taps_w})
        self.base = -min(qh) * self.wq - min(qw)  # zeros before the first phase's first image
        shift = {(i, j): self.base + self.phases.index((ph, pw)) * self.rows + q * self.wq + r
                 for i, (q, ph) in enumerate(taps_h) for j, (r, pw) in enumerate(taps_w)}
        self.pixel_shifts = shift
        groups: dict[int, list[tuple[int, int, int, int]]] = {}  # GEMM-row shift -> its taps (b, a, i, j)
        for (i, j), sij in shift.items():
            for a in range(f):
                groups.setdefault((a + sij) // f, []).append(((a + sij) % f, a, i, j))
        self.terms = sorted(groups.items())
        # dW in blocks of rows, each block's xf and dy (about BLOCK_BYTES together) kept in one core's cache
        # across all the taps; rows are padded with zeros to whole blocks of one size (one batched call)
        target = max(geometry.BLOCK_BYTES // ((geo.c + geo.o) * 4), -(-BATCH_MIN_WORK // (geo.c * geo.o)))
        self.blocks = max(1, self.rows // target)  # so blocks are at least the target
        self.block_rows = -(-self.rows // self.blocks)
        end = max(self.base + len(self.phases) * self.rows, max(shift.values()) + self.blocks * self.block_rows)
        self.size = -(-end // f) * f

    def _weights(self, w: np.ndarray) -> np.ndarray:
        """(terms, f C, f O): each term's weight, block (b, a) = W_ij for its taps (zero where none)."""
        geo, f = self.geo, self.f
        if getattr(self, "tap_index", None) is None:  # which W_ij each block takes; kh kw is the zero block
            self.tap_index = np.full((len(self.terms), f, f), geo.kh * geo.kw)
            for t, (_, taps) in enumerate(self.terms):
                for b, a, i, j in taps:
                    self.tap_index[t, b, a] = i * geo.kw + j
        wk = np.zeros((geo.kh * geo.kw + 1, geo.c, geo.o), w.dtype)
        wk[:-1] = w.transpose(2, 3, 1, 0).reshape(-1, geo.c, geo.o)
        wf = wk[self.tap_index]  # (terms, b, a, C, O)
        return np.ascontiguousarray(wf.transpose(0, 1, 3, 2, 4)).reshape(len(self.terms), f * geo.c, f * geo.o)

    def _phase_images(self, xf: np.ndarray):
        """Yield ((row phase, column phase), its (N, Hq, Wq, C) image in xf, its (rows, columns) of data)."""
        geo = self.geo
        (sh, sw), (h, w) = geo.stride, (geo.h, geo.w)
        for k, (ph, pw) in enumerate(self.phases):
            start = self.base + k * self.rows
            img = xf[start:start + self.rows].reshape(geo.n, self.hq, self.wq, geo.c)
            yield (ph, pw), img, ((h - ph + sh - 1) // sh, (w - pw + sw - 1) // sw)

    def padded_view(self, xf: np.ndarray) -> np.ndarray:
        """Stride 1: the zero-padded (N, H + pt + pb, W + pl + pr, C) input as a read-only view of the rows xf."""
        geo = self.geo
        pt, pb, pl, pr = geo.pads
        it, c = xf.itemsize, geo.c
        return as_strided(xf, (geo.n, geo.h + pt + pb, geo.w + pl + pr, c),
                          (self.hq * self.wq * c * it, self.wq * c * it, c * it, it), writeable=False)

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, keep_input: bool) -> np.ndarray:
        geo, f = self.geo, self.f
        (sh, sw) = geo.stride
        xf = np.empty((self.size, geo.c), x.dtype)
        xf[:self.base] = 0
        xf[self.base + len(self.phases) * self.rows:] = 0
        xt = x.transpose(0, 2, 3, 1)
        for (ph, pw), img, (hp, wp) in self._phase_images(xf):
            img[:, hp:] = 0
            img[:, :hp, wp:] = 0
            img[:, :hp, :wp] = xt[:, ph::sh, pw::sw]
        self.wf = self._weights(w)
        out = np.empty((self.rows, geo.o), x.dtype)
        xr, outr, m = xf.reshape(-1, f * geo.c), out.reshape(-1, f * geo.o), self.rows // f
        for t, (s, _) in enumerate(self.terms):
            gemm(xr[s:s + m], self.wf[t], outr, beta=0.0 if t == 0 else 1.0)
        if b is not None:
            per_channel(np.add, out, b, out)
        self.xf = xf if keep_input else None
        self.xp = self.padded_view(xf) if keep_input and geo.stride == (1, 1) else None
        return out.reshape(geo.n, self.hq, self.wq, geo.o)[:, :geo.ho, :geo.wo].transpose(0, 3, 1, 2)

    def _dy_full(self, gm: np.ndarray) -> np.ndarray:
        """dy on every position of the pitch, (N Hq Wq, O), zero off the outputs (and on the rows that pad it to
        whole dW blocks); built once for both gradients."""
        if getattr(self, "dyf", None) is None:
            geo = self.geo
            self.dyf = np.empty((self.blocks * self.block_rows, geo.o), gm.dtype)
            self.dyf[self.rows:] = 0
            dy = self.dyf[:self.rows].reshape(geo.n, self.hq, self.wq, geo.o)
            dy[:, geo.ho:] = 0
            dy[:, :geo.ho, geo.wo:] = 0
            dy[:, :geo.ho, :geo.wo] = gm.reshape(geo.n, geo.ho, geo.wo, geo.o)
        return self.dyf

    def _weight_grad(self, gm: np.ndarray) -> np.ndarray:
        geo = self.geo
        if geo.c * geo.o > SHIFTED_WEIGHT_GRAD_MAX and self.xp is not None:
            return super()._weight_grad(gm)
        # one pixel per row even where forward pairs them: the paired reductions (2C x 2O) cost as much as the
        # kh kw single ones and would need their blocks summed back
        dyf = self._dy_full(gm)
        grad = np.empty((geo.kh, geo.kw, geo.c, geo.o), gm.dtype)
        if self.blocks == 1:
            for (i, j), s in self.pixel_shifts.items():
                matmul_split(self.xf[s:s + self.rows].T, dyf[:self.rows], grad[i, j])
            return grad.reshape(1, -1, geo.o)
        # one product per (block, tap), ordered so that each round of as many products as OpenBLAS has threads
        # takes different blocks and the same tap: each thread then keeps its block through all the taps
        r, nb = self.block_rows, self.blocks
        part = np.empty((nb, geo.kh, geo.kw, geo.c, geo.o), gm.dtype)
        a, b, out = [], [], []
        step = max(1, threads())
        for first in range(0, nb, step):
            for (i, j), s in self.pixel_shifts.items():
                for k in range(first, min(nb, first + step)):
                    a.append(self.xf[s + k * r:s + (k + 1) * r].T)
                    b.append(dyf[k * r:(k + 1) * r])
                    out.append(part[k, i, j])
        gemm_batch(a, b, out)
        np.sum(part, axis=0, out=grad)
        return grad.reshape(1, -1, geo.o)  # rows (i, j, c), as weight_matrix

    def _input_grad(self, gm: np.ndarray) -> np.ndarray:
        geo, f = self.geo, self.f
        dyr = self._dy_full(gm)[:self.rows].reshape(-1, f * geo.o)
        dxf = np.empty((self.size, geo.c), gm.dtype)
        dxr, m = dxf.reshape(-1, f * geo.c), self.rows // f
        first = self.terms[0][0]  # the first term overwrites its rows; the rest must start at zero
        dxr[:first] = 0
        dxr[first + m:] = 0
        for t, (s, _) in enumerate(self.terms):
            gemm(dyr, self.wf[t].T, dxr[s:s + m], beta=0.0 if t == 0 else 1.0)
        (sh, sw), (h, w) = geo.stride, (geo.h, geo.w)
        if (sh, sw) == (1, 1):
            _, img, _ = next(self._phase_images(dxf))
            return img[:, :h, :w]
        dx = np.zeros((geo.n, h, w, geo.c), gm.dtype) if len(self.phases) < sh * sw else \
            np.empty((geo.n, h, w, geo.c), gm.dtype)  # pixels of a phase no tap reads get no gradient
        for (ph, pw), img, (hp, wp) in self._phase_images(dxf):
            dx[:, ph::sh, pw::sw] = img[:, :hp, :wp]
        return dx
