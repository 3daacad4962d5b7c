"""The reference convolution: im2col, one GEMM, and col2im. Read this one first; the fast lowerings compute the
same numbers (the tests hold each of them equal to this one) and say in their own docstrings how.

x (N, C, H, W), w (O, C/g, kh, kw), b (O,) -> y (N, O, Ho, Wo), with xp the zero-padded input and g groups:

    y[n, o, u, v] = b[o] + sum_{c, i, j} w[o, c, i, j] * xp[n, c', s_h u + d_h i, s_w v + d_w j]

(c' runs over the C/g input channels of o's group). Gathering every window into a row of a matrix (im2col)
turns the sum into one matrix product, per group:

    cols (N Ho Wo, C kh kw)  @  W (C kh kw, O)  =  Y (N Ho Wo, O)

and the chain rule through that product gives the backward pass:

    dW = cols^T dY        db = sum of dY over (n, u, v)        dcols = dY W^T

dx is dcols put back where each column entry came from (col2im): window offset (i, j) of every output position
reads one strided slice of xp, so its gradient is one strided add into that slice; kh kw adds in all, then the
padding is cut off. Entries that several windows share (wherever windows overlap) receive the sum of their
gradients, as they must.

This costs kh kw copies of the input (the columns, kept for backward) and a col2im of the same size; the fast
lowerings in this package avoid both. Stride, padding, dilation and groups are all supported here.
"""

from __future__ import annotations

import numpy as np

from dlbasics.ops.conv.geometry import Geometry


def offsets(geo: Geometry, i: int, j: int) -> tuple[slice, slice]:
    """The rows and columns of the padded input that window offset (i, j) reads, one per output position."""
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    return (slice(dh * i, dh * i + sh * (geo.ho - 1) + 1, sh), slice(dw * j, dw * j + sw * (geo.wo - 1) + 1, sw))


def im2col(x: np.ndarray, geo: Geometry) -> np.ndarray:
    """cols (N, Ho, Wo, C, kh, kw): cols[n, u, v, c, i, j] = xp[n, c, s_h u + d_h i, s_w v + d_w j]."""
    pt, pb, pl, pr = geo.pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    cols = np.empty((geo.n, geo.ho, geo.wo, geo.c, geo.kh, geo.kw), x.dtype)
    for i in range(geo.kh):
        for j in range(geo.kw):
            rows, columns = offsets(geo, i, j)
            cols[..., i, j] = xp[:, :, rows, columns].transpose(0, 2, 3, 1)  # (N, Ho, Wo, C)
    return cols


def col2im(dcols: np.ndarray, geo: Geometry) -> np.ndarray:
    """The adjoint of ``im2col``: dx (N, C, H, W) from dcols (N, Ho, Wo, C, kh, kw), one strided add per offset."""
    pt, pb, pl, pr = geo.pads
    dxp = np.zeros((geo.n, geo.c, geo.h + pt + pb, geo.w + pl + pr), dcols.dtype)
    for i in range(geo.kh):
        for j in range(geo.kw):
            rows, columns = offsets(geo, i, j)
            dxp[:, :, rows, columns] += dcols[..., i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, pt:pt + geo.h, pl:pl + geo.w]


class Reference:
    """Forward and backward by the formulas above, in the interface every lowering has: ``forward`` (x, w, b
    -> y) and ``grads`` (dy -> dx, dW, db). ``forward``'s ``keep_input`` is part of that interface (the op passes
    whether dW will be needed, so a fast lowering can drop what it saved); the reference keeps its columns either
    way. The groups are one batched product: (g, rows, K) @ (g, K, O/g).
    A transposed convolution is this one run backwards (``ConvTranspose2d``): its forward is ``input_grad``,
    its input gradient ``forward`` and its weight gradient ``weight_grad``."""

    def __init__(self, geo: Geometry) -> None:
        self.geo = geo

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, keep_input: bool = True) -> np.ndarray:
        geo, g = self.geo, self.geo.groups
        self.cols = im2col(x, geo).reshape(-1, g, geo.c // g * geo.kh * geo.kw).transpose(1, 0, 2)  # (g, M, K)
        self.w = w
        y = (self.cols @ self.weight_matrix(w)).transpose(1, 0, 2).reshape(geo.n, geo.ho, geo.wo, geo.o)
        if b is not None:
            y = y + b
        return y.transpose(0, 3, 1, 2)

    def weight_matrix(self, w: np.ndarray) -> np.ndarray:
        """W (g, C/g kh kw, O/g): w's (c, i, j) entries of each output channel as a column, per group."""
        g = self.geo.groups
        return w.reshape(g, self.geo.o // g, -1).transpose(0, 2, 1)

    def grads(self, dy: np.ndarray, need_x: bool = True, need_w: bool = True, need_b: bool = True):
        """(dx (N, C, H, W), dW (O, C/g, kh, kw), db (O,)) for dy (N, O, Ho, Wo); None for what is not needed."""
        dx = self.input_grad(dy, self.w) if need_x else None
        dw = self.weight_grad(dy) if need_w else None
        db = dy.sum(axis=(0, 2, 3)) if need_b else None
        return dx, dw, db

    def rows_of(self, dy: np.ndarray) -> np.ndarray:
        """dY (g, N Ho Wo, O/g) from dy (N, O, Ho, Wo)."""
        g = self.geo.groups
        return dy.transpose(0, 2, 3, 1).reshape(-1, g, self.geo.o // g).transpose(1, 0, 2)

    def weight_grad(self, dy: np.ndarray) -> np.ndarray:
        """dW = cols^T dY, with the columns of the last ``forward``: (O, C/g, kh, kw)."""
        geo = self.geo
        dw = self.cols.transpose(0, 2, 1) @ self.rows_of(dy)  # (g, C/g kh kw, O/g)
        return dw.transpose(0, 2, 1).reshape(geo.o, geo.c // geo.groups, geo.kh, geo.kw)

    def input_grad(self, dy: np.ndarray, w: np.ndarray) -> np.ndarray:
        """dx (N, C, H, W): dcols = dY W^T, put back by col2im."""
        geo = self.geo
        dcols = self.rows_of(dy) @ self.weight_matrix(w).transpose(0, 2, 1)  # (g, N Ho Wo, C/g kh kw)
        return col2im(dcols.transpose(1, 0, 2).reshape(geo.n, geo.ho, geo.wo, geo.c, geo.kh, geo.kw), geo)
