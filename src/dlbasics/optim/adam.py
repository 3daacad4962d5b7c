"""Adam and AdamW: momentum on the gradient and on its square, with bias correction."""

from __future__ import annotations

from typing import Any

from dlbasics import kernels
from dlbasics.kernels.optim import adam_update
from dlbasics.optim.optimizer import NO_ARRAY, OPTIMIZERS, Optimizer, ParamsT, blocks, kernel_ready
from dlbasics.tensor import Tensor


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), optionally AMSGrad (Reddi et al., 2018), with L2 weight decay λ.

    Per step t = 1, 2, ..., with g = ∇θ (−∇θ when ``maximize``), m, v starting at 0:

        g ← g + λθ      (AdamW instead decays the weights first: θ ← θ(1 − ηλ))
        m ← β₁m + (1 − β₁)g,      v ← β₂v + (1 − β₂)g²       (AMSGrad: v̂ ← max(v̂, v), used for v)
        θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

    State per parameter: ``step`` (t), ``exp_avg`` (m), ``exp_avg_sq`` (v), ``max_exp_avg_sq`` (v̂, AMSGrad).
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
                    "maximize": maximize, "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        betas = group["betas"]
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"{self._name}: betas must be a pair (beta1, beta2), got {betas!r}")
        self._require(0 <= betas[0] < 1, "beta parameter at index 0:", betas[0], "must be in [0, 1)")
        self._require(0 <= betas[1] < 1, "beta parameter at index 1:", betas[1], "must be in [0, 1)")

    def _step_group(self, group: dict[str, Any]) -> None:
        # float(): Python floats keep float32 arrays float32; NumPy float64 scalars would upcast
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = float(group["betas"][0]), float(group["betas"][1])
        amsgrad, maximize = bool(group["amsgrad"]), bool(group["maximize"])
        decay = 1 - lr * weight_decay if group["decoupled_weight_decay"] and weight_decay != 0 else None
        l2 = 0.0 if decay is not None else weight_decay

        def init(p: Tensor, state: dict[str, Any]) -> None:
            state["exp_avg"] = self._new_state_array(p)
            state["exp_avg_sq"] = self._new_state_array(p)
            if amsgrad:
                state["max_exp_avg_sq"] = self._new_state_array(p)

        for p, state in self._with_state(group, init):
            t = state["step"]
            # θ −= η/(1−β₁ᵗ) · m/(√v/c + ε) with c = √(1−β₂ᵗ), rewritten as θ −= (η c/(1−β₁ᵗ)) · m/(√v + εc):
            # the same value in one pass fewer
            c = (1 - beta2**t) ** 0.5
            step_size, eps_c = lr / (1 - beta1**t) * c, eps * c
            dt = p.data.dtype.type
            scalars = (dt(1 if decay is None else decay), dt(l2), maximize, dt(1 - beta1), dt(beta2), dt(1 - beta2),
                       dt(step_size), dt(eps_c))
            v_max = state.get("max_exp_avg_sq")
            if kernels.use(p.data.size) and kernel_ready(p.data, p.grad):  # one compiled pass (kernels/optim.py)
                adam_update(p.data.reshape(-1), p.grad.reshape(-1), state["exp_avg"].reshape(-1),
                            state["exp_avg_sq"].reshape(-1), NO_ARRAY if v_max is None else v_max.reshape(-1),
                            *scalars, NO_ARRAY, NO_ARRAY)
                continue
            # the NumPy twin on cache-sized blocks: its dozen passes then stay in L2
            d_buf = self._scratch_array(p, 1) if l2 != 0 or maximize else None
            for theta, g, m, v, vm, tmp, d_out in blocks(
                    p.data, p.grad, state["exp_avg"], state["exp_avg_sq"], v_max, self._scratch_array(p, 0), d_buf):
                adam_update.numpy(theta, g, m, v, NO_ARRAY if vm is None else vm, *scalars, tmp,
                                  NO_ARRAY if d_out is None else d_out)


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019): θ ← θ(1 − ηλ) before the Adam step.

    Unlike L2 decay (λθ added to g), the decay bypasses m and v, so it is not rescaled by 1/√v.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
