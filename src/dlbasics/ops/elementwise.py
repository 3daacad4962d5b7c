"""Elementwise arithmetic. Each gradient is taken in the output's (broadcast) shape; the engine sums it
back to each input's shape."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

import numpy as np

from dlbasics import dtypes
from dlbasics.autograd.function import Function
from dlbasics.ops._operands import constant, floating, operands
from dlbasics.tensor import Tensor


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if self.needs_input_grad[0] else None
        return a * b

    def backward(self, g):
        ga = g * self.b if self.needs_input_grad[0] else None
        gb = g * self.a if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """d(a/b)/da = 1/b,  d(a/b)/db = -a/b^2 = -out/b."""

    def forward(self, a, b):
        out = a / b
        self.b = b
        self.out = out if self.needs_input_grad[1] else None
        return out

    def backward(self, g):
        ga = g / self.b if self.needs_input_grad[0] else None
        gb = -g * self.out / self.b if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class PowScalar(Function):
    """x^p for a constant p:  d/dx = p x^(p-1)  (0 for p = 0, also at x = 0, as PyTorch)."""

    def forward(self, x, exponent):
        self.x, self.p = x, exponent
        return x**exponent

    def backward(self, g):
        p = self.p
        if p == 0:
            return np.zeros_like(g)
        if p == 2:
            return 2 * self.x * g
        return g * (p * self.x ** (p - 1))


class Pow(Function):
    """a^b for tensors:  d/da = b a^(b-1) (0 where b = 0),  d/db = a^b log a (0 where a = 0 and b >= 0),
    as PyTorch."""

    def forward(self, a, b):
        out = a**b
        self.a, self.b, self.out = a, b, out
        return out

    def backward(self, g):
        a, b = self.a, self.b
        ga = gb = None
        if self.needs_input_grad[0]:
            with np.errstate(divide="ignore", invalid="ignore"):
                ga = g * np.where(b == 0, 0, b * a ** (b - 1))
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = g * np.where((a == 0) & (b >= 0), 0, self.out * np.log(a))
        return ga, gb


class Exp(Function):
    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, g):
        return g * self.out


class Log(Function):
    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, g):
        return g / self.x


class Sqrt(Function):
    def forward(self, x):
        self.out = np.sqrt(x)
        return self.out

    def backward(self, g):
        return g / (2 * self.out)


class Abs(Function):
    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, g):
        return g * np.sign(self.x)  # sign(0) = 0, as PyTorch


class Clamp(Function):
    """The gradient passes where min <= x <= max (boundaries included, as PyTorch)."""

    def forward(self, x, lo, hi):
        out = np.clip(x, lo, hi)
        mask = np.ones(x.shape, bool)
        if lo is not None:
            mask &= x >= lo
        if hi is not None:
            mask &= x <= hi
        self.mask = mask
        return out

    def backward(self, g):
        return np.where(self.mask, g, 0)


class Maximum(Function):
    """Gradient to the larger input; split in half at ties (PyTorch's rule)."""

    sign = 1

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.maximum(a, b) if self.sign > 0 else np.minimum(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        half = np.where(a == b, g * 0.5, g)
        ga = np.where(a * self.sign < b * self.sign, 0, half) if self.needs_input_grad[0] else None
        gb = np.where(a * self.sign > b * self.sign, 0, half) if self.needs_input_grad[1] else None
        return ga, gb


class Minimum(Maximum):
    sign = -1


class Where(Function):
    def forward(self, x, y, cond):
        self.cond = cond
        return np.where(cond, x, y)

    def backward(self, g):
        gx = np.where(self.cond, g, 0) if self.needs_input_grad[0] else None
        gy = np.where(self.cond, 0, g) if self.needs_input_grad[1] else None
        return gx, gy


class Cast(Function):
    """Change of dtype; the engine casts the gradient back to the input's dtype."""

    def forward(self, x, dtype):
        return x.astype(dtype)

    def backward(self, g):
        return g


class Clone(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


# ---- the functions ------------------------------------------------------------------------------
def add(a: Any, b: Any) -> Tensor:
    """a + b, broadcasting."""
    return Add.apply(*operands(a, b))


def sub(a: Any, b: Any) -> Tensor:
    """a - b, broadcasting."""
    return Sub.apply(*operands(a, b))


def mul(a: Any, b: Any) -> Tensor:
    """a * b, broadcasting."""
    return Mul.apply(*operands(a, b))


def div(a: Any, b: Any) -> Tensor:
    """a / b, true division: integer inputs give float32, as in PyTorch."""
    a, b = operands(a, b)
    if a.data.dtype.kind != "f":
        a = Tensor._make(a.data.astype(dtypes.float32), False, None)
        b = Tensor._make(b.data.astype(dtypes.float32), False, None)
    return Div.apply(a, b)


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def pow(base: Any, exponent: Any) -> Tensor:
    """base ** exponent; a Python-number exponent is a constant (no gradient, no upcast)."""
    if isinstance(base, Tensor) and isinstance(exponent, int | float) and not isinstance(exponent, bool):
        if base.data.dtype.kind != "f" and (isinstance(exponent, float) or exponent < 0):
            base = Tensor._make(base.data.astype(dtypes.float32), False, None)
        return PowScalar.apply(base, exponent=exponent)
    return Pow.apply(*operands(base, exponent))


def exp(x: Tensor) -> Tensor:
    return Exp.apply(floating(x))


def log(x: Tensor) -> Tensor:
    """Natural logarithm."""
    return Log.apply(floating(x))


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(floating(x))


def abs(x: Tensor) -> Tensor:
    return Abs.apply(x)


def clamp(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """Limit x to [min, max]; either bound may be None."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, builtins.float) or isinstance(max, builtins.float):
        x = floating(x)  # an integer tensor clamped to float bounds becomes float32, not float64
    return Clamp.apply(x, lo=min, hi=max)


def maximum(a: Any, b: Any) -> Tensor:
    return Maximum.apply(*operands(a, b))


def minimum(a: Any, b: Any) -> Tensor:
    return Minimum.apply(*operands(a, b))


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """x where condition holds, else y (all three broadcast together)."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        cond = cond.astype(bool)
    x, y = operands(x, y)
    return Where.apply(x, y, cond=cond)


def cast(x: Tensor, dtype: np.dtype) -> Tensor:
    if x.data.dtype == dtype:
        return x
    if dtype.kind != "f":
        return Tensor._make(x.data.astype(dtype), False, None)
    return Cast.apply(x, dtype=dtype)


def clone(x: Tensor) -> Tensor:
    return Clone.apply(x)


def compare(ufunc: Callable[..., np.ndarray], a: Any, b: Any) -> Tensor:
    """A comparison or logical op: a boolean tensor outside the graph."""
    a, b = operands(a, b)
    return Tensor._make(ufunc(a.data, b.data), False, None)


def sign(x: Tensor) -> Tensor:
    return Tensor._make(np.sign(x.data), False, None)


def isclose(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8) -> Tensor:
    a, b = operands(a, b)
    return Tensor._make(np.isclose(a.data, b.data, rtol=rtol, atol=atol), False, None)


def allclose(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    return builtins.bool(np.allclose(constant(a).data, constant(b).data, rtol=rtol, atol=atol))
