"""The lab: one experiment per claim of the lecture, each training and measuring what the claim says and
drawing the figure that shows it.

    from dlbasics import lab
    lab.available()                                   # the experiments, in lecture order
    f = lab.run("linear-collapse", "report/linear-collapse")   # finding.md/json + PNGs in that folder
    f.numbers["acc_relu_mlp"], f.summary
    outcomes = lab.run_all("report", quick=True)      # every experiment, plus report/index.html
    [(o.name, o.status, o.reason) for o in outcomes], lab.exit_status(outcomes)

Each experiment is a module ``dlbasics.lab.<name with _>`` with ``NAME``, ``TITLE``, ``CLAIM`` and
``run(out_dir, quick=False, seed=0) -> Finding`` (see ``dlbasics.lab.base``), and optionally ``DATA``: the
data sets it reads that may not be installed (e.g. ``("fashion-mnist",)``). Every one is seeded, runs in
under two minutes on a laptop CPU, and in seconds with ``quick=True``.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from dlbasics.data import datasets
from dlbasics.errors import ConfigError, DataNotFoundError
from dlbasics.io import atomic_write_text
from dlbasics.lab import report
from dlbasics.lab.base import Finding, Outcome, load_finding, save_figure, write_finding

EXPERIMENTS = ("linear-regression", "linear-collapse", "activations", "universal-approximation", "losses",
               "optimizers", "regularization", "svd-compression", "resnet-depth", "translation",
               "pretraining", "dqn")


def available() -> list[str]:
    """The experiments' names, in the order of the lecture."""
    return list(EXPERIMENTS)


def canonical(name: str) -> str:
    """``name`` in dash-case (``"linear_regression"`` -> ``"linear-regression"``); ConfigError (a ValueError)
    if unknown."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return key


def get(name: str) -> ModuleType:
    """The module of experiment ``name`` (``dlbasics.lab.<name with _>``)."""
    return importlib.import_module(f"dlbasics.lab.{canonical(name).replace('-', '_')}")


def availability(name: str) -> str | None:
    """None if experiment ``name`` can run here, else one line: which data set is missing and the command
    that installs it (see ``datasets.availability``). Only looks whether files exist."""
    for data in getattr(get(name), "DATA", ()):
        if reason := datasets.availability(data):
            return reason
    return None


def run(name: str, out_dir: str | Path, quick: bool = False, seed: int = 0) -> Finding:
    """Run experiment ``name`` into ``out_dir`` (created), time it, and write ``finding.md`` and
    ``finding.json`` next to its figures. Returns the Finding. DataNotFoundError, before anything is
    written, if a data set it needs is not installed."""
    module = get(name)
    if reason := availability(name):
        raise DataNotFoundError(f"lab {canonical(name)}: {reason}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    finding = module.run(out, quick=quick, seed=seed)
    finding.seconds = time.perf_counter() - start
    write_finding(finding, out)
    return finding


def _one_line(error: BaseException) -> str:
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def run_all(out_dir: str | Path, quick: bool = False, seed: int = 0,
            names: Sequence[str] | None = None) -> list[Outcome]:
    """Run ``names`` (default: all, in lecture order), each into ``out_dir/NAME``, and write
    ``out_dir/index.html`` over them. Returns one ``Outcome`` per experiment, in order.

    Names are checked before anything runs. An experiment whose data is not installed is skipped (its
    reason names the install command); one that raises is recorded as failed, its traceback written to
    ``out_dir/NAME/error.txt``, and the others still run: an hour of results is not lost to one of them.
    The index is written even when the run is stopped midway (Ctrl-C), over what finished.
    """
    chosen = [canonical(n) for n in (EXPERIMENTS if names is None else names)]
    modules = [get(n) for n in chosen]  # an unknown name or a broken module fails now, not after an hour
    out = Path(out_dir)
    outcomes: list[Outcome] = []
    try:
        for name, module in zip(chosen, modules):
            about = {"title": module.TITLE, "claim": module.CLAIM}
            start = time.perf_counter()
            if reason := availability(name):
                outcomes.append(Outcome(name, "skipped", reason=reason, **about))
                continue
            try:
                finding = run(name, out / name, quick=quick, seed=seed)
            except Exception as e:  # whatever one experiment raises is reported, and the others still run
                atomic_write_text(out / name / "error.txt", traceback.format_exc())
                outcomes.append(Outcome(name, "failed", reason=_one_line(e), seconds=time.perf_counter() - start,
                                        **about))
            else:
                (out / name / "error.txt").unlink(missing_ok=True)  # left by an earlier run that failed
                outcomes.append(Outcome(name, "ok", finding, seconds=finding.seconds, **about))
    finally:  # also on Ctrl-C: the report of what finished is kept
        report.write_index(out, outcomes)
    return outcomes


def exit_status(outcomes: Sequence[Outcome]) -> int:
    """The exit status of ``lab all``: 1 if some experiment failed, else 0 (skipped ones do not count: the
    missing data is reported, not an error of the lab)."""
    return 1 if any(o.status == "failed" for o in outcomes) else 0


__all__ = ["EXPERIMENTS", "Finding", "Outcome", "availability", "available", "canonical", "exit_status", "get",
           "load_finding", "report", "run", "run_all", "save_figure", "write_finding"]
