"""``dlbasics``: the command line. A run is data + model + loss + algorithm, each chosen by name.

    dlbasics train                                   # MLP on the bundled digits, Adam, cross-entropy
    dlbasics train --optimizer sgd --momentum 0.9 --nesterov --lr 0.05 --epochs 20 --out runs/nag
    dlbasics train --config run.toml                 # same keys as the options
    dlbasics evaluate runs/nag
    dlbasics zoo

The options name a run description (``dlbasics.train.config``); this module only parses and prints.
User mistakes (an unknown name, a bad value, a missing file) print one line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dlbasics.train.config import DEFAULT_LR, DEFAULTS, LOSSES, OPTIMIZERS, ConfigError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise ConfigError(message)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options that describe a run (shared by train and the commands that train many runs)."""
    from dlbasics.data import datasets
    from dlbasics.models import available
    from dlbasics.models.mlp import ACTIVATIONS

    p.add_argument("--config", metavar="TOML", help="a TOML file whose keys are these options (dashes or underscores)")
    g = p.add_argument_group("model")
    g.add_argument("--model", metavar="NAME", help=f"one of: {', '.join(available())} (default mlp)")
    g.add_argument("--hidden", type=int, nargs="+", metavar="N", help="mlp: hidden layer sizes (default 128 64)")
    g.add_argument("--activation", metavar="NAME",
                   help=f"mlp: one of {', '.join(ACTIVATIONS)} (default relu); lenet5: tanh or relu")
    g.add_argument("--dropout", type=float, metavar="P", help="mlp: after each hidden layer (default 0); "
                   "alexnet: in the classifier (default 0.5)")
    g.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
                   help="mlp: BatchNorm1d after each hidden Linear (default on); alexnet: BatchNorm2d instead "
                        "of local response normalization (default off)")
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="NAME", help=f"one of: {', '.join(datasets.available())} (default digits)")
    g.add_argument("--data-dir", metavar="DIR", help="folder with the files of a file-based dataset")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="cifar10: random crop (padding 4) + horizontal flip of the training images")
    g.add_argument("--batch-size", type=int, metavar="N", help=f"default {DEFAULTS['batch_size']}")
    g.add_argument("--mixup", type=float, metavar="ALPHA", help="MixUp training batches, lambda ~ Beta(ALPHA, ALPHA)")
    g = p.add_argument_group("loss")
    g.add_argument("--loss", metavar="NAME", help=f"one of: {', '.join(LOSSES)} (default: cross_entropy for "
                   "classification, mse for regression)")
    g.add_argument("--label-smoothing", type=float, metavar="EPS", help="for cross_entropy (default 0)")
    g = p.add_argument_group("algorithm")
    g.add_argument("--optimizer", metavar="NAME", help=f"one of: {', '.join(OPTIMIZERS)} (default adam)")
    g.add_argument("--lr", type=float, help="learning rate (default: " +
                   ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    g.add_argument("--momentum", type=float, help="for sgd and rmsprop (default 0)")
    g.add_argument("--nesterov", action="store_true", default=None, help="Nesterov momentum (sgd)")
    g.add_argument("--weight-decay", type=float, metavar="WD",
                   help="L2 penalty (decoupled for adamw) on weights; biases and norm parameters are not decayed")
    g.add_argument("--epochs", type=int, help=f"default {DEFAULTS['epochs']}")
    g.add_argument("--patience", type=int, help="early stopping on val_loss after N epochs without improvement")
    g.add_argument("--seed", type=int, help="seeds weights, shuffling and dropout (default 0)")
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help="run folder (default runs/MODEL-DATA-TIME)")
    g.add_argument("--quiet", action="store_true", default=None, help="no progress bar or per-epoch lines")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dlbasics", description="Deep learning from Data, Model, Loss and Algorithm, on NumPy.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    t = sub.add_parser("train", help="train a model and save the run (defaults: MLP on digits with Adam)",
                       description="Train a model. Options not given come from --config, then the defaults.")
    add_run_options(t)
    e = sub.add_parser("evaluate", help="re-evaluate a saved run on its test split")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--data-dir", metavar="DIR", help="where the run's data files are now, if they moved")
    e.add_argument("--split", default="test", help="train, val or test (default test)")
    sub.add_parser("zoo", help="list the models with their papers")

    from dlbasics.lab import EXPERIMENTS

    lab = sub.add_parser("lab", help="reproduce a claim of the lecture: figures + a finding with numbers",
                         description="Run one experiment (or all, with an index.html report). Experiments: "
                                     f"{', '.join(EXPERIMENTS)}.")
    lab.add_argument("experiment", metavar="NAME", help="an experiment name, 'all', or 'list'")
    lab.add_argument("--out", metavar="DIR", help="output folder (default report/NAME, or report/ for all)")
    lab.add_argument("--quick", action="store_true", help="the small size used by the tests (seconds)")
    lab.add_argument("--seed", type=int, default=0, help="default 0")

    z = sub.add_parser("compress", help="low-rank (SVD) compression of a trained run's Linear layers",
                       description="Replace each Linear weight W by its rank-k truncation U_k S_k V_k^T (two smaller "
                                   "layers) where that saves parameters; report size and test accuracy before/after.")
    z.add_argument("run_dir", metavar="RUN_DIR")
    z.add_argument("--energy", type=float, help="keep the fewest singular values holding this share of sum(s^2)")
    z.add_argument("--rank", type=int, help="keep k singular values in every layer")
    z.add_argument("--out", metavar="DIR", help="default RUN_DIR/compressed")
    z.add_argument("--data-dir", metavar="DIR", help="where the run's data files are now, if they moved")
    z.add_argument("--recalibrate-bn", action="store_true", help="re-estimate batch-norm statistics afterwards")

    c = sub.add_parser("cv", help="k-fold cross-validation of a run on the train+val data",
                       description="Train one fresh model per fold; report per-fold and mean +- std metrics. "
                                   "The test split stays untouched.")
    add_run_options(c)
    c.add_argument("--k", type=int, default=5, help="number of folds (default 5)")
    c.add_argument("--workers", type=int, default=1, help="folds trained in parallel processes (default 1)")
    c.add_argument("--no-stratify", action="store_true", help="plain KFold instead of StratifiedKFold")

    n = sub.add_parser("ensemble", help="train N members with different seeds and average their predictions",
                       description="Train --members models (seeds SEED, SEED+1, ...; optionally each on a bootstrap "
                                   "resample) and report each member's and the ensemble's test metrics.")
    add_run_options(n)
    n.add_argument("--members", type=int, default=5, help="number of members (default 5)")
    n.add_argument("--bootstrap", action="store_true", help="train each member on a bootstrap resample (bagging)")
    n.add_argument("--average", default="prob", help="prob (average probabilities, default) or logits")

    u = sub.add_parser("tune", help="Bayesian optimization of hyperparameters (Optuna TPE)",
                       description="Search hyperparameters of a run, scoring each trial by its best validation "
                                   "loss. The study lives in an SQLite file, so rerunning the same command resumes "
                                   "it and several processes can work on one study.")
    add_run_options(u)
    u.add_argument("--space", action="append", metavar="NAME=SPEC", default=[],
                   help="a search dimension, repeatable: lr=1e-4:1e-1:log (float), epochs=5:20:int, "
                        "optimizer=adam,sgd (choice), hidden=64,128x64 (lists with x)")
    u.add_argument("--trials", type=int, default=20, help="trials to add to the study (default 20)")
    u.add_argument("--sampler", default="tpe", help="tpe (default), random, or gp (needs torch)")
    u.add_argument("--storage", default="sqlite:///tune.db", help="study database (default sqlite:///tune.db)")
    u.add_argument("--study", metavar="NAME", help="study name (default tune-MODEL-DATA)")
    u.add_argument("--no-prune", action="store_true", help="do not stop lagging trials early")
    return p


