"""Stochastic gradient descent: plain, with momentum (heavy ball), and Nesterov's accelerated gradient."""

from __future__ import annotations

from typing import Any

from dlbasics import kernels
from dlbasics.kernels.optim import sgd_update
from dlbasics.optim.optimizer import NO_ARRAY, OPTIMIZERS, Optimizer, ParamsT, blocks, kernel_ready


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    r"""SGD with optional momentum μ, dampening τ, Nesterov momentum and L2 weight decay λ.

    Per step, with g = ∇θ (−∇θ when ``maximize``):

        g ← g + λθ
        b ← μb + (1 − τ)g                       (b ← g at the first step)
        g ← g + μb if nesterov, else g ← b       (only when μ ≠ 0)
        θ ← θ − ηg

    State per parameter: ``momentum_buffer`` (b), only when μ ≠ 0.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False) -> None:
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize}
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{self._name}: nesterov requires momentum > 0 and dampening = 0")

    def _step_group(self, group: dict[str, Any]) -> None:
        # float(): Python floats keep float32 arrays float32; NumPy float64 scalars would upcast
        lr, momentum = float(group["lr"]), float(group["momentum"])
        dampening, weight_decay = float(group["dampening"]), float(group["weight_decay"])
        nesterov, maximize = bool(group["nesterov"]), bool(group["maximize"])
        for p in group["params"]:
            if p.grad is None:
                continue
            buf = first = None
            if momentum != 0:
                state = self.state.setdefault(p, {})
                first = "momentum_buffer" not in state
                if first:
                    state["momentum_buffer"] = self._new_state_array(p)
                buf = state["momentum_buffer"]
            dt = p.data.dtype.type
            scalars = (bool(first), dt(weight_decay), maximize, dt(momentum), dt(1 - dampening), nesterov, dt(lr))
            if kernels.use(p.data.size) and kernel_ready(p.data, p.grad):  # one compiled pass (kernels/optim.py)
                sgd_update(p.data.reshape(-1), p.grad.reshape(-1), NO_ARRAY if buf is None else buf.reshape(-1),
                           *scalars, NO_ARRAY, NO_ARRAY)
                continue
            # the NumPy twin on cache-sized blocks: its passes then stay in L2
            d_buf = self._scratch_array(p, 1) if weight_decay != 0 or maximize else None
            for theta, g, b, tmp, d_out in blocks(p.data, p.grad, buf, self._scratch_array(p, 0), d_buf):
                sgd_update.numpy(theta, g, NO_ARRAY if b is None else b, *scalars, tmp,
                                 NO_ARRAY if d_out is None else d_out)
