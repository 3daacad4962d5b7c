"""Low-rank (truncated SVD) compression: the factors are the Eckart-Young truncation, ranks are chosen as
documented, the compressed model's structure can be rebuilt from its ranks to load saved weights, and a
trained digits MLP shrinks while keeping its accuracy."""

import json

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import models, nn, optim
from dlbasics.compress import (
    LowRankLinear,
    compress_run,
    linear_layers,
    load_compressed,
    low_rank,
    recalibrate_batch_norm,
)
from dlbasics.compress.low_rank import _energy_rank
from dlbasics.data import DataLoader, datasets
from dlbasics.errors import RunFolderError
from dlbasics.train import evaluate, fit
from dlbasics.train.config import ConfigError


def matrix_with_spectrum(s, out_f, in_f, seed=0):
    """W = U diag(s) Vᵀ with random orthonormal U (out_f x r), V (in_f x r)."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((out_f, len(s))))
    v, _ = np.linalg.qr(rng.standard_normal((in_f, len(s))))
    return (u * np.asarray(s)) @ v.T


def linear_with(w, bias=True, dtype=dl.float64):
    layer = nn.Linear(w.shape[1], w.shape[0], bias=bias, dtype=dtype)
    layer.weight.data[...] = w
    return layer


def outputs(model, x):
    with dl.no_grad():
        return model.eval()(dl.from_numpy(x)).numpy()


# ---- LowRankLinear ------------------------------------------------------------------------------------
def test_factors_are_the_svd_truncation():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((30, 20))
    layer = linear_with(w)
    k = 5
    lr = LowRankLinear.from_linear(layer, k)
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    w_k = (u[:, :k] * s[:k]) @ vt[:k]
    assert lr.first.weight.shape == (k, 20) and lr.second.weight.shape == (30, k)
    assert lr.first.bias is None and lr.second.bias is not None
    np.testing.assert_allclose(lr.dense_weight(), w_k, atol=1e-12)
    # A = S^½ Vᵀ and B = U S^½ share the singular values evenly: their row / column norms are sqrt(σ)
    np.testing.assert_allclose(np.linalg.norm(lr.first.weight.data, axis=1), np.sqrt(s[:k]), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(lr.second.weight.data, axis=0), np.sqrt(s[:k]), rtol=1e-12)
    x = rng.standard_normal((7, 20))
    np.testing.assert_allclose(outputs(lr, x), x @ w_k.T + layer.bias.data, atol=1e-12)


def test_low_rank_linear_checks_rank_and_input():
    with pytest.raises(ValueError, match=r"rank must be in \[1, 4\]"):
        LowRankLinear(4, 6, rank=5)
    with pytest.raises(ValueError, match="rank must be"):
        LowRankLinear(4, 6, rank=0)
    with pytest.raises(RuntimeError, match="expected 4"):
        LowRankLinear(4, 6, rank=2)(dl.randn(3, 5))


def test_low_rank_linear_trains():
    """The factors are ordinary parameters: gradients reach both, so a compressed model can be fine-tuned."""
    dl.manual_seed(0)
    lr = LowRankLinear.from_linear(nn.Linear(8, 6), 2)
    x, y = dl.randn(16, 8), dl.randn(16, 6)
    nn.functional.mse_loss(lr(x), y).backward()
    assert all(p.grad is not None and np.abs(p.grad).sum() > 0 for p in lr.parameters())
    assert [n for n, _ in lr.named_parameters()] == ["first.weight", "second.weight", "second.bias"]


# ---- rank choice ----------------------------------------------------------------------------------------
def test_energy_rank_is_the_smallest_k_reaching_the_share():
    s = np.array([4.0, 2.0, 1.0, 1.0])  # squares 16, 4, 1, 1 of 22: cumulative 0.727, 0.909, 0.955, 1
    assert _energy_rank(s, 0.5) == 1
    assert _energy_rank(s, 16 / 22) == 1  # exactly reached counts
    assert _energy_rank(s, 0.9) == 2
    assert _energy_rank(s, 0.95) == 3
    assert _energy_rank(s, 0.99) == 4
    assert _energy_rank(s, 1.0) == 4
    assert _energy_rank(np.zeros(3), 0.9) == 1


def test_energy_selects_ranks_per_layer_and_reports_them():
    w = matrix_with_spectrum([10.0, 5.0, 1.0, 0.5, 0.1], 40, 30)
    model = nn.Sequential(linear_with(w), nn.ReLU(), linear_with(matrix_with_spectrum([5.0, 0.1, 0.1], 3, 40)))
    small, report = low_rank(model, energy=0.95)
    first = report.layers[0]
    assert first.name == "0" and first.shape == (40, 30) and first.rank == 2 and first.compressed
    assert first.params_before == 40 * 30 + 40 and first.params_after == 2 * 70 + 40
    assert first.energy == pytest.approx(125 / 126.26)
    assert first.relative_error == pytest.approx(np.sqrt(1.26 / 126.26), abs=1e-10)
    assert isinstance(small[0], LowRankLinear) and small[0].rank == 2
    assert report.ranks == {"0": 2, "2": 1}  # 3x40 at k = 1: 43 parameters instead of 120
    assert report.params_before == sum(p.numel() for p in model.parameters())
    assert report.params_after == sum(p.numel() for p in small.parameters())
    assert "total parameters" in report.table()


def test_rank_is_capped_and_layers_that_would_grow_are_kept():
    dl.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    small, report = low_rank(model, rank=1000)  # capped at min(in, out): no layer can save anything
    assert [r.rank for r in report.layers] == [64, 10]
    assert not any(r.compressed for r in report.layers) and report.ranks == {}
    assert report.params_after == report.params_before
    assert type(small[0]) is nn.Linear and type(small[2]) is nn.Linear
    # k (in + out) < in * out decides: for 64 -> 128 that is k <= 42, for 128 -> 10 k <= 9
    _, report = low_rank(model, rank=42)
    assert report.ranks == {"0": 42}
    _, report = low_rank(model, rank=9)
    assert report.ranks == {"0": 9, "2": 9}


def test_eckart_young_equality_and_optimality():
    """The relative error of the kept-largest truncation equals sqrt(tail energy), and is no larger than that
    of keeping any other k singular triplets."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((50, 24)) @ np.diag(np.linspace(3, 0.1, 24))
    layer = linear_with(w)
    s = np.linalg.svd(w, compute_uv=False)
    u, _, vt = np.linalg.svd(w, full_matrices=False)
    for k in (1, 3, 10, 16):
        _, report = low_rank(nn.Sequential(layer), rank=k)
        r = report.layers[0]
        assert r.compressed
        assert abs(r.relative_error - np.sqrt((s[k:] ** 2).sum() / (s**2).sum())) < 1e-10
        assert abs(r.relative_error - r.eckart_young) < 1e-10
        other = rng.choice(24, k, replace=False)  # keep k other triplets
        w_other = (u[:, other] * s[other]) @ vt[other]
        assert r.relative_error <= np.linalg.norm(w - w_other) / np.linalg.norm(w) + 1e-12


