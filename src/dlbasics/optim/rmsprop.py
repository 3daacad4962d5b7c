"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics.optim.optimizer import OPTIMIZERS, Optimizer, ParamsT, blocks, decayed_grad
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
            d_buf = self._scratch_array(p, 1) if weight_decay != 0 or maximize else None
            for theta, g, v, m, b, sigma, d_out in blocks(
                    p.data, p.grad, state["square_avg"], state.get("grad_avg"), state.get("momentum_buffer"),
                    self._scratch_array(p, 0), d_buf):
                d = decayed_grad(theta, g, weight_decay, maximize, d_out)
                v *= alpha
                np.multiply(d, 1 - alpha, out=sigma)  # ((1 − α)g)g: torch's addcmul order
                sigma *= d
                v += sigma
                if centered:
                    np.subtract(d, m, out=sigma)  # m ← m + (1 − α)(g − m): torch's lerp
                    sigma *= 1 - alpha
                    m += sigma
                    np.multiply(m, m, out=sigma)
                    np.subtract(v, sigma, out=sigma)
                    np.sqrt(sigma, out=sigma)
                else:
                    np.sqrt(v, out=sigma)
                sigma += eps
                np.divide(d, sigma, out=sigma)
                if momentum > 0:
                    b *= momentum
                    b += sigma
                    np.multiply(b, lr, out=sigma)
                else:
                    sigma *= lr
                theta -= sigma
