"""Pooling and padding over (N, C, H, W), each window written as kh * kw strided slices of the padded input
(no copy of the windows, no np.add.at): max and average pooling, adaptive average pooling, constant pad.

Max and average pooling also run as compiled loops (kernels/pool.py) in the input's memory order, channels-last
(C contiguous, a conv's usual output) or W contiguous ((N, H, C, W) from the planar and Toeplitz convs, or plain
NCHW), on arrays of at least ``kernels.MIN_SIZE`` values; the NumPy path here is the readable one and the fallback
(``DLBASICS_NO_JIT=1``, small arrays, other layouts, read-only inputs, windows of 255 cells or more).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlbasics import kernels
from dlbasics.autograd.function import Function
from dlbasics.kernels.pool import (
    NO_TAP,
    avg_pool_backward,
    avg_pool_forward,
    grad_lines,
    lines,
    max_pool_backward,
    max_pool_forward,
)
from dlbasics.ops._layout import axis_order, empty_in_order, full_in_order, zeros_like_layout
from dlbasics.ops.conv import IntPair, pair
from dlbasics.tensor import Tensor


def _geometry(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool, name: str) -> tuple[int, int]:
    """(output size, extra padding on the far side) as PyTorch: in ceil mode the last window may hang over
    the end but must start inside the input or the near padding."""
    span = size + 2 * p - d * (k - 1) - 1
    if span < 0:
        raise RuntimeError(f"{name}: kernel {k} with dilation {d} does not fit an input of size {size} "
                           f"+ padding {p}")
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    extra = max(0, (out - 1) * s + d * (k - 1) + 1 - (size + 2 * p))
    return out, extra


def _offsets(xp: np.ndarray, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int], out: tuple[int, int]):
    """Yield (i, j, view) for each kernel offset: view[n, c, y, x] = xp[n, c, s y + d i, s x + d j]."""
    for i in range(k[0]):
        rows = slice(i * d[0], i * d[0] + s[0] * (out[0] - 1) + 1, s[0])
        for j in range(k[1]):
            yield i, j, (rows, slice(j * d[1], j * d[1] + s[1] * (out[1] - 1) + 1, s[1]))


def _pad_hw(x: np.ndarray, top: int, bottom: int, left: int, right: int, value: float) -> np.ndarray:
    if not (top or bottom or left or right):
        return x
    n, c, h, w = x.shape
    xp = full_in_order((n, c, h + top + bottom, w + left + right), value, axis_order(x), x.dtype)
    xp[:, :, top:top + h, left:left + w] = x
    return xp


class _Pool(Function):
    name = "pool"

    def _setup(self, x, kernel, stride, padding, dilation, ceil_mode) -> bool:
        """The geometry; whether the compiled loops take x (kernels/pool.py): then ``self.v`` is the length of a
        cell (C channels-last, 1 for W contiguous), ``self.geo`` their geometry, ``self.order`` x's axis order."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
        ho, eh = _geometry(x.shape[2], kh, sh, ph, dh, ceil_mode, f"{self.name} of input {x.shape}")
        wo, ew = _geometry(x.shape[3], kw, sw, pw, dw, ceil_mode, f"{self.name} of input {x.shape}")
        self.in_shape, self.pads = x.shape, (ph, ph + eh, pw, pw + ew)
        self.k, self.s, self.d, self.out_hw = kernel, stride, dilation, (ho, wo)
        self.v = None
        if not kernels.use(x.size) or x.dtype.kind != "f" or kh * kw >= NO_TAP:
            return False
        n, c, h, w = x.shape
        if c > 1 and x.strides[1] == x.itemsize and (w == 1 or x.strides[3] == c * x.itemsize):
            v = c  # channels-last: a pixel's C values are a cell
        elif w == 1 or x.strides[3] == x.itemsize:
            v = 1  # W contiguous: each channel's row is a line
        else:
            return False
        # the outputs' and the gradient's layout: x's, the cells' axes innermost (x's own order unless W is 1)
        inner = (3, 1) if v > 1 else (3,)
        self.order = (*(a for a in axis_order(x) if a not in inner), *inner)
        self.xl = lines(x, v)
        if self.xl is None:
            return False
        self.v = v
        # W contiguous: the C channels are lines of one image row ((N, H, C, W) in memory) or images of their own
        q, lns = (1, c) if v == 1 and x.strides[1] < x.strides[2] else (c if v == 1 else 1, 1)
        hp = max(h + ph, (ho - 1) * sh + dh * (kh - 1) + 1)
        wp = max(w + pw, (wo - 1) * sw + dw * (kw - 1) + 1)
        self.geo = np.array([n, q, lns, v, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw, hp, wp], np.int64)
        return True

    def _prepare(self, x, fill):
        return _pad_hw(x, *self.pads, fill)

    def _unpad(self, dxp: np.ndarray) -> np.ndarray:
        pt, _, pl, _ = self.pads
        return dxp[:, :, pt:pt + self.in_shape[2], pl:pl + self.in_shape[3]]

    def _new(self, shape, dtype):
        """An array of ``shape`` in x's layout, and its lines for the loops."""
        a = empty_in_order(shape, self.order, dtype)
        return a, lines(a, self.v)

    def _grad_lines(self, g, dtype):
        """g's lines where it lies (its cells at any stride: a conv's channels-last gradient is read in place by
        the W-contiguous loops); a copy in the output's layout where a cell's values are not contiguous (an NCHW
        gradient from a Flatten behind a channels-last output)."""
        gl = grad_lines(g, self.v) if g.dtype == dtype else None
        if gl is None:
            gc = empty_in_order(g.shape, self.order, dtype)
            np.copyto(gc, g)
            gl = grad_lines(gc, self.v)
        return gl


