"""Experiments 1-4 reproduce their claims: each test runs the experiment (quick=True) once and checks the
NUMBERS the claim is about, not just that files exist. Small unit checks of the pieces run unmarked."""

import json

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import lab, nn
from dlbasics.lab import activations, linear_collapse, linear_regression, universal_approximation

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """name -> (Finding, folder); each experiment runs once, on demand, through the runner."""
    cache = {}

    def get(name):
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            cache[name] = (lab.run(name, out, quick=True, seed=0), out)
        return cache[name]

    return get


def check_outputs(f, out, n_figures):
    assert len(f.figures) == n_figures
    for fig in f.figures:
        assert (out / fig).read_bytes()[:8] == PNG
    assert json.loads((out / "finding.json").read_text())["numbers"] == pytest.approx(f.numbers)
    md = (out / "finding.md").read_text()
    assert f.claim in md and all(f"]({fig})" in md for fig in f.figures)
    assert f.command.startswith(f"dlbasics lab {f.name} --out ") and f.command.endswith("--quick")
    assert f.summary.count(".") >= 2 and "**" in f.summary


# ---- 1. linear regression ----------------------------------------------------------------------------------
def test_hand_gradient_matches_autograd_float32():
    g = np.random.default_rng(1)
    x, y = g.standard_normal((50, 3)).astype(np.float32), g.standard_normal((50, 2)).astype(np.float32)
    layer = nn.Linear(3, 2)
    loss = nn.MSELoss(reduction="sum")(layer(dl.tensor(x)), dl.tensor(y)) / len(x)
    loss.backward()
    value, gW, gb = linear_regression.hand_gradients(layer.weight.data, layer.bias.data, x, y)
    assert value == pytest.approx(loss.item(), rel=1e-5)
    np.testing.assert_allclose(gW, layer.weight.grad, atol=1e-5)
    np.testing.assert_allclose(gb, layer.bias.grad, atol=1e-5)


@pytest.mark.slow
def test_linear_regression(results):
    f, out = results("linear-regression")
    n = f.numbers
    assert n["max_grad_diff"] < 1e-10  # float64: hand and autograd agree to rounding at every step
    assert n["w_error"] < 0.05 and n["b_error"] < 0.05
    assert n["lstsq_error"] < 1e-6
    assert n["final_loss"] == pytest.approx(n["lstsq_loss"], rel=1e-8)
    assert n["final_loss"] < 1.5 * n["noise_floor"]
    check_outputs(f, out, 1)


# ---- 2. linear collapse ------------------------------------------------------------------------------------
def test_collapse_of_a_random_stack():
    dl.manual_seed(3)
    stack = linear_collapse.deep_linear(depth=5, width=7, in_features=3, out_features=4)
    W, b = linear_collapse.collapse(stack)
    assert W.shape == (4, 3) and b.shape == (4,)
    x = np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32)
    assert linear_collapse.collapse_diff(stack, x) < 1e-5


@pytest.mark.slow
def test_linear_collapse(results):
    f, out = results("linear-collapse")
    n = f.numbers
    assert n["collapse_max_diff"] < 1e-5
    assert 0.8 < n["acc_linear"] < 0.93 and 0.8 < n["acc_deep_linear"] < 0.93
    assert abs(n["acc_deep_linear"] - n["acc_linear"]) < 0.04  # depth without nonlinearity: no better
    assert n["acc_relu_mlp"] > n["acc_deep_linear"] + 0.08 and n["acc_relu_mlp"] > 0.97
    assert n["acc_linear_xor"] < 0.65 and n["acc_deep_linear_xor"] < 0.65 and n["acc_relu_mlp_xor"] > 0.93
    check_outputs(f, out, 1)


# ---- 3. activations ----------------------------------------------------------------------------------------
def test_autograd_derivatives_match_the_formulas():
    x = np.linspace(-4, 4, 81, dtype=np.float32)
    f, df = activations.derivative(nn.Sigmoid(), x)
    np.testing.assert_allclose(df, f * (1 - f), atol=1e-6)
    _, df = activations.derivative(nn.Tanh(), x)
    np.testing.assert_allclose(df, 1 - np.tanh(x) ** 2, atol=1e-5)
    _, df = activations.derivative(nn.LeakyReLU(0.1), x[x != 0])
    np.testing.assert_allclose(df, np.where(x[x != 0] > 0, 1.0, 0.1))


@pytest.mark.slow
def test_activations(results):
    f, out = results("activations")
    n = f.numbers
    assert n["grad_ratio_sigmoid"] < 1e-2  # vanishing: in fact ~1e-9
    for name in ("relu", "tanh", "gelu", "leaky_relu"):
        assert n[f"grad_ratio_{name}"] > 100 * n["grad_ratio_sigmoid"]
    assert n["grad_ratio_relu"] > 1e3 * n["grad_ratio_sigmoid"]
    assert n["grad_ratio_relu_he"] > 0.1  # a well-scaled ReLU net: similar gradients in every layer
    assert n["train_loss_sigmoid"] > 2.2 and n["train_acc_sigmoid"] < 0.2  # stuck at chance (ln 10 = 2.30)
    for name in ("relu", "tanh", "gelu", "leaky_relu", "relu_he"):
        assert n[f"train_loss_{name}"] < n["train_loss_sigmoid"] - 0.5
        assert n[f"train_acc_{name}"] > n["train_acc_sigmoid"] + 0.2
    check_outputs(f, out, 3)


# ---- 4. universal approximation ----------------------------------------------------------------------------
@pytest.mark.slow
def test_universal_approximation(results):
    f, out = results("universal-approximation")
    n = f.numbers
    assert n["smallest_width"] == 1 and n["largest_width"] >= 64
    for target in universal_approximation.TARGETS:
        assert n[f"mse_{target}_largest"] < 0.1 * n[f"mse_{target}_smallest"], target
    for mode in universal_approximation.FAILURES:
        assert n[f"mse_bad_{mode}"] > 5 * n["mse_good"], mode
    assert n["mse_bad"] > 5 * n["mse_good"]
    assert n["mse_good"] == n["mse_sin_largest"]  # the same network, trained the same way
    check_outputs(f, out, 3)


@pytest.mark.slow
def test_same_seed_same_numbers(results, tmp_path):
    f, _ = results("linear-collapse")
    again = linear_collapse.run(tmp_path, quick=True, seed=0)
    assert again.numbers == f.numbers
