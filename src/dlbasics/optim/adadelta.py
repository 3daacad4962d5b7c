"""Adadelta: step sizes from the ratio of running RMS of past updates to running RMS of gradients."""

from __future__ import annotations

from typing import Any

from dlbasics import kernels
from dlbasics.kernels.optim import adadelta_update
from dlbasics.optim.optimizer import NO_ARRAY, OPTIMIZERS, Optimizer, ParamsT, blocks, kernel_ready
from dlbasics.tensor import Tensor


@OPTIMIZERS.register("adadelta")
class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012) with a learning-rate factor η (1.0 in the paper) and L2 weight decay λ.

    Per step, with g = ∇θ (−∇θ when ``maximize``), running averages v, u starting at 0:

        g ← g + λθ,      v ← ρv + (1 − ρ)g²
        Δ ← √(u + ε) / √(v + ε) · g,      u ← ρu + (1 − ρ)Δ²
        θ ← θ − ηΔ

    State per parameter: ``step``, ``square_avg`` (v) and ``acc_delta`` (u).
    """

    def __init__(self, params: ParamsT, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, *, maximize: bool = False) -> None:
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        self._require(0 <= group["rho"] <= 1, "rho", group["rho"], "must be in [0, 1]")

    def _step_group(self, group: dict[str, Any]) -> None:
        # float(): Python floats keep float32 arrays float32; NumPy float64 scalars would upcast
        lr, rho, eps = float(group["lr"]), float(group["rho"]), float(group["eps"])
        weight_decay, maximize = float(group["weight_decay"]), bool(group["maximize"])

        def init(p: Tensor, state: dict[str, Any]) -> None:
            state["square_avg"] = self._new_state_array(p)
            state["acc_delta"] = self._new_state_array(p)

        for p, state in self._with_state(group, init):
            dt = p.data.dtype.type
            scalars = (dt(weight_decay), maximize, dt(rho), dt(1 - rho), dt(eps), dt(lr))
            if kernels.use(p.data.size) and kernel_ready(p.data, p.grad):  # one compiled pass (kernels/optim.py)
                adadelta_update(p.data.reshape(-1), p.grad.reshape(-1), state["square_avg"].reshape(-1),
                                state["acc_delta"].reshape(-1), *scalars, NO_ARRAY, NO_ARRAY, NO_ARRAY)
                continue
            # the NumPy twin on cache-sized blocks: its passes then stay in L2
            d_buf = self._scratch_array(p, 2) if weight_decay != 0 or maximize else None
            for theta, g, v, u, std, delta, d_out in blocks(
                    p.data, p.grad, state["square_avg"], state["acc_delta"],
                    self._scratch_array(p, 0), self._scratch_array(p, 1), d_buf):
                adadelta_update.numpy(theta, g, v, u, *scalars, std, delta, NO_ARRAY if d_out is None else d_out)