def _version() -> str:
    from dlbasics import __version__

    return f"dlbasics {__version__}"


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults, then the TOML file, then the options given on the command line; validated in one place."""
    from dlbasics.train.config import read_toml, validate

    cfg = dict(DEFAULTS)
    if args.config:
        cfg.update(read_toml(args.config))
    cfg.update({k: getattr(args, k) for k in DEFAULTS if getattr(args, k, None) is not None})
    return validate(cfg)


def run_dir(cfg: dict[str, Any], command: str = "") -> Path:
    name = "-".join(x for x in (command, cfg["model"], cfg["data"], time.strftime("%Y%m%d-%H%M%S")) if x)
    out = Path(cfg["out"] or f"runs/{name}")
    out.mkdir(parents=True, exist_ok=True)
    return out


# ---- train -----------------------------------------------------------------------------------------
def run_train(cfg: dict[str, Any]) -> dict[str, Any]:
    """Train as ``cfg`` says, write the run folder, and return the summary."""
    from dlbasics.data import DataLoader
    from dlbasics.io import atomic_write_text, save
    from dlbasics.train import evaluate, train_run
    from dlbasics.train.config import RunBuilder, load_data, model_options

    splits = load_data(cfg)
    builder = RunBuilder(cfg, splits.info)  # checks the config against the data before a folder is made
    out_dir = run_dir(cfg)
    resolved = {**cfg, "out": str(out_dir), "model_options": model_options(cfg, splits.info),
                "task": splits.info.task}
    atomic_write_text(out_dir / "config.json", json.dumps(resolved, indent=2) + "\n")
    start = time.perf_counter()
    run, history = train_run(builder, splits.train, splits.val, seed=cfg["seed"],
                             verbose=0 if cfg["quiet"] else 1)
    seconds = time.perf_counter() - start
    test = evaluate(run.model, DataLoader(splits.test, batch_size=512), run.loss_fn, run.metrics)
    save(run.model, out_dir / "model.safetensors")
    atomic_write_text(out_dir / "metrics.csv", history.to_csv())
    summary = {f"test_{k}": v for k, v in test.items()} | {
        "epochs": len(history), "stopped_early": history.stopped_early, "seconds": round(seconds, 3),
        "parameters": int(sum(p.numel() for p in run.model.parameters())), "run_dir": str(out_dir)}
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    plot_curves(history, out_dir / "curves.png", run.metrics[0], f"{cfg['model']} on {cfg['data']}")
    return summary


def plot_curves(history: Any, path: Path, metric: str, title: str = "") -> None:
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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


# ---- evaluate / zoo --------------------------------------------------------------------------------
def run_evaluate(run_dir: str, data_dir: str | None, split: str) -> dict[str, float]:
    from dlbasics import models
    from dlbasics.data import DataLoader
    from dlbasics.io import load
    from dlbasics.train import evaluate
    from dlbasics.train.config import check_choice, load_data, make_loss, metrics_for

    d = Path(run_dir)
    for f in ("config.json", "model.safetensors"):
        if not (d / f).is_file():
            raise ConfigError(f"evaluate: {d} is not a run folder (no {f})")
    cfg = json.loads((d / "config.json").read_text())
    if data_dir:
        cfg["data_dir"] = data_dir
    check_choice("split", split, ("train", "val", "test"))
    splits = load_data(cfg)
    model = models.create(cfg["model"], **cfg["model_options"])
    model.load_state_dict(load(d / "model.safetensors"))
    loader = DataLoader(getattr(splits, split), batch_size=512)
    return evaluate(model, loader, make_loss(cfg, cfg["task"]), metrics_for(cfg["task"]))


def run_zoo() -> list[str]:
    """One line per model: name, default data, parameters (built for that data), paper."""
    from dlbasics import models
    from dlbasics.data import datasets
    from dlbasics.train.config import DEFAULTS, model_options

    lines = [f"{'model':<10} {'default data':<14} {'parameters':>10}  paper"]
    for name in models.available():
        i = models.info(name)
        model = models.create(name, **model_options({**DEFAULTS, "model": name}, datasets.describe(i.default_data)))
        count = sum(p.numel() for p in model.parameters())
        lines.append(f"{name:<10} {i.default_data:<14} {count:>10,}  {i.paper}")
    return lines


# ---- cv / tune -------------------------------------------------------------------------------------
def run_cv(cfg: dict[str, Any], k: int, workers: int, stratified: bool) -> Any:
    """K-fold cross-validation on train + val (the test split is kept for the final word)."""
    from dlbasics.data import ConcatDataset
    from dlbasics.io import atomic_write_text
    from dlbasics.train.config import RunBuilder, load_data
    from dlbasics.train.kfold import cross_validate

    splits = load_data(cfg)
    out_dir = run_dir(cfg, "cv")
    data = ConcatDataset([splits.train, splits.val])
    result = cross_validate(RunBuilder(cfg, splits.info), data, k, stratified=stratified, seed=cfg["seed"],
                            workers=workers, verbose=0 if cfg["quiet"] else 1)
    atomic_write_text(out_dir / "config.json", json.dumps(cfg, indent=2) + "\n")
    atomic_write_text(out_dir / "cv.json", json.dumps(result.to_dict(), indent=2) + "\n")
    result.out_dir = out_dir
    return result


def run_ensemble(cfg: dict[str, Any], members: int, bootstrap: bool, average: str) -> dict[str, Any]:
    """Train the members, then evaluate each and the ensemble on the test split."""
    from dlbasics.data import DataLoader
    from dlbasics.io import atomic_write_text, save
    from dlbasics.train import evaluate
    from dlbasics.train.config import RunBuilder, check_choice, load_data, make_loss, metrics_for
    from dlbasics.train.ensemble import train_ensemble

    if members < 2:
        raise ConfigError(f"--members: an ensemble needs at least 2 members, got {members}")
    check_choice("average", average, ("prob", "logits"))
    splits = load_data(cfg)
    if splits.info.task != "classification":
        raise ConfigError(f"ensemble: averages class probabilities; the data set {cfg['data']!r} is a regression task")
    builder = RunBuilder(cfg, splits.info)
    out_dir = run_dir(cfg, "ensemble")
    ensemble, _ = train_ensemble(builder, splits.train, splits.val, n=members, seed=cfg["seed"], bootstrap=bootstrap,
                                 mode=average, verbose=0)
    test = DataLoader(splits.test, batch_size=512)
    loss_fn, metrics = make_loss(cfg, "classification"), metrics_for("classification")
    per_member = [evaluate(m, test, loss_fn, metrics) for m in ensemble.members]
    whole = evaluate(ensemble, test, loss_fn, metrics)
    summary = {"members": per_member, "member_mean": {k: sum(r[k] for r in per_member) / members for k in whole},
               "ensemble": whole, "bootstrap": bootstrap, "average": average, "run_dir": str(out_dir)}
    atomic_write_text(out_dir / "config.json", json.dumps(cfg, indent=2) + "\n")
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    save(ensemble, out_dir / "model.safetensors")
    return summary


def run_tune(cfg: dict[str, Any], args: argparse.Namespace) -> Any:
    from dlbasics.train.tuning import parse_space, tune_config

    if not args.space:
        raise ConfigError("tune: give at least one --space NAME=SPEC, e.g. --space lr=1e-4:1e-1:log")
    if args.trials < 1:
        raise ConfigError(f"--trials: must be an integer >= 1, got {args.trials}")
    space = parse_space(args.space)
    out_dir = run_dir(cfg, "tune")
    result = tune_config(cfg, space, args.trials, sampler=args.sampler, seed=cfg["seed"], storage=args.storage,
                         study_name=args.study or f"tune-{cfg['model']}-{cfg['data']}", out_dir=out_dir,
                         verbose=0 if cfg["quiet"] else 1, pruner="none" if args.no_prune else "median")
    result.out_dir = out_dir
    return result


def run_lab(name: str, out: str | None, quick: bool, seed: int) -> list[str]:
    """Run one experiment, or all of them with an index.html; returns the lines to print."""
    from dlbasics import lab

    if name == "list":
        return [f"{n:<24} {lab.get(n).CLAIM}" for n in lab.available()]
    if name == "all":
        out_dir = Path(out or "report")
        findings = lab.run_all(out_dir, quick=quick, seed=seed)
        lines = [f"{f.name:<24} {f.seconds:6.1f} s  {out_dir / f.name / 'finding.md'}" for f in findings]
        return [*lines, f"report: {out_dir / 'index.html'}"]
    canonical = lab.canonical(name)
    finding = lab.run(canonical, Path(out or f"report/{canonical}"), quick=quick, seed=seed)
    numbers = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in finding.numbers.items())
    return [f"{finding.title}: {numbers}", f"({finding.seconds:.1f} s) saved to {out or f'report/{canonical}'}"]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command == "train":
            summary = run_train(config_from_args(args))
            score = ", ".join(f"{k} {v:.4f}" for k, v in summary.items() if k.startswith("test_"))
            print(f"{score}  ({summary['epochs']} epochs, {summary['seconds']:.1f} s)")
            print(f"saved to {summary['run_dir']}")
        elif args.command == "evaluate":
            result = run_evaluate(args.run_dir, args.data_dir, args.split)
            print(", ".join(f"{args.split}_{k} {v:.4f}" for k, v in result.items()))
        elif args.command == "zoo":
            print("\n".join(run_zoo()))
        elif args.command == "lab":
            print("\n".join(run_lab(args.experiment, args.out, args.quick, args.seed)))
        elif args.command == "compress":
            from dlbasics.compress import compress_run

            if (args.energy is None) == (args.rank is None):
                raise ConfigError("compress: give exactly one of --energy E (e.g. 0.9) or --rank K")
            s = compress_run(args.run_dir, energy=args.energy, rank=args.rank, out_dir=args.out,
                             data_dir=args.data_dir, recalibrate_bn=args.recalibrate_bn)
            print(f"ranks {s['ranks']}")
            print(f"parameters {s['params_before']:,} -> {s['params_after']:,}; test accuracy "
                  f"{s['test_before']['accuracy']:.4f} -> {s['test_after']['accuracy']:.4f}")
            print(f"saved to {s['out_dir']}")
        elif args.command == "cv":
            result = run_cv(config_from_args(args), args.k, args.workers, not args.no_stratify)
            print(result.table())
            print(f"saved to {result.out_dir}")
        elif args.command == "ensemble":
            s = run_ensemble(config_from_args(args), args.members, args.bootstrap, args.average)
            for i, r in enumerate(s["members"]):
                print(f"member {i + 1}: test_loss {r['loss']:.4f}  test_accuracy {r['accuracy']:.4f}")
            m, e = s["member_mean"], s["ensemble"]
            print(f"member mean: test_loss {m['loss']:.4f}  test_accuracy {m['accuracy']:.4f}")
            print(f"ensemble: test_loss {e['loss']:.4f}  test_accuracy {e['accuracy']:.4f}")
            print(f"saved to {s['run_dir']}")
        elif args.command == "tune":
            result = run_tune(config_from_args(args), args)
            done = result.count("COMPLETE")
            print(f"{done} complete trials in study {result.study_name!r}; best val_loss {result.best_value:.4f} "
                  f"with {json.dumps(result.best_params)}")
            print(f"saved to {result.out_dir} (trials.csv, best.json, history.png)")
        else:
            parser.print_help()
        return 0
    except (ValueError, TypeError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
        # ConfigError is a ValueError; cross_validate and tune raise ValueError / TypeError for bad settings
        print(f"dlbasics: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dlbasics: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
