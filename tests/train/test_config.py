"""The run description: one typed value from flags, TOML or Python, checked in one place, saved resolved."""

import json

import numpy as np
import pytest

from dlbasics import models, optim
from dlbasics.cli import build_parser, config_from_args, main
from dlbasics.data import Splits, TensorDataset, datasets
from dlbasics.models.registry import DATA_OPTIONS
from dlbasics.train.config import (
    CLI,
    FIELDS,
    ConfigError,
    RunConfig,
    build_model,
    build_optimizer,
    component_options,
    load_data,
    model_options,
    option_names,
)


def from_cli(*argv):
    return config_from_args(build_parser().parse_args(["train", *argv]))


def test_the_three_ways_give_the_same_description(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('model = "resnet"\ndepth = 8\nwidth = 4\noptimizer = "sgd"\nlr = 0.1\nmomentum = 0.9\n'
                    'data = "digits"\nflatten = false\nbatch-size = 16\n')
    sectioned = tmp_path / "sections.toml"
    sectioned.write_text('[model]\nname = "resnet"\ndepth = 8\nwidth = 4\n[algorithm]\noptimizer = "sgd"\n'
                         'lr = 0.1\nmomentum = 0.9\n[data]\nname = "digits"\nflatten = false\nbatch_size = 16\n')
    python = RunConfig.from_options(model="resnet", depth=8, width=4, optimizer="sgd", lr=0.1, momentum=0.9,
                                    data="digits", flatten=False, batch_size=16)
    cli = from_cli("--model", "resnet", "--depth", "8", "--width", "4", "--optimizer", "sgd", "--lr", "0.1",
                   "--momentum", "0.9", "--data", "digits", "--no-flatten", "--batch-size", "16")
    assert python == cli == RunConfig.from_toml(toml) == RunConfig.from_toml(sectioned)
    assert python.algorithm.options == {"lr": 0.1, "momentum": 0.9, "dampening": 0, "weight_decay": 0,
                                        "nesterov": False}


def test_command_line_options_win_over_the_file(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("epochs = 7\nlr = 0.5\n")
    cfg = from_cli("--config", str(toml), "--epochs", "2")
    assert cfg.budget.epochs == 2 and cfg.lr == 0.5


def test_saved_resolved_with_every_default_and_read_back():
    cfg = RunConfig.from_options(model="mlp", hidden=[16], epochs=2)
    resolved = cfg.resolve(load_data(cfg))
    d = json.loads(resolved.to_json())
    assert d["model"] == {"name": "mlp", "in_features": 64, "num_classes": 10, "hidden": [16], "activation": "relu",
                          "dropout": 0.0, "batch_norm": True}
    assert d["loss"]["name"] == "cross_entropy" and d["data"]["problem"] == "classification"
    assert d["algorithm"]["lr"] == 1e-3 and d["algorithm"]["betas"] == [0.9, 0.999]
    assert RunConfig.from_dict(d) == resolved


@pytest.mark.parametrize("name", [e.name for e in optim.OPTIMIZERS])
def test_an_optimizers_defaults_are_its_class_defaults(name):
    cfg = RunConfig.from_options(optimizer=name)
    params = optim.OPTIMIZERS.get(name).options()
    assert cfg.lr == params["lr"].default  # one source of truth: the class (SGD's lr is PyTorch's 1e-3)


def _fake_splits(info):
    """Random splits shaped like the data set ``info`` describes (its files need not be here)."""
    rng = np.random.default_rng(0)

    def part(n):
        return TensorDataset(rng.random((n, *info.input_shape), dtype=np.float32), rng.integers(0, 10, n))

    return Splits(part(300), part(10), part(10), info)  # 300: more than the largest recipe batch (SimCLR's 256)


def test_every_option_of_every_model_reaches_the_command_line():
    """Each zoo model builds from the command line with each of its options given explicitly."""
    table = component_options()
    for name in models.available():
        info = datasets.describe(models.info(name).default_data)
        full = model_options(name, info)
        argv = ["--model", name, "--data", "digits"]
        for key, value in full.items():
            if key in DATA_OPTIONS:
                continue
            assert key in table, f"{name}.{key} is not an option"
            flag = "--" + key.replace("_", "-")
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + key.replace("_", "-"))
            else:
                argv += [flag, *map(str, value if isinstance(value, list) else [value])]
        cfg = from_cli(*argv)
        resolved = cfg.resolve(_fake_splits(info))
        assert {k: v for k, v in resolved.model.options.items() if k in cfg.model.options} == cfg.model.options
        build_model(resolved)


def test_resnet_options_from_the_command_line(tmp_path):
    out = tmp_path / "r"
    assert main(["train", "--model", "resnet", "--depth", "8", "--width", "4", "--block", "basic", "--shortcut", "B",
                 "--data", "digits", "--no-flatten", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    saved = json.loads((out / "config.json").read_text())["run"]["model"]
    assert (saved["depth"], saved["width"], saved["shortcut"], saved["image_size"]) == (8, 4, "B", 8)


def test_names_and_choices_come_from_the_registries():
    for field in ("model", "optimizer", "data", "scheduler", "task"):
        assert field in FIELDS
    assert set(option_names()) >= {"depth", "hidden", "betas", "momentum", "warmup", "noise", "data_dir"}
    with pytest.raises(ConfigError, match=r"--optimizer: invalid choice 'lbfgs' \(choose from adadelta, adagrad, "):
        from_cli("--optimizer", "lbfgs")
    with pytest.raises(ConfigError, match=r"^model: invalid choice 'vgg'"):
        RunConfig.from_options(model="vgg")


def test_a_registered_model_is_one_registration_away(monkeypatch):
    from dlbasics import nn
    from dlbasics.models.registry import MODELS

    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    assert "squeeze" not in component_options()  # asked before the model exists: registering it still counts

    @models.register("tiny", paper="none", default_data="digits")
    def tiny(in_features: int, num_classes: int, squeeze: int = 4) -> nn.Module:
        return nn.Sequential(nn.Linear(in_features, squeeze), nn.Linear(squeeze, num_classes))

    cfg = from_cli("--model", "tiny", "--squeeze", "3")
    model = build_model(cfg.resolve(load_data(cfg)))
    assert model[0].out_features == 3
    assert component_options()["squeeze"][2] == "tiny (default 4)"


def test_a_models_recipe_stands_in_for_the_defaults_and_the_user_wins(monkeypatch):
    from dlbasics import nn
    from dlbasics.models.registry import MODELS

    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    recipe = {"steps": 30, "batch_size": 12, "optimizer": "adamw", "lr": 3e-3, "betas": [0.9, 0.99],
              "scheduler": "cosine", "warmup": 5, "clip_grad_norm": 1.0}

    @models.register("recipe_mlp", paper="none", default_data="digits", recipe=recipe)
    def recipe_mlp(in_features: int, num_classes: int) -> nn.Module:
        return nn.Linear(in_features, num_classes)

    cfg = from_cli("--model", "recipe_mlp")
    assert (cfg.budget.steps, cfg.budget.epochs, cfg.data.batch_size) == (30, None, 12)
    assert cfg.algorithm.optimizer == "adamw" and cfg.algorithm.options["betas"] == [0.9, 0.99]
    assert cfg.algorithm.schedule_options["warmup"] == 5 and cfg.budget.clip_grad_norm == 1.0
    assert cfg.given == {"model": "recipe_mlp"}  # what the caller asked, not the recipe
    cfg = from_cli("--model", "recipe_mlp", "--lr", "0.01", "--epochs", "2", "--optimizer", "sgd")
    assert (cfg.budget.steps, cfg.budget.epochs) == (None, 2)  # a budget in epochs replaces the recipe's steps
    assert cfg.algorithm.optimizer == "sgd" and cfg.lr == 0.01  # sgd takes no betas: the recipe's are dropped
    assert cfg.algorithm.scheduler == "cosine" and cfg.data.batch_size == 12  # the rest of the recipe stays


@pytest.mark.parametrize("toml, message", [
    ('batch_norm = "no"\n', "run.toml: batch_norm: must be true or false, got 'no'"),
    ('data = "mnist"\ndata_dir = 7\n', "run.toml: data_dir: must be a path (a string), got 7"),
    ('epochs = "3"\n', "run.toml: epochs: must be an integer, got '3'"),
    ("batch-size = 2.5\n", "run.toml: batch-size: must be an integer, got 2.5"),
    ("hidden = [64, -1]\n", "run.toml: hidden: must be a list of positive integers"),
    ("lr = 1e999\n", "run.toml: lr: must be a finite number, got inf"),
    ("[algorithm]\nlr = -1\n", "run.toml: [algorithm] lr: must be a finite number > 0, got -1"),
    ("optimiser = 'adam'\n", "run.toml: optimiser: unknown option; did you mean 'optimizer'?"),
    ("lr = 0.1\n[algorithm]\nlr = 0.2\n", "run.toml: [algorithm] lr: given twice"),
    ("epochs = 2\nsteps = 10\n", "run.toml: steps: a budget is in epochs or in steps, not both"),
])
def test_toml_values_are_checked_and_named_as_written(tmp_path, toml, message):
    path = tmp_path / "run.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as e:
        RunConfig.from_toml(path)
    assert str(e.value) == f"{tmp_path}/{message}" or str(e.value).startswith(f"{tmp_path}/{message}"), str(e.value)


@pytest.mark.parametrize("argv, python, flag_message, python_message", [
    (["--lr", "0"], {"lr": 0}, "--lr: must be a finite number > 0, got 0.0", "lr: must be a finite number > 0, got 0"),
    (["--lr", "inf"], {"lr": float("inf")}, "--lr: must be a finite number, got inf", "lr: must be a finite number"),
    (["--dropout", "1"], {"dropout": 1.0}, "--dropout: must be in [0, 1), got 1.0", "dropout: must be in [0, 1)"),
    (["--depth", "8"], {"depth": 8}, "--depth: the model 'mlp' has no such option (its options: hidden, activation",
     "depth: the model 'mlp' has no such option"),
    (["--batch-size", "0"], {"batch_size": 0}, "--batch-size: must be an integer >= 1, got 0",
     "batch_size: must be an integer >= 1"),
])
def test_messages_name_the_option_as_the_caller_wrote_it(argv, python, flag_message, python_message):
    with pytest.raises(ConfigError) as e:
        from_cli(*argv)
    assert flag_message in str(e.value)
    with pytest.raises(ConfigError) as e:
        RunConfig.from_options(python)
    assert str(e.value).startswith(python_message), str(e.value)


def test_the_data_set_decides_what_the_data_does_not():
    with pytest.raises(ConfigError, match="--data-dir: the data set 'digits' takes no such option: it is bundled"):
        from_cli("--data-dir", "/tmp")
    with pytest.raises(ConfigError, match="--data-dir: the data set 'mnist' needs it; give the folder"):
        from_cli("--data", "mnist")
    with pytest.raises(ConfigError, match="--augment: the data set 'digits' has no such option"):
        from_cli("--augment")
    cfg = from_cli("--data", "moons", "--noise", "0.3", "--n-samples", "200")
    assert load_data(cfg).train.arrays[0].shape == (120, 2)


def test_the_default_data_is_the_models_own():
    assert from_cli("--model", "lenet5").data.name == "fashion-mnist"
    assert from_cli().data.name == "digits"


def test_budget_in_steps_and_schedules():
    cfg = from_cli("--steps", "100", "--scheduler", "cosine", "--warmup", "10", "--clip-grad-norm", "1")
    assert cfg.budget.epochs is None and cfg.budget.steps == 100 and cfg.budget.eval_every == 10
    assert cfg.algorithm.schedule_unit == "step" and cfg.algorithm.schedule_options == {"warmup": 10, "min_lr": 0.0}
    with pytest.raises(ConfigError, match="--warmup: the learning-rate schedule 'step' has no such option"):
        from_cli("--scheduler", "step", "--warmup", "5")


def test_optimizer_built_with_param_groups_for_weight_decay():
    cfg = from_cli("--optimizer", "adamw", "--hidden", "8")
    cfg = cfg.resolve(load_data(cfg))
    opt = build_optimizer(cfg, build_model(cfg))
    assert isinstance(opt, optim.AdamW) and [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]


def test_cli_spelling_helper():
    assert CLI("batch_size") == "--batch-size"


def test_replace_starts_from_what_was_given():
    base = RunConfig.from_options(epochs=1, hidden=[8])
    other = base.replace(optimizer="sgd", lr=0.1)  # Adam's filled-in betas do not follow to SGD
    assert other.algorithm.optimizer == "sgd" and other.lr == 0.1 and "betas" not in other.algorithm.options
    assert other.model.options == {"hidden": [8]} and other.budget.epochs == 1
    resolved = base.resolve(load_data(base))
    assert resolved.options() == base.options() == {"epochs": 1, "hidden": [8]}


def test_what_the_data_finds_is_named_as_the_caller_wrote_it(tmp_path):
    python = RunConfig.from_options(data="sin", loss="cross_entropy")
    with pytest.raises(ConfigError, match=r"^loss cross_entropy: the data set 'sin' is a regression task"):
        python.resolve(load_data(python))
    toml = tmp_path / "run.toml"
    toml.write_text("[data]\nbatch-size = 5000\n")
    cfg = RunConfig.from_toml(toml)
    with pytest.raises(ConfigError, match=r"run.toml: \[data\] batch-size 5000 is larger than the training split"):
        cfg.resolve(load_data(cfg))
    with pytest.raises(ConfigError, match=r"^--batch-size 5000 is larger"):
        cli = from_cli("--batch-size", "5000")
        cli.resolve(load_data(cli))
