"""What the command line's training commands do, as Python functions over a run description: each trains
through ``train_run`` (the one loop) and writes its run folder through ``rundir`` (the one writer).

    cfg = RunConfig.from_options({"model": "lenet5", "epochs": 2})
    result = train(cfg, out="runs/lenet")          # a train folder; killed? resume("runs/lenet")
    model = load_model("runs/lenet")               # back as a ready model (dl.train.load_model)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlbasics.errors import ConfigError, RunFolderError
from dlbasics.train import rundir
from dlbasics.train.config import RunBuilder, RunConfig, check_model_fits_data, load_data
from dlbasics.train.data_parallel import world


@dataclass
class TrainResult:
    """A finished ``train`` (or ``resume``): the summary written to summary.json, the folder, the history
    and the wall time of this process's part."""

    summary: dict[str, Any]
    run_dir: Path
    history: Any
    seconds: float


def _prepare(cfg: RunConfig) -> tuple[RunConfig, Any, RunBuilder]:
    """Data loaded and checked, the description resolved against it, the run built once: every mistake of the
    description shows here, before a folder is made."""
    splits = load_data(cfg)
    cfg = cfg.resolve(splits)
    builder = RunBuilder(cfg)
    run = builder(cfg.seed)  # the model, loss and optimizer build: their own checks run now
    check_model_fits_data(run.task, splits, cfg)
    return cfg, splits, builder


def train(cfg: RunConfig, out: str | Path | None = None, verbose: int = 1) -> TrainResult:
    """Train the run ``cfg`` describes into a new run folder (``out``, or ``runs/MODEL-DATA-TIME``); the folder
    holds a resumable checkpoint while it trains, and the model, metrics and summary once it is done.

    Started by ``mpiexec -n R`` (after ``dlbasics.distributed.init_process_group()``), the R ranks train the one
    run data-parallel, each on its share of every batch; rank 0 makes and writes the folder."""
    cfg, splits, builder = _prepare(cfg)
    out_dir = _new_folder(out, f"{cfg.model.name}-{cfg.data.name}", "train", cfg)
    if splits.tokenizer is not None and world()[0] == 0:  # text: the ids mean nothing without it (generate decodes)
        rundir.write_json(out_dir / rundir.TOKENIZER, splits.tokenizer.to_dict())
    return _train_into(out_dir, cfg, splits, builder, verbose, resume=False)


def _new_folder(out: str | Path | None, name: str, kind: str, cfg: RunConfig, **extra: Any) -> Path:
    """A new run folder with its config.json, made by rank 0 alone under ``mpiexec`` and its path sent to the
    other ranks (its default name has the time of rank 0's clock)."""
    from dlbasics import distributed as dist

    rank, ranks = world()
    out_dir = None
    if rank == 0:
        out_dir = rundir.new_run_dir(out, name)
        rundir.write_config(out_dir, kind, cfg, **extra)
    if ranks > 1:
        out_dir = Path(dist.broadcast_text(None if out_dir is None else str(out_dir)))
    return out_dir


