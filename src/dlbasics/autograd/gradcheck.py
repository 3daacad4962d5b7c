"""Check a backward against central finite differences: (f(x + h) - f(x - h)) / 2h, in float64."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dlbasics.autograd.grad_mode import no_grad
from dlbasics.tensor import Tensor


def numerical_grad(fn: Callable[..., Tensor], inputs: Sequence[Tensor], i: int, out_grad: np.ndarray,
                   eps: float = 1e-6) -> np.ndarray:
    """d(sum(out_grad * fn(*inputs)))/d(inputs[i]) by central differences, one element at a time."""
    x = inputs[i].data
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # views: x must be contiguous (we perturb it in place)
    with no_grad():
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            plus = float(np.sum(out_grad * fn(*inputs).data))
            flat[k] = orig - eps
            minus = float(np.sum(out_grad * fn(*inputs).data))
            flat[k] = orig
            gflat[k] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-4, seed: int = 0) -> bool:
    """Compare autograd's gradients of ``fn`` with finite differences for every input that requires grad.

    Inputs must be float64 and contiguous. The output is contracted with a random tensor so that every
    output element's gradient is checked. Raises ``AssertionError`` naming the input and the worst
    element on a mismatch; returns True otherwise.
    """
    for k, t in enumerate(inputs):
        if t.requires_grad and (t.dtype != np.float64 or not t.data.flags.c_contiguous):
            raise ValueError(
                f"gradcheck: input {k} must be a contiguous float64 tensor, got {t.dtype} "
                f"({'' if t.data.flags.c_contiguous else 'not '}C-contiguous); use dl.tensor(x, dtype=dl.float64)"
            )
    out = fn(*inputs)
    out_grad = np.random.default_rng(seed).standard_normal(out.shape)
    for t in inputs:
        t.grad = None
    out.backward(out_grad)
    for k, t in enumerate(inputs):
        if not t.requires_grad:
            continue
        expected = numerical_grad(fn, inputs, k, out_grad, eps)
        got = np.zeros_like(expected) if t.grad is None else t.grad
        if not np.allclose(got, expected, atol=atol, rtol=rtol):
            err = np.abs(got - expected)
            j = np.unravel_index(np.argmax(err), err.shape)
            raise AssertionError(
                f"gradcheck: input {k} of shape {t.shape}: analytic {got[j]:.6g} vs numerical {expected[j]:.6g} "
                f"at {tuple(int(v) for v in j)} (max abs error {err.max():.3g})"
            )
    return True
