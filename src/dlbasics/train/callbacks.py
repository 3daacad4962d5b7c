"""Callbacks: code that ``fit`` calls at the end of every epoch, with the model and optimizer at hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.io import save


class Callback:
    """Override the hooks you need. ``fit`` sets ``model``, ``optimizer`` and ``history`` before training.
    Set ``self.stop_training = True`` in ``on_epoch_end`` to end the run after this epoch."""

    model: Any = None
    optimizer: Any = None
    history: Any = None
    stop_training = False

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to go on as if never stopped (a checkpoint holds it)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class _Monitor:
    """Tracks the best value of a logged quantity: lower is better for losses and errors, higher otherwise."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        if mode == "auto":
            mode = "min" if any(s in monitor for s in ("loss", "mae", "mse", "error")) else "max"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def value(self, logs: dict[str, float], who: str) -> float:
        if self.monitor not in logs:
            raise ValueError(f"{who} monitors {self.monitor!r}, which is not logged (logged: {', '.join(logs)}); "
                             "pass val_loader to fit() or monitor a train_* value")
        return logs[self.monitor]

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs, and
    (``restore_best``) put back the weights of the best epoch - early stopping as a regularizer: the
    model is taken at the point where validation error, not training error, was lowest."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0, mode: str = "auto",
                 restore_best: bool = True) -> None:
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.tracker = _Monitor(monitor, mode, min_delta)
        self.patience, self.restore_best = patience, restore_best
        self.wait, self.best_epoch, self.stopped_epoch = 0, -1, -1
        self.best_state: dict[str, np.ndarray] | None = None

    @property
    def best(self) -> float:
        return self.tracker.best

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        value = self.tracker.value(logs, "EarlyStopping")
        if self.tracker.improved(value):
            self.tracker.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_state = {k: v.copy() for k, v in self.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stop_training, self.stopped_epoch = True, epoch

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        if self.restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.wait, self.stopped_epoch = int(state["wait"]), int(state["stopped_epoch"])
        saved = state["best_state"]
        self.best_state = None if saved is None else {k: np.array(v) for k, v in saved.items()}


class Checkpoint(Callback):
    """Write ``dir/last.safetensors`` (model, optimizer, epoch) every ``every`` epochs (never with None) and, with
    ``keep_best``, ``dir/best.safetensors`` (model weights) whenever ``monitor`` improves. Atomic writes."""

    def __init__(self, dir: str | Path, every: int | None = 1, keep_best: bool = True, monitor: str = "val_loss",
                 mode: str = "auto") -> None:
        if every is not None and every < 1:
            raise ValueError(f"Checkpoint: every must be >= 1 (or None), got {every}")
        self.dir, self.every, self.keep_best = Path(dir), every, keep_best
        self.tracker = _Monitor(monitor, mode, 0.0)
        self.best_epoch = -1

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.every is not None and (epoch + 1) % self.every == 0:
            save({"model": self.model, "optimizer": self.optimizer, "epoch": epoch + 1, "logs": dict(logs)},
                 self.dir / "last.safetensors")
        if self.keep_best:
            value = self.tracker.value(logs, "Checkpoint")
            if self.tracker.improved(value):
                self.tracker.best, self.best_epoch = value, epoch
                save(self.model, self.dir / "best.safetensors")

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
