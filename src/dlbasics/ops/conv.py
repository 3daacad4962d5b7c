"""2-D convolution lowered to GEMMs, NCHW at the API, with four lowerings chosen per layer.

x (N, C, H, W), w (O, C/groups, kh, kw) -> out (N, O, Ho, Wo), Ho = (H + pads - d (kh - 1) - 1) // s + 1:
    out[n, o, y, x] = b[o] + sum_{c, i, j} w[o, c, i, j] * xpad[n, c, s y + d i, s x + d j]

Channels-last (grouped convs, any stride): windows are gathered from an NHWC view into cols (N Ho Wo, kh kw C), so
the product cols @ W (kh kw C, O) is already NHWC; it is returned as an NCHW *view* of that buffer, so the next
conv's NCHW -> NHWC transpose is free and a stack of convs never reorders memory. Backward: dW = cols^T dy,
and dcols = dy W^T goes back by one strided add per kernel offset (col2im without np.add.at).

Shifted (no groups, the common case): no gathering at all. In the NHWC input flattened to rows, with zero gaps
between image rows and between images (one gap pads both its neighbours), the window offset (i, j) of every output
position is the same row shift, so out = sum_ij rows[shift_ij:] @ W_ij, kh kw GEMMs on contiguous slices
accumulated by BLAS (outputs at the gaps are computed and dropped). dx is the same sum run backwards; dW is kh kw
reductions (or gathers as channels-last does, for many channels). A strided conv does the same on the input's
s_h s_w phase images (every s-th row and column), where each tap is again one shift.

Planar (few input channels, stride 1, no groups): an NHWC window run is only kw C values long (5 for LeNet's
first layer), so windows are gathered from padded planes instead: cols (C kh kw, N Ho Wp) with each window
offset a run of Ho Wp values, every output row computed over the full padded width Wp (the extra columns are
dropped). Then out^T (O, N Ho Wp) = W (O, C kh kw) @ cols, with PyTorch's weight layout as is, written
channels-last when the next conv would read it so.

Toeplitz (few channels on narrow images, LeNet): each kernel row becomes a banded matrix over a whole image row,
so the conv is one GEMM of the kh rows of each window, (N Ho, kh C Wp) @ (kh C Wp, O Wo), at Wp / kw times the
work but with only kh copies of the input (class docstring).

Transposed (``ConvTranspose2d``, upsampling): no lowering of its own. It is the adjoint of the conv from its output
back to its input, so channels-last's three products serve it with the roles swapped: its forward is that conv's
col2im, its dx that conv's forward, its dW that conv's weight gradient.

Gathers run in blocks of about ``BLOCK_BYTES``, each multiplied at once (it stays in L2 cache), and backward
gathers again from the padded input instead of keeping the 9x larger columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dlbasics.autograd.function import Function
from dlbasics.ops._blas import BATCH_MIN_WORK, gemm, gemm_batch, matmul_split, threads
from dlbasics.ops._layout import axis_order, empty_in_order, per_channel
from dlbasics.tensor import Tensor

IntPair = int | Sequence[int]


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


# im2col is done in blocks of whole images (or of output rows of one image) of about this many bytes, each
# block multiplied as soon as it is gathered: the block stays in L2 cache (2 MiB per core here) instead of
# streaming a 9x copy of the activation through memory, and backward re-gathers from the padded input
# instead of keeping the columns (ResNet-20 stage 1 kept 19 MB per conv).
BLOCK_BYTES = 1 << 20
# None: each layer takes the lowering that pays: channels-last for grouped convs; else toeplitz where
# Toeplitz.pays, planar where Planar.pays, shifted otherwise. "toeplitz", "planar", "shifted" or "channels_last"
# forces one wherever it is supported (groups need channels-last, planar stride 1) - for tests and for measuring
# one against another
LOWERING: str | None = None
# planar blocks are larger: its GEMMs have few rows (O) and its col2im adds one slab per kernel offset and block,
# so per-call costs, not cache misses, dominate at 1 MiB (LeNet: 150 adds of 9k values per step)
PLANAR_SCALE = 8
# the shifted lowering's weight gradient as nine reductions up to this many (C x O) weights per offset
SHIFTED_WEIGHT_GRAD_MAX = 32 * 32
# with at most this many channels in and out, the shifted lowering puts two neighbouring pixels in each GEMM row:
# 1.33x the multiplies, but OpenBLAS runs 32-wide GEMMs at ~200 GFLOP/s and 16-wide ones at ~130 (ResNet's
# 16-channel stage: 1.08 vs 1.31 ms forward, 1.11 vs 1.35 dx); 0 turns it off
PAIR_MAX_CHANNELS = 16


def blocks(n: int, ho: int, row_bytes: int, scale: int = 1):
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


class _Im2col:
    """Gathers blocks of windows of a padded NHWC array into one reused buffer, as the (groups, rows,
    kh kw C/g) matrices of the per-group GEMMs; the column order (i, j, c) matches ``weight_matrix``."""

    def __init__(self, xp: np.ndarray, out_hw: tuple[int, int], k: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int], groups: int) -> None:
        self.win = windows(xp, *out_hw, k, stride, dilation)  # (N, Ho, Wo, kh, kw, C)
        self.g, self.k = groups, k[0] * k[1] * (xp.shape[3] // groups)
        self.row_bytes = out_hw[1] * self.k * groups * xp.itemsize
        self.buf = block_buffer(xp.shape[0], out_hw[0], self.row_bytes, xp.dtype)

    def blocks(self):
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
    """The general lowering (module docstring): NHWC im2col, one GEMM per block (batched over groups)."""

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
    From 64 x 64 channels on, dW gathers in blocks as ChannelsLast does (0.99 vs 1.2 ms there), from the padded
    view ``xp`` of the same rows.

    Stride s > 1 (polyphase): input row s y + d i - pad_top is row y + q_i of the phase image of rows
    = d i - pad_top (mod s), q_i = floor((d i - pad_top) / s); likewise for columns. So the s_h s_w phase images
    (every s-th row and column, from each start), stored one after another in the output's pitch, make each tap
    a contiguous shift again: the same GEMMs, on 1 / (s_h s_w) of the input each, and no gather; dx is scattered
    back from the phases once.

    Few channels (``PAIR_MAX_CHANNELS``, stride 1): in forward and dx, f = 2 neighbouring pixels share one GEMM
    row (a free reshape of xf with Wq even). Output pixel f P + a reads pixel f P + a + s_ij, which lies in row
    P + (a + s_ij) // f at b = (a + s_ij) % f; the taps that land in the same row shift form one term with a
    (f C, f O) weight whose (b, a) block is W_ij: for a 3-wide kernel 2 kh GEMMs of twice the width instead of
    kh kw."""

    def __init__(self, geo: Geometry) -> None:
        super().__init__(geo)
        pt, _, pl, _ = geo.pads
        (sh, sw), (dh, dw) = geo.stride, geo.dilation
        self.f = f = 2 if geo.stride == (1, 1) and dw == 1 and max(geo.c, geo.o) <= PAIR_MAX_CHANNELS else 1
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
        target = max(BLOCK_BYTES // ((geo.c + geo.o) * 4), -(-BATCH_MIN_WORK // (geo.c * geo.o)))
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


class Planar:
    """The few-channel lowering (module docstring): windows gathered from zero-padded (H, W) planes as runs
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


class Toeplitz:
    """Few channels on narrow images (LeNet): each kernel row as a banded Toeplitz matrix over a whole image row.

    With the padded input stored (N, Hp, C, Wp), one row (n, y) holds C Wp values. Output row (n, yo) of every
    channel is one product:
        out[(n, yo), (o, xo)] = sum_i A_i[(n, yo), (c, x)] T_i[(c, x), (o, xo)],   A_i = row s_h yo + d_h i,
        T_i[(c, s_w xo + d_w j), (o, xo)] = w[o, c, i, j]   (zero elsewhere),
    so out (N Ho, O Wo) = A (N Ho, kh C Wp) @ T (kh C Wp, O Wo), A the kh rows of each window side by side.
    T does Wp / kw times the work of the convolution (6.4x for LeNet's first layer), but the GEMM is one large
    one, and A is only kh times the input, not kh kw times. The output is (N, Ho, O, Wo) in memory.
    Backward: dT = A^T dY, whose bands summed along their diagonals are dW, and dA = dY T^T added back by kh
    row-block adds. Unlike the other lowerings, T's zeros multiply every value of the row: a non-finite input
    (inf, NaN) makes its whole output row NaN, not only the windows that cover it."""

    def __init__(self, geo: Geometry) -> None:
        self.geo = geo
        pt, pb, pl, pr = geo.pads
        self.hp, self.wp = geo.h + pt + pb, geo.w + pl + pr

    @staticmethod
    def pays(geo: Geometry) -> bool:
        """Where a window row holds few values (kw C < 32, as Planar) and the image row is narrow, so the extra
        work Wp / kw stays small (at most 8x; the 34-wide CIFAR stem is 11x and slower than planar), with T at
        most a block."""
        wp = geo.w + geo.pads[2] + geo.pads[3]
        t_bytes = geo.kh * geo.c * wp * geo.o * geo.wo * 4
        return geo.groups == 1 and geo.kw * geo.c < 32 and wp <= 8 * geo.kw and t_bytes <= PLANAR_SCALE * BLOCK_BYTES

    def _bands(self, t: np.ndarray) -> np.ndarray:
        """The (kh, C, kw, O, Wo) view of the entries of a (kh, C, Wp, O, Wo) array that w fills: T[i, c, x, o, xo]
        with x = s_w xo + d_w j."""
        geo = self.geo
        s0, s1, s2, s3, s4 = t.strides
        return as_strided(t, (geo.kh, geo.c, geo.kw, geo.o, geo.wo),
                          (s0, s1, geo.dilation[1] * s2, s3, geo.stride[1] * s2 + s4))

    def _rows(self, a: np.ndarray) -> list[np.ndarray]:
        """The kh (N, Ho, C Wp) row blocks of a padded (N, Hp, C Wp) array that window row i reads."""
        geo = self.geo
        (sh, _), (dh, _) = geo.stride, geo.dilation
        return [a[:, i * dh:i * dh + sh * (geo.ho - 1) + 1:sh] for i in range(geo.kh)]

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, keep_input: bool) -> np.ndarray:
        geo = self.geo
        pt, _, pl, _ = geo.pads
        xp = np.zeros((geo.n, self.hp, geo.c, self.wp), x.dtype)
        xp[:, pt:pt + geo.h, :, pl:pl + geo.w] = x.transpose(0, 2, 1, 3)
        k = geo.kh * geo.c * self.wp
        # the bias as one more column of A, always 1, and one more row of T: no pass over the output to add it,
        # and its gradient comes out of dT as that row
        a = np.empty((geo.n * geo.ho, k + (b is not None)), x.dtype)
        rows_a = a[:, :k].reshape(geo.n, geo.ho, geo.kh, -1)
        for i, rows in enumerate(self._rows(xp.reshape(geo.n, self.hp, -1))):
            rows_a[:, :, i] = rows
        t = np.zeros((a.shape[1], geo.o * geo.wo), x.dtype)
        self._bands(t[:k].reshape(geo.kh, geo.c, self.wp, geo.o, geo.wo))[...] = w.transpose(2, 1, 3, 0)[..., None]
        if b is not None:
            a[:, k] = 1
            t[k] = np.repeat(b, geo.wo)
        out = a @ t  # (N Ho, O Wo)
        self.a, self.t, self.k = a if keep_input else None, t, k
        return out.reshape(geo.n, geo.ho, geo.o, geo.wo).transpose(0, 2, 1, 3)

    def grads(self, grad: np.ndarray, need_x: bool, need_w: bool, need_b: bool):
        geo = self.geo
        dy = np.ascontiguousarray(grad.transpose(0, 2, 1, 3)).reshape(geo.n * geo.ho, -1)  # (N Ho, O Wo)
        gx = gw = gb = None
        if need_w:
            dt = self.a.T @ dy
            gw = self._bands(dt[:self.k].reshape(geo.kh, geo.c, self.wp, geo.o, geo.wo)).sum(-1)
            gw = gw.transpose(3, 1, 0, 2)  # (kh, C, kw, O) -> (O, C, kh, kw)
            if need_b:
                gb = dt[self.k].reshape(geo.o, geo.wo).sum(1)
        elif need_b:
            gb = (np.ones(dy.shape[0], dy.dtype) @ dy).reshape(geo.o, geo.wo).sum(1)
        if need_x:
            da = (dy @ self.t[:self.k].T).reshape(geo.n, geo.ho, geo.kh, -1)
            dxp = np.zeros((geo.n, self.hp, geo.c * self.wp), dy.dtype)
            for i, rows in enumerate(self._rows(dxp)):
                rows += da[:, :, i]
            pt, _, pl, _ = geo.pads
            gx = dxp.reshape(geo.n, self.hp, geo.c, self.wp)[:, pt:pt + geo.h, :, pl:pl + geo.w].transpose(0, 2, 1, 3)
        return gx, gw, gb


class Conv2d(Function):
    """The conv op: picks a lowering for the layer's geometry (``LOWERING``), which computes forward and the
    gradients; the bias is added by the lowering, along its output buffer's long rows."""

    def forward(self, x, w, b=None, *, stride, pads, dilation, groups):
        n, c, h, wd = x.shape
        o, _, kh, kw = w.shape
        ho = out_size(h, kh, stride[0], pads[0] + pads[1], dilation[0])
        wo = out_size(wd, kw, stride[1], pads[2] + pads[3], dilation[1])
        geo = Geometry(n, c, h, wd, o, kh, kw, ho, wo, groups, stride, pads, dilation)
        if geo.groups > 1 or LOWERING == "channels_last":
            self.lowering = ChannelsLast(geo)
        elif LOWERING == "toeplitz" or (LOWERING is None and Toeplitz.pays(geo)):
            self.lowering = Toeplitz(geo)
        elif Planar.supports(geo) and (LOWERING == "planar" or (LOWERING is None and Planar.pays(geo))):
            self.lowering = Planar(geo)
        else:
            self.lowering = Shifted(geo)
        return self.lowering.forward(x, w, b, keep_input=self.needs_input_grad[1])

    def backward(self, grad):
        needs = self.needs_input_grad
        return self.lowering.grads(grad, needs[0], needs[1], len(needs) == 3 and needs[2])


class ConvTranspose2d(Function):
    """Transposed convolution: x (N, C_in, H, W), w (C_in, C_out/g, kh, kw) -> out (N, C_out, Ho, Wo),
    Ho = (H - 1) s - 2 p + d (kh - 1) + output_padding + 1 (likewise Wo):
        out[n, o, s y - p + d i, s x - p + d j] += sum_c x[n, c, y, x] w[c, o, i, j]   (plus b[o] everywhere)

    It is the adjoint of the conv from (N, C_out, Ho, Wo) to (N, C_in, H, W) with the same w (as a conv weight,
    O = C_in, C/g = C_out/g), stride, padding and dilation: forward is that conv's input gradient of x, dx is the
    conv itself of dy, and dW is its weight gradient with dy as the input and x as the output gradient, all three
    the lowering's (Shifted without groups, ChannelsLast with). output_padding first keeps bottom rows (right
    columns) that the padding would crop; those past the full (H - 1) s + d (kh - 1) + 1 lie beyond every window and
    get only the bias."""

    def forward(self, x, w, b=None, *, stride, pads, dilation, groups, out_hw):
        n, c_in, h, wd = x.shape
        c_out = w.shape[1] * groups
        geo = Geometry(n, c_out, *out_hw, c_in, *w.shape[2:], h, wd, groups, stride, pads, dilation)
        # the adjoint conv's lowering: Shifted's dx is a few GEMMs straight into the output's phases, with no col2im
        # adds (DCGAN's ConvTranspose2d(128, 64, 4, 2, 1) on 7x7: 7 ms a forward against ChannelsLast's 12)
        self.shifted = groups == 1 and LOWERING in (None, "shifted")
        if self.shifted:
            self.lowering = lw = Shifted(geo)
            lw.wf = lw._weights(w)
        else:
            self.lowering = lw = ChannelsLast(geo)
            lw.wm = weight_matrix(w, groups)
            lw.padded = (n, out_hw[0] + pads[0] + pads[1], out_hw[1] + pads[2] + pads[3], c_out)
        xm = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(-1, c_in)  # free when x is NHWC already
        out = lw._input_grad(xm)  # (N, Ho, Wo, C_out), a view of the sums
        if b is not None:
            if out.flags.c_contiguous:
                per_channel(np.add, out.reshape(-1, c_out), b, out.reshape(-1, c_out))
            else:
                np.add(out, b, out=out)
        self.w = w if self.needs_input_grad[0] or self.shifted else None
        self.xm = xm if self.needs_input_grad[1] else None
        return out.transpose(0, 3, 1, 2)

    def backward(self, grad):
        needs = self.needs_input_grad
        lw, gx, gw, gb = self.lowering, None, None, None
        if needs[0] or (needs[1] and self.shifted):  # Shifted's dW reads the rows its forward lays dy out in
            gx = lw.forward(grad, self.w, None, keep_input=needs[1])
        elif needs[1]:
            lw.xp = pad_nhwc(grad.transpose(0, 2, 3, 1), lw.geo.pads)
        if needs[1]:
            gw = lw.weight_grad(self.xm)
        if len(needs) == 3 and needs[2]:
            gb = grad.sum(axis=(0, 2, 3))
        return gx if needs[0] else None, gw, gb


def conv_pads(padding: IntPair | str, kernel: tuple[int, int], stride: tuple[int, int],
              dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from an int, a pair, "valid" or "same" (stride 1; extra on the bottom/right)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
        if stride != (1, 1):
            raise ValueError(f"conv2d: padding='same' needs stride 1, got stride {stride}")
        th, tw = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = pair(padding, "conv2d padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"conv2d: padding must be >= 0, got {padding!r}")
    return (ph, ph, pw, pw)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair | str = 0, dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch): input (N, C, H, W) or (C, H, W), weight
    (O, C/groups, kh, kw), bias (O,) -> (N, O, Ho, Wo). See the module docstring for the math."""
    if input.ndim == 3:
        return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if input.ndim != 4 or weight.ndim != 4:
        raise RuntimeError(f"conv2d: expected input (N, C, H, W) and weight (O, C/groups, kh, kw), "
                           f"got input {input.shape} and weight {weight.shape}")
    s, d = pair(stride, "conv2d stride"), pair(dilation, "conv2d dilation")
    if min(s) < 1 or min(d) < 1:
        raise ValueError(f"conv2d: stride and dilation must be >= 1, got stride {stride}, dilation {dilation}")
    o, cg, kh, kw = weight.shape
    c = input.shape[1]
    if groups < 1 or c % groups or o % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both in_channels {c} and out_channels {o}")
    if cg * groups != c:
        raise RuntimeError(f"conv2d: input {input.shape} has {c} channels, but weight {weight.shape} with "
                           f"groups={groups} expects {cg * groups}")
    if bias is not None and bias.shape != (o,):
        raise RuntimeError(f"conv2d: bias {bias.shape} does not match weight {weight.shape}")
    pads = conv_pads(padding, (kh, kw), s, d)
    h, w = input.shape[2] + pads[0] + pads[1], input.shape[3] + pads[2] + pads[3]
    if d[0] * (kh - 1) + 1 > h or d[1] * (kw - 1) + 1 > w:
        raise RuntimeError(f"conv2d: kernel ({kh}, {kw}) with dilation {d} is larger than the padded input "
                           f"({h}, {w}) of input {input.shape}")
    args = (input, weight) if bias is None else (input, weight, bias)
    return Conv2d.apply(*args, stride=s, pads=pads, dilation=d, groups=groups)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                     dilation: IntPair = 1) -> Tensor:
    """2-D transposed convolution (PyTorch's, note groups before dilation): input (N, C_in, H, W) or
    (C_in, H, W), weight (C_in, C_out/groups, kh, kw), bias (C_out,) -> (N, C_out, Ho, Wo). ``ConvTranspose2d``
    gives the math."""
    if input.ndim == 3:
        return conv_transpose2d(input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups,
                                dilation).squeeze(0)
    if input.ndim != 4 or weight.ndim != 4:
        raise RuntimeError(f"conv_transpose2d: expected input (N, C_in, H, W) and weight (C_in, C_out/groups, kh, "
                           f"kw), got input {input.shape} and weight {weight.shape}")
    if isinstance(padding, str):
        raise TypeError(f"conv_transpose2d: padding must be an int or a pair of ints, got {padding!r}")
    s, d = pair(stride, "conv_transpose2d stride"), pair(dilation, "conv_transpose2d dilation")
    p, op = pair(padding, "conv_transpose2d padding"), pair(output_padding, "conv_transpose2d output_padding")
    if min(s) < 1 or min(d) < 1:
        raise RuntimeError(f"conv_transpose2d: stride and dilation must be >= 1, got stride {stride}, "
                           f"dilation {dilation}")
    if min(p) < 0 or min(op) < 0:
        raise RuntimeError(f"conv_transpose2d: padding and output_padding must be >= 0, got padding {padding}, "
                           f"output_padding {output_padding}")
    if any(op[k] >= max(s[k], d[k]) for k in range(2)):
        raise RuntimeError(f"conv_transpose2d: output_padding {op} must be smaller than either stride {s} or "
                           f"dilation {d}")
    c_in, og, kh, kw = weight.shape
    if groups < 1 or c_in % groups:
        raise RuntimeError(f"conv_transpose2d: groups={groups} must divide in_channels {c_in} of weight "
                           f"{weight.shape}")
    if input.shape[1] != c_in:
        raise RuntimeError(f"conv_transpose2d: input {input.shape} has {input.shape[1]} channels, but weight "
                           f"{weight.shape} expects {c_in}")
    if bias is not None and bias.shape != (og * groups,):
        raise RuntimeError(f"conv_transpose2d: bias {bias.shape} does not match weight {weight.shape} with "
                           f"groups={groups} ({og * groups} output channels)")
    out_hw = tuple((input.shape[2 + k] - 1) * s[k] - 2 * p[k] + d[k] * ((kh, kw)[k] - 1) + op[k] + 1 for k in range(2))
    if min(out_hw) < 1:
        raise RuntimeError(f"conv_transpose2d: input {input.shape} with weight {weight.shape}, stride {s}, padding "
                           f"{p} and dilation {d} gives output size {out_hw}, which is too small")
    args = (input, weight) if bias is None else (input, weight, bias)
    return ConvTranspose2d.apply(*args, stride=s, pads=(p[0], p[0], p[1], p[1]), dilation=d, groups=groups,
                                 out_hw=out_hw)