class MaxPool2d(_Pool):
    """out = max over each window. The gradient goes to the first maximum of each window (PyTorch's rule);
    an input that is the maximum of several overlapping windows collects all their gradients. A NaN is the
    maximum of its window, and the last NaN of a window takes its gradient (PyTorch: a NaN replaces the running
    maximum); padding is never a maximum (an all -inf window sends its gradient to its first real cell).
    The plain NCHW version of the same math, which the tests hold this one to: ``ops/references.py``."""

    name = "max_pool2d"

    def forward(self, x, kernel, stride, padding, dilation, ceil_mode):
        if self._setup(x, kernel, stride, padding, dilation, ceil_mode):  # compiled, in memory order
            out, ol = self._new((x.shape[0], x.shape[1], *self.out_hw), x.dtype)
            self.which, wl = self._new(out.shape, np.uint8)  # each window's argmax tap
            max_pool_forward(*self.xl, self.geo, *ol, wl[0])
            del self.xl  # backward needs only which
            self.dtype = x.dtype
            return out
        xp = self._prepare(x, -np.inf)
        out = which = None
        for k, (_, _, (r, c)) in enumerate(_offsets(xp, self.k, self.s, self.d, self.out_hw)):
            win = xp[:, :, r, c]
            if out is None:
                out = win.copy(order="K")
                which = np.zeros_like(out, np.uint8) if len(self.k) and self.k[0] * self.k[1] <= 256 else None
                continue
            if which is not None:  # the offset of each window's first maximum (strictly greater replaces); k
                # only grows, so a max keeps the latest replacement - branch-free, so faster than a masked copy
                # (measured: docs/benchmarks.md, BatchNorm and pooling)
                np.maximum(which, np.multiply(win > out, k, dtype=np.uint8), out=which)
            np.maximum(out, win, out=out)
        self.xp, self.out, self.which = xp, out, which
        return out

    def backward(self, g):
        if self.v is not None:
            dx, dl = self._new(self.in_shape, self.dtype)
            max_pool_backward(*self._grad_lines(g, self.dtype), *lines(self.which, self.v), self.geo, *dl)
            return dx
        xp, out = self.xp, self.out
        dxp = np.zeros_like(xp, g.dtype)
        nan = np.isnan(out)
        nan_aware = bool(nan.any())
        # padding cells can tie only with -inf maxima; mark them out just in that (rare) case
        real = None
        if any(self.pads) and bool(np.isneginf(out).any()):
            real = _pad_hw(np.ones(self.in_shape, bool), *self.pads, False)
        offsets = _offsets(xp, self.k, self.s, self.d, self.out_hw)
        if self.which is not None and not nan_aware and real is None:
            # each window's gradient goes to the offset recorded in forward: two passes per offset; windows
            # that do not overlap write their cells directly
            (kh, kw), (sh, sw), (dh, dw) = self.k, self.s, self.d
            disjoint = sh >= dh * (kh - 1) + 1 and sw >= dw * (kw - 1) + 1
            for k, (_, _, (r, c)) in enumerate(offsets):
                if disjoint:
                    np.multiply(g, self.which == k, out=dxp[:, :, r, c])
                else:
                    dxp[:, :, r, c] += g * (self.which == k)
            return self._unpad(dxp)
        taken = np.zeros_like(out, bool)
        cells = [(r, c) for _, _, (r, c) in offsets]
        for r, c in cells:
            hit = xp[:, :, r, c] == out  # never in a NaN window
            if real is not None:
                hit &= real[:, :, r, c]
            hit &= ~taken  # only the first maximum of a window gets the gradient
            taken |= hit
            dxp[:, :, r, c] += g * hit  # a multiply by the mask, faster than np.where (docs/benchmarks.md)
        if nan_aware:  # a NaN window's gradient goes to its last NaN (a NaN replaces the running max): backwards
            for r, c in reversed(cells):
                hit = np.isnan(xp[:, :, r, c]) & ~taken
                taken |= hit
                dxp[:, :, r, c] += g * hit
        return self._unpad(dxp)


