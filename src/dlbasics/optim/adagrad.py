"""Adagrad: per-coordinate step sizes that shrink with the sum of squared gradients seen so far."""

from __future__ import annotations

from typing import Any

from dlbasics import kernels
from dlbasics.kernels.optim import adagrad_update
from dlbasics.optim.optimizer import NO_ARRAY, OPTIMIZERS, Optimizer, ParamsT, blocks, kernel_ready
from dlbasics.tensor import Tensor


@OPTIMIZERS.register("adagrad")
class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011) with learning-rate decay and L2 weight decay λ.

    Per step t = 1, 2, ..., with g = ∇θ (−∇θ when ``maximize``):

        g ← g + λθ,     η_t = η / (1 + (t − 1)·lr_decay)
        s ← s + g²                                  (s starts at ``initial_accumulator_value``)
        θ ← θ − η_t · g / (√s + ε)

    State per parameter: ``step`` (t) and ``sum`` (s).
    """

    def __init__(self, params: ParamsT, lr: float = 0.01, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, *, maximize: bool = False) -> None:
        defaults = {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "eps": eps, "maximize": maximize}
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        self._require(group["lr_decay"] >= 0, "lr_decay", group["lr_decay"], "must be >= 0")
        self._require(group["initial_accumulator_value"] >= 0, "initial_accumulator_value",
                      group["initial_accumulator_value"], "must be >= 0")

    def _step_group(self, group: dict[str, Any]) -> None:
        # float(): Python floats keep float32 arrays float32; NumPy float64 scalars would upcast
        lr, lr_decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
        weight_decay, maximize = float(group["weight_decay"]), bool(group["maximize"])

        def init(p: Tensor, state: dict[str, Any]) -> None:
            state["sum"] = self._new_state_array(p, float(group["initial_accumulator_value"]))

        for p, state in self._with_state(group, init):
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            dt = p.data.dtype.type
            scalars = (dt(weight_decay), maximize, dt(clr), dt(eps))
            if kernels.use(p.data.size) and kernel_ready(p.data, p.grad):  # one compiled pass (kernels/optim.py)
                adagrad_update(p.data.reshape(-1), p.grad.reshape(-1), state["sum"].reshape(-1), *scalars,
                               NO_ARRAY, NO_ARRAY)
                continue
            # the NumPy twin on cache-sized blocks: its passes then stay in L2
            d_buf = self._scratch_array(p, 1) if weight_decay != 0 or maximize else None
            for theta, g, s, tmp, d_out in blocks(p.data, p.grad, state["sum"], self._scratch_array(p, 0), d_buf):
                adagrad_update.numpy(theta, g, s, *scalars, tmp, NO_ARRAY if d_out is None else d_out)
