"""The optimizers' updates of one parameter (Adam / AdamW, SGD, RMSprop, Adagrad, Adadelta), each in one pass
over its values instead of several.

Per value, in the float operations and order of ``optim/*.py`` (and PyTorch's: lerp for running means,
addcmul's ((1 − β) d) d for running squares), with d ← ±g + l2 · θ (− when maximizing, l2 = λ for L2 decay):
    Adam      θ ← θ · decay (AdamW: 1 − ηλ),  m ← m + (1 − β₁)(d − m),  v ← β₂ v + ((1 − β₂) d) d,
              (AMSGrad: v̂ ← max(v̂, v), used for v),  θ ← θ − step_size · m / (√v + ε c)
    SGD       b ← b μ + (1 − τ) d (d at the first step),  d ← d + μ b (Nesterov) or b,  θ ← θ − η d
    RMSprop   v ← α v + ((1 − α) d) d,  σ ← √v + ε (centered: m ← m + (1 − α)(d − m), σ ← √(v − m m) + ε),
              s ← d / σ (momentum: b ← b μ + s, s ← b),  θ ← θ − η s
    Adagrad   S ← S + d d,  θ ← θ − d / (√S + ε) · η_t
    Adadelta  v ← ρ v + ((1 − ρ) d) d,  Δ ← √(u + ε) / √(v + ε) · d,  u ← ρ u + ((1 − ρ) Δ) Δ,  θ ← θ − Δ η
Each NumPy twin is its optimizer's NumPy path itself (run on cache-sized blocks with scratch
arrays, which the loop ignores), so the math is written once in each form. The scalars come in the parameter's
dtype, so float32 stays float32 as in NumPy (a Python float would make numba compute in float64); an absent
state array comes as an empty one.
"""

from __future__ import annotations

import numpy as np

from dlbasics.kernels import Kernel


def _decayed_numpy(theta, g, l2, maximize, d_out):
    """d = l2 θ ± g written to ``d_out``; ``g`` itself (never written) when there is no decay and no sign."""
    if l2 != 0:
        np.multiply(theta, l2, out=d_out)
        return (np.subtract if maximize else np.add)(d_out, g, out=d_out)
    return np.negative(g, out=d_out) if maximize else g


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
    d = _decayed_numpy(theta, g, l2, maximize, d_out)
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


def _sgd_loop(theta, g, buf, first, l2, maximize, momentum, one_minus_dampening, nesterov, lr, tmp, d_out):
    """SGD with momentum (buf has no values when momentum is 0), in the twin's float order:
    d = ±g + l2 θ;  b = d (first step) or b μ + (1 − τ) d;  d = d + μ b (Nesterov) or b;  θ ← θ − η d.
    (``tmp`` and ``d_out`` are the NumPy twin's scratch arrays; the loop needs none.)"""
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


def _sgd_numpy(theta, g, buf, first, l2, maximize, momentum, one_minus_dampening, nesterov, lr, tmp, d_out):
    """In place, with the scratch arrays ``tmp`` and ``d_out`` (the latter used only with l2 or maximize)."""
    d = _decayed_numpy(theta, g, l2, maximize, d_out)
    if buf.size:
        if first:
            np.copyto(buf, d)
        else:
            buf *= momentum
            if one_minus_dampening == 1:
                buf += d
            else:
                np.multiply(d, one_minus_dampening, out=tmp)
                buf += tmp
        if nesterov:
            np.multiply(buf, momentum, out=tmp)
            tmp += d
            d = tmp
        else:
            d = buf
    np.multiply(d, lr, out=tmp)
    theta -= tmp
    return theta


sgd_update = Kernel(_sgd_loop, numpy=_sgd_numpy)


def _rmsprop_loop(theta, g, v, m, b, l2, maximize, alpha, one_minus_alpha, eps, momentum, lr, tmp, d_out):
    """RMSprop; ``m`` (centered) and ``b`` (momentum) have no values when unused.

    One loop per variant, its flags constants (numba inlines ``run``): a loop that kept both absent arrays - the
    same NO_ARRAY - would fail the vectorizer's runtime check that the arrays it writes do not overlap, and run
    scalar (plain RMSprop over 535k values: 1.23 ms against 0.16 ms)."""

    def run(centered, has_momentum):
        for i in range(theta.size):
            th = theta[i]
            d = -g[i] if maximize else g[i]
            if l2 != 0:
                d = th * l2 - g[i] if maximize else th * l2 + g[i]
            vi = v[i] * alpha + (d * one_minus_alpha) * d
            v[i] = vi
            if centered:
                mi = m[i] + (d - m[i]) * one_minus_alpha
                m[i] = mi
                s = d / (np.sqrt(vi - mi * mi) + eps)
            else:
                s = d / (np.sqrt(vi) + eps)
            if has_momentum:
                s = b[i] * momentum + s
                b[i] = s
            theta[i] = th - s * lr

    if m.size and b.size:
        run(True, True)
    elif m.size:
        run(True, False)
    elif b.size:
        run(False, True)
    else:
        run(False, False)
    return theta


