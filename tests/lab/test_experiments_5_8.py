"""Lab experiments 5-8 (losses, optimizers, regularization, svd-compression): each one's measured numbers
say what its claim says. The pieces that need no training are checked directly (fast); each whole
experiment runs once with ``quick=True`` (marked slow: it trains networks) and its Finding is checked.

Measured with quick=True, seed 0 (thresholds sit well inside these):
losses: |∂CE/∂z| = 0.9999, |∂MSE/∂z| = 3.8e-4 at p_true = 1e-4; CE = NLL to 6e-17; val accuracy after one
epoch 0.57 (CE) vs 0.29 (MSE). optimizers: Rosenbrock after 300 steps SGD 5.0, Momentum 0.034, Adam 0.0085;
rotated quadratic after 100 steps SGD 0.54, Momentum 4.5e-4, Adam 3.1e-4. regularization: gap 0.214 without a
regularizer, dropout -0.009, weight decay -0.055, bagging 0.137. svd-compression: Eckart-Young difference
1.9e-7; full 0.981, rank 42 0.967 (0.975 with batch-norm statistics re-estimated).
"""

import json

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import lab, nn
from dlbasics.lab import losses, optimizers, regularization, svd_compression

MODULES = (losses, optimizers, regularization, svd_compression)


# ---- the contract ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_module_contract(module):
    assert module.NAME in lab.available()
    assert lab.get(module.NAME) is module
    assert module.TITLE and module.CLAIM.endswith(".")
    doc = module.__doc__
    assert "Claim:" in doc and "Method:" in doc


# ---- 5. losses: no training needed ------------------------------------------------------------------------
def test_cross_entropy_gradient_stays_and_mse_gradient_vanishes_at_saturation():
    z = np.array([losses.saturated_logit()])
    p, ce, mse = losses.true_logit_gradients(z)
    assert p[0] == pytest.approx(1e-4, rel=1e-9)
    assert abs(ce[0]) > 0.9 and abs(mse[0]) < 0.01
    sweep = np.linspace(-12, 12, 49)
    p, ce, mse = losses.true_logit_gradients(sweep)
    np.testing.assert_allclose(ce, p - 1, atol=1e-12)  # autograd gives the textbook p - y
    assert np.all(np.abs(mse[:10]) < 5 * p[:10])  # the squared error's: about 4 p_true (wrong class p ≈ 1)


def test_cross_entropy_is_the_negative_log_likelihood():
    rng = np.random.default_rng(0)
    forms = losses.nll_forms(rng.normal(0, 3, (100, 10)), rng.integers(0, 10, 100))
    assert set(forms) == {"cross_entropy", "mean_neg_log_softmax", "nll_of_log_softmax", "neg_log_likelihood"}
    assert max(forms.values()) - min(forms.values()) < 1e-6


# ---- 6. optimizers: the 2-D problems ------------------------------------------------------------------------
def test_autograd_gradient_of_rosenbrock_drives_the_step():
    x, y, lr = -1.5, 2.0, 1e-3
    grad = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
    d = optimizers.descend(optimizers.rosenbrock, (x, y), optimizers.OPTIMIZERS["SGD"], lr, 1)
    np.testing.assert_allclose(d.path[1], np.array([x, y]) - lr * grad, rtol=1e-12)
    assert d.values[0] == pytest.approx((1 - x) ** 2 + 100 * (y - x * x) ** 2)


def test_divergence_is_recorded_not_raised():
    d = optimizers.descend(optimizers.rosenbrock, (-1.5, 2.0), optimizers.OPTIMIZERS["SGD"], 1.0, 50)
    assert d.final == np.inf and np.isfinite(d.values[0])


@pytest.mark.parametrize("problem", ["rosenbrock", "ill-conditioned quadratic"])
def test_momentum_and_adam_beat_sgd_in_the_step_budget(problem):
    spec = optimizers.FUNCTIONS[problem]
    final = {name: optimizers.tune(spec.fn, spec.start, optimizers.OPTIMIZERS[name], spec.quick_steps,
                                   optimizers.QUICK_LR_GRID).final for name in ("SGD", "Momentum", "Adam")}
    assert final["Momentum"] < final["SGD"] / 10
    assert final["Adam"] < final["SGD"] / 10


