"""Optimizer bookkeeping: state_dict round trips (bit-exact, through JSON), errors, zero_grad, skipping."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import dlbasics as dl
import dlbasics.nn.functional as F

OPTIMIZERS = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("Adadelta", {"weight_decay": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
]
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(OPTIMIZERS)]


def _model(seed: int) -> dl.nn.Module:
    dl.manual_seed(seed)
    return dl.nn.Sequential(dl.nn.Linear(5, 12), dl.nn.Tanh(), dl.nn.Linear(12, 2))


def _data() -> tuple[dl.Tensor, dl.Tensor]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 5)).astype(np.float32)
    return dl.tensor(x), dl.tensor(np.cos(x[:, :2]))


def _train(model: dl.nn.Module, opt: dl.optim.Optimizer, steps: int) -> None:
    x, y = _data()
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()


def _groups(model: dl.nn.Module) -> list[dict[str, Any]]:
    return [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.003}]


def _json_round_trip(sd: dict[str, Any]) -> dict[str, Any]:
    """What dl.save/dl.load do: arrays stay arrays, everything else goes through JSON."""
    return {"state": {str(k): dict(v) for k, v in sd["state"].items()},  # JSON object keys are strings
            "param_groups": json.loads(json.dumps(sd["param_groups"]))}


# ---- state_dict ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS, ids=IDS)
def test_state_dict_resumes_bit_exactly(name: str, kwargs: dict[str, Any]) -> None:
    model = _model(0)
    opt = getattr(dl.optim, name)(_groups(model), **kwargs)
    _train(model, opt, 10)
    sd = _json_round_trip(opt.state_dict())

    restored = _model(1)  # different weights and default hyperparameters: everything comes from the files
    restored.load_state_dict({k: v.copy() for k, v in model.state_dict().items()})
    opt2 = getattr(dl.optim, name)(_groups(restored))
    opt2.load_state_dict(sd)
    for key in sd["state"]:  # the optimizer copied the arrays: scribbling on the dict changes nothing
        for v in sd["state"][key].values():
            if isinstance(v, np.ndarray):
                v[...] = np.nan

    for g, g2 in zip(opt.param_groups, opt2.param_groups):
        assert {k: v for k, v in g.items() if k != "params"} == {k: v for k, v in g2.items() if k != "params"}
    _train(model, opt, 10)
    _train(restored, opt2, 10)
    for (k, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=f"{name}: {k} differs after resuming")


@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS, ids=IDS)
def test_state_dict_format(name: str, kwargs: dict[str, Any]) -> None:
    model = _model(0)
    opt = getattr(dl.optim, name)(_groups(model), **kwargs)
    _train(model, opt, 3)
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3]]
    json.dumps(sd["param_groups"])  # hyperparameters are JSON-serialisable
    assert sd["param_groups"][1]["lr"] == 0.003
    if name == "SGD" and not kwargs.get("momentum"):
        assert sd["state"] == {}  # plain SGD keeps no state, as in torch
        return
    assert sorted(sd["state"]) == [0, 1, 2, 3]
    params = list(model.parameters())
    for i, values in sd["state"].items():
        for key, v in values.items():
            if key == "step":
                assert isinstance(v, int) and v == 3
            else:
                assert isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == params[i].shape
                assert v is not opt.state[params[i]][key], "state_dict must be a snapshot, not the live array"


def test_state_dict_is_a_snapshot() -> None:
    model = _model(0)
    opt = dl.optim.Adam(model.parameters(), lr=0.01)
    _train(model, opt, 2)
    sd = opt.state_dict()
    before = sd["state"][0]["exp_avg"].copy()
    _train(model, opt, 2)
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], before)
    assert sd["state"][0]["step"] == 2


def test_load_state_dict_accepts_betas_as_list_and_step_as_array() -> None:
    model = _model(0)
    opt = dl.optim.Adam(model.parameters(), lr=0.01, betas=(0.7, 0.95))
    _train(model, opt, 2)
    sd = _json_round_trip(opt.state_dict())
    assert sd["param_groups"][0]["betas"] == [0.7, 0.95]
    for values in sd["state"].values():
        values["step"] = np.array(2.0, dtype=np.float32)  # as torch, or a safetensors file, may hold it
    opt2 = dl.optim.Adam(model.parameters())
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["betas"] == (0.7, 0.95)
    assert all(s["step"] == 2 and isinstance(s["step"], int) for s in opt2.state.values())


def test_load_state_dict_checks_structure() -> None:
    model = _model(0)
    opt = dl.optim.Adam(_groups(model))
    _train(model, opt, 1)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="2 parameter groups, this optimizer 1"):
        dl.optim.Adam(model.parameters()).load_state_dict(sd)
    with pytest.raises(ValueError, match="parameter group 1 of the state dict has 2 parameters"):
        dl.optim.Adam([{"params": model[0].parameters()}, {"params": [model[2].weight]}]).load_state_dict(sd)
    other = _model(0)
    swapped = dl.optim.Adam([{"params": [other[0].bias, other[0].weight]}, {"params": other[2].parameters()}])
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 0 has shape \(12, 5\)"):
        swapped.load_state_dict(sd)


# ---- errors -------------------------------------------------------------------------------------------
def _p() -> dl.nn.Parameter:
    return dl.nn.Parameter(np.zeros(3, np.float32))


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("Adam", {"lr": -1.0}, "Adam: invalid learning rate -1.0 (must be >= 0)"),
    ("SGD", {"momentum": 0.0, "nesterov": True}, "SGD: nesterov requires momentum > 0 and dampening = 0"),
    ("SGD", {"momentum": 0.9, "dampening": 0.1, "nesterov": True},
     "SGD: nesterov requires momentum > 0 and dampening = 0"),
    ("SGD", {"lr": -0.1}, "SGD: invalid learning rate -0.1 (must be >= 0)"),
    ("SGD", {"momentum": -0.5}, "SGD: invalid momentum -0.5 (must be >= 0)"),
    ("SGD", {"weight_decay": -1e-4}, "SGD: invalid weight_decay -0.0001 (must be >= 0)"),
    ("Adam", {"betas": (1.0, 0.999)}, "Adam: invalid beta parameter at index 0: 1.0 (must be in [0, 1))"),
    ("Adam", {"betas": (0.9, -0.1)}, "Adam: invalid beta parameter at index 1: -0.1 (must be in [0, 1))"),
    ("Adam", {"betas": (0.9,)}, "Adam: betas must be a pair (beta1, beta2), got (0.9,)"),
    ("Adam", {"eps": -1e-8}, "Adam: invalid epsilon -1e-08 (must be >= 0)"),
    ("AdamW", {"weight_decay": -0.01}, "AdamW: invalid weight_decay -0.01 (must be >= 0)"),
    ("Adagrad", {"lr_decay": -0.1}, "Adagrad: invalid lr_decay -0.1 (must be >= 0)"),
    ("Adagrad", {"initial_accumulator_value": -1.0},
     "Adagrad: invalid initial_accumulator_value -1.0 (must be >= 0)"),
    ("Adadelta", {"rho": 1.5}, "Adadelta: invalid rho 1.5 (must be in [0, 1])"),
    ("RMSprop", {"alpha": -0.9}, "RMSprop: invalid alpha -0.9 (must be >= 0)"),
    ("RMSprop", {"momentum": -0.9}, "RMSprop: invalid momentum -0.9 (must be >= 0)"),
])
def test_bad_hyperparameters_raise_one_clear_line(name: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        getattr(dl.optim, name)([_p()], **kwargs)
    assert str(info.value) == message


def test_bad_hyperparameter_in_a_group_is_caught() -> None:
    with pytest.raises(ValueError, match="SGD: invalid learning rate -1"):
        dl.optim.SGD([{"params": [_p()]}, {"params": [_p()], "lr": -1}], lr=0.1)
    opt = dl.optim.Adam([_p()])
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        opt.add_param_group({"params": [_p()], "betas": (0.9, 1.0)})


def test_parameter_list_errors() -> None:
    p = _p()
    with pytest.raises(ValueError, match=r"^Adam: got an empty parameter list$"):
        dl.optim.Adam([])
    with pytest.raises(ValueError, match=r"^SGD: some parameters appear in more than one parameter group$"):
        dl.optim.SGD([{"params": [p]}, {"params": [_p(), p]}], lr=0.1)
    with pytest.raises(ValueError, match="same parameter twice"):
        dl.optim.SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="not a single Tensor"):
        dl.optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="not a set"):
        dl.optim.SGD([{"params": {p}}])
    with pytest.raises(TypeError, match="can only optimize Tensors, got ndarray"):
        dl.optim.SGD([np.zeros(3)])
    with pytest.raises(ValueError, match="non-leaf"):
        dl.optim.SGD([p * 2])
    opt = dl.optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": p})


# ---- gradients ----------------------------------------------------------------------------------------
def test_zero_grad() -> None:
    model = _model(0)
    opt = dl.optim.SGD(model.parameters(), lr=0.1)
    _train(model, opt, 1)
    F.mse_loss(model(_data()[0]), _data()[1]).backward()
    grads = [p.grad for p in model.parameters()]
    opt.zero_grad(set_to_none=False)
    for p, g in zip(model.parameters(), grads):
        assert p.grad is g and not g.any()  # the same arrays, zeroed in place
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    opt.zero_grad(set_to_none=False)  # no gradients at all: nothing to do
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS, ids=IDS)
def test_parameter_without_grad_is_skipped(name: str, kwargs: dict[str, Any]) -> None:
    a, b = _p(), dl.nn.Parameter(np.ones(3, np.float32))
    opt = getattr(dl.optim, name)([a, b], **kwargs)
    b.grad = np.full(3, 0.5, np.float32)
    opt.step()
    opt.step()
    np.testing.assert_array_equal(a.data, 0)
    assert a not in opt.state
    assert not np.array_equal(b.data, 1)


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS, ids=IDS)
def test_step_never_changes_grad(name: str, kwargs: dict[str, Any], maximize: bool) -> None:
    rng = np.random.default_rng(0)
    p = dl.nn.Parameter(rng.standard_normal((4, 5)).astype(np.float32))
    opt = getattr(dl.optim, name)([p], **{**kwargs, "weight_decay": 0.1, "maximize": maximize})
    for _ in range(3):
        g = rng.standard_normal((4, 5)).astype(np.float32)
        p.grad = g
        expected = g.copy()
        opt.step()
        assert p.grad is g
        np.testing.assert_array_equal(g, expected)


def test_float64_hyperparameters_keep_float32_and_stay_json() -> None:
    p = _p()
    opt = dl.optim.Adam([p], lr=np.float64(0.01), betas=(np.float64(0.9), np.float32(0.99)))
    p.grad = np.ones(3, np.float32)
    opt.step()
    assert p.data.dtype == np.float32
    assert all(v.dtype == np.float32 for k, v in opt.state[p].items() if k != "step")
    assert type(opt.param_groups[0]["lr"]) is float and type(opt.param_groups[0]["betas"][1]) is float
    json.dumps(opt.state_dict()["param_groups"])


def test_float64_parameters_stay_float64() -> None:
    p = dl.nn.Parameter(np.zeros(3))
    p.data = p.data.astype(np.float64)
    opt = dl.optim.RMSprop([p], lr=0.1, centered=True, momentum=0.5)
    p.grad = np.ones(3)
    opt.step()
    assert p.data.dtype == np.float64 and all(
        v.dtype == np.float64 for k, v in opt.state[p].items() if k != "step")


def test_step_with_closure_returns_the_loss() -> None:
    model = _model(0)
    x, y = _data()
    opt = dl.optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def closure() -> dl.Tensor:
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        calls.append(loss.item())
        return loss

    first = opt.step(closure)
    second = opt.step(closure)
    assert len(calls) == 2 and first.item() == calls[0] and second.item() < first.item()
    with dl.no_grad():  # the closure still records its graph
        opt.step(closure)
    assert len(calls) == 3


def test_add_param_group_uses_defaults_and_updates_the_new_group() -> None:
    a, b = _p(), _p()
    opt = dl.optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": [b], "lr": 0.5})
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.5
    a.grad, b.grad = np.ones(3, np.float32), np.ones(3, np.float32)
    opt.step()
    np.testing.assert_allclose(a.data, -0.1)
    np.testing.assert_allclose(b.data, -0.5)


def test_repr_lists_the_groups() -> None:
    text = repr(dl.optim.Adam([_p()], lr=0.01))
    assert text.startswith("Adam (") and "Parameter Group 0" in text and "lr: 0.01" in text
