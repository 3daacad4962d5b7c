"""The stateless neural-network API (``import dlbasics.nn.functional as F``), PyTorch's names and semantics.

Losses take ``reduction`` in {"mean", "sum", "none"}.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics import ops
from dlbasics.autograd import is_grad_enabled
from dlbasics.ops import gelu, leaky_relu, linear, log_softmax, relu, sigmoid, softmax, tanh
from dlbasics.ops._operands import constant
from dlbasics.ops.attention import scaled_dot_product_attention
from dlbasics.ops.conv import conv2d, conv_transpose2d
from dlbasics.ops.embedding import embedding
from dlbasics.ops.nn_ops import dropout as _dropout_op
from dlbasics.ops.norm import batch_norm as _batch_norm_op
from dlbasics.ops.norm import layer_norm
from dlbasics.ops.pool import adaptive_avg_pool2d, avg_pool2d, local_response_norm, max_pool2d, pad
from dlbasics.rng import Seed, get_generator
from dlbasics.tensor import Tensor

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dice_loss",
    "dropout",
    "embedding",
    "gaussian_focal_loss",
    "gelu",
    "huber_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "local_response_norm",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "normalize",
    "nt_xent_loss",
    "one_hot",
    "pad",
    "relu",
    "scaled_dot_product_attention",
    "sigmoid",
    "smooth_l1_loss",
    "softmax",
    "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, fn: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, generator: Seed = None) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p), so the
    expected activation is unchanged and evaluation needs no rescaling. Identity when not training."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    dtype = input.data.dtype if input.data.dtype.kind == "f" else np.dtype(np.float32)
    u = get_generator(generator).random(input.shape, dtype=np.float32 if dtype == np.float32 else np.float64)
    return _dropout_op(input, u, p)


def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """The Huber loss: 0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta), for d = input - target.

    Quadratic near zero, linear beyond ``delta``: its gradient is d clipped to [-delta, delta], so one wild target
    (a TD target early in Q-learning) cannot swamp an update (DQN, Mnih et al. 2015). Computed as q (d - q / 2) with
    q = clamp(d, -delta, delta), which is both branches at once and leaves the gradient to autograd."""
    _check_reduction(reduction, "huber_loss")
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    target = constant(target, input)
    if input.shape != target.shape:
        raise ValueError(f"huber_loss: input {input.shape} and target {target.shape} differ in shape "
                         "(broadcasting them is almost always a bug; reshape one)")
    d = input - target
    q = d.clamp(-delta, delta)
    return _reduce(q * (d - 0.5 * q), reduction)


def dice_loss(input: Tensor, target: Any, eps: float = 1.0) -> Tensor:
    """The soft Dice loss of logits (N, C, ...) against class indices (N, ...): 1 - mean_c (2 sum p_c y_c + eps) /
    (sum p_c + sum y_c + eps), with p = softmax over C and y the one-hot target, each sum over the batch and the
    positions. Each class counts by its overlap, not its size (Milletari et al. 2016, V-Net)."""
    t = _array(target)
    if t.dtype.kind not in "iu" or input.ndim < 2 or t.shape != (input.shape[0], *input.shape[2:]):
        raise ValueError(f"dice_loss: expected logits (N, C, ...) and class indices (N, ...), got shapes "
                         f"{tuple(input.shape)} and {t.shape} ({t.dtype})")
    c = input.shape[1]
    _check_indices(t, c, -1 - c, "dice_loss")  # no ignore_index: every index must name a class
    p = softmax(input, 1).transpose(0, 1).reshape(c, -1)  # (C, N * positions)
    y = np.moveaxis(np.eye(c, dtype=input.data.dtype)[t], -1, 0).reshape(c, -1)
    inter = (p * constant(y, input)).sum(1)
    denom = p.sum(1) + constant(y.sum(1), input)
    return 1.0 - ((2.0 * inter + eps) / (denom + eps)).mean()


def smooth_l1_loss(input: Tensor, target: Any, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Smooth L1: the Huber loss divided by ``beta`` (0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta); with
    beta 1 the two are the same, the loss stable-baselines3's DQN trains with."""
    if not beta > 0:
        raise ValueError(f"smooth_l1_loss: beta must be > 0, got {beta} (beta 0, plain L1, is not supported)")
    loss = huber_loss(input, target, reduction, delta=beta)
    return loss if beta == 1.0 else loss * (1.0 / beta)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error: mean((input - target)^2)."""
    _check_reduction(reduction, "mse_loss")
    target = constant(target, input)
    if input.shape != target.shape:
        raise ValueError(
            f"mse_loss: input {input.shape} and target {target.shape} differ in shape "
            "(broadcasting them is almost always a bug; reshape one)"
        )
    d = input - target
    return _reduce(d * d, reduction)


def _class_layout(input: Tensor, target: np.ndarray, fn: str, probs: bool) -> tuple[Tensor, np.ndarray, tuple]:
    """(N, C), (N, C, d1, ...) or (C,) logits and their targets as (M, C) rows; the 'none' output shape."""
    if input.ndim == 0:
        raise ValueError(f"{fn}: input must have a class dim, got a 0-d tensor")
    if input.ndim == 1:
        out_shape: tuple = ()
        x2 = input.reshape(1, -1)
        t = target.reshape(1, -1) if probs else target.reshape(1)
        expected = input.shape if probs else ()
    else:
        n, c = input.shape[0], input.shape[1]
        rest = input.shape[2:]
        out_shape = (n, *rest)
        expected = input.shape if probs else out_shape
        x2 = input if input.ndim == 2 else input.permute(0, *range(2, input.ndim), 1).reshape(-1, c)
        t = target
        if target.shape == expected and input.ndim > 2:
            t = np.moveaxis(target, 1, -1).reshape(-1, c) if probs else target.reshape(-1)
    if target.shape != expected:
        kind = "class probabilities" if probs else "class indices"
        raise ValueError(f"{fn}: input {input.shape} needs {kind} of shape {expected}, got target {target.shape}")
    return x2, t, out_shape


def _class_weight(weight: Any, c: int, dtype: np.dtype, fn: str) -> np.ndarray | None:
    if weight is None:
        return None
    w = _array(weight).astype(dtype, copy=False)
    if w.shape != (c,):
        raise ValueError(f"{fn}: weight must have one entry per class, shape ({c},), got {w.shape}")
    return w


def _check_indices(t: np.ndarray, c: int, ignore_index: int, fn: str) -> None:
    bad = (t != ignore_index) & ((t < 0) | (t >= c))
    if bad.any():
        raise IndexError(f"{fn}: target {int(t[bad][0])} is out of bounds for {c} classes")


def cross_entropy(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits: -sum_c q_c log softmax(input)_c, one fused op (log-softmax + NLL).

    input: (N, C), (N, C, d1, ...) or (C,) logits. target: class indices (N,) / (N, d1, ...) / (),
    or class probabilities of the input's shape. ``label_smoothing`` eps mixes the target with the
    uniform distribution: q = (1 - eps) q + eps / C. Finite and exact for logits of any magnitude.
    """
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    t = _array(target)
    probs = t.dtype.kind == "f"
    if probs:
        t = t.astype(input.data.dtype, copy=False)
    elif t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold class indices (int) or probabilities (float), got {t.dtype}")
    x2, t2, out_shape = _class_layout(input, t, "cross_entropy", probs)
    c = x2.shape[1]
    if not probs:
        _check_indices(t2, c, ignore_index, "cross_entropy")
    w = _class_weight(weight, c, input.data.dtype, "cross_entropy")
    if probs and isinstance(target, Tensor) and target.requires_grad and is_grad_enabled():
        return _soft_cross_entropy(input, target, w, float(label_smoothing), reduction)
    loss = ops.cross_entropy_2d(x2, t2, w, ignore_index, float(label_smoothing), reduction)
    return loss.reshape(out_shape) if reduction == "none" else loss


