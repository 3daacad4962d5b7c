"""The lab: one experiment per claim of the lecture, each training and measuring what the claim says and
drawing the figure that shows it.

    from dlbasics import lab
    lab.available()                                   # the experiments, in lecture order
    f = lab.run("linear-collapse", "report/linear-collapse")   # finding.md/json + PNGs in that folder
    f.numbers["acc_relu_mlp"], f.summary
    lab.run_all("report", quick=True)                 # every experiment, plus report/index.html

Each experiment is a module ``dlbasics.lab.<name with _>`` with ``NAME``, ``TITLE``, ``CLAIM`` and
``run(out_dir, quick=False, seed=0) -> Finding`` (see ``dlbasics.lab.base``). Every one is seeded, runs in
under two minutes on a laptop CPU, and in seconds with ``quick=True``.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from dlbasics.lab import report
from dlbasics.lab.base import Finding, load_finding, save_figure, write_finding

EXPERIMENTS = ("linear-regression", "linear-collapse", "activations", "universal-approximation", "losses",
               "optimizers", "regularization", "svd-compression", "resnet-depth")


def available() -> list[str]:
    """The experiments' names, in the order of the lecture."""
    return list(EXPERIMENTS)


def canonical(name: str) -> str:
    """``name`` in dash-case (``"linear_regression"`` -> ``"linear-regression"``); ValueError if unknown."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return key


def get(name: str) -> ModuleType:
    """The module of experiment ``name`` (``dlbasics.lab.<name with _>``)."""
    return importlib.import_module(f"dlbasics.lab.{canonical(name).replace('-', '_')}")


def run(name: str, out_dir: str | Path, quick: bool = False, seed: int = 0) -> Finding:
    """Run experiment ``name`` into ``out_dir`` (created), time it, and write ``finding.md`` and
    ``finding.json`` next to its figures. Returns the Finding."""
    module = get(name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    finding = module.run(out, quick=quick, seed=seed)
    finding.seconds = time.perf_counter() - start
    write_finding(finding, out)
    return finding


def run_all(out_dir: str | Path, quick: bool = False, seed: int = 0,
            names: Sequence[str] | None = None) -> list[Finding]:
    """Run ``names`` (default: all, in lecture order), each into ``out_dir/NAME``, then write
    ``out_dir/index.html`` over them. Names are checked before anything runs."""
    chosen = [canonical(n) for n in (EXPERIMENTS if names is None else names)]
    for n in chosen:
        get(n)  # an unknown name or a broken module fails now, not after an hour of the others
    out = Path(out_dir)
    findings = [run(n, out / n, quick=quick, seed=seed) for n in chosen]
    report.write_index(out, findings)
    return findings


__all__ = ["EXPERIMENTS", "Finding", "available", "canonical", "get", "load_finding", "report", "run", "run_all",
           "save_figure", "write_finding"]