def finetune_options(pretrained: str | Path, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run options that fine-tune the model of run ``pretrained``: the model it is fine-tuned into (its
    registration's ``finetune``: bert -> bert_classifier) with the same architecture, started from its matching
    weights (``init_from``), its data encoded with the pre-trained vocabulary (``tokenizer``); ``given`` wins."""
    from dlbasics.data.datasets import DATASETS
    from dlbasics.models.registry import DATA_OPTIONS, MODELS, info

    run = rundir.open_run(pretrained)
    if run.kind != "train":
        raise RunFolderError(f"finetune {run.path}: a {run.kind} folder; fine-tune the model of a train run")
    target = info(run.config.model.name).finetune
    if target is None:
        fine = [m for m in MODELS.available() if info(m).finetune]
        raise ConfigError(f"finetune {run.path}: its model {run.config.model.name!r} has no fine-tuning model; "
                          f"pre-train one of: {', '.join(fine)}")
    accepted = MODELS.get(target).options()
    options: dict[str, Any] = {k: v for k, v in run.config.model.options.items()
                               if k in accepted and k not in DATA_OPTIONS}
    options |= {"model": target, "init_from": str(run.path)}
    data = (given or {}).get("data") or info(target).default_data
    if "tokenizer" in DATASETS.get(data).options() and (run.path / rundir.TOKENIZER).is_file():
        options["tokenizer"] = str(run.path / rundir.TOKENIZER)
    return options | dict(given or {})


def resume(run_dir: str | Path, verbose: int = 1, data_dir: str | None = None) -> TrainResult:
    """Continue the run in ``run_dir`` from its last checkpoint (from the beginning if it was stopped before its
    first one); it ends bit-identical to a run that was never stopped (weights, metrics.csv, summary.json)."""
    from dlbasics.train.checkpoint import clean_temporary

    run = rundir.open_run(run_dir, data_dir)
    if run.kind != "train":
        raise RunFolderError(f"--resume {run.path}: a {run.kind} folder; only train runs resume")
    rank = world()[0]
    if rank == 0:
        clean_temporary(run.path)
    splits = load_data(run.config)
    builder = RunBuilder(run.config)
    started = run.checkpoint_file.is_file()
    if not started and verbose and rank == 0:
        print(f"{run.path}: no checkpoint yet, so the run starts from the beginning", flush=True)
    return _train_into(run.path, run.config, splits, builder, verbose, resume=started)


def _train_into(out_dir: Path, cfg: RunConfig, splits: Any, builder: RunBuilder, verbose: int,
                resume: bool) -> TrainResult:
    from dlbasics.train.run import train_run
    from dlbasics.train.task import TASKS

    start = time.perf_counter()
    task_class = TASKS.get(cfg.task).builder
    writes = world()[0] == 0  # on several ranks, rank 0 writes the folder
    callbacks = [rundir.MetricsWriter(out_dir), *task_class.folder_callbacks(out_dir, cfg)] if writes else []
    run, history = train_run(builder, splits.train, splits.val, seed=cfg.seed, verbose=verbose,
                             checkpoint=out_dir / rundir.CHECKPOINT, checkpoint_every=cfg.budget.checkpoint_every,
                             resume=resume, callbacks=callbacks)
    seconds = time.perf_counter() - start
    if not writes:
        return TrainResult({}, out_dir, history, seconds)
    # the model first: a failing test evaluation must not throw the trained model away
    rundir.save_model(out_dir, run.model)
    rundir.write_metrics(out_dir, history)
    test = {} if splits.test is None else run.task.evaluate(run.task.eval_loader(splits.test, 512))
    unit = "epochs" if cfg.budget.steps is None else "steps"
    trained = history.rows[-1]["epoch" if unit == "epochs" else "step"] if history.rows else 0
    key, mode = run.task.best
    val = [r[f"val_{key}"] for r in history.rows if f"val_{key}" in r]
    summary = {f"test_{k}": v for k, v in test.items()} | (
        {f"val_{key}": val[-1], f"best_val_{key}": (min if mode == "min" else max)(val)} if val else {}) | {
        unit: trained, "stopped_early": history.stopped_early,
        "parameters": int(sum(p.numel() for p in run.model.parameters() if p.requires_grad))}
    rundir.write_json(out_dir / "summary.json", summary)
    run.task.write_outputs(out_dir, cfg, splits)
    # wall time is kept apart from summary.json, which a resumed run must write bit for bit as an unbroken one
    timing = out_dir / "timing.json"
    before = json.loads(timing.read_text()).get("seconds", 0.0) if resume and timing.is_file() else 0.0
    rundir.write_json(timing, {"seconds": round(before + seconds, 3), "resumed": resume or None,
                               "ranks": world()[1]})
    plot_curves(history, out_dir / "curves.png", (*run.task.curves, *cfg.metrics[:1]),
                f"{cfg.model.name} on {cfg.data.name}")
    return TrainResult(summary, out_dir, history, seconds)


def plot_curves(history: Any, path: Path, keys: Sequence[str] = ("loss",), title: str = "") -> None:
    """One panel per key of ``keys`` ("loss", a metric) that the history holds, train vs val, per row of the
    history (per epoch, or per evaluation in steps)."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, nothing global to leak

    from dlbasics.io import write_png

    if not history.rows:
        return
    x_key = "step" if "step" in history else "epoch"
    keys = [k for k in dict.fromkeys(keys) if f"train_{k}" in history or f"val_{k}" in history]
    if not keys:
        return
    fig = Figure(figsize=(5 * len(keys), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(keys)))
    for ax, key in zip(axes, keys):
        for split in ("train", "val"):
            name = f"{split}_{key}"
            points = [(r[x_key], r[name]) for r in history.rows if r.get(name) is not None]
            if points:  # a value some rows do not log (a DQN's loss before learning starts) is drawn where it is
                ax.plot(*zip(*points), marker="o", markersize=3, label=split)
        ax.set_xlabel(x_key)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if "loss" in keys and "train_loss" in history and all(v > 0 for v in history["train_loss"]):
        axes[keys.index("loss")].set_yscale("log")
    if title:
        fig.suptitle(title)
    write_png(fig, path)


def cross_validate(cfg: RunConfig, k: int, workers: int = 1, stratified: bool = True, out: str | Path | None = None,
                   verbose: int = 1) -> tuple[Any, Path]:
    """K-fold cross-validation of ``cfg`` on train + val (the test split is kept for the final word) into a cv
    folder: each fold's model and metrics, and cv.json."""
    from dlbasics.data import ConcatDataset
    from dlbasics.train.kfold import cross_validate as run_folds

    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigError(f"--k: k must be at least 2 folds, got {k!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers: must be an integer >= 1, got {workers!r}")
    if workers > 1 and world()[1] > 1:
        raise ConfigError(f"--workers: the {world()[1]} MPI ranks share the folds; leave --workers at 1")
    cfg, splits, builder = _prepare(cfg)
    data = ConcatDataset([splits.train, splits.val])
    if k > len(data):
        raise ConfigError(f"--k: {k} folds need at least {k} samples; the data has {len(data)}")
    out_dir = _new_folder(out, f"cv-{cfg.model.name}-{cfg.data.name}", "cv", cfg, cv={"k": k, "stratified": stratified})
    try:
        result = run_folds(builder, data, k, stratified=stratified, seed=cfg.seed, workers=workers, verbose=verbose,
                           save_dir=out_dir)
    except ValueError as e:  # a stratification the data cannot give (a class with fewer than k samples)
        if "stratified" in str(e):
            raise ConfigError(f"--k: {e}") from None
        raise
    if world()[0] == 0:
        rundir.write_json(out_dir / "cv.json", result.to_dict())
    return result, out_dir


def ensemble(cfg: RunConfig, members: int, bootstrap: bool = False, average: str = "prob",
             out: str | Path | None = None) -> tuple[dict[str, Any], Path]:
    """Train ``members`` runs (seeds SEED, SEED+1, ...; optionally each on a bootstrap resample) and evaluate
    each and their average on the test split, into an ensemble folder."""
    from dlbasics.data import DataLoader
    from dlbasics.train.config import build_loss
    from dlbasics.train.ensemble import MODES, train_ensemble
    from dlbasics.train.task import evaluate

    if isinstance(members, bool) or not isinstance(members, int) or members < 2:
        raise ConfigError(f"--members: an ensemble needs at least 2 members, got {members}")
    if average not in MODES:
        raise ConfigError(f"--average: invalid choice {average!r} (choose from {', '.join(MODES)})")
    cfg, splits, builder = _prepare(cfg)
    if cfg.data.problem != "classification":
        raise ConfigError(f"ensemble: averages class probabilities; the data set {cfg.data.name!r} is a regression "
                          "task")
    out_dir = _new_folder(out, f"ensemble-{cfg.model.name}-{cfg.data.name}", "ensemble", cfg,
                          ensemble={"members": members, "bootstrap": bootstrap, "average": average})
    model, _ = train_ensemble(builder, splits.train, splits.val, n=members, seed=cfg.seed, bootstrap=bootstrap,
                              mode=average, verbose=0)
    if world()[0] != 0:  # rank 0 holds every member too, and writes the folder
        return {}, out_dir
    rundir.save_model(out_dir, model)
    test = DataLoader(splits.test, batch_size=512)
    loss_fn = build_loss(cfg)
    per_member = [evaluate(m, test, loss_fn, cfg.metrics) for m in model.members]
    whole = evaluate(model, test, loss_fn, cfg.metrics)
    summary = {"members": per_member, "member_mean": {k: sum(r[k] for r in per_member) / members for k in whole},
               "ensemble": whole, "bootstrap": bootstrap, "average": average}
    rundir.write_json(out_dir / "summary.json", summary)
    return summary, out_dir


__all__ = ["TrainResult", "cross_validate", "ensemble", "finetune_options", "plot_curves", "resume", "train"]