def _soft_cross_entropy(input: Tensor, target: Tensor, w: np.ndarray | None, eps: float, reduction: str) -> Tensor:
    """The probability-target case composed from ops, so that the gradient also reaches a target that
    requires grad (the fused op treats the target as a constant): -sum_c w_c q_c log softmax(input)_c."""
    cdim = 0 if input.ndim == 1 else 1
    c = input.shape[cdim]
    q = target.to(input.data.dtype)
    if eps:
        q = q * (1 - eps) + eps / c
    if w is not None:
        q = q * Tensor._make(w.reshape(c, *(1,) * (input.ndim - cdim - 1)), False, None)
    return _reduce(-(q * log_softmax(input, cdim)).sum(cdim), reduction)  # "mean" over N (and d1, ...)


def nll_loss(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities: -w_t input[t], the maximum-likelihood loss of a
    categorical model (``cross_entropy`` = ``nll_loss(log_softmax(x))``). Same layouts as cross_entropy."""
    _check_reduction(reduction, "nll_loss")
    t = _array(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold class indices (int), got {t.dtype}")
    x2, t2, out_shape = _class_layout(input, t, "nll_loss", False)
    c = x2.shape[1]
    _check_indices(t2, c, ignore_index, "nll_loss")
    valid = t2 != ignore_index
    safe = np.where(valid, t2, 0)
    w = _class_weight(weight, c, input.data.dtype, "nll_loss")
    wy = (w[safe] if w is not None else np.ones(safe.shape, input.data.dtype)) * valid
    picked = ops.gather(x2, 1, Tensor._make(safe[:, None], False, None)).reshape(-1)
    # where, not a product with 0: an ignored row gets no gradient even when "mean" divides by 0 (as PyTorch)
    loss = ops.where(valid, -(picked * Tensor._make(wy, False, None)), 0.0)
    if reduction == "none":
        return loss.reshape(out_shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / Tensor._make(np.asarray(wy.sum(), input.data.dtype), False, None)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    """-[pos_weight y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))], computed from the logits x so that
    large |x| stays finite. ``pos_weight`` (broadcast over the last dim) weighs positive examples."""
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    target = constant(target, input)
    if target.shape != input.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: target size {target.shape} must be the same as input size {input.shape}"
        )
    if target.data.dtype != input.data.dtype:
        target = target.to(input.data.dtype)
    pw = None if pos_weight is None else _array(pos_weight).astype(input.data.dtype, copy=False)
    loss = ops.bce_with_logits(input, target, pw)
    if weight is not None:
        loss = loss * constant(weight, input)
    return _reduce(loss, reduction)


def gaussian_focal_loss(input: Tensor, target: Any, alpha: float = 2.0, beta: float = 4.0) -> Tensor:
    """CornerNet's and CenterNet's focal loss of heatmap logits against Gaussian targets in [0, 1] (1 at the centres):

        -1/N sum [ (1 - p)^alpha log p              where y = 1 (the N centres)
                   (1 - y)^beta p^alpha log(1 - p)  elsewhere ]           p = sigmoid(input)

    The (1 - p)^alpha and p^alpha factors let the many easy positions count little; (1 - y)^beta forgives a peak
    next to the true centre. log p and log(1 - p) come from the logits (``binary_cross_entropy_with_logits``), finite
    for any logit."""
    y = _array(target).astype(input.data.dtype, copy=False)
    if y.shape != input.shape:
        raise ValueError(f"gaussian_focal_loss: target {y.shape} and input {input.shape} differ in shape")
    pos = (y == 1).astype(input.data.dtype)
    p = sigmoid(input)
    log_p = -ops.bce_with_logits(input, constant(np.ones_like(y), input), None)
    log_not_p = -ops.bce_with_logits(input, constant(np.zeros_like(y), input), None)
    q = 1.0 - p
    pos_term = (q * q if alpha == 2 else q ** alpha) * log_p * constant(pos, input)
    neg_term = (p * p if alpha == 2 else p ** alpha) * log_not_p * constant((1 - y) ** beta * (1 - pos), input)
    return (pos_term + neg_term).sum() * (-1.0 / max(float(pos.sum()), 1.0))


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input / max(||input||_p, eps) along ``dim``, as ``torch.nn.functional.normalize``: rows (dim=1) of unit
    length, a zero row left at zero. ||x||_p = (sum |x|^p)^(1/p), max |x| for p = inf. A composite of ops."""
    if input.data.dtype.kind != "f":
        raise TypeError(f"normalize: expected a floating tensor, got {input.data.dtype}")
    if not p > 0:
        raise ValueError(f"normalize: p must be > 0, got {p}")
    if p == float("inf"):
        norm = input.abs().amax(dim, keepdim=True)
    elif p == 1:
        norm = input.abs().sum(dim, keepdim=True)
    else:
        s = (input * input if p == 2 else input.abs() ** p).sum(dim, keepdim=True)
        # the root's slope is infinite at 0: clamping the sum first keeps a zero row's gradient at PyTorch's 1/eps
        s = s.clamp(min=float(np.finfo(input.data.dtype).tiny))
        norm = s.sqrt() if p == 2 else s ** (1.0 / p)
    return input / norm.clamp(min=eps)


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float = 0.5, reduction: str = "mean") -> Tensor:
    """SimCLR's normalized temperature-scaled cross-entropy of two views' projections z1, z2 (N, D).

    z = normalize(cat(z1, z2)) (2N, D); s = z z^T / temperature with s_ii = -inf; row i's loss is
    cross_entropy(s_i, (i + N) mod 2N): each view must pick its partner out of the 2N - 1 other views.
    "mean" averages the 2N rows (Chen et al. 2020, eq. 1 summed over both orders of each pair, over 2N).
    A composite of differentiable ops; it needs no backward of its own.
    """
    _check_reduction(reduction, "nt_xent_loss")
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"nt_xent_loss: z1 and z2 must be projections (N, D) of one shape, got {z1.shape} and "
                         f"{z2.shape}")
    if not temperature > 0:
        raise ValueError(f"nt_xent_loss: temperature must be > 0, got {temperature}")
    n = z1.shape[0]
    if n < 1:
        raise ValueError("nt_xent_loss: needs at least one pair of views (N >= 1)")
    z = normalize(ops.cat([z1, z2], 0), dim=1)
    sim = ops.where(np.eye(2 * n, dtype=bool), -np.inf, (z @ z.mT) / temperature)  # (2N, 2N), no self-pairs
    target = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    return cross_entropy(sim, target, reduction=reduction)


