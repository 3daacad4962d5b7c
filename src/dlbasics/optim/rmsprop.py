"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""

from __future__ import annotations

from typing import Any

from dlbasics import kernels
from dlbasics.kernels.optim import rmsprop_update
from dlbasics.optim.optimizer import NO_ARRAY, OPTIMIZERS, Optimizer, ParamsT, blocks, kernel_ready
from dlbasics.tensor import Tensor


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    r"""RMSprop (Hinton, 2012), optionally centered (Graves, 2013), with momentum μ and L2 weight decay λ.

    Per step, with g = ∇θ (−∇θ when ``maximize``), v, m, b starting at 0:

        g ← g + λθ,      v ← αv + (1 − α)g²
        centered: m ← αm + (1 − α)g,   σ = √(v − m²) + ε;     otherwise σ = √v + ε
        μ > 0: b ← μb + g/σ,  θ ← θ − ηb;                      otherwise θ ← θ − ηg/σ

    State per parameter: ``step``, ``square_avg`` (v), ``grad_avg`` (m, if centered), ``momentum_buffer``
    (b, if μ > 0).
    """

    def __init__(self, params: ParamsT, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay, "momentum": momentum,
                    "centered": centered, "maximize": maximize}
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        self._require(group["alpha"] >= 0, "alpha", group["alpha"], "must be >= 0")

    def _step_group(self, group: dict[str, Any]) -> None:
        # float(): Python floats keep float32 arrays float32; NumPy float64 scalars would upcast
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        momentum, centered = float(group["momentum"]), bool(group["centered"])
        weight_decay, maximize = float(group["weight_decay"]), bool(group["maximize"])

        def init(p: Tensor, state: dict[str, Any]) -> None:
            state["square_avg"] = self._new_state_array(p)
            if momentum > 0:
                state["momentum_buffer"] = self._new_state_array(p)
            if centered:
                state["grad_avg"] = self._new_state_array(p)

        for p, state in self._with_state(group, init):
            dt = p.data.dtype.type
            scalars = (dt(weight_decay), maximize, dt(alpha), dt(1 - alpha), dt(eps), dt(momentum), dt(lr))
            # the group's flags choose the variant, as in torch (a buffer left from other settings is ignored)
            m = state["grad_avg"] if centered else None
            b = state["momentum_buffer"] if momentum > 0 else None
            if kernels.use(p.data.size) and kernel_ready(p.data, p.grad):  # one compiled pass (kernels/optim.py)
                rmsprop_update(p.data.reshape(-1), p.grad.reshape(-1), state["square_avg"].reshape(-1),
                               NO_ARRAY if m is None else m.reshape(-1), NO_ARRAY if b is None else b.reshape(-1),
                               *scalars, NO_ARRAY, NO_ARRAY)
                continue
            # the NumPy twin on cache-sized blocks: its passes then stay in L2
            d_buf = self._scratch_array(p, 1) if weight_decay != 0 or maximize else None
            for theta, g, v, mb, bb, tmp, d_out in blocks(
                    p.data, p.grad, state["square_avg"], m, b, self._scratch_array(p, 0), d_buf):
                rmsprop_update.numpy(theta, g, v, NO_ARRAY if mb is None else mb, NO_ARRAY if bb is None else bb,
                                     *scalars, tmp, NO_ARRAY if d_out is None else d_out)
