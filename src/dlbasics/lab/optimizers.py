"""Experiment 6 - optimizers: seven update rules on 2-D test functions and on a real network.

Claim: plain gradient descent crawls along narrow valleys (Rosenbrock, an ill-conditioned quadratic)
because the step that is stable across the valley is tiny along it; momentum (heavy ball, Nesterov) and the
adaptive methods (Adagrad, Adadelta, RMSprop, Adam) go further in the same number of steps, and near a saddle
point, where the gradient is small, the adaptive methods escape quickly because they rescale it.

Method: (a) the parameters are one ``nn.Parameter`` of shape (2,) (float64) and each function is built from
dl ops, so autograd supplies the gradient: Rosenbrock (1 - x)² + 100 (y - x²)² from (-1.5, 2); a quadratic
½u² + 25v² with condition number 50 in coordinates rotated by 45° (u, v = (x ± y)/√2), so that no
per-coordinate scaling undoes it, from (-3, -1); and the saddle x² - y² + y⁴/4 (saddle at the origin,
minima -1 at (0, ±√2)) from (1.5, 0.001). Each optimizer runs a fixed number of steps at each learning rate
of a log grid (1, 2, 5 per decade from 1e-4 to 5), and the lr with the lowest final value is kept (ties:
the lowest mean value along the way, i.e. the fastest); the chosen lr is stated in each legend. Momentum
and NAG use μ = 0.9; the other settings are PyTorch's defaults. (b) the same MLP (64-128-64-10, ReLU, no batch
norm, batch 64) trained on digits for 30 epochs with each optimizer at the best of three learning rates
(fewest epochs to the target among the runs that end below it), one seed: training loss curves and the
epochs, steps and seconds (epochs x the median epoch time) to reach a training loss of 0.05.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import dlbasics as dl
from dlbasics import nn, optim
from dlbasics.data import DataLoader, datasets
from dlbasics.lab.base import Finding, command_for, new_figure, save_figure
from dlbasics.tensor import Tensor
from dlbasics.train import fit

NAME = "optimizers"
TITLE = "SGD, momentum, NAG, Adagrad, Adadelta, RMSprop and Adam on test functions and on digits"
CLAIM = ("Momentum and adaptive step sizes get further than plain gradient descent in narrow valleys and "
         "escape saddle points faster; on a real network they reach a low training loss in fewer steps.")

MakeOptimizer = Callable[[list, float], Any]
OPTIMIZERS: dict[str, MakeOptimizer] = {
    "SGD": lambda ps, lr: optim.SGD(ps, lr=lr),
    "Momentum": lambda ps, lr: optim.SGD(ps, lr=lr, momentum=0.9),
    "NAG": lambda ps, lr: optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True),
    "Adagrad": lambda ps, lr: optim.Adagrad(ps, lr=lr),
    "Adadelta": lambda ps, lr: optim.Adadelta(ps, lr=lr),
    "RMSprop": lambda ps, lr: optim.RMSprop(ps, lr=lr),
    "Adam": lambda ps, lr: optim.Adam(ps, lr=lr),
}
COLORS = dict(zip(OPTIMIZERS, ("black", "tab:blue", "tab:cyan", "tab:green", "tab:olive", "tab:purple", "tab:red")))
LR_GRID = tuple(m * 10.0**e for e in range(-4, 1) for m in (1, 2, 5))  # 1e-4 ... 5
QUICK_LR_GRID = (1e-3, 1e-2, 1e-1, 1.0)
DIVERGED = 1e6  # |f| above this (or not finite) counts as diverged

# the digits MLP: three learning rates per optimizer, the middle one alone in quick mode
DIGITS_LRS: dict[str, tuple[float, float, float]] = {
    "SGD": (0.3, 1.0, 2.0), "Momentum": (0.03, 0.1, 0.3), "NAG": (0.03, 0.1, 0.3), "Adagrad": (0.03, 0.1, 0.3),
    "Adadelta": (1.0, 3.0, 10.0), "RMSprop": (1e-3, 3e-3, 1e-2), "Adam": (3e-3, 1e-2, 3e-2),
}
TARGET_LOSS, QUICK_TARGET_LOSS = 0.05, 0.2
BATCH = 64


# ---- 2-D test functions -----------------------------------------------------------------------------
def rosenbrock(p: Tensor) -> Tensor:
    x, y = p[0], p[1]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


ROOT_HALF = 1 / math.sqrt(2)


def ill_conditioned(p: Tensor) -> Tensor:
    """½u² + 25v², u = (x + y)/√2, v = (x - y)/√2: Hessian eigenvalues 1 and 50, axes at 45°."""
    u, v = (p[0] + p[1]) * ROOT_HALF, (p[0] - p[1]) * ROOT_HALF
    return 0.5 * u * u + 25 * v * v


def saddle(p: Tensor) -> Tensor:
    x, y = p[0], p[1]
    return x * x - y * y + 0.25 * y**4


@dataclass(frozen=True)
class Problem:
    fn: Callable[[Tensor], Tensor]
    start: tuple[float, float]
    minimum: float  # the lowest value, to plot f - f*
    steps: int
    quick_steps: int
    box: tuple[float, float, float, float]  # x0, x1, y0, y1 of the contour plot
    formula: str
    log_levels: bool = False


FUNCTIONS: dict[str, Problem] = {
    "rosenbrock": Problem(rosenbrock, (-1.5, 2.0), 0.0, 1000, 300, (-2.0, 2.0, -1.0, 3.0),
                               "(1-x)² + 100(y-x²)²", log_levels=True),
    "ill-conditioned quadratic": Problem(ill_conditioned, (-3.0, -1.0), 0.0, 200, 100, (-3.5, 3.5, -3.5, 3.5),
                                              "½u² + 25v², (u, v) = rotated (x, y)", log_levels=True),
    "saddle": Problem(saddle, (1.5, 1e-3), -1.0, 100, 60, (-2.0, 2.0, -2.2, 2.2), "x² - y² + y⁴/4"),
}


@dataclass
class Descent:
    lr: float
    values: np.ndarray  # f at each iterate, (steps + 1,); inf from the step it diverged
    path: np.ndarray  # the iterates (steps + 1, 2)

    @property
    def final(self) -> float:
        return float(self.values[-1])


def descend(fn: Callable[[Tensor], Tensor], start: tuple[float, float], make: MakeOptimizer, lr: float,
            steps: int) -> Descent:
    """``steps`` optimizer steps on ``fn`` from ``start``; the gradient comes from autograd."""
    p = nn.Parameter(dl.tensor(start, dtype=dl.float64))
    opt = make([p], lr)
    values, path = np.full(steps + 1, np.inf), np.full((steps + 1, 2), np.nan)
    for i in range(steps + 1):
        path[i] = p.data
        f = fn(p)
        v = f.item()
        if not math.isfinite(v) or abs(v) > DIVERGED:
            break
        values[i] = v
        if i < steps:
            opt.zero_grad()
            f.backward()
            opt.step()
    return Descent(lr, values, path)


def tune(fn: Callable[[Tensor], Tensor], start: tuple[float, float], make: MakeOptimizer, steps: int,
         grid: tuple[float, ...]) -> Descent:
    """The run of the grid's best lr: lowest final value; among those within 1e-6 of it, the lowest mean."""
    runs = [descend(fn, start, make, lr, steps) for lr in grid]
    best = min(r.final for r in runs)
    close = [r for r in runs if r.final <= best + 1e-6 * max(1.0, abs(best))]
    return min(close, key=lambda r: float(np.mean(r.values)))