class AvgPool2d(_Pool):
    """out = sum over each window / divisor; the divisor counts the window's cells inside the padded input
    (``count_include_pad``) or inside the input only, as PyTorch."""

    name = "avg_pool2d"

    def forward(self, x, kernel, stride, padding, dilation, ceil_mode, count_include_pad):
        compiled = self._setup(x, kernel, stride, padding, (1, 1), ceil_mode)
        self.divisor = self._divisor(x.shape[2:], padding, count_include_pad).astype(x.dtype)
        if compiled:  # in memory order (kernels/pool.py)
            out, ol = self._new((x.shape[0], x.shape[1], *self.out_hw), x.dtype)
            avg_pool_forward(*self.xl, self.geo, self.divisor, *ol)
            del self.xl
            return out
        xp = self._prepare(x, 0.0)
        out = zeros_like_layout((x.shape[0], x.shape[1], *self.out_hw), x)
        for _, _, (r, c) in _offsets(xp, self.k, self.s, self.d, self.out_hw):
            out += xp[:, :, r, c]
        self.xp_shape, self.xp_order = xp.shape, axis_order(xp)
        return out / self.divisor

    def _divisor(self, size, padding, count_include_pad):
        counts = []
        for n, k, s, p, o in zip(size, self.k, self.s, padding, self.out_hw):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, n + p)  # clipped to the padded input (ceil mode can hang over)
            if not count_include_pad:
                start, end = np.maximum(start, 0), np.minimum(end, n)
            counts.append(end - np.maximum(start, -p))
        return np.outer(counts[0], counts[1])

    def backward(self, g):
        if self.v is not None:
            dx, dl = self._new(self.in_shape, self.divisor.dtype)
            avg_pool_backward(*self._grad_lines(g, self.divisor.dtype), self.geo, self.divisor, *dl)
            return dx
        gd = g / self.divisor
        dxp = full_in_order(self.xp_shape, 0, self.xp_order, g.dtype)
        for _, _, (r, c) in _offsets(dxp, self.k, self.s, self.d, self.out_hw):
            dxp[:, :, r, c] += gd
        return self._unpad(dxp)


class Pad(Function):
    """Constant padding; negative amounts crop. Backward takes the input's region of the gradient."""

    def forward(self, x, widths, value):
        out_shape, src, dst = [], [], []
        for size, (before, after) in zip(x.shape, widths):
            new = size + before + after
            if new < 0:
                raise RuntimeError(f"pad: padding ({before}, {after}) leaves a negative size from {size}")
            out_shape.append(new)
            src.append(slice(max(-before, 0), size - max(-after, 0)))
            dst.append(slice(max(before, 0), new - max(after, 0)))
        self.order = axis_order(x)
        out = full_in_order(out_shape, value, self.order, x.dtype)
        out[tuple(dst)] = x[tuple(src)]
        self.src, self.dst, self.in_shape = tuple(src), tuple(dst), x.shape
        return out

    def backward(self, g):
        gx = full_in_order(self.in_shape, 0, self.order, g.dtype)
        gx[self.src] = g[self.dst]
        return gx


