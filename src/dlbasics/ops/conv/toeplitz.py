"""The Toeplitz lowering: each kernel row as a banded matrix over a whole image row, for few channels on narrow
images (LeNet).

**When**: no groups, few input channels, and narrow images whose padded width is at most 8 kernel widths
(``Toeplitz.pays``): LeNet's two convolutions on 28 x 28 and 14 x 14.

**Why faster than the reference**: the whole convolution is one large GEMM, (N Ho, kh C Wp) @ (kh C Wp, O Wo),
with only kh copies of the input instead of kh kw, at Wp / kw times the multiplies (the band's zeros). On such small
images the per-call and copy costs that it saves outweigh the extra multiplies.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dlbasics.ops.conv import geometry
from dlbasics.ops.conv.geometry import Geometry
from dlbasics.ops.conv.planar import PLANAR_SCALE


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
        return (geo.groups == 1 and geo.kw * geo.c < 32 and wp <= 8 * geo.kw
                and t_bytes <= PLANAR_SCALE * geometry.BLOCK_BYTES)

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