def test_the_original_model_is_untouched_and_order_is_kept():
    dl.manual_seed(0)
    model = models.create("mlp", in_features=64, num_classes=10, hidden=[128, 64], batch_norm=True)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    small, report = low_rank(model, rank=8)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    assert all(type(m) is nn.Linear for _, m in linear_layers(model))
    assert list(small.layers._modules) == list(model.layers._modules)  # each factor pair sits where its layer was
    assert [type(m).__name__ for m in small.layers][:3] == ["LowRankLinear", "BatchNormReLU1d", "Identity"]
    x = np.random.default_rng(0).standard_normal((5, 64)).astype(np.float32)
    assert outputs(small, x).shape == (5, 10)
    assert set(report.ranks) == {"layers.0", "layers.3", "layers.6"}


def test_a_linear_model_itself_and_models_without_linear_layers():
    dl.manual_seed(0)
    layer = nn.Linear(40, 30)
    small, report = low_rank(layer, rank=3)
    assert isinstance(small, LowRankLinear) and report.ranks == {"": 3}
    again, _ = low_rank(nn.Linear(40, 30), ranks=report.ranks)
    again.load_state_dict(small.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 40)).astype(np.float32)
    np.testing.assert_array_equal(outputs(again, x), outputs(small, x))
    _, report = low_rank(nn.Sequential(nn.ReLU()), energy=0.5)
    assert report.layers == [] and report.params_after == 0


