"""``dlbasics``: the command line. A run is data + model + loss + algorithm, each chosen by name.

    dlbasics train                                   # MLP on the bundled digits, Adam, cross-entropy
    dlbasics train --optimizer sgd --momentum 0.9 --nesterov --lr 0.05 --epochs 20 --out runs/nag
    dlbasics train --config run.toml                 # same keys as the options
    dlbasics evaluate runs/nag
    dlbasics zoo

User mistakes (an unknown name, a bad value, a missing file) print one line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2

OPTIMIZERS = ("sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw")
DEFAULT_LR = {"sgd": 0.05, "adagrad": 0.01, "adadelta": 1.0, "rmsprop": 1e-3, "adam": 1e-3, "adamw": 1e-3}
LOSSES = ("cross_entropy", "nll", "mse")

# Every option of `train`, its default, and how a TOML value is checked. None means "not set".
TRAIN_DEFAULTS: dict[str, Any] = {
    "model": "mlp", "hidden": [128, 64], "activation": "relu", "dropout": 0.0, "batch_norm": True,
    "data": "digits", "data_dir": None, "loss": None, "label_smoothing": 0.0,
    "optimizer": "adam", "lr": None, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0,
    "epochs": 40, "batch_size": 32, "seed": 0, "patience": None, "out": None, "quiet": False,
}


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(message)


def _choice(option: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise UsageError(f"--{option.replace('_', '-')}: invalid choice {value!r} (choose from {', '.join(choices)})")
    return value


def build_parser() -> argparse.ArgumentParser:
    from dlbasics.data import datasets
    from dlbasics.models import available
    from dlbasics.models.mlp import ACTIVATIONS

    p = _Parser(prog="dlbasics", description="Deep learning from Data, Model, Loss and Algorithm, on NumPy.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", help="train a model and save the run (defaults: MLP on digits with Adam)",
                       description="Train a model. Options not given come from --config, then the defaults.")
    t.add_argument("--config", metavar="TOML", help="a TOML file whose keys are these options (dashes or underscores)")
    g = t.add_argument_group("model")
    g.add_argument("--model", metavar="NAME", help=f"one of: {', '.join(available())} (default mlp)")
    g.add_argument("--hidden", type=int, nargs="+", metavar="N", help="hidden layer sizes (default 128 64)")
    g.add_argument("--activation", metavar="NAME", help=f"one of: {', '.join(ACTIVATIONS)} (default relu)")
    g.add_argument("--dropout", type=float, metavar="P", help="dropout probability after each hidden layer")
    g.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
                   help="BatchNorm1d after each hidden Linear (default on)")
    g = t.add_argument_group("data")
    g.add_argument("--data", metavar="NAME", help=f"one of: {', '.join(datasets.available())} (default digits)")
    g.add_argument("--data-dir", metavar="DIR", help="folder with the files of a file-based dataset")
    g.add_argument("--batch-size", type=int, metavar="N", help="default 32")
    g = t.add_argument_group("loss")
    g.add_argument("--loss", metavar="NAME", help=f"one of: {', '.join(LOSSES)} (default: cross_entropy for "
                   "classification, mse for regression)")
    g.add_argument("--label-smoothing", type=float, metavar="EPS", help="for cross_entropy (default 0)")
    g = t.add_argument_group("algorithm")
    g.add_argument("--optimizer", metavar="NAME", help=f"one of: {', '.join(OPTIMIZERS)} (default adam)")
    g.add_argument("--lr", type=float, help="learning rate (default: " +
                   ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    g.add_argument("--momentum", type=float, help="for sgd and rmsprop (default 0)")
    g.add_argument("--nesterov", action="store_true", default=None, help="Nesterov momentum (sgd)")
    g.add_argument("--weight-decay", type=float, metavar="WD", help="L2 penalty (decoupled for adamw)")
    g.add_argument("--epochs", type=int, help="default 40")
    g.add_argument("--patience", type=int, help="early stopping on val_loss after N epochs without improvement")
    g.add_argument("--seed", type=int, help="seeds weights, shuffling and dropout (default 0)")
    g = t.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help="run folder (default runs/MODEL-DATA-TIME)")
    g.add_argument("--quiet", action="store_true", default=None, help="no progress bar or per-epoch lines")

    e = sub.add_parser("evaluate", help="re-evaluate a saved run on its test split")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--data-dir", metavar="DIR", help="where the run's data files are now, if they moved")
    e.add_argument("--split", default="test", help="train, val or test (default test)")

    sub.add_parser("zoo", help="list the models with their papers")
    return p


def _version() -> str:
    from dlbasics import __version__

    return f"dlbasics {__version__}"


# ---- train -----------------------------------------------------------------------------------------
def resolve_train_config(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults, then the TOML file, then the options given on the command line; validated in one place."""
    cfg = dict(TRAIN_DEFAULTS)
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise UsageError(f"--config: no such file: {path}")
        try:
            loaded = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise UsageError(f"--config {path}: not valid TOML ({e})") from None
        for key, value in loaded.items():
            k = key.replace("-", "_")
            if k not in cfg:
                raise UsageError(f"--config {path}: unknown key {key!r} (valid: {', '.join(TRAIN_DEFAULTS)})")
            cfg[k] = value
    for k in TRAIN_DEFAULTS:
        v = getattr(args, k, None)
        if v is not None:
            cfg[k] = v
    return _validate(cfg)


