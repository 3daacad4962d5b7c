"""``Tensor``: an ndarray, its gradient, and the ``Function`` that made it; the creation helpers.

Methods are thin: each names its op in ``dlbasics.ops``, where forward and backward live.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from dlbasics import dtypes
from dlbasics.autograd import engine
from dlbasics.autograd.grad_mode import is_grad_enabled
from dlbasics.rng import Seed, get_generator

Scalar = int | float | bool


class Tensor:
    """A multi-dimensional array that records the ops applied to it for reverse-mode autograd.

    ``Tensor(data)`` wraps ``data`` without copying when it already has the policy dtype (floats become
    float32 unless ``dtype`` is given); ``dl.tensor`` always copies.
    """

    __slots__ = ("__weakref__", "data", "grad", "grad_fn", "requires_grad")
    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__ instead of NumPy broadcasting

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = False) -> None:
        if isinstance(data, Tensor):  # a tensor keeps its dtype
            data, dtype = data.data, data.data.dtype if dtype is None else dtype
        self.data: np.ndarray = dtypes.policy_array(data, dtype)
        self.grad: np.ndarray | None = None
        self.grad_fn = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool, grad_fn: Any) -> Tensor:
        t = object.__new__(Tensor)
        t.data = data
        t.grad = None
        t.requires_grad = requires_grad
        t.grad_fn = grad_fn
        return t

    # ---- properties ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:
        return ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self) -> Tensor:
        return ops.transpose(self, -2, -1)

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    # ---- autograd -----------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError("requires_grad can only be turned off on a leaf tensor; use .detach()")
        if requires_grad and self.data.dtype.kind != "f":
            raise RuntimeError(f"only floating point tensors can require gradients, not {self.data.dtype}")
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad.

        ``gradient`` is d(loss)/d(self); it may be omitted for a one-element tensor (taken as 1).
        """
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for one-element outputs, not shape {self.shape}; "
                    "pass gradient="
                )
            grad = np.ones(self.data.shape, dtype=self.data.dtype)
        else:
            grad = np.array(gradient.data if isinstance(gradient, Tensor) else gradient, dtype=self.data.dtype)
            if grad.shape != self.data.shape:
                raise RuntimeError(f"backward: gradient has shape {grad.shape}, tensor has shape {self.shape}")
        engine.backward(self, grad, retain_graph)

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._make(self.data, False, None)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self.requires_grad = False
        return self

    def clone(self) -> Tensor:
        return ops.clone(self)

    def zero_grad(self) -> None:
        self.grad = None

    # ---- conversion ---------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("can't call numpy() on a tensor that requires grad; use .detach().numpy()")
        return self.data

    def item(self) -> Scalar:
        if self.data.size != 1:
            raise ValueError(f"only one-element tensors can be converted to a Python scalar, not shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.data.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"Boolean value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data.item())

    def to(self, dtype: Any) -> Tensor:
        """A tensor of ``dtype`` (differentiable between floating dtypes); ``self`` if already so."""
        return ops.cast(self, dtypes.as_dtype(dtype))

    def float(self) -> Tensor:
        return self.to(dtypes.float32)

    def double(self) -> Tensor:
        return self.to(dtypes.float64)

    def long(self) -> Tensor:
        return self.to(dtypes.int64)

    def bool(self) -> Tensor:
        return self.to(dtypes.bool_)

    def contiguous(self) -> Tensor:
        """``self`` if its data is C-contiguous, else a (differentiable) C-ordered copy."""
        return self if self.data.flags.c_contiguous else ops.clone(self)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4, threshold=200)
        extra = []
        if self.data.dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
            extra.append(f"dtype={self.data.dtype}")
        if self.grad_fn is not None:
            extra.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    __hash__ = object.__hash__  # identity hash, as __eq__ is elementwise

    # ---- arithmetic ---------------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __pow__(self, exponent: Any) -> Tensor:
        return ops.pow(self, exponent)

    def __rpow__(self, base: Any) -> Tensor:
        return ops.pow(base, self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return ops.abs(self)

    # comparisons: plain boolean tensors, outside the graph
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.compare(np.equal, self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.compare(np.not_equal, self, other)

    def __lt__(self, other: Any) -> Tensor:
        return ops.compare(np.less, self, other)

    def __le__(self, other: Any) -> Tensor:
        return ops.compare(np.less_equal, self, other)

    def __gt__(self, other: Any) -> Tensor:
        return ops.compare(np.greater, self, other)

    def __ge__(self, other: Any) -> Tensor:
        return ops.compare(np.greater_equal, self, other)

    def __invert__(self) -> Tensor:
        if self.data.dtype != dtypes.bool_:
            raise TypeError(f"~ is defined for bool tensors, not {self.data.dtype}")
        return Tensor._make(~self.data, False, None)

    def __and__(self, other: Any) -> Tensor:
        return ops.compare(np.logical_and, self, other)

    def __or__(self, other: Any) -> Tensor:
        return ops.compare(np.logical_or, self, other)

    # ---- elementwise ----------------------------------------------------------------------------
    def add(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def sub(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def mul(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def div(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def pow(self, exponent: Any) -> Tensor:
        return ops.pow(self, exponent)

    def matmul(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def neg(self) -> Tensor:
        return ops.neg(self)

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def abs(self) -> Tensor:
        return ops.abs(self)

    def clamp(self, min: Scalar | None = None, max: Scalar | None = None) -> Tensor:
        return ops.clamp(self, min, max)

    clip = clamp

    def maximum(self, other: Any) -> Tensor:
        return ops.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return ops.minimum(self, other)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def softmax(self, dim: int) -> Tensor:
        return ops.softmax(self, dim)

    def log_softmax(self, dim: int) -> Tensor:
        return ops.log_softmax(self, dim)

    # ---- reductions ---------------------------------------------------------------------------
    def sum(self, dim: ops.Dim = None, keepdim: bool = False) -> Tensor:
        return ops.sum(self, dim, keepdim)

    def mean(self, dim: ops.Dim = None, keepdim: bool = False) -> Tensor:
        return ops.mean(self, dim, keepdim)

    def var(self, dim: ops.Dim = None, keepdim: bool = False, *, correction: int = 1,
            unbiased: bool | None = None) -> Tensor:
        return ops.var(self, dim, keepdim, correction=correction, unbiased=unbiased)

    def std(self, dim: ops.Dim = None, keepdim: bool = False, *, correction: int = 1,
            unbiased: bool | None = None) -> Tensor:
        return ops.std(self, dim, keepdim, correction=correction, unbiased=unbiased)

    def amax(self, dim: ops.Dim = None, keepdim: bool = False) -> Tensor:
        return ops.amax(self, dim, keepdim)

    def amin(self, dim: ops.Dim = None, keepdim: bool = False) -> Tensor:
        return ops.amin(self, dim, keepdim)

    def max(self, dim: int | None = None, keepdim: bool = False) -> Any:
        return ops.max(self, dim, keepdim)

    def min(self, dim: int | None = None, keepdim: bool = False) -> Any:
        return ops.min(self, dim, keepdim)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return ops.argmax(self, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return ops.argmin(self, dim, keepdim)

    # ---- movement -----------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        return ops.reshape(self, _sizes(shape))

    def view(self, *shape: Any) -> Tensor:
        return ops.reshape(self, _sizes(shape))

    def permute(self, *dims: Any) -> Tensor:
        return ops.permute(self, _sizes(dims))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return ops.transpose(self, dim0, dim1)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return ops.flatten(self, start_dim, end_dim)

    def squeeze(self, dim: int | tuple[int, ...] | None = None) -> Tensor:
        return ops.squeeze(self, dim)

    def unsqueeze(self, dim: int) -> Tensor:
        return ops.unsqueeze(self, dim)

    def expand(self, *sizes: Any) -> Tensor:
        return ops.expand(self, _sizes(sizes))

    def expand_as(self, other: Tensor) -> Tensor:
        return ops.expand(self, other.shape)

    def gather(self, dim: int, index: Any) -> Tensor:
        return ops.gather(self, dim, index)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError(
                "in-place assignment into a tensor that requires grad would corrupt its graph; "
                "build the new tensor with dl.where or dl.cat, or assign under dl.no_grad()"
            )
        self.data[_plain_index(index)] = value.data if isinstance(value, Tensor) else value

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    # ---- in-place (outside the graph: initialisation, optimizers, masks) ------------------------
    def _check_inplace(self) -> None:
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError(
                "a leaf tensor that requires grad is used in an in-place operation; wrap it in dl.no_grad()"
            )

    def zero_(self) -> Tensor:
        self._check_inplace()
        self.data[...] = 0
        return self

    def fill_(self, value: Scalar) -> Tensor:
        self._check_inplace()
        self.data[...] = value
        return self

    def copy_(self, src: Any) -> Tensor:
        self._check_inplace()
        np.copyto(self.data, src.data if isinstance(src, Tensor) else np.asarray(src), casting="same_kind")
        return self

    def uniform_(self, a: float = 0.0, b: float = 1.0, generator: Seed = None) -> Tensor:
        self._check_inplace()
        self.data[...] = get_generator(generator).uniform(a, b, self.shape)
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0, generator: Seed = None) -> Tensor:
        self._check_inplace()
        self.data[...] = get_generator(generator).normal(mean, std, self.shape)
        return self


def _sizes(args: tuple) -> tuple[int, ...]:
    """``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` all mean the size (2, 3)."""
    if len(args) == 1 and isinstance(args[0], Sequence | np.ndarray):
        return tuple(int(s) for s in args[0])
    return tuple(int(s) for s in args)


def _plain_index(index: Any) -> Any:
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


# ---- creation -------------------------------------------------------------------------------------
def float_input(data: Any) -> Tensor:
    """A model's input as a Tensor, without a copy: a Tensor as it is, a float array in its own dtype (float64 for
    a gradient check), anything else (uint8 pixels, lists) as float32."""
    if isinstance(data, Tensor):
        return data
    arr = np.asarray(data)
    return _new(arr if arr.dtype.kind == "f" else arr.astype(np.float32), False)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (floats become float32 unless ``dtype`` says otherwise)."""
    if isinstance(data, Tensor):  # a tensor keeps its dtype
        data, dtype = data.data, data.data.dtype if dtype is None else dtype
    arr = dtypes.policy_array(data, dtype, copy=True)
    if not arr.flags.c_contiguous:  # a transposed or strided source: the copy is C-ordered, as torch.tensor
        arr = np.ascontiguousarray(arr)
    return _new(arr, requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """Share ``array``'s memory and keep its dtype (like ``torch.from_numpy``)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor._make(array, False, None)


def _new(array: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor._make(array, False, None).requires_grad_(requires_grad)


def _float_dtype(dtype: Any) -> np.dtype:
    return dtypes.float32 if dtype is None else dtypes.as_dtype(dtype)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.zeros(_sizes(size), _float_dtype(dtype)), requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.ones(_sizes(size), _float_dtype(dtype)), requires_grad)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.empty(_sizes(size), _float_dtype(dtype)), requires_grad)


def full(size: Any, fill_value: Scalar, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = dtypes.float32 if isinstance(fill_value, float) else np.asarray(fill_value).dtype
    return _new(np.full(_sizes((size,)), fill_value, dtypes.as_dtype(dtype)), requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.zeros(t.shape, t.dtype if dtype is None else dtypes.as_dtype(dtype)), requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.ones(t.shape, t.dtype if dtype is None else dtypes.as_dtype(dtype)), requires_grad)


def full_like(t: Tensor, fill_value: Scalar, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.full(t.shape, fill_value, t.dtype if dtype is None else dtypes.as_dtype(dtype)), requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def arange(start: Scalar, end: Scalar | None = None, step: Scalar = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Like ``torch.arange``: int64 for integer arguments, float32 if any argument is a float."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = dtypes.float32 if any(isinstance(v, builtins.float) for v in (start, end, step)) else dtypes.int64
    return _new(np.arange(start, end, step, dtype=dtypes.as_dtype(dtype)), requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.linspace(start, end, steps, dtype=_float_dtype(dtype)), requires_grad)


def randn(*size: Any, generator: Seed = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples; ``generator`` is a seed or a ``numpy.random.Generator``."""
    dt = _float_dtype(dtype)
    return _new(get_generator(generator).standard_normal(_sizes(size), dtype=dt), requires_grad)


def rand(*size: Any, generator: Seed = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1); ``generator`` is a seed or a ``numpy.random.Generator``."""
    dt = _float_dtype(dtype)
    return _new(get_generator(generator).random(_sizes(size), dtype=dt), requires_grad)


def randint(low: int, high: int, size: Any, generator: Seed = None, dtype: Any = None) -> Tensor:
    dt = dtypes.int64 if dtype is None else dtypes.as_dtype(dtype)
    return _new(get_generator(generator).integers(low, high, _sizes((size,)), dtype=dt), False)


def randperm(n: int, generator: Seed = None) -> Tensor:
    return _new(get_generator(generator).permutation(n).astype(np.int64), False)


# ops sit above this module (they make Tensors); bound here, after Tensor exists.
from dlbasics import ops  # noqa: E402
from dlbasics.autograd import function as _function  # noqa: E402

_function._bind_tensor()
