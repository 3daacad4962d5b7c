"""`dlbasics` on the command line: runs, run folders, config files, and one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dlbasics.cli import main

RUN_FILES = ["checkpoint.safetensors", "config.json", "curves.png", "metrics.csv", "model.safetensors", "summary.json",
             "timing.json"]


def test_train_writes_the_run_folder_and_evaluate_reproduces_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "3", "--hidden", "32", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "test_accuracy" in printed and str(out) in printed
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES
    summary = json.loads((out / "summary.json").read_text())
    assert {"test_accuracy", "test_loss", "epochs"} <= set(summary) and summary["epochs"] == 3
    assert json.loads((out / "timing.json").read_text())["seconds"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "train"
    run = config["run"]
    assert run["model"]["hidden"] == [32] and run["algorithm"]["optimizer"] == "adam" and run["algorithm"]["lr"] == 1e-3
    assert (out / "metrics.csv").read_text().count("\n") == 4
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["evaluate", str(out)]) == 0
    assert f"test_accuracy {summary['test_accuracy']:.4f}" in capsys.readouterr().out


@pytest.mark.slow
def test_default_train_reaches_97_percent(tmp_path):
    """`dlbasics train` with no options: the lecture's MLP on digits, >= 97% test accuracy."""
    assert main(["train", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test_accuracy"] >= 0.97, summary


def test_every_component_is_selectable(tmp_path, capsys):
    out = tmp_path / "sgd"
    args = ["train", "--model", "mlp", "--hidden", "64", "32", "--activation", "tanh", "--no-batch-norm",
            "--dropout", "0.1", "--data", "moons", "--loss", "cross_entropy", "--optimizer", "sgd",
            "--momentum", "0.9", "--nesterov", "--lr", "0.05", "--weight-decay", "1e-4", "--epochs", "5",
            "--batch-size", "64", "--seed", "3", "--out", str(out), "--quiet"]
    assert main(args) == 0
    cfg = json.loads((out / "config.json").read_text())["run"]
    a = cfg["algorithm"]
    assert (a["optimizer"], a["momentum"], a["nesterov"], cfg["seed"], cfg["model"]["batch_norm"]) == ("sgd", 0.9, True,
                                                                                                        3, False)
    assert json.loads((out / "summary.json").read_text())["test_accuracy"] > 0.8


@pytest.mark.parametrize("loss", ["nll", "mse"])
def test_other_losses(tmp_path, loss):
    assert main(["train", "--loss", loss, "--epochs", "2", "--out", str(tmp_path / loss), "--quiet"]) == 0


def test_regression_data_uses_mse_and_mae(tmp_path):
    out = tmp_path / "sin"
    assert main(["train", "--data", "sin", "--epochs", "3", "--out", str(out), "--quiet"]) == 0
    assert "test_mae" in json.loads((out / "summary.json").read_text())


def test_config_file_and_command_line_precedence(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('optimizer = "sgd"\nlr = 0.1\nepochs = 2\nbatch-size = 16\nhidden = [16]\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    resolved = json.loads((out / "config.json").read_text())["run"]
    assert (resolved["algorithm"]["optimizer"], resolved["algorithm"]["lr"], resolved["data"]["batch_size"],
            resolved["budget"]["epochs"]) == ("sgd", 0.1, 16, 1)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--optimizer", "adamm"], "--optimizer: invalid choice 'adamm' (choose from adadelta, adagrad"),
        (["train", "--model", "nope"], "--model: invalid choice 'nope' (choose from "),
        (["train", "--data", "cifar"], "--data: invalid choice 'cifar' (choose from digits"),
        (["train", "--activation", "swish"], "--activation: invalid choice 'swish' (choose from relu, leaky_relu"),
        (["train", "--epochs", "0"], "--epochs: must be an integer >= 1"),
        (["train", "--epochs", "x"], "invalid int value: 'x'"),
        (["train", "--nesterov"], "--nesterov: the optimizer 'adam' has no such option (its options: lr, betas"),
        (["train", "--optimizer", "sgd", "--nesterov"], "--nesterov: needs --momentum > 0"),
        (["train", "--data", "sin", "--loss", "cross_entropy"], "regression task; use mse"),
        (["train", "--data", "digits", "--data-dir", "/tmp"], "reads no files"),
        (["train", "--data", "mnist", "--data-dir", "/nonexistent/dir"], "/nonexistent/dir"),
        (["train", "--config", "/nonexistent.toml"], "no such file"),
        (["evaluate", "/nonexistent/run"], "/nonexistent/run: no such run folder"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main([*args, "--out", str(tmp_path / "x")] if args[0] == "train" else args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dlbasics: error:"), err
    assert message in err, err
    assert "Traceback" not in err


def test_unknown_config_key(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("optimiser = 'adam'\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert "bad.toml: optimiser: unknown option; did you mean 'optimizer'?" in capsys.readouterr().err


def test_console_script_help_and_zoo():
    help_text = subprocess.run([sys.executable, "-m", "dlbasics", "train", "--help"], capture_output=True,
                               text=True, check=True).stdout
    help_text = " ".join(help_text.split())  # argparse wraps lines where the terminal width says
    for word in ("--optimizer", "adadelta, adagrad, adam, adamw, rmsprop, sgd", "--config", "--data-dir", "--depth",
                 "--resume", "--steps", "--clip-grad-norm", "--scheduler", "--warmup", "--threads"):
        assert word in help_text
    zoo = subprocess.run([sys.executable, "-m", "dlbasics", "zoo"], capture_output=True, text=True, check=True).stdout
    rows = {line.split()[0]: line for line in zoo.splitlines()[1:]}
    assert "mlp" in rows and "Rumelhart" in rows["mlp"] and "digits" in rows["mlp"]
    assert rows["mlp"].split()[2:4] == ["supervised", "17,610"]  # 64-128-64-10 with batch norm, built for digits
    assert rows["unet"].split()[1:3] == ["shapes-seg", "segmentation"] and rows["dqn"].split()[2] == "reinforcement"


def test_cv_command(tmp_path, capsys):
    out = tmp_path / "cv"
    assert main(["cv", "--k", "3", "--epochs", "2", "--hidden", "16", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("fold ") == 3 and "mean ± std" in printed
    result = json.loads((out / "cv.json").read_text())
    assert result["k"] == 3 and len(result["metrics"]) == 3
    assert sum(len(v) for v in result["val_indices"]) == 1079 + 359  # train + val, each sample once


def test_tune_command_resumes_its_study(tmp_path, capsys):
    pytest.importorskip("optuna")
    db = f"sqlite:///{tmp_path / 'tune.db'}"
    args = ["tune", "--space", "lr=1e-3:1e-1:log", "--trials", "2", "--epochs", "2", "--hidden", "16",
            "--storage", db, "--study", "s", "--out", str(tmp_path / "t"), "--quiet"]
    assert main(args) == 0
    assert main(args) == 0  # the same command again adds two trials to the same study
    assert "4 complete trials in study 's'" in capsys.readouterr().out.splitlines()[-2]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["best.json", "config.json", "history.png",
                                                                   "metrics.csv", "model.safetensors", "trials.csv"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["cv", "--k", "1"], "k must be at least 2"),
        (["tune"], "give at least one --space"),
        (["tune", "--space", "lr=0:1:log"], "lr=0:1:log"),
        (["tune", "--space", "colour=red,blue"], "colour"),
    ],
)
def test_cv_and_tune_errors(args, message, capsys, tmp_path):
    pytest.importorskip("optuna")
    assert main([*args, "--out", str(tmp_path / "x"), "--storage" if args[0] == "tune" else "--quiet",
                 *([f"sqlite:///{tmp_path / 'db'}"] if args[0] == "tune" else [])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_ensemble_command(tmp_path, capsys):
    out = tmp_path / "ens"
    assert main(["ensemble", "--members", "3", "--epochs", "3", "--hidden", "16", "--bootstrap", "--out", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("member ") == 4 and "ensemble: test_loss" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["members"]) == 3 and summary["bootstrap"] is True
    assert summary["ensemble"]["loss"] <= summary["member_mean"]["loss"]  # Jensen: the mixture's NLL is lower


def test_mixup_and_weight_decay_options(tmp_path):
    out = tmp_path / "mix"
    assert main(["train", "--mixup", "0.4", "--weight-decay", "0.01", "--optimizer", "adamw", "--epochs", "2",
                 "--out", str(out), "--quiet"]) == 0
    cfg = json.loads((out / "config.json").read_text())["run"]
    assert cfg["regularizers"]["mixup"] == 0.4 and cfg["algorithm"]["weight_decay"] == 0.01


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--mixup", "0"], "--mixup: must be a Beta(alpha, alpha) parameter > 0"),
        (["train", "--mixup", "0.2", "--loss", "mse"], "needs --loss cross_entropy"),
        (["train", "--mixup", "0.2", "--data", "sin"], "regression task"),
        (["ensemble", "--members", "1"], "at least 2 members"),
        (["ensemble", "--average", "median"], "--average: invalid choice 'median' (choose from prob, logits)"),
    ],
)
def test_regularizer_option_errors(args, message, capsys, tmp_path):
    out = tmp_path / "never"
    assert main([*args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()  # nothing is written for a run that cannot start


def _write_cifar(folder, records_per_batch, rng):
    """A CIFAR-10 binary-version folder: 1 label byte + 3072 pixel bytes per record."""
    folder.mkdir()
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        labels = np.arange(records_per_batch, dtype=np.uint8) % 10
        pixels = rng.integers(0, 256, (records_per_batch, 3072), dtype=np.uint8)
        pixels[:, :1024] = labels[:, None] * 25  # the red plane says the class: learnable
        (folder / name).write_bytes(np.concatenate([labels[:, None], pixels], axis=1).tobytes())


@pytest.mark.slow
def test_cnn_on_cifar10_files_end_to_end(tmp_path, capsys):
    """`--model ... --data cifar10 --data-dir DIR`: the real pipeline on files in CIFAR-10's binary format."""
    data = tmp_path / "cifar-10-batches-bin"
    _write_cifar(data, 1200, np.random.default_rng(0))  # 5 x 1200 train records; 5000 of them validate
    out = tmp_path / "run"
    assert main(["train", "--model", "lenet5", "--data", "cifar10", "--data-dir", str(data), "--augment",
                 "--epochs", "3", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.5  # chance is 0.1; the class is written in the red plane
    assert json.loads((out / "config.json").read_text())["run"]["model"]["in_channels"] == 3
    assert main(["evaluate", str(out), "--data-dir", str(data)]) == 0
    assert f"test_accuracy {summary['test_accuracy']:.4f}" in capsys.readouterr().out


def test_threads_option_limits_blas(tmp_path):
    code = ("from dlbasics.cli import set_threads; from threadpoolctl import threadpool_info; import os; "
            "set_threads(1); print(os.environ['OPENBLAS_NUM_THREADS'], "
            "max(i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "1"]
    assert main(["train", "--threads", "1", "--epochs", "1", "--hidden", "8", "--out", str(tmp_path / "r"),
                 "--quiet"]) == 0