def one_hot(target: Any, num_classes: int = -1) -> Tensor:
    """Class indices (...,) as int64 one-hot vectors (..., num_classes)."""
    t = _array(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected class indices (int), got {t.dtype}")
    n = int(t.max()) + 1 if num_classes < 0 else num_classes
    if t.size and (t.min() < 0 or t.max() >= n):
        raise IndexError(f"one_hot: class values must be in [0, {n}), got range [{t.min()}, {t.max()}]")
    return Tensor._make(np.eye(n, dtype=np.int64)[t], False, None)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalization over dim 1 of (N, C, ...), as ``torch.nn.functional.batch_norm``: training uses the
    batch's statistics and, where running statistics are given, updates them in place,
    running = (1 - momentum) running + momentum stat (the variance unbiased); evaluation uses them."""
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, relu=False)


def batch_norm_relu(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                    weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                    momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """relu(batch_norm(...)) as one op: the same values and gradients, in the same passes over the data (with
    the compiled kernels), and the mask taken from the output instead of a second array."""
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, relu=True)


def _batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None,
                bias: Tensor | None, training: bool, momentum: float, eps: float, relu: bool) -> Tensor:
    if input.ndim < 2:
        raise RuntimeError(f"batch_norm: expected input (N, C, ...), got {input.shape}")
    c = input.shape[1]
    dt = input.data.dtype
    gamma = weight if weight is not None else Tensor._make(np.ones(c, dt), False, None)
    beta = bias if bias is not None else Tensor._make(np.zeros(c, dt), False, None)
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and t.shape != (c,):
            raise RuntimeError(f"batch_norm: {name} of shape {t.shape} does not match the {c} channels of input "
                               f"{input.shape}")
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation (training=False) needs running_mean and running_var")
        return _batch_norm_op(input, gamma, beta, eps, running_mean.data, running_var.data, relu=relu)[0]
    n = input.data.size // c if c else 0
    if n <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input "
                         f"{input.shape}")
    out, mean, var = _batch_norm_op(input, gamma, beta, eps, relu=relu)
    if running_mean is not None:
        running_mean.data *= 1 - momentum
        running_mean.data += momentum * mean
    if running_var is not None:
        running_var.data *= 1 - momentum
        running_var.data += (momentum * n / (n - 1)) * var  # the unbiased variance, as PyTorch
    return out
