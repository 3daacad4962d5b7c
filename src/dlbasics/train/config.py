"""A run described by names and numbers - the keys of ``dlbasics train`` and of its TOML config - turned
into Data + Model + Loss + Algorithm. ``RunBuilder(config)`` is a picklable ``build_run(seed)``, so the
same description trains in this process or in worker processes (k-fold, ensembles, tuning)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

# Model options default to None: "the model's own default" (the MLP's is the lecture's assignment model,
# 128-64 with batch norm; AlexNet's dropout is 0.5; LeNet's activation is tanh).
MODEL_OPTIONS = ("hidden", "activation", "dropout", "batch_norm")
LIST_OPTIONS = ("hidden",)  # options whose value is a list of ints
DEFAULTS: dict[str, Any] = {
    "model": "mlp", "hidden": None, "activation": None, "dropout": None, "batch_norm": None,
    "data": "digits", "data_dir": None, "augment": False, "mixup": None, "loss": None, "label_smoothing": 0.0,
    "optimizer": "adam", "lr": None, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0,
    "epochs": 40, "batch_size": 32, "seed": 0, "patience": None, "out": None, "quiet": False,
}
OPTIMIZERS = ("sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw")
DEFAULT_LR = {"sgd": 0.05, "adagrad": 0.01, "adadelta": 1.0, "rmsprop": 1e-3, "adam": 1e-3, "adamw": 1e-3}
LOSSES = ("cross_entropy", "nll", "mse")


class ConfigError(ValueError):
    """A run description that cannot work; the message names the option and the valid choices."""


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_choice(name: str, value: Any, choices: Any) -> Any:
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{_option(name)}: invalid choice {value!r} (choose from {', '.join(map(str, choices))})")
    return value


def read_toml(path: str | Path, valid: Any = DEFAULTS) -> dict[str, Any]:
    """The keys of a TOML config (dashes or underscores), each checked against ``valid``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: no such file: {path}")
    try:
        loaded = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--config {path}: not valid TOML ({e})") from None
    out = {}
    for key, value in loaded.items():
        k = key.replace("-", "_")
        if k not in valid:
            raise ConfigError(f"--config {path}: unknown key {key!r} (valid: {', '.join(valid)})")
        out[k] = value
    return out


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check every value of a run description in one place; fill in the optimizer's default lr."""
    from dlbasics import models
    from dlbasics.data import datasets

    cfg = {**DEFAULTS, **cfg}
    check_choice("model", cfg["model"], models.available())
    check_choice("data", cfg["data"], datasets.available())
    check_choice("optimizer", cfg["optimizer"], OPTIMIZERS)
    accepted = models.info(cfg["model"]).options()
    for key in MODEL_OPTIONS:
        if cfg[key] is not None and key not in accepted:
            model_opts = [o for o in accepted if o not in ("in_features", "num_classes", "in_channels", "image_size")]
            raise ConfigError(f"{_option(key)}: model {cfg['model']!r} has no such option "
                              f"(its options: {', '.join(model_opts) or 'none'})")
    if cfg["loss"] is not None:
        check_choice("loss", cfg["loss"], LOSSES)

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    checks = [
        ("epochs", lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        ("batch_size", lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        ("seed", lambda v: isinstance(v, int), "an integer"),
        ("dropout", lambda v: v is None or (number(v) and 0 <= v < 1), "in [0, 1)"),
        ("lr", lambda v: v is None or (number(v) and v > 0), "a number > 0"),
        ("momentum", lambda v: number(v) and 0 <= v < 1, "in [0, 1)"),
        ("weight_decay", lambda v: number(v) and v >= 0, "a number >= 0"),
        ("label_smoothing", lambda v: number(v) and 0 <= v <= 1, "in [0, 1]"),
        ("hidden", lambda v: v is None or (isinstance(v, list) and all(isinstance(h, int) and h > 0 for h in v)),
         "a list of positive integers"),
        ("patience", lambda v: v is None or (isinstance(v, int) and v >= 0), "an integer >= 0"),
        ("mixup", lambda v: v is None or (number(v) and v > 0), "a Beta(alpha, alpha) parameter > 0"),
    ]
    for name, ok, what in checks:
        if not ok(cfg[name]):
            raise ConfigError(f"{_option(name)}: must be {what}, got {cfg[name]!r}")
    if cfg["nesterov"] and (cfg["optimizer"] != "sgd" or cfg["momentum"] <= 0):
        raise ConfigError("--nesterov: needs --optimizer sgd and --momentum > 0")
    if cfg["mixup"] is not None and cfg["loss"] not in (None, "cross_entropy"):
        raise ConfigError(f"--mixup: trains on mixed (soft) targets, which needs --loss cross_entropy, "
                          f"not {cfg['loss']}")
    if cfg["lr"] is None:
        cfg["lr"] = DEFAULT_LR[cfg["optimizer"]]
    return cfg


def load_data(cfg: dict[str, Any]) -> Any:
    """The ``Splits`` (train, val, test, info) the config names."""
    from dlbasics.data import datasets

    kwargs: dict[str, Any] = {"root": cfg["data_dir"]} if cfg.get("data_dir") else {}
    if cfg.get("augment"):
        kwargs |= {"augment": True, "augment_seed": cfg["seed"]}
    try:
        return datasets.load(cfg["data"], **kwargs)
    except TypeError as e:
        msg = str(e)
        if "required positional argument: 'root'" in msg:
            raise ConfigError(f"--data-dir: the data set {cfg['data']!r} is read from files; give the folder "
                              "that holds them") from None
        if "'root'" in msg:
            raise ConfigError(f"--data-dir: the data set {cfg['data']!r} is bundled or generated and reads no "
                              "files") from None
        if "'augment'" in msg:
            raise ConfigError(f"--augment: the data set {cfg['data']!r} has no augmentation (cifar10 has: random "
                              "crop with padding 4 and horizontal flip)") from None
        raise


def metrics_for(task: str) -> tuple[str, ...]:
    return ("accuracy",) if task == "classification" else ("mae",)


def make_optimizer(cfg: dict[str, Any], model: Any) -> Any:
    """The optimizer the config names over ``model``'s parameters; weight decay (L2, or decoupled for adamw)
    applies to weights only - biases and normalization parameters are not decayed (``optim.param_groups``)."""
    from dlbasics import optim

    name, lr, wd = cfg["optimizer"], float(cfg["lr"]), float(cfg["weight_decay"])
    params = optim.param_groups(model, wd) if wd else model.parameters()
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg["momentum"], nesterov=bool(cfg["nesterov"]), weight_decay=wd)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
    cls = {"adagrad": optim.Adagrad, "adadelta": optim.Adadelta, "adam": optim.Adam, "adamw": optim.AdamW}[name]
    return cls(params, lr=lr, weight_decay=wd)


def _nll_of_logits(out: Any, y: Any) -> Any:
    from dlbasics.nn import functional as F

    return F.nll_loss(F.log_softmax(out, 1), y)  # the categorical likelihood of the model's logits


def _mse_on_one_hot(out: Any, y: Any) -> Any:
    from dlbasics.nn import functional as F

    return F.mse_loss(F.softmax(out, 1), F.one_hot(y, out.shape[1]).float())  # the lecture's MSE-vs-CE foil


def make_loss(cfg: dict[str, Any], task: str) -> Any:
    from dlbasics import nn

    name = cfg["loss"] or ("cross_entropy" if task == "classification" else "mse")
    if task == "regression" and name != "mse":
        raise ConfigError(f"--loss {name}: the data set {cfg['data']!r} is a regression task; use mse")
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(label_smoothing=float(cfg["label_smoothing"]))
    if name == "nll":
        return _nll_of_logits
    if task == "classification":
        return _mse_on_one_hot
    return nn.MSELoss()


def model_options(cfg: dict[str, Any], info: Any) -> dict[str, Any]:
    """The builder's arguments: what the data says (in_features, num_classes, in_channels, image_size - each
    passed only if the builder takes it, by name) and the model options the config sets."""
    from dlbasics import models

    accepted = models.info(cfg["model"]).options()
    data: dict[str, Any] = {"in_features": info.in_features, "num_classes": info.out_features}
    if len(info.input_shape) == 3:  # images (C, H, W)
        data |= {"in_channels": info.input_shape[0], "image_size": info.input_shape[1]}
    chosen = {k: cfg[k] for k in MODEL_OPTIONS if cfg[k] is not None}
    return {k: v for k, v in {**data, **chosen}.items() if k in accepted}


class RunBuilder:
    """``build_run(seed) -> Run`` for a validated config and its data's ``info``; picklable, so worker
    processes can rebuild the same run. Early stopping (``patience``) monitors val_loss."""

    def __init__(self, cfg: dict[str, Any], info: Any) -> None:
        if cfg["mixup"] is not None and info.task != "classification":
            raise ConfigError(f"--mixup: mixes class labels; the data set {cfg['data']!r} is a regression task")
        self.cfg, self.info = cfg, info

    def __call__(self, seed: int) -> Any:
        from dlbasics import models
        from dlbasics.data.mixup import MixUp
        from dlbasics.train.callbacks import EarlyStopping
        from dlbasics.train.run import Run

        cfg = self.cfg
        model = models.create(cfg["model"], **model_options(cfg, self.info))
        callbacks = [EarlyStopping(patience=cfg["patience"])] if cfg["patience"] is not None else []
        return Run(model=model, loss_fn=make_loss(cfg, self.info.task),
                   optimizer=make_optimizer(cfg, model), epochs=cfg["epochs"],
                   batch_size=cfg["batch_size"], metrics=metrics_for(self.info.task), callbacks=callbacks,
                   collate_fn=None if cfg["mixup"] is None else MixUp(cfg["mixup"], self.info.num_classes, seed=seed))
