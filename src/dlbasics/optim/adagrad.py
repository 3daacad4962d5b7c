"""Adagrad: per-coordinate step sizes that shrink with the sum of squared gradients seen so far."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics.optim.optimizer import OPTIMIZERS, Optimizer, ParamsT, blocks, decayed_grad
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
            d_buf = self._scratch_array(p, 1) if weight_decay != 0 or maximize else None
            for theta, g, s, tmp, d_out in blocks(p.data, p.grad, state["sum"], self._scratch_array(p, 0), d_buf):
                d = decayed_grad(theta, g, weight_decay, maximize, d_out)
                np.multiply(d, d, out=tmp)
                s += tmp
                np.sqrt(s, out=tmp)
                tmp += eps
                np.divide(d, tmp, out=tmp)
                tmp *= clr
                theta -= tmp