def _pool_args(x: Tensor, kernel_size: IntPair, stride: IntPair | None, padding: IntPair, dilation: IntPair,
               name: str) -> tuple:
    if x.ndim != 4:
        raise RuntimeError(f"{name}: expected input (N, C, H, W), got {x.shape}")
    k = pair(kernel_size, f"{name} kernel_size")
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else pair(stride, f"{name} stride")
    p, d = pair(padding, f"{name} padding"), pair(dilation, f"{name} dilation")
    if min(k) < 1 or min(s) < 1 or min(d) < 1 or min(p) < 0:
        raise ValueError(f"{name}: kernel_size, stride and dilation must be >= 1 and padding >= 0")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{name}: padding {p} must be at most half the kernel size {k}")
    return k, s, p, d


def _batched(fn):  # (C, H, W) inputs are one unbatched image, as in PyTorch
    def wrapper(input: Tensor, *args, **kwargs):
        if input.ndim == 3:
            return fn(input.unsqueeze(0), *args, **kwargs).squeeze(0)
        return fn(input, *args, **kwargs)

    wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
    return wrapper


@_batched
def max_pool2d(input: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               dilation: IntPair = 1, ceil_mode: bool = False) -> Tensor:
    """Max over kh x kw windows: (N, C, H, W) -> (N, C, Ho, Wo); stride defaults to the kernel size."""
    k, s, p, d = _pool_args(input, kernel_size, stride, padding, dilation, "max_pool2d")
    return MaxPool2d.apply(input, kernel=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)


@_batched
def avg_pool2d(input: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over kh x kw windows: (N, C, H, W) -> (N, C, Ho, Wo); stride defaults to the kernel size."""
    k, s, p, d = _pool_args(input, kernel_size, stride, padding, 1, "avg_pool2d")
    return AvgPool2d.apply(input, kernel=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode,
                           count_include_pad=count_include_pad)


def _bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive bins: [floor(i n / out), ceil((i + 1) n / out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


@_batched
def adaptive_avg_pool2d(input: Tensor, output_size: int | Sequence[int | None]) -> Tensor:
    """Average over bins that tile (H, W) into ``output_size`` (None keeps that size)."""
    if input.ndim != 4:
        raise RuntimeError(f"adaptive_avg_pool2d: expected input (N, C, H, W), got {input.shape}")
    h, w = input.shape[2:]
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    oh, ow = h if oh is None else int(oh), w if ow is None else int(ow)
    if oh < 1 or ow < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be >= 1, got {output_size!r}")
    if h % oh == 0 and w % ow == 0:  # equal bins: one ordinary average pool
        return avg_pool2d(input, (h // oh, w // ow))
    from dlbasics.ops.movement import stack

    rows = []
    for r0, r1 in _bins(h, oh):
        cells = [input[:, :, r0:r1, c0:c1].mean(dim=(2, 3)) for c0, c1 in _bins(w, ow)]
        rows.append(stack(cells, dim=-1))
    return stack(rows, dim=-2)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last len(pad) // 2 dims: pad = (left, right) of the last dim, then (top, bottom), ...;
    negative amounts crop. Only ``mode="constant"``."""
    if mode != "constant":
        raise ValueError(f"pad: mode {mode!r} is not supported; only 'constant'")
    pad = [int(p) for p in pad]
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: needs pairs for at most {input.ndim} dims, got {tuple(pad)}")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Pad.apply(input, widths=tuple(widths), value=value)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """AlexNet's LRN across channels: b_c = a_c / (k + alpha / size * sum_{c' near c} a_{c'}^2)^beta, the sum
    over ``size`` neighbouring channels (zero beyond the edges), as PyTorch. Built from primitives."""
    if input.ndim < 3:
        raise RuntimeError(f"local_response_norm: expected (N, C, ...) input, got {input.shape}")
    c = input.shape[1]
    sq = pad(input * input, [0, 0] * (input.ndim - 2) + [size // 2, (size - 1) // 2])
    total = sq[:, 0:c]
    for shift in range(1, size):
        total = total + sq[:, shift:shift + c]
    return input / (total * (alpha / size) + k) ** beta
