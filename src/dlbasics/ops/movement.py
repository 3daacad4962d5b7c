"""Shape and layout: reshape/view, permute, expand, cat (and the composites built from them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlbasics.autograd.function import Function
from dlbasics.ops._operands import normalize_dim
from dlbasics.tensor import Tensor


class Reshape(Function):
    def forward(self, x, shape):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Permute(Function):
    def forward(self, x, dims):
        self.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    def backward(self, g):
        return g.transpose(self.inverse)


class Expand(Function):
    """A broadcast view; its gradient is summed back by the engine's unbroadcast."""

    def forward(self, x, shape):
        return np.broadcast_to(x, shape)

    def backward(self, g):
        return g


class Cat(Function):
    def forward(self, *xs, axis):
        self.axis = axis
        self.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    def backward(self, g):
        return tuple(np.split(g, self.bounds, axis=self.axis))


def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    """The same elements in a new shape (one size may be -1)."""
    shape = tuple(shape)
    if shape == x.shape:
        return x
    known = int(np.prod([s for s in shape if s != -1]))
    if shape.count(-1) > 1 or (-1 not in shape and known != x.data.size) or (
        -1 in shape and (known == 0 or x.data.size % known)
    ):
        raise RuntimeError(
            f"reshape: shape {shape} is invalid for a tensor of shape {x.shape} ({x.data.size} elements)"
        )
    return Reshape.apply(x, shape=shape)


view = reshape


def permute(x: Tensor, dims: Sequence[int]) -> Tensor:
    """Reorder the dims: output dim i is input dim ``dims[i]``."""
    axes = tuple(normalize_dim(d, x.ndim, "permute") for d in dims)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of the {x.ndim} dims of {x.shape}")
    return Permute.apply(x, dims=axes)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dims."""
    d0, d1 = normalize_dim(dim0, x.ndim, "transpose"), normalize_dim(dim1, x.ndim, "transpose")
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(x, dims)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one."""
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = normalize_dim(start_dim, x.ndim, "flatten"), normalize_dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, (*x.shape[:s], -1, *x.shape[e + 1 :]))


def squeeze(x: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    """Drop size-1 dims (only those named by ``dim``; a named dim of another size is kept, as PyTorch)."""
    if dim is None:
        axes = {i for i, s in enumerate(x.shape) if s == 1}
    else:
        dims = (dim,) if isinstance(dim, int) else dim
        axes = {a for a in (normalize_dim(d, x.ndim, "squeeze") for d in dims) if x.ndim and x.shape[a] == 1}
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in axes))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at ``dim`` (in the range [-ndim-1, ndim])."""
    d = normalize_dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, (*x.shape[:d], 1, *x.shape[d:]))


def expand(x: Tensor, sizes: Sequence[int]) -> Tensor:
    """Broadcast to ``sizes`` without copying; -1 keeps a dim's size."""
    sizes = tuple(sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise RuntimeError(f"expand: cannot expand shape {x.shape} to fewer dims {sizes}")
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    for i, s in enumerate(x.shape):
        if s != 1 and s != shape[i + lead]:
            raise RuntimeError(
                f"expand: dim {i} of shape {x.shape} has size {s}, which cannot become {shape[i + lead]}"
            )
    if shape == x.shape:
        return x
    return Expand.apply(x, shape=shape)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    axis = normalize_dim(dim, tensors[0].ndim, "cat")
    ref = tensors[0].shape
    for t in tensors[1:]:
        if t.ndim != len(ref) or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref)) if i != axis):
            raise RuntimeError(f"cat: shapes {ref} and {t.shape} differ outside dim {dim}")
    floats = [t.data.dtype for t in tensors if t.data.dtype.kind == "f"]
    if floats and len(floats) < len(tensors):  # integer parts take the float dtype (no float64 by NumPy)
        ft = np.result_type(*floats)
        tensors = [t if t.data.dtype.kind == "f" else Tensor._make(t.data.astype(ft), False, None) for t in tensors]
    return Cat.apply(*tensors, axis=axis)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join same-shape tensors along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack: all tensors must have one shape, got {tensors[0].shape} and {t.shape}")
    d = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], d)