# ---- digits -----------------------------------------------------------------------------------------------
@dataclass
class DigitsRun:
    lr: float
    losses: list[float]  # training loss per epoch
    seconds: list[float]  # training seconds per epoch
    epoch_to_target: int | None

    def seconds_to_target(self) -> float | None:
        """Epochs to the target times the median epoch time (robust to other work on a shared machine)."""
        if self.epoch_to_target is None:
            return None
        return float(np.median(self.seconds)) * self.epoch_to_target


def train_digits(make: MakeOptimizer, lr: float, splits: Any, epochs: int, target: float, seed: int) -> DigitsRun:
    dl.manual_seed(seed)
    model = dl.models.create("mlp", in_features=64, num_classes=10, hidden=[128, 64], batch_norm=False)
    h = fit(model, nn.CrossEntropyLoss(), make(model.parameters(), lr),
            DataLoader(splits.train, batch_size=BATCH, shuffle=True, seed=seed), epochs=epochs, verbose=0)
    losses = [v if math.isfinite(v) else math.inf for v in h["train_loss"]]
    reach = next((i + 1 for i, v in enumerate(losses) if v <= target), None)
    return DigitsRun(lr, losses, h["seconds"], reach)


def best_digits_run(runs: list[DigitsRun], target: float) -> DigitsRun:
    """Fewest epochs to the target among the runs that stay there (final loss <= target); then the lowest
    final loss. Without such a run: the lowest final loss."""
    stable = [r for r in runs if r.epoch_to_target is not None and r.losses[-1] <= target]
    if stable:
        return min(stable, key=lambda r: (r.epoch_to_target, r.losses[-1]))
    return min(runs, key=lambda r: r.losses[-1])


