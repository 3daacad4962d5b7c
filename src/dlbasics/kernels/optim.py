"""The Adam / AdamW and SGD updates of one parameter, each in one pass over its values instead of several.

Per value, in the float operations and order of ``optim/adam.py`` (and PyTorch's: lerp for m, addcmul for v):
    θ ← θ · decay                                   (AdamW: decay = 1 − ηλ; else 1)
    d ← ±g + l2 · θ                                 (− when maximizing; l2 = λ for Adam's L2 decay, else 0)
    m ← m + (1 − β₁)(d − m),   v ← β₂ v + ((1 − β₂) d) d,   (AMSGrad: v̂ ← max(v̂, v), used for v)
    θ ← θ − step_size · m / (√v + ε c)
The scalars come in the parameter's dtype, so float32 stays float32 as in NumPy (a Python float would make
numba compute in float64).
"""

from __future__ import annotations

import numpy as np

from dlbasics.kernels import Kernel


def _adam_loop(theta, g, m, v, v_max, decay, l2, maximize, one_minus_b1, b2, one_minus_b2, step_size, eps_c, tmp,
               d_out):
    """(``tmp`` and ``d_out`` are the NumPy twin's scratch arrays; the loop needs none.)"""
    amsgrad = v_max.size > 0
    for i in range(theta.size):
        th = theta[i] * decay if decay != 1 else theta[i]
        d = -g[i] if maximize else g[i]
        if l2 != 0:
            d = th * l2 - g[i] if maximize else th * l2 + g[i]
        mi = m[i] + (d - m[i]) * one_minus_b1
        vi = v[i] * b2 + (d * one_minus_b2) * d
        m[i] = mi
        v[i] = vi
        if amsgrad:
            if vi > v_max[i] or vi != vi:
                v_max[i] = vi
            vi = v_max[i]
        theta[i] = th - mi / (np.sqrt(vi) + eps_c) * step_size
    return theta


def _adam_numpy(theta, g, m, v, v_max, decay, l2, maximize, one_minus_b1, b2, one_minus_b2, step_size, eps_c, tmp,
                d_out):
    """In place, with the scratch arrays ``tmp`` and ``d_out`` (the latter used only with l2 or maximize): no
    array is allocated (``optim/adam.py`` runs it on cache-sized blocks)."""
    if decay != 1:
        theta *= decay
    d = g
    if l2 != 0:  # d = l2 θ ± g
        np.multiply(theta, l2, out=d_out)
        (np.subtract if maximize else np.add)(d_out, g, out=d_out)
        d = d_out
    elif maximize:
        d = np.negative(g, out=d_out)
    np.subtract(d, m, out=tmp)  # m ← m + (1 − β₁)(g − m): torch's lerp
    tmp *= one_minus_b1
    m += tmp
    v *= b2
    np.multiply(d, one_minus_b2, out=tmp)  # ((1 − β₂)g)g: torch's addcmul order
    tmp *= d
    v += tmp
    if v_max.size:
        v = np.maximum(v_max, v, out=v_max)
    np.sqrt(v, out=tmp)
    tmp += eps_c
    np.divide(m, tmp, out=tmp)
    tmp *= step_size
    theta -= tmp
    return theta


adam_update = Kernel(_adam_loop, numpy=_adam_numpy)



def _sgd_loop(theta, g, buf, first, l2, maximize, momentum, one_minus_dampening, nesterov, lr):
    """SGD with momentum (buf has no values when momentum is 0), in ``optim/sgd.py``'s float order:
    d = ±g + l2 θ;  b = d (first step) or b μ + (1 − τ) d;  d = d + μ b (Nesterov) or b;  θ ← θ − η d."""
    has_buf = buf.size > 0
    for i in range(theta.size):
        th = theta[i]
        d = -g[i] if maximize else g[i]
        if l2 != 0:
            d = th * l2 - g[i] if maximize else th * l2 + g[i]
        if has_buf:
            if first:
                b = d
            elif one_minus_dampening == 1:
                b = buf[i] * momentum + d
            else:
                b = buf[i] * momentum + d * one_minus_dampening
            buf[i] = b
            d = b * momentum + d if nesterov else b
        theta[i] = th - d * lr
    return theta


def _sgd_numpy(theta, g, buf, first, l2, maximize, momentum, one_minus_dampening, nesterov, lr):
    d = (-g if maximize else g) if l2 == 0 else (theta * l2 - g if maximize else theta * l2 + g)
    if buf.size:
        if first:
            buf[...] = d
        else:
            buf *= momentum
            buf += d if one_minus_dampening == 1 else d * one_minus_dampening
        d = buf * momentum + d if nesterov else buf
    theta -= d * lr
    return theta


sgd_update = Kernel(_sgd_loop, numpy=_sgd_numpy)

__all__ = ["adam_update", "sgd_update"]