def _validate(cfg: dict[str, Any]) -> dict[str, Any]:
    from dlbasics.data import datasets
    from dlbasics.models import available
    from dlbasics.models.mlp import ACTIVATIONS

    _choice("model", cfg["model"], available())
    _choice("data", cfg["data"], datasets.available())
    _choice("optimizer", cfg["optimizer"], OPTIMIZERS)
    _choice("activation", cfg["activation"], list(ACTIVATIONS))
    if cfg["loss"] is not None:
        _choice("loss", cfg["loss"], LOSSES)
    checks = [
        ("epochs", cfg["epochs"], lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        ("batch_size", cfg["batch_size"], lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        ("seed", cfg["seed"], lambda v: isinstance(v, int), "an integer"),
        ("dropout", cfg["dropout"], lambda v: isinstance(v, int | float) and 0 <= v < 1, "in [0, 1)"),
        ("lr", cfg["lr"], lambda v: v is None or (isinstance(v, int | float) and v > 0), "a number > 0"),
        ("momentum", cfg["momentum"], lambda v: isinstance(v, int | float) and 0 <= v < 1, "in [0, 1)"),
        ("weight_decay", cfg["weight_decay"], lambda v: isinstance(v, int | float) and v >= 0, "a number >= 0"),
        ("label_smoothing", cfg["label_smoothing"], lambda v: isinstance(v, int | float) and 0 <= v <= 1, "in [0, 1]"),
        ("hidden", cfg["hidden"], lambda v: isinstance(v, list) and all(isinstance(h, int) and h > 0 for h in v),
         "a list of positive integers"),
        ("patience", cfg["patience"], lambda v: v is None or (isinstance(v, int) and v >= 0), "an integer >= 0"),
    ]
    for name, value, ok, what in checks:
        if not ok(value):
            raise UsageError(f"--{name.replace('_', '-')}: must be {what}, got {value!r}")
    if cfg["nesterov"] and (cfg["optimizer"] != "sgd" or cfg["momentum"] <= 0):
        raise UsageError("--nesterov: needs --optimizer sgd and --momentum > 0")
    if cfg["lr"] is None:
        cfg["lr"] = DEFAULT_LR[cfg["optimizer"]]
    return cfg


def make_optimizer(cfg: dict[str, Any], params: Any) -> Any:
    from dlbasics import optim

    name, lr, wd = cfg["optimizer"], float(cfg["lr"]), float(cfg["weight_decay"])
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg["momentum"], nesterov=bool(cfg["nesterov"]), weight_decay=wd)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
    cls = {"adagrad": optim.Adagrad, "adadelta": optim.Adadelta, "adam": optim.Adam, "adamw": optim.AdamW}[name]
    return cls(params, lr=lr, weight_decay=wd)


def make_loss(cfg: dict[str, Any], task: str) -> Any:
    from dlbasics import nn
    from dlbasics.nn import functional as F

    name = cfg["loss"] or ("cross_entropy" if task == "classification" else "mse")
    if task == "regression" and name != "mse":
        raise UsageError(f"--loss {name}: the data set {cfg['data']!r} is a regression task; use mse")
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(label_smoothing=float(cfg["label_smoothing"]))
    if name == "nll":  # the model outputs logits; NLL of their log-softmax is the categorical likelihood
        return lambda out, y: F.nll_loss(F.log_softmax(out, 1), y)
    if task == "classification":  # MSE against one-hot targets: the lecture's comparison with cross-entropy
        return lambda out, y: F.mse_loss(F.softmax(out, 1), F.one_hot(y, out.shape[1]).float())
    return nn.MSELoss()


def model_options(cfg: dict[str, Any], in_features: int, num_outputs: int) -> dict[str, Any]:
    return {"in_features": in_features, "num_classes": num_outputs, "hidden": list(cfg["hidden"]),
            "activation": cfg["activation"], "dropout": float(cfg["dropout"]), "batch_norm": bool(cfg["batch_norm"])}


def load_data(cfg: dict[str, Any]) -> Any:
    from dlbasics.data import datasets

    kwargs = {"root": cfg["data_dir"]} if cfg.get("data_dir") else {}
    try:
        return datasets.load(cfg["data"], **kwargs)
    except TypeError as e:
        if "root" not in str(e):
            raise
        raise UsageError(f"--data-dir: the data set {cfg['data']!r} is bundled or generated and reads no files"
                         ) from None


def run_train(cfg: dict[str, Any]) -> dict[str, Any]:
    """Train as ``cfg`` says, write the run folder, and return the summary."""
    import dlbasics as dl
    from dlbasics import models
    from dlbasics.data import DataLoader
    from dlbasics.io import atomic_write_text, save
    from dlbasics.train import EarlyStopping, evaluate, fit

    dl.manual_seed(cfg["seed"])
    splits = load_data(cfg)
    info = splits.info
    metrics = ("accuracy",) if info.task == "classification" else ("mae",)
    out_dir = Path(cfg["out"] or f"runs/{cfg['model']}-{cfg['data']}-{time.strftime('%Y%m%d-%H%M%S')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    options = model_options(cfg, info.in_features, info.out_features)
    model = models.create(cfg["model"], **options)
    loss_fn = make_loss(cfg, info.task)
    optimizer = make_optimizer(cfg, model.parameters())
    train_loader = DataLoader(splits.train, batch_size=cfg["batch_size"], shuffle=True, seed=cfg["seed"])
    val_loader = DataLoader(splits.val, batch_size=512)
    test_loader = DataLoader(splits.test, batch_size=512)
    callbacks = [EarlyStopping(patience=cfg["patience"])] if cfg["patience"] is not None else []
    resolved = {**cfg, "out": str(out_dir), "model_options": options, "task": info.task}
    atomic_write_text(out_dir / "config.json", json.dumps(resolved, indent=2) + "\n")

    start = time.perf_counter()
    history = fit(model, loss_fn, optimizer, train_loader, epochs=cfg["epochs"], val_loader=val_loader,
                  callbacks=callbacks, metrics=metrics, verbose=0 if cfg["quiet"] else 1)
    seconds = time.perf_counter() - start
    test = evaluate(model, test_loader, loss_fn, metrics)
    save(model, out_dir / "model.safetensors")
    atomic_write_text(out_dir / "metrics.csv", history.to_csv())
    summary = {f"test_{k}": v for k, v in test.items()} | {
        "epochs": len(history), "stopped_early": history.stopped_early, "seconds": round(seconds, 3),
        "parameters": int(sum(p.numel() for p in model.parameters())), "run_dir": str(out_dir)}
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    plot_curves(history, out_dir / "curves.png", metrics[0])
    return summary


def plot_curves(history: Any, path: Path, metric: str) -> None:
    """Loss and ``metric``, train vs val, per epoch (matplotlib, Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = history["epoch"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", metric)):
        for split in ("train", "val"):
            name = f"{split}_{key}"
            if name in history:
                ax.plot(epochs, history[name], marker="o", markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_yscale("log")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


# ---- evaluate / zoo --------------------------------------------------------------------------------
def run_evaluate(run_dir: str, data_dir: str | None, split: str) -> dict[str, float]:
    from dlbasics import models
    from dlbasics.data import DataLoader
    from dlbasics.io import load
    from dlbasics.train import evaluate

    d = Path(run_dir)
    for f in ("config.json", "model.safetensors"):
        if not (d / f).is_file():
            raise UsageError(f"evaluate: {d} is not a run folder (no {f})")
    cfg = json.loads((d / "config.json").read_text())
    if data_dir:
        cfg["data_dir"] = data_dir
    _choice("split", split, ("train", "val", "test"))
    splits = load_data(cfg)
    model = models.create(cfg["model"], **cfg["model_options"])
    model.load_state_dict(load(d / "model.safetensors"))
    metrics = ("accuracy",) if cfg["task"] == "classification" else ("mae",)
    loader = DataLoader(getattr(splits, split), batch_size=512)
    return evaluate(model, loader, make_loss(cfg, cfg["task"]), metrics)


def run_zoo() -> list[str]:
    from dlbasics import models

    lines = []
    for name in models.available():
        i = models.info(name)
        lines.append(f"{name:<12} {i.default_data:<14} {i.paper}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command == "train":
            cfg = resolve_train_config(args)
            summary = run_train(cfg)
            score = ", ".join(f"{k} {v:.4f}" for k, v in summary.items() if k.startswith("test_"))
            print(f"{score}  ({summary['epochs']} epochs, {summary['seconds']:.1f} s)")
            print(f"saved to {summary['run_dir']}")
        elif args.command == "evaluate":
            result = run_evaluate(args.run_dir, args.data_dir, args.split)
            print(", ".join(f"{args.split}_{k} {v:.4f}" for k, v in result.items()))
        elif args.command == "zoo":
            print("\n".join(run_zoo()))
        else:
            parser.print_help()
        return 0
    except UsageError as e:
        print(f"dlbasics: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
        print(f"dlbasics: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dlbasics: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