# ---- the experiment -------------------------------------------------------------------------------------
def _plot_functions(results: dict[str, dict[str, Descent]]) -> tuple[Any, Any]:
    contour, curves = new_figure(1, 3, figsize=(17, 5.5)), new_figure(1, 3, figsize=(17, 4.5))
    for (fname, spec), ax, cax in zip(FUNCTIONS.items(), contour[1], curves[1]):
        x0, x1, y0, y1 = spec.box
        xs, ys = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
        with dl.no_grad():
            zz = spec.fn(dl.tensor(np.stack([xs, ys]), dtype=dl.float64)).numpy()
        if spec.log_levels:
            ax.contour(xs, ys, zz, levels=np.logspace(-2, math.log10(zz.max()), 25), cmap="Greys", linewidths=0.6)
        else:
            ax.contour(xs, ys, zz, levels=30, cmap="Greys", linewidths=0.6)
        for oname, r in results[fname].items():
            ok = np.isfinite(r.values)
            label = f"{oname} lr={r.lr:g}: f={r.final:.2g}"
            ax.plot(r.path[ok, 0], r.path[ok, 1], color=COLORS[oname], lw=1.2, label=label)
            cax.plot(np.arange(ok.sum()), np.maximum(r.values[ok] - spec.minimum, 1e-16), color=COLORS[oname],
                     lw=1.2, label=f"{oname} (lr {r.lr:g})")
        ax.plot(*spec.start, "k*", ms=12)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        steps = len(next(iter(results[fname].values())).values) - 1
        ax.set_title(f"{fname}: {spec.formula}\n{steps} steps from ★, best lr of the grid each")
        ax.legend(fontsize=7, loc="lower right")
        cax.set_yscale("log")
        cax.set_xlabel("step")
        cax.set_ylabel("f - f*")
        cax.set_title(fname)
        cax.grid(alpha=0.3)
        cax.legend(fontsize=7)
    curves[0].suptitle("Distance to the minimum value per step (each optimizer at its best lr)")
    return contour[0], curves[0]


