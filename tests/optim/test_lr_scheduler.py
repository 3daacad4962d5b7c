"""Learning-rate schedulers against torch.optim.lr_scheduler: the same lr (and momentum/beta1) sequence.

One table of ``(scheduler, kwargs, optimizer, optimizer kwargs)`` drives both libraries on two param
groups with different lrs; after construction and after every ``step()`` the lrs must equal torch's
exactly: dlbasics does the same float operations in the same order (recursive where torch is).
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pytest
import torch

import dlbasics as dl

STEPS = 60


def _lambda_warmup(epoch: int) -> float:
    return min(1.0, (epoch + 1) / 10) * 0.97**epoch


def _lambda_step(epoch: int) -> float:
    return 0.5 ** (epoch // 8)


CASES = [
    ("StepLR", {"step_size": 7, "gamma": 0.5}, "SGD", {}),
    ("StepLR", {"step_size": 1}, "Adam", {}),
    ("MultiStepLR", {"milestones": [5, 12, 12, 30], "gamma": 0.3}, "SGD", {}),
    ("ExponentialLR", {"gamma": 0.93}, "SGD", {}),
    ("CosineAnnealingLR", {"T_max": 20}, "SGD", {}),  # 60 steps: down, back up, down again
    ("CosineAnnealingLR", {"T_max": 13, "eta_min": 0.001}, "Adam", {}),
    ("LinearLR", {}, "SGD", {}),
    ("LinearLR", {"start_factor": 0.1, "end_factor": 0.5, "total_iters": 20}, "SGD", {}),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.0, "total_iters": 40}, "Adam", {}),
    ("LambdaLR", {"lr_lambda": _lambda_warmup}, "SGD", {}),
    ("LambdaLR", {"lr_lambda": [_lambda_warmup, _lambda_step]}, "SGD", {}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": STEPS}, "SGD", {"momentum": 0.9}),
    ("OneCycleLR", {"max_lr": [0.5, 0.1], "epochs": 5, "steps_per_epoch": 12, "anneal_strategy": "linear",
                    "three_phase": True}, "SGD", {"momentum": 0.9, "nesterov": True}),
    ("OneCycleLR", {"max_lr": 0.01, "total_steps": 75, "pct_start": 0.25, "div_factor": 10.0,
                    "final_div_factor": 100.0}, "Adam", {}),
    ("OneCycleLR", {"max_lr": 0.02, "total_steps": STEPS, "base_momentum": 0.8, "max_momentum": 0.9}, "RMSprop",
     {"momentum": 0.5}),
    ("OneCycleLR", {"max_lr": 0.2, "total_steps": STEPS, "cycle_momentum": False}, "Adagrad", {}),
]


def _value_id(v: Any) -> str:
    """A test id part that is the same in every process (no memory addresses: pytest-xdist compares them)."""
    if isinstance(v, list | tuple):
        return "[" + ",".join(_value_id(e) for e in v) + "]"
    if hasattr(v, "__name__"):
        return v.__name__
    return type(v).__name__ if " at 0x" in repr(v) else repr(v)


def _case_id(case: tuple) -> str:
    name, kwargs, opt, _ = case
    args = ",".join(f"{k}={_value_id(v)}" for k, v in kwargs.items())
    return f"{name}({args})-{opt}"


def _optimizers(opt_name: str, opt_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    d = [dl.nn.Parameter(np.zeros(2, np.float32)), dl.nn.Parameter(np.zeros(3, np.float32))]
    t = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
    d_opt = getattr(dl.optim, opt_name)([{"params": [d[0]]}, {"params": [d[1]], "lr": 0.02}], lr=0.1, **opt_kwargs)
    t_opt = getattr(torch.optim, opt_name)([{"params": [t[0]]}, {"params": [t[1]], "lr": 0.02}], lr=0.1,
                                           **opt_kwargs)
    return d_opt, t_opt


def _assert_same_groups(d_opt: Any, t_opt: Any, where: str) -> None:
    for i, (dg, tg) in enumerate(zip(d_opt.param_groups, t_opt.param_groups)):
        for key in ("lr", "initial_lr", "momentum", "max_lr", "min_lr"):
            assert (key in dg) == (key in tg), f"{where}: group {i} key {key!r} presence differs from torch"
            if key in dg:
                assert dg[key] == tg[key], f"{where}: group {i} {key}"
        if "betas" in dg:
            assert dg["betas"][0] == tg["betas"][0], f"{where}: group {i} beta1"
            assert dg["betas"][1] == tg["betas"][1]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_lr_sequence_matches_torch(case: tuple) -> None:
    name, kwargs, opt_name, opt_kwargs = case
    d_opt, t_opt = _optimizers(opt_name, opt_kwargs)
    d_sched = getattr(dl.optim.lr_scheduler, name)(d_opt, **kwargs)
    t_sched = getattr(torch.optim.lr_scheduler, name)(t_opt, **kwargs)
    _assert_same_groups(d_opt, t_opt, "after construction")
    assert d_sched.get_last_lr() == t_sched.get_last_lr()
    seen = set()
    for step in range(1, STEPS):  # OneCycleLR may step total_steps - 1 times
        d_opt.step()
        t_opt.step()
        d_sched.step()
        t_sched.step()
        assert d_sched.last_epoch == t_sched.last_epoch == step
        assert d_sched.get_last_lr() == t_sched.get_last_lr(), f"step {step}"
        _assert_same_groups(d_opt, t_opt, f"step {step}")
        seen.add(round(d_sched.get_last_lr()[0], 12))
    assert len(seen) > 2, "the schedule never moved: the test would prove nothing"


def test_onecycle_refuses_to_step_past_total_steps() -> None:
    opt, _ = _optimizers("SGD", {"momentum": 0.9})
    sched = dl.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    sched.step()
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="tried to step 4 times; total_steps is 3"):
        sched.step()


def test_onecycle_needs_momentum_or_betas() -> None:
    opt, _ = _optimizers("Adagrad", {})
    with pytest.raises(ValueError, match="cycle_momentum needs an optimizer with momentum or betas"):
        dl.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="total_steps or both epochs and steps_per_epoch"):
        dl.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, cycle_momentum=False)


# ---- ReduceLROnPlateau: a scripted metric --------------------------------------------------------------
def _metrics() -> list[float]:
    """Improves, plateaus (with noise below the threshold), improves a little, plateaus again."""
    out = [1.0 - 0.05 * i for i in range(10)]
    out += [0.55 + 0.00001 * (i % 3) for i in range(15)]
    out += [0.5, 0.45, 0.449999, 0.44]
    out += [0.44 + 0.001 * ((-1) ** i) for i in range(30)]
    return out


PLATEAU_CASES = [
    {"patience": 3},
    {"patience": 2, "factor": 0.5, "cooldown": 3},
    {"patience": 1, "threshold": 0.01, "threshold_mode": "abs", "min_lr": [0.004, 0.0015]},
    {"patience": 2, "factor": 0.3, "min_lr": 0.005, "eps": 1e-3},
    {"mode": "max", "patience": 2, "threshold": 0.05},
    {"mode": "max", "patience": 4, "threshold_mode": "abs", "threshold": 0.02, "cooldown": 1},
]


@pytest.mark.parametrize("kwargs", PLATEAU_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_reduce_on_plateau_matches_torch(kwargs: dict[str, Any]) -> None:
    d_opt, t_opt = _optimizers("SGD", {})
    d_sched = dl.optim.lr_scheduler.ReduceLROnPlateau(d_opt, **kwargs)
    t_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, **kwargs)
    _assert_same_groups(d_opt, t_opt, "after construction")  # neither sets initial_lr
    metrics = _metrics()
    if kwargs.get("mode") == "max":
        metrics = [1 - m for m in metrics]
    for i, metric in enumerate(metrics):
        d_sched.step(dl.tensor(metric) if i % 2 else metric)  # a one-element tensor works like a float
        t_sched.step(metric)
        assert d_sched.get_last_lr() == t_sched.get_last_lr(), f"metric {i}: {metric}"
        assert (d_sched.num_bad_epochs, d_sched.cooldown_counter) == (t_sched.num_bad_epochs,
                                                                     t_sched.cooldown_counter)
        _assert_same_groups(d_opt, t_opt, f"metric {i}")
    assert d_sched.get_last_lr()[0] < 0.1, "the lr was never reduced: the test would prove nothing"


def test_reduce_on_plateau_rejects_bad_arguments() -> None:
    opt, _ = _optimizers("SGD", {})
    with pytest.raises(ValueError, match=r"factor must be < 1\.0"):
        dl.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        dl.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="lowest")
    with pytest.raises(ValueError, match="expected 2 min_lrs, got 1"):
        dl.optim.lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0.1])


# ---- state_dict -------------------------------------------------------------------------------------
class Warmup:
    """A callable object: LambdaLR saves its attributes (plain functions are not saved)."""

    def __init__(self) -> None:
        self.length = 4

    def __call__(self, epoch: int) -> float:
        return min(1.0, (epoch + 1) / self.length)


SD_CASES = [case for case in CASES if case[0] != "LambdaLR"] + [
    ("LambdaLR", {"lr_lambda": Warmup()}, "SGD", {}),
    ("ReduceLROnPlateau", {"patience": 2, "cooldown": 1}, "SGD", {}),
]


@pytest.mark.parametrize("case", SD_CASES, ids=_case_id)
def test_scheduler_state_dict_resumes_identically(case: tuple) -> None:
    name, kwargs, opt_name, opt_kwargs = case
    metrics = _metrics()

    def step(sched: Any, i: int) -> None:
        sched.optimizer.step()
        sched.step(metrics[i]) if name == "ReduceLROnPlateau" else sched.step()

    def build() -> Any:
        opt, _ = _optimizers(opt_name, opt_kwargs)
        return getattr(dl.optim.lr_scheduler, name)(opt, **kwargs)

    sched = build()
    for i in range(23):
        step(sched, i)
    opt_sd = sched.optimizer.state_dict()
    opt_sd["param_groups"] = json.loads(json.dumps(opt_sd["param_groups"]))
    sched_sd = json.loads(json.dumps(sched.state_dict()))  # what a JSON checkpoint keeps

    if name == "LambdaLR":
        kwargs = {"lr_lambda": Warmup()}
        kwargs["lr_lambda"].length = 99  # restored from the state dict
    resumed = build()  # construct first, then load: construction writes the lrs (as in torch)
    resumed.optimizer.load_state_dict(opt_sd)
    resumed.load_state_dict(sched_sd)
    assert resumed.get_last_lr() == sched.get_last_lr()
    for i in range(23, STEPS - 1):
        step(sched, i)
        step(resumed, i)
        assert resumed.get_last_lr() == sched.get_last_lr(), f"step {i}"
        assert resumed.last_epoch == sched.last_epoch
        for g, h in zip(sched.optimizer.param_groups, resumed.optimizer.param_groups):
            assert g.get("betas") == h.get("betas") and g.get("momentum") == h.get("momentum")


def test_lambda_lr_state_dict_skips_plain_functions() -> None:
    opt, _ = _optimizers("SGD", {})
    sched = dl.optim.lr_scheduler.LambdaLR(opt, [lambda e: 0.9**e, Warmup()])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [None, {"length": 4}]
    assert "optimizer" not in sd
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        json.dumps(sd)


def test_scheduler_sets_initial_lr_and_requires_it_to_resume() -> None:
    opt, _ = _optimizers("SGD", {})
    with pytest.raises(KeyError, match="initial_lr"):
        dl.optim.lr_scheduler.StepLR(opt, step_size=3, last_epoch=4)
    dl.optim.lr_scheduler.StepLR(opt, step_size=3)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.02]
    with pytest.raises(TypeError, match=r"is not a dl\.optim Optimizer"):
        dl.optim.lr_scheduler.StepLR(object(), step_size=3)


def test_cosine_closed_form_when_resuming_from_last_epoch() -> None:
    d_opt, t_opt = _optimizers("SGD", {})
    for opt in (d_opt, t_opt):
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
    d = dl.optim.lr_scheduler.CosineAnnealingLR(d_opt, T_max=10, last_epoch=4)
    t = torch.optim.lr_scheduler.CosineAnnealingLR(t_opt, T_max=10, last_epoch=4)
    for _ in range(8):
        assert d.get_last_lr() == t.get_last_lr()
        d_opt.step()
        t_opt.step()
        d.step()
        t.step()
    assert d.get_last_lr() == t.get_last_lr()