def test_compressing_twice_does_not_split_the_factors():
    dl.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
    once, _ = low_rank(model, rank=8)
    twice, report = low_rank(once, rank=4)
    assert report.layers == []  # the halves of a LowRankLinear are not compressed again
    assert [type(m).__name__ for m in twice] == ["LowRankLinear", "ReLU", "LowRankLinear"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({}, "exactly one of"),
    ({"rank": 2, "energy": 0.9}, "got rank and energy"),
    ({"energy": 0.9, "ranks": {}}, "exactly one of"),
    ({"rank": 0}, "rank must be an integer >= 1"),
    ({"rank": 2.5}, "rank must be an integer >= 1"),
    ({"rank": True}, "rank must be an integer >= 1"),
    ({"energy": 0.0}, r"energy must be a number in \(0, 1\]"),
    ({"energy": 1.5}, r"energy must be a number in \(0, 1\]"),
    ({"energy": "0.9"}, r"energy must be a number in \(0, 1\]"),
    ({"ranks": {"0": 0}}, r"ranks\['0'\] must be an integer >= 1"),
    ({"ranks": {"layers.9": 3}}, r"'layers.9', not linear layers of the model \(its linear layers: '0', '2'\)"),
])
def test_bad_arguments_say_what_is_expected(kwargs, match):
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match=match):
        low_rank(model, **kwargs)


def test_bad_model_and_ranks_types():
    with pytest.raises(TypeError, match=r"expected an nn\.Module"):
        low_rank(np.eye(3), rank=1)
    with pytest.raises(TypeError, match="ranks must be a dict"):
        low_rank(nn.Linear(4, 4), ranks=[("", 1)])


# ---- saving and rebuilding --------------------------------------------------------------------------------
def test_rebuild_from_ranks_and_save_load(tmp_path):
    dl.manual_seed(0)
    model = models.create("mlp", in_features=64, num_classes=10, hidden=[128, 64], batch_norm=True)
    small, report = low_rank(model, energy=0.8)
    path = tmp_path / "small.safetensors"
    dl.save(small, path)
    dl.manual_seed(1)  # a fresh model with other weights: only its structure is used
    fresh, _ = low_rank(models.create("mlp", in_features=64, num_classes=10, hidden=[128, 64], batch_norm=True),
                        ranks=report.ranks)
    assert {k: v.shape for k, v in fresh.state_dict().items()} == {k: v.shape for k, v in small.state_dict().items()}
    fresh.load_state_dict(dl.load(path))
    for k, v in small.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k], v)
    x = np.random.default_rng(0).standard_normal((9, 64)).astype(np.float32)
    np.testing.assert_array_equal(outputs(fresh, x), outputs(small, x))
    assert json.loads(json.dumps(report.to_dict()))["ranks"] == report.ranks


def test_recalibrate_batch_norm_measures_the_new_statistics():
    dl.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    model[1].running_mean.data[...] = 7.0
    x = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32)
    batches = [(dl.tensor(x[i:i + 10]), None) for i in range(0, 40, 10)]
    recalibrate_batch_norm(model, batches)
    with dl.no_grad():
        h = model[0](dl.tensor(x)).numpy()
    np.testing.assert_allclose(model[1].running_mean.data, h.mean(0), atol=1e-5)
    per_batch = np.mean([h[i:i + 10].var(0, ddof=1) for i in range(0, 40, 10)], axis=0)
    np.testing.assert_allclose(model[1].running_var.data, per_batch, rtol=1e-4)
    assert model[1].momentum == 0.1 and not model.training and not model[1].training


# ---- a trained digits MLP ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_digits_mlp():
    """64-128-64-10 without batch norm, AdamW with strong decoupled weight decay (2.0): the decay removes
    what training does not use, so the spectra fall fast and even 99% of the energy fits in fewer parameters.
    Measured (30 epochs, seeds 0-3): test accuracy 0.925-0.944; energy 0.99 -> 7,946-8,138 of 17,226
    parameters at exactly the full model's accuracy; energy 0.9 -> 3,142-3,334 parameters, 1.4-12 points lower
    (seed 0: 0.939 full, 0.939 at 0.99, 0.925 at 0.9)."""
    splits = datasets.digits()
    dl.manual_seed(0)
    model = models.create("mlp", in_features=64, num_classes=10, hidden=[128, 64], batch_norm=False)
    fit(model, nn.CrossEntropyLoss(), optim.AdamW(optim.param_groups(model, 2.0), lr=1e-3),
        DataLoader(splits.train, batch_size=32, shuffle=True, seed=0), epochs=30, verbose=0)
    return model.eval(), splits


