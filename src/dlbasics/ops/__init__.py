"""The differentiable primitives, grouped by kind and re-exported flat (``ops.add``, ``ops.matmul``).

Each module pairs its ``Function`` classes (forward and backward side by side) with lowercase functions
that check arguments and call them; composites (var, stack, squeeze, ...) are built from primitives and
have no backward of their own.
"""

from dlbasics.ops._operands import Dim
from dlbasics.ops.activation import gelu, leaky_relu, relu, sigmoid, tanh
from dlbasics.ops.elementwise import (
    abs,
    add,
    allclose,
    cast,
    clamp,
    clone,
    compare,
    div,
    exp,
    isclose,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    sign,
    sqrt,
    sub,
    where,
)
from dlbasics.ops.indexing import gather, getitem
from dlbasics.ops.matmul import linear, matmul
from dlbasics.ops.movement import (
    cat,
    expand,
    flatten,
    permute,
    reshape,
    squeeze,
    stack,
    transpose,
    unsqueeze,
    view,
)
from dlbasics.ops.nn_ops import bce_with_logits, cross_entropy_2d, log_softmax, softmax
from dlbasics.ops.reduce import MaxResult, amax, amin, argmax, argmin, max, mean, min, std, sum, var

__all__ = [
    "Dim", "MaxResult", "abs", "add", "allclose", "amax", "amin", "argmax", "argmin", "bce_with_logits",
    "cast", "cat", "clamp", "clone", "compare", "cross_entropy_2d", "div", "exp", "expand", "flatten",
    "gather", "gelu", "getitem", "isclose", "leaky_relu", "linear", "log", "log_softmax", "matmul", "max",
    "maximum", "mean", "min", "minimum", "mul", "neg", "permute", "pow", "relu", "reshape", "sigmoid",
    "sign", "softmax", "sqrt", "squeeze", "stack", "std", "sub", "sum", "tanh", "transpose", "unsqueeze",
    "var", "view", "where",
]