def run(out_dir: Path, quick: bool = False, seed: int = 0) -> Finding:
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = QUICK_LR_GRID if quick else LR_GRID
    results: dict[str, dict[str, Descent]] = {}
    for fname, spec in FUNCTIONS.items():
        steps = spec.quick_steps if quick else spec.steps
        results[fname] = {o: tune(spec.fn, spec.start, make, steps, grid) for o, make in OPTIMIZERS.items()}
    fig_contour, fig_curves = _plot_functions(results)
    figures = [save_figure(fig_contour, out_dir, "trajectories"), save_figure(fig_curves, out_dir, "convergence")]

    splits = datasets.digits()
    epochs, target = (8, QUICK_TARGET_LOSS) if quick else (30, TARGET_LOSS)
    steps_per_epoch = math.ceil(len(splits.train) / BATCH)
    digits: dict[str, DigitsRun] = {}
    for oname, make in OPTIMIZERS.items():
        lrs = DIGITS_LRS[oname][1:2] if quick else DIGITS_LRS[oname]
        digits[oname] = best_digits_run([train_digits(make, lr, splits, epochs, target, seed) for lr in lrs], target)

    fig, (ax, tax) = new_figure(1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [1.3, 1]})
    for oname, r in digits.items():
        ax.plot(np.arange(1, epochs + 1) * steps_per_epoch, r.losses, color=COLORS[oname], marker="o", ms=3,
                label=f"{oname} (lr {r.lr:g})")
    ax.axhline(target, color="gray", ls=":", label=f"target {target:g}")
    ax.set_yscale("log")
    ax.set_xlabel("step (batch of 64)")
    ax.set_ylabel("training loss (mean over the epoch)")
    ax.set_title("MLP 64-128-64-10 on digits")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    rows = []
    for oname, r in digits.items():
        e, s = r.epoch_to_target, r.seconds_to_target()
        rows.append([oname, f"{r.lr:g}", str(e) if e else "-", str(e * steps_per_epoch) if e else "-",
                     f"{s:.3f}" if s is not None else "-", f"{r.losses[-1]:.4f}"])
    tax.axis("off")
    table = tax.table(cellText=rows, colLabels=["optimizer", "lr", "epochs", "steps", "seconds", "final loss"],
                      loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1, 1.6)
    tax.set_title(f"to reach a training loss of {target:g} ({epochs} epochs at most;\n"
                  "seconds = epochs x median epoch time)")
    figures.append(save_figure(fig, out_dir, "digits"))

    numbers: dict[str, float | int | str] = {}
    short = {"rosenbrock": "rosenbrock", "ill-conditioned quadratic": "quadratic", "saddle": "saddle"}
    for fname, per_opt in results.items():
        for oname, r in per_opt.items():
            numbers[f"{short[fname]}_final_{oname}"] = r.final
            numbers[f"{short[fname]}_lr_{oname}"] = r.lr
    numbers["digits_target_loss"] = target
    for oname, r in digits.items():
        e = r.epoch_to_target
        numbers[f"digits_lr_{oname}"] = r.lr
        numbers[f"digits_steps_to_target_{oname}"] = e * steps_per_epoch if e else "not reached"
        s = r.seconds_to_target()
        numbers[f"digits_seconds_to_target_{oname}"] = round(s, 3) if s is not None else "not reached"

    def fmt(fname: str) -> str:
        return ", ".join(f"{o} {r.final:.1e}" for o, r in results[fname].items())

    reached = {o: r.epoch_to_target for o, r in digits.items() if r.epoch_to_target}
    fastest = min(reached, key=reached.get) if reached else None
    summary = (
        f"Final values after {len(results['rosenbrock']['SGD'].values) - 1} steps on Rosenbrock (each at its best lr "
        f"of the grid): {fmt('rosenbrock')}. "
        f"On the rotated quadratic with condition number 50: {fmt('ill-conditioned quadratic')}; "
        f"on the saddle (minimum -1): {fmt('saddle')}. "
        f"On digits, steps to a training loss of {target:g}: "
        + ", ".join(f"{o} {e * steps_per_epoch if e else 'not reached'}"
                    for o, e in ((o, r.epoch_to_target) for o, r in digits.items()))
        + (f"; fastest: {fastest}." if fastest else ".")
    )
    return Finding(name=NAME, title=TITLE, claim=CLAIM, numbers=numbers, figures=figures, summary=summary,
                   command=command_for(NAME, out_dir, quick, seed), seconds=time.perf_counter() - start)