@pytest.mark.slow
def test_trained_mlp_shrinks_and_keeps_its_accuracy(trained_digits_mlp, tmp_path):
    model, splits = trained_digits_mlp
    test = DataLoader(splits.test, batch_size=512)
    full = evaluate(model, test)["accuracy"]
    results = {}
    for energy in (0.9, 0.99):
        small, report = low_rank(model, energy=energy)
        results[energy] = (evaluate(small, test)["accuracy"], report)
        assert report.params_after < report.params_before
        assert report.max_bound_gap < 1e-5  # Eckart-Young, measured on the stored float32 factors
        for r in report.layers:
            assert r.energy >= energy or not r.compressed
        # the structure rebuilt from the ranks takes the saved weights exactly
        path = tmp_path / f"small-{energy}.safetensors"
        dl.save(small, path)
        rebuilt, _ = low_rank(models.create("mlp", in_features=64, num_classes=10, hidden=[128, 64],
                                            batch_norm=False), ranks=report.ranks)
        rebuilt.load_state_dict(dl.load(path))
        assert evaluate(rebuilt, test)["accuracy"] == results[energy][0]
    assert full > 0.9
    assert results[0.99][0] >= full - 0.03
    assert results[0.9][0] >= 0.75  # far above chance with a fifth of the parameters
    assert results[0.9][1].params_after < results[0.99][1].params_after


# ---- run folders ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    from dlbasics.cli import main

    out = tmp_path_factory.mktemp("runs") / "mlp"
    assert main(["train", "--epochs", "3", "--quiet", "--out", str(out)]) == 0
    return out


def test_compress_run_writes_the_compressed_run(run_folder, tmp_path):
    summary = compress_run(run_folder, rank=8, out_dir=tmp_path / "c")
    assert (tmp_path / "c" / "model.safetensors").is_file()
    saved = json.loads((tmp_path / "c" / "compress.json").read_text())
    assert saved["ranks"] == summary["ranks"] == {"layers.0": 8, "layers.3": 8, "layers.6": 8}
    assert saved["params_after"] < saved["params_before"] == 17610
    assert set(saved["test_before"]) == {"loss", "accuracy"} and set(saved["test_after"]) == {"loss", "accuracy"}
    assert saved["rank"] == 8 and saved["energy"] is None
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    assert config["kind"] == "compress" and config["run"]["model"]["name"] == "mlp"
    assert config["compress"]["ranks"] == summary["ranks"]
    model = load_compressed(tmp_path / "c")
    splits = datasets.digits()
    assert evaluate(model, DataLoader(splits.test, batch_size=512))["accuracy"] == saved["test_after"]["accuracy"]


def test_compress_run_default_folder_and_recalibration(run_folder):
    plain = compress_run(run_folder, energy=0.5)
    assert plain["out_dir"] == str(run_folder / "compressed")
    assert (run_folder / "compressed" / "compress.json").is_file()
    recal = compress_run(run_folder, energy=0.5, recalibrate_bn=True, out_dir=run_folder / "recal")
    assert recal["recalibrated_bn"] and recal["ranks"] == plain["ranks"]
    assert recal["test_before"] == plain["test_before"]


def test_compress_run_errors(run_folder, tmp_path):
    with pytest.raises(RunFolderError, match="not a run folder"):
        compress_run(tmp_path, energy=0.9)
    with pytest.raises(ConfigError, match="exactly one of --energy"):
        compress_run(run_folder)
    with pytest.raises(ConfigError, match="exactly one of --energy"):
        compress_run(run_folder, energy=0.9, rank=3)
    with pytest.raises(ConfigError, match=r"--energy: must be in \(0, 1\]"):
        compress_run(run_folder, energy=2.0)
    with pytest.raises(ConfigError, match=r"would replace the run's own model\.safetensors"):
        compress_run(run_folder, energy=0.9, out_dir=run_folder)
    with pytest.raises(RunFolderError, match="not a run folder"):
        load_compressed(tmp_path)
    with pytest.raises(RunFolderError, match="not a compressed run folder"):
        load_compressed(run_folder)
