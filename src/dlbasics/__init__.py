"""dlbasics: deep learning from its four key components - Data, Model, Loss, Algorithm - on NumPy.

    import dlbasics as dl
    x = dl.randn(4, 3, requires_grad=True)
    (x @ x.T).sum().backward()      # x.grad now holds d/dx
"""

from dlbasics._runtime import tune_malloc

tune_malloc()

from dlbasics import (  # noqa: E402  (nn builds on everything above)
    autograd,
    dtypes,
    nn,
)
from dlbasics.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: E402
from dlbasics.dtypes import bool_, double, float16, float32, float64, int32, int64, long, uint8  # noqa: E402
from dlbasics.ops import (  # noqa: E402
    abs,
    allclose,
    amax,
    amin,
    argmax,
    argmin,
    cat,
    clamp,
    exp,
    flatten,
    gather,
    isclose,
    log,
    log_softmax,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    permute,
    relu,
    reshape,
    sigmoid,
    sign,
    softmax,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from dlbasics.rng import default_generator, manual_seed  # noqa: E402
from dlbasics.tensor import (  # noqa: E402
    Tensor,
    arange,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randperm,
    tensor,
    zeros,
    zeros_like,
)

float = float32
bool = bool_

__version__ = "0.1.0"

__all__ = [
    "Tensor", "abs", "allclose", "amax", "amin", "arange", "argmax", "argmin", "autograd", "bool_", "cat",
    "clamp", "default_generator", "double", "dtypes", "empty", "enable_grad", "exp", "eye", "flatten",
    "float16", "float32", "float64", "from_numpy", "full", "full_like", "gather", "int32", "int64",
    "is_grad_enabled", "isclose", "linspace", "log", "log_softmax", "long", "manual_seed", "matmul", "max",
    "maximum", "mean", "min", "minimum", "nn", "no_grad", "ones", "ones_like", "permute", "rand", "randint",
    "randn", "randperm", "relu", "reshape", "set_grad_enabled", "sigmoid", "sign", "softmax", "sqrt",
    "squeeze", "stack", "std", "sum", "tanh", "tensor", "transpose", "uint8", "unsqueeze", "var", "where",
    "zeros", "zeros_like",
]
