"""2-D convolution as one large GEMM (im2col), NCHW at the API, channels-last (NHWC) in memory.

x (N, C, H, W), w (O, C/groups, kh, kw) -> out (N, O, Ho, Wo), Ho = (H + pads - d (kh - 1) - 1) // s + 1:
    out[n, o, y, x] = b[o] + sum_{c, i, j} w[o, c, i, j] * xpad[n, c, s y + d i, s x + d j]

Layout: the windows are gathered from an NHWC view into cols (N Ho Wo, kh kw C), so the product is
cols @ W (kh kw C, O) and its result is already NHWC; it is returned as an NCHW *view* of that buffer.
The next conv's NCHW -> NHWC transpose is then free, so a stack of convs never reorders memory, and
elementwise ops and BatchNorm work on any strides. Backward: dW = cols^T g, dcols = g W^T, and dcols goes
back to the input by one strided add per kernel offset (col2im without np.add.at).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dlbasics.autograd.function import Function
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


def blocks(n: int, ho: int, row_bytes: int):
    """Yield (images, output rows) slices in M order, each with about BLOCK_BYTES of im2col columns."""
    per_image = ho * row_bytes
    if per_image <= BLOCK_BYTES:
        step = max(1, BLOCK_BYTES // per_image)
        for n0 in range(0, n, step):
            yield slice(n0, min(n, n0 + step)), slice(0, ho)
    else:
        rows = max(1, BLOCK_BYTES // row_bytes)
        for i in range(n):
            for y0 in range(0, ho, rows):
                yield slice(i, i + 1), slice(y0, min(ho, y0 + rows))


def block_buffer(n: int, ho: int, row_bytes: int, dtype: np.dtype) -> np.ndarray:
    """One flat buffer large enough for the largest of ``blocks(n, ho, row_bytes)``."""
    return np.empty(min(n * ho * row_bytes, max(BLOCK_BYTES, row_bytes)) // dtype.itemsize, dtype)


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


class Conv2d(Function):
    def forward(self, x, w, b=None, *, stride, pads, dilation, groups):
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        ho = out_size(h, kh, stride[0], pads[0] + pads[1], dilation[0])
        wo = out_size(wd, kw, stride[1], pads[2] + pads[3], dilation[1])
        xp = pad_nhwc(x.transpose(0, 2, 3, 1), pads)
        wm = weight_matrix(w, groups)
        out = correlate(xp, wm, (ho, wo), (kh, kw), stride, dilation)
        if b is not None:
            out += b
        if self.needs_input_grad[1]:
            self.xp = xp  # the padded input, not its 9x larger columns: backward gathers them again
        if self.needs_input_grad[0]:
            self.wm = wm
        self.geometry = (n, c, h, wd, o, cg, kh, kw, ho, wo, groups, stride, pads, dilation, xp.shape)
        return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)

    def backward(self, grad):
        n, c, h, wd, o, cg, kh, kw, ho, wo, g, stride, pads, dilation, padded = self.geometry
        m = n * ho * wo
        gm = np.ascontiguousarray(grad.transpose(0, 2, 3, 1)).reshape(m, o)  # free when grad is NHWC already
        gx = gw = gb = None
        if self.needs_input_grad[1]:
            gw = self._weight_grad(gm).reshape(g, kh, kw, cg, o // g).transpose(0, 4, 3, 1, 2).reshape(o, cg, kh, kw)
        if len(self.needs_input_grad) == 3 and self.needs_input_grad[2]:
            gb = np.ones(m, gm.dtype) @ gm  # BLAS: both cores, unlike NumPy's column sum
        if self.needs_input_grad[0]:
            # the flipped-kernel route gathers k^2 * O values per input position, col2im k^2 * C per output
            # position: take the flipped route only where it moves no more data (e.g. same-padding convs)
            fp = _flip_pads(pads, (kh, kw), dilation)
            if g == 1 and stride == (1, 1) and h * wd * o <= ho * wo * c and fp is not None:
                # dx is the correlation of dy, padded by d (k - 1) - p, with the kernel flipped in space and
                # transposed in channels: rows (i, j, o) of w[o, c, kh-1-i, kw-1-j]
                wf = self.wm[0].reshape(kh, kw, c, o)[::-1, ::-1].transpose(0, 1, 3, 2).reshape(1, kh * kw * o, c)
                gx = correlate(pad_nhwc(gm.reshape(n, ho, wo, o), fp), wf, (h, wd), (kh, kw), (1, 1), dilation)
                gx = gx.reshape(n, h, wd, c)
            else:
                gx = self._col2im(gm, padded)
            gx = gx.transpose(0, 3, 1, 2)
        return gx, gw, gb

    def _weight_grad(self, gm: np.ndarray) -> np.ndarray:
        """dW = cols^T dy, summed over blocks of re-gathered columns: (g, kh kw C/g, O/g)."""
        n, c, h, wd, o, cg, kh, kw, ho, wo, g, stride, pads, dilation, padded = self.geometry
        im = _Im2col(self.xp, (ho, wo), (kh, kw), stride, dilation, g)
        dwm = np.zeros((g, im.k, o // g), gm.dtype)
        part = np.empty_like(dwm)
        for _, _, mr, cols in im.blocks():
            gb = gm[mr].reshape(-1, g, o // g).transpose(1, 0, 2)
            dwm += np.matmul(cols.transpose(0, 2, 1), gb, out=part)
        return dwm

    def _col2im(self, gm: np.ndarray, padded: tuple[int, ...]) -> np.ndarray:
        """Adjoint of the gather: dcols = dy W^T per block, added back by one strided add per kernel offset
        (kh * kw adds, no np.add.at), then the padding is dropped. Returns NHWC."""
        n, c, h, wd, o, cg, kh, kw, ho, wo, g, (sh, sw), pads, (dh, dw), _ = self.geometry
        dxp = np.zeros(padded, gm.dtype)
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


def _flip_pads(pads: tuple[int, int, int, int], k: tuple[int, int], d: tuple[int, int]) -> tuple[int, ...] | None:
    """Padding of dy for the flipped-kernel correlation, or None when a pad exceeds the kernel's reach."""
    out = (d[0] * (k[0] - 1) - pads[0], d[0] * (k[0] - 1) - pads[1], d[1] * (k[1] - 1) - pads[2],
           d[1] * (k[1] - 1) - pads[3])
    return out if min(out) >= 0 else None


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