# ---- 8. svd-compression: no training needed -----------------------------------------------------------------
def test_truncation_errors_follow_eckart_young():
    w = np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32)
    measured, predicted = svd_compression.truncation_errors(w)
    assert len(measured) == 16 and measured[-1] < 1e-6
    assert np.abs(measured - predicted).max() < 1e-5
    assert np.all(np.diff(predicted) <= 0)


# ---- the whole experiments, quick ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    """Run lazily, once each: name -> (Finding, out_dir)."""
    cache = {}
    root = tmp_path_factory.mktemp("lab")

    def get(name):
        if name not in cache:
            out = root / name
            cache[name] = (lab.run(name, out, quick=True, seed=0), out)
        return cache[name]

    return get


def check_written(finding, out):
    assert finding.figures and all((out / f).is_file() and f.endswith(".png") for f in finding.figures)
    assert all(isinstance(v, int | float | str) for v in finding.numbers.values())
    assert finding.summary and finding.command.startswith(f"dlbasics lab {finding.name}")
    saved = json.loads((out / "finding.json").read_text())
    assert saved["name"] == finding.name and (out / "finding.md").is_file()


@pytest.mark.slow
def test_losses_finding(findings):
    f, out = findings("losses")
    check_written(f, out)
    n = f.numbers
    assert n["ce_grad_at_saturation"] > 0.9 and n["mse_grad_at_saturation"] < 0.01
    assert n["ce_nll_max_diff"] < 1e-6
    # cross-entropy learns faster: better after one epoch, and a lower training NLL at the end
    assert n["ce_val_accuracy_epoch1"] > n["mse_val_accuracy_epoch1"] + 0.1
    assert n["ce_train_nll_final"] < n["mse_train_nll_final"]
    assert n["ce_test_accuracy"] > 0.85 and n["mse_test_accuracy"] > 0.8


@pytest.mark.slow
def test_optimizers_finding(findings):
    f, out = findings("optimizers")
    check_written(f, out)
    n = f.numbers
    for problem in ("rosenbrock", "quadratic"):
        assert n[f"{problem}_final_Momentum"] < n[f"{problem}_final_SGD"]
        assert n[f"{problem}_final_Adam"] < n[f"{problem}_final_SGD"]
    for name in ("Adagrad", "RMSprop", "Adam"):  # escaped the saddle (f = 0 at the origin) to a minimum (-1)
        assert n[f"saddle_final_{name}"] < -0.9
    for name in optimizers.OPTIMIZERS:
        assert f"digits_steps_to_target_{name}" in n and n[f"digits_lr_{name}"] > 0
    assert isinstance(n["digits_steps_to_target_Adam"], int)
    assert isinstance(n["digits_steps_to_target_Momentum"], int)


@pytest.mark.slow
def test_regularization_finding(findings):
    f, out = findings("regularization")
    check_written(f, out)
    n = f.numbers
    assert n["gap_none"] > 0.1  # it over-fits: the claim needs something to regularize
    assert min(n["gap_dropout"], n["gap_weight_decay"], n["gap_ensemble"], n["gap_bagging"]) < n["gap_none"] - 0.05
    assert n["gap_early_stopping"] < n["gap_none"]
    assert max(n["test_acc_dropout"], n["test_acc_weight_decay"], n["test_acc_early_stopping"]) > n["test_acc_none"]
    for key in regularization.REGULARIZERS:
        assert 0.0 <= n[f"test_acc_{key}"] <= 1.0


@pytest.mark.slow
def test_svd_compression_finding(findings):
    f, out = findings("svd-compression")
    check_written(f, out)
    n = f.numbers
    assert n["singular_values_sorted"] == 1
    assert n["eckart_young_max_diff"] < 1e-5
    assert n["accuracy_full"] > 0.9
    assert n["accuracy_recal_k42"] >= n["accuracy_full"] - 0.02
    assert n["accuracy_k42"] >= n["accuracy_full"] - 0.03
    assert n["params_k8"] < n["params_full"] / 3
    assert n["nobn_accuracy_k16"] >= n["nobn_accuracy_full"] - 0.02


def test_compressed_layers_are_used_by_the_experiment():
    """svd-compression compresses through the library (dl.compress), not a copy of it."""
    dl.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    small, _ = svd_compression.low_rank(model, rank=4)
    assert isinstance(small[0], svd_compression.LowRankLinear)
