"""Optimizer trajectories against torch.optim: same problem, same initial weights, 30 steps, every option.

One table drives both libraries: ``(optimizer name, kwargs)``, looked up in ``dl.optim`` and in
``torch.optim``. Each library computes its own loss and gradients (dl ops and backward vs torch
autograd) on a small tanh MLP, steps its own optimizer, and the weights must agree after every step.
The same table runs in float64 with a tight tolerance, where float32 rounding cannot hide a wrong
order of operations (e.g. where eps is added).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics.optim.optimizer import BLOCK, blocks

STEPS = 30
TOL = {np.float32: (1e-5, 1e-6), np.float64: (1e-10, 1e-12)}


@dataclass(frozen=True)
class Case:
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    first_group_lr: float | None = None  # two param groups: layer 0 gets this lr, layer 2 the default
    atol: float = 1e-6  # float32, for the blocked test

    def __repr__(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        groups = f",groups(lr0={self.first_group_lr})" if self.first_group_lr is not None else ""
        return f"{self.name}({opts}{groups})"


CASES = [
    # SGD: plain, momentum, dampening, Nesterov, L2 decay, maximize
    Case("SGD", {"lr": 0.1}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    Case("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}),
    Case("SGD", {"lr": 0.1, "weight_decay": 0.1}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.02}),
    Case("SGD", {"lr": 0.1, "maximize": True}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.05, "maximize": True}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9}, first_group_lr=0.2),
    # Adagrad: lr decay, initial accumulator, L2 decay, eps, maximize
    Case("Adagrad", {"lr": 0.1}),
    Case("Adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    Case("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5}),
    Case("Adagrad", {"lr": 0.1, "weight_decay": 0.1}),
    Case("Adagrad", {"lr": 0.05, "eps": 0.1}),
    Case("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.05, "maximize": True}),
    Case("Adagrad", {"lr": 0.05}, first_group_lr=0.2),
    # Adadelta: default, rho, eps, lr factor, L2 decay, maximize
    Case("Adadelta", {}),
    Case("Adadelta", {"lr": 0.5, "rho": 0.5}),
    Case("Adadelta", {"eps": 1e-3}),
    Case("Adadelta", {"lr": 2.0, "weight_decay": 0.1}),
    Case("Adadelta", {"maximize": True, "weight_decay": 0.01}),
    Case("Adadelta", {"lr": 1.0}, first_group_lr=3.0),
    # RMSprop: plain, centered, momentum, both, L2 decay, eps, maximize
    Case("RMSprop", {"lr": 0.01}),
    Case("RMSprop", {"lr": 0.01, "centered": True}),
    Case("RMSprop", {"lr": 0.005, "momentum": 0.9}),
    Case("RMSprop", {"lr": 0.005, "momentum": 0.8, "centered": True}),
    Case("RMSprop", {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.1}),
    Case("RMSprop", {"lr": 0.01, "eps": 0.05}),
    Case("RMSprop", {"lr": 0.005, "momentum": 0.5, "centered": True, "weight_decay": 0.05, "maximize": True}),
    Case("RMSprop", {"lr": 0.005}, first_group_lr=0.02),
    # Adam: default, betas, eps, L2 decay, AMSGrad, maximize
    Case("Adam", {"lr": 0.01}),
    Case("Adam", {"lr": 0.01, "betas": (0.5, 0.9)}),
    Case("Adam", {"lr": 0.01, "eps": 0.01}),
    Case("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    Case("Adam", {"lr": 0.01, "amsgrad": True}),
    Case("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05, "maximize": True}),
    Case("Adam", {"lr": 0.01}, first_group_lr=0.03),
    # AdamW: default decay, strong decay, AMSGrad, no decay, maximize
    Case("AdamW", {"lr": 0.01}),
    Case("AdamW", {"lr": 0.01, "weight_decay": 0.5}),
    Case("AdamW", {"lr": 0.01, "weight_decay": 0.2, "amsgrad": True}),
    Case("AdamW", {"lr": 0.01, "weight_decay": 0.0, "betas": (0.8, 0.99)}),
    Case("AdamW", {"lr": 0.01, "maximize": True}),
    Case("AdamW", {"lr": 0.01, "weight_decay": 0.1}, first_group_lr=0.03),
]


def _problem(dtype: type) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6)).astype(dtype)
    y = np.sin(x[:, :3] + x[:, 3:]).astype(dtype)
    weights = {
        "0.weight": rng.uniform(-0.4, 0.4, (16, 6)).astype(dtype),
        "0.bias": rng.uniform(-0.4, 0.4, 16).astype(dtype),
        "2.weight": rng.uniform(-0.25, 0.25, (3, 16)).astype(dtype),
        "2.bias": rng.uniform(-0.25, 0.25, 3).astype(dtype),
    }
    return x, y, weights


def _param_spec(case: Case, model: Any) -> Any:
    if case.first_group_lr is None:
        return model.parameters()
    return [{"params": model[0].parameters(), "lr": case.first_group_lr}, {"params": model[2].parameters()}]


def _torch_kwargs(case: Case) -> dict[str, Any]:
    return {**case.kwargs, "foreach": False}  # the single-tensor implementation: the reference formulas


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_trajectory_matches_torch(case: Case, dtype: type) -> None:
    x, y, weights = _problem(dtype)
    sign = -1.0 if case.kwargs.get("maximize") else 1.0  # maximize -(loss): both still descend the loss

    dm = dl.nn.Sequential(dl.nn.Linear(6, 16), dl.nn.Tanh(), dl.nn.Linear(16, 3)).to(dtype)
    dm.load_state_dict(weights)
    tm = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).to(
        torch.float32 if dtype == np.float32 else torch.float64)
    tm.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
    d_opt = getattr(dl.optim, case.name)(_param_spec(case, dm), **case.kwargs)
    t_opt = getattr(torch.optim, case.name)(_param_spec(case, tm), **_torch_kwargs(case))
    xd, yd, xt, yt = dl.tensor(x, dtype=dtype), dl.tensor(y, dtype=dtype), torch.from_numpy(x), torch.from_numpy(y)
    d_params, t_params = dict(dm.named_parameters()), dict(tm.named_parameters())
    arrays = {k: p.data for k, p in d_params.items()}
    rtol, atol = TOL[dtype]

    for step in range(STEPS):
        d_opt.zero_grad()
        (sign * F.mse_loss(dm(xd), yd)).backward()
        grads = {k: p.grad for k, p in d_params.items()}
        grad_copies = {k: g.copy() for k, g in grads.items()}
        d_opt.step()
        t_opt.zero_grad()
        (sign * torch.nn.functional.mse_loss(tm(xt), yt)).backward()
        t_opt.step()
        for k, p in d_params.items():
            assert p.grad is grads[k] and np.array_equal(p.grad, grad_copies[k]), f"step changed {k}.grad"
            assert p.data is arrays[k], f"{k}: the update must be in place"
            assert p.data.dtype == dtype, f"{k}: dtype changed to {p.data.dtype}"
            np.testing.assert_allclose(p.data, t_params[k].detach().numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"{case!r} {k} after step {step + 1}")

    moved = max(np.abs(p.data - weights[k]).max() for k, p in d_params.items())
    assert moved > 1e-3, f"{case!r}: the weights hardly moved ({moved:.2g}); the test would prove nothing"
    # the state has torch's names and values, so state dicts mean the same thing in both libraries
    for k, p in d_params.items():
        d_state, t_state = d_opt.state.get(p, {}), t_opt.state.get(t_params[k], {})
        assert sorted(d_state) == sorted(t_state), f"{k}: state names {sorted(d_state)} vs {sorted(t_state)}"
        for name, value in d_state.items():
            t_value = t_state[name]
            if name == "step":
                assert value == int(t_value.item())
            else:
                assert value.dtype == dtype, f"{k}.{name} is {value.dtype}"
                np.testing.assert_allclose(value, t_value.numpy(), rtol=max(rtol, 1e-4), atol=max(atol, 1e-5),
                                           err_msg=f"{k}.{name}")


# ---- large and strided arrays: the blocked path and its fallback -------------------------------------
BLOCK_CASES = [
    Case("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1, "maximize": True}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.2}),
    Case("Adagrad", {"lr": 0.05, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.1}),
    Case("Adadelta", {"weight_decay": 0.1, "maximize": True}),
    # centered: √(v − m²) cancels where random gradients make v ≈ m². torch's CPU kernels round each
    # multiply-add once (FMA), NumPy twice; that ulp, amplified by the cancellation, moves 1 of 270k
    # weights by ~1.4e-6 after 4 steps
    Case("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.1}, atol=1e-5),
    Case("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    Case("AdamW", {"lr": 0.01, "amsgrad": True}),
]


@pytest.mark.parametrize("case", BLOCK_CASES, ids=repr)
def test_blocked_and_strided_arrays_match_torch(case: Case) -> None:
    """A parameter larger than BLOCK is updated block by block; a Fortran-ordered one, or one whose
    gradient is a strided view, whole. All must follow torch."""
    rng = np.random.default_rng(1)
    big = (rng.standard_normal((3, 40_000)) * 0.1).astype(np.float32)  # 120k elements > BLOCK: 2 blocks
    fortran = np.asfortranarray(rng.standard_normal((300, 250)).astype(np.float32))  # 75k elements, F order
    assert big.size > BLOCK and fortran.size > BLOCK and not fortran.flags.c_contiguous
    d_params = [dl.nn.Parameter(big.copy()), dl.nn.Parameter(fortran.copy(order="F")),
                dl.nn.Parameter(big.copy())]
    t_params = [torch.nn.Parameter(torch.from_numpy(p.data.copy(order="K"))) for p in d_params]
    d_opt = getattr(dl.optim, case.name)(d_params, **case.kwargs)
    t_opt = getattr(torch.optim, case.name)(t_params, **_torch_kwargs(case))
    for step in range(12):
        for i, (dp, tp) in enumerate(zip(d_params, t_params)):
            g = rng.standard_normal(dp.shape).astype(np.float32)
            if i == 2:  # a strided view as the gradient (as a transposing backward may leave it)
                g = np.ascontiguousarray(g.T).T
            dp.grad, tp.grad = g, torch.from_numpy(g.copy(order="K"))
        d_opt.step()
        t_opt.step()
        for i, (dp, tp) in enumerate(zip(d_params, t_params)):
            np.testing.assert_allclose(dp.data, tp.detach().numpy(), rtol=1e-5, atol=case.atol,
                                       err_msg=f"{case!r} parameter {i} after step {step + 1}")
    assert not d_params[1].data.flags.c_contiguous  # updated in place, so the layout is kept


def test_blocks_cover_every_element_with_views() -> None:
    a = np.arange(3 * BLOCK + 5, dtype=np.float32)
    b = np.zeros_like(a)
    parts = list(blocks(a, b, None))
    assert len(parts) == 4 and max(len(x) for x, _, _ in parts) <= BLOCK
    assert all(np.shares_memory(x, a) and np.shares_memory(y, b) and z is None for x, y, z in parts)
    for x, y, _ in parts:
        y += x
    np.testing.assert_array_equal(b, a)
    f = np.asfortranarray(np.ones((400, 400), np.float32))
    (whole,) = list(blocks(f, np.ones((400, 400), np.float32)))
    assert whole[0] is f