def _rmsprop_numpy(theta, g, v, m, b, l2, maximize, alpha, one_minus_alpha, eps, momentum, lr, tmp, d_out):
    """In place, with the scratch arrays ``tmp`` and ``d_out`` (the latter used only with l2 or maximize)."""
    d = _decayed_numpy(theta, g, l2, maximize, d_out)
    v *= alpha
    np.multiply(d, one_minus_alpha, out=tmp)  # ((1 − α)g)g: torch's addcmul order
    tmp *= d
    v += tmp
    if m.size:
        np.subtract(d, m, out=tmp)  # m ← m + (1 − α)(g − m): torch's lerp
        tmp *= one_minus_alpha
        m += tmp
        np.multiply(m, m, out=tmp)
        np.subtract(v, tmp, out=tmp)
        np.sqrt(tmp, out=tmp)
    else:
        np.sqrt(v, out=tmp)
    tmp += eps
    np.divide(d, tmp, out=tmp)
    if b.size:
        b *= momentum
        b += tmp
        np.multiply(b, lr, out=tmp)
    else:
        tmp *= lr
    theta -= tmp
    return theta


rmsprop_update = Kernel(_rmsprop_loop, numpy=_rmsprop_numpy)


def _adagrad_loop(theta, g, s, l2, maximize, clr, eps, tmp, d_out):
    """Adagrad at the step's learning rate ``clr`` = η / (1 + (t − 1) · lr_decay)."""
    for i in range(theta.size):
        th = theta[i]
        d = -g[i] if maximize else g[i]
        if l2 != 0:
            d = th * l2 - g[i] if maximize else th * l2 + g[i]
        si = s[i] + d * d
        s[i] = si
        theta[i] = th - d / (np.sqrt(si) + eps) * clr
    return theta


def _adagrad_numpy(theta, g, s, l2, maximize, clr, eps, tmp, d_out):
    d = _decayed_numpy(theta, g, l2, maximize, d_out)
    np.multiply(d, d, out=tmp)
    s += tmp
    np.sqrt(s, out=tmp)
    tmp += eps
    np.divide(d, tmp, out=tmp)
    tmp *= clr
    theta -= tmp
    return theta


adagrad_update = Kernel(_adagrad_loop, numpy=_adagrad_numpy)


def _adadelta_loop(theta, g, v, u, l2, maximize, rho, one_minus_rho, eps, lr, std, delta, d_out):
    for i in range(theta.size):
        th = theta[i]
        d = -g[i] if maximize else g[i]
        if l2 != 0:
            d = th * l2 - g[i] if maximize else th * l2 + g[i]
        vi = v[i] * rho + (d * one_minus_rho) * d
        v[i] = vi
        de = np.sqrt(u[i] + eps) / np.sqrt(vi + eps) * d
        u[i] = u[i] * rho + (de * one_minus_rho) * de
        theta[i] = th - de * lr
    return theta


def _adadelta_numpy(theta, g, v, u, l2, maximize, rho, one_minus_rho, eps, lr, std, delta, d_out):
    """In place, with the scratch arrays ``std``, ``delta`` and ``d_out`` (the last used only with l2 or
    maximize)."""
    d = _decayed_numpy(theta, g, l2, maximize, d_out)
    v *= rho
    np.multiply(d, one_minus_rho, out=std)  # ((1 − ρ)g)g: torch's addcmul order
    std *= d
    v += std
    np.add(v, eps, out=std)
    np.sqrt(std, out=std)
    np.add(u, eps, out=delta)
    np.sqrt(delta, out=delta)
    delta /= std
    delta *= d
    u *= rho
    np.multiply(delta, one_minus_rho, out=std)
    std *= delta
    u += std
    delta *= lr
    theta -= delta
    return theta


adadelta_update = Kernel(_adadelta_loop, numpy=_adadelta_numpy)

__all__ = ["adadelta_update", "adagrad_update", "adam_update", "rmsprop_update", "sgd_update"]
