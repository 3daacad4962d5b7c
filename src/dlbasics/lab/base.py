"""What every lab experiment shares: the ``Finding`` it returns, and the atomic writing of its figures
(PNG), ``finding.md`` and ``finding.json``.

An experiment module defines ``NAME`` (dash-case), ``TITLE``, ``CLAIM`` and
``run(out_dir, quick=False, seed=0) -> Finding``, and optionally ``DATA``, the names of the data sets it reads
that may not be installed (checked with ``datasets.availability`` before it runs); it writes its figures
with ``save_figure`` and returns the Finding; the runner (``dlbasics.lab.run``) times it and writes it with
``write_finding``. ``run_all`` returns an ``Outcome`` per experiment: ok, skipped or failed.
"""

from __future__ import annotations

import io
import json
import math
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dlbasics.io import atomic_write_bytes, atomic_write_text

DPI = 90
Number = float | int | str


@dataclass
class Finding:
    """What one experiment measured: the lecture's claim, the numbers that test it, the figures that show
    it (file names relative to the experiment's folder), a short Markdown summary with the numbers, the
    shell command that reproduces it, and how long it took."""

    name: str
    title: str
    claim: str
    numbers: dict[str, float | int | str]
    figures: list[str] = field(default_factory=list)
    summary: str = ""
    command: str = ""
    seconds: float = 0.0


@dataclass
class Outcome:
    """What became of one experiment in ``run_all``: ``"ok"`` with its ``finding``; ``"skipped"`` because its
    data is not installed (``reason`` says what is missing and the command that installs it); or
    ``"failed"`` with ``reason`` = ``"ExcType: message"`` on one line (the traceback is in NAME/error.txt).
    ``title`` and ``claim`` are the experiment's, so the report can name what was not reproduced."""

    name: str
    status: Literal["ok", "skipped", "failed"]
    finding: Finding | None = None
    reason: str = ""
    seconds: float = 0.0
    title: str = ""
    claim: str = ""


# ---- figures ----------------------------------------------------------------------------------------
def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (6.0, 4.0), **subplots: Any) -> Any:
    """``(fig, axes)`` like ``plt.subplots``, but a bare ``matplotlib.figure.Figure``: no pyplot, no GUI
    backend, no global figure registry (so nothing to leak; PNGs are rendered by Agg)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **subplots)


def save_figure(fig: Any, out_dir: str | Path, name: str) -> str:
    """Render ``fig`` to ``out_dir/name`` (``.png`` added if missing) with Agg at ~90 dpi, atomically (temp
    file + ``os.replace``), close it, and return the file name (relative to ``out_dir``)."""
    fname = name if name.endswith(".png") else f"{name}.png"
    if Path(fname).name != fname or fname.startswith("."):
        raise ValueError(f"save_figure: name must be a plain file name, got {name!r}")
    buf = io.BytesIO()
    try:
        # metadata: no "Software" stamp, so the same figure gives the same bytes on every machine
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        _close(fig)
    atomic_write_bytes(Path(out_dir) / fname, buf.getvalue())
    return fname


def _close(fig: Any) -> None:
    if "matplotlib.pyplot" in sys.modules:  # a pyplot figure is registered there; a bare Figure is not
        import matplotlib.pyplot as plt

        plt.close(fig)


# ---- numbers and commands -------------------------------------------------------------------------------
def plain(value: Any) -> Number:
    """A JSON-ready scalar: NumPy scalars become Python ones; other objects their ``str``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int | float | str):  # bool is an int: it stays a bool
        return value
    return str(value)


def format_number(value: Any) -> str:
    """How a number reads in a table: ints in full, floats with 4 significant digits (1.234e-07)."""
    value = plain(value)
    if isinstance(value, int):  # and bool
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == 0:
            return "0"
        if 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.3e}"
    return value


def command_for(name: str, out_dir: str | Path, quick: bool = False, seed: int = 0) -> str:
    """The shell command that reproduces experiment ``name`` into ``out_dir``."""
    parts = ["dlbasics", "lab", name, "--out", Path(out_dir).as_posix()]
    if quick:
        parts.append("--quick")
    if seed != 0:
        parts += ["--seed", str(seed)]
    return " ".join(shlex.quote(p) for p in parts)


# ---- finding.md / finding.json ------------------------------------------------------------------------
def finding_markdown(finding: Finding) -> str:
    lines = [f"# {finding.title}", "", f"> **Claim.** {finding.claim}", ""]
    if finding.summary.strip():
        lines += [finding.summary.strip(), ""]
    if finding.numbers:
        lines += ["| number | value |", "|---|---|"]
        lines += [f"| `{k}` | {_md_cell(format_number(v))} |" for k, v in finding.numbers.items()]
        lines.append("")
    for fig in finding.figures:
        lines += [f"![{Path(fig).stem.replace('_', ' ')}]({fig})", ""]
    if finding.command:
        when = f" (took {finding.seconds:.1f} s)" if finding.seconds else ""
        lines += [f"Reproduce{when}:", "", "```bash", finding.command, "```", ""]
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def finding_dict(finding: Finding) -> dict[str, Any]:
    d = asdict(finding)
    d["numbers"] = {str(k): _json_number(v) for k, v in finding.numbers.items()}
    d["seconds"] = float(finding.seconds)
    return d


def _json_number(value: Any) -> Number:
    value = plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # strict JSON has no NaN / Infinity
    return value


def write_finding(finding: Finding, out_dir: str | Path) -> None:
    """Write ``out_dir/finding.md`` (title, claim, summary, numbers, figures, command) and
    ``out_dir/finding.json`` (the same as data), each atomically."""
    out = Path(out_dir)
    atomic_write_text(out / "finding.md", finding_markdown(finding))
    atomic_write_text(out / "finding.json", json.dumps(finding_dict(finding), indent=2, ensure_ascii=False) + "\n")


def load_finding(path: str | Path) -> Finding:
    """The Finding stored in ``path`` (a ``finding.json`` or the folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "finding.json"
    if not path.is_file():
        raise FileNotFoundError(f"load_finding: no such file: {path}")
    d = json.loads(path.read_text(encoding="utf-8"))
    return Finding(**{k: d[k] for k in Finding.__dataclass_fields__ if k in d})


# ---- training helper ------------------------------------------------------------------------------------
def train_full_batch(model: Any, loss_fn: Callable, x: Any, y: Any, optimizer: Any, steps: int,
                     lr_schedule: Mapping[int, float] | None = None) -> list[float]:
    """Full-batch gradient descent: ``steps`` times loss -> zero_grad -> backward -> step. Returns the loss
    before each step. ``lr_schedule`` maps a step to the learning rate set from that step on."""
    losses = []
    for step in range(steps):
        if lr_schedule and step in lr_schedule:
            for group in optimizer.param_groups:
                group["lr"] = lr_schedule[step]
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
    return losses
