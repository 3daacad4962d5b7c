"""``fit`` and ``evaluate``: data + model + loss + algorithm, put together."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dlbasics.autograd.grad_mode import no_grad
from dlbasics.nn.module import Module
from dlbasics.tensor import Tensor
from dlbasics.train.callbacks import Callback
from dlbasics.train.history import History
from dlbasics.train.metrics import get_metric


def _split(batch: Any) -> tuple[Tensor, Any]:
    if isinstance(batch, tuple | list) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(f"fit/evaluate expect batches of (inputs, targets), got {type(batch).__name__}"
                     + (f" of length {len(batch)}" if isinstance(batch, tuple | list) else ""))


def _size(x: Any) -> int:
    return x.shape[0] if getattr(x, "ndim", 0) else 1


class _Averages:
    """Running means over an epoch, weighted by batch size."""

    def __init__(self, names: Sequence[str]) -> None:
        self.sums = dict.fromkeys(names, 0.0)
        self.n = 0

    def add(self, n: int, values: dict[str, float]) -> None:
        self.n += n
        for k, v in values.items():
            self.sums[k] += v * n

    def means(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}{k}": s / max(self.n, 1) for k, s in self.sums.items()}


def evaluate(model: Module, loader: Iterable, loss_fn: Callable | None = None,
             metrics: Sequence[str] = ("accuracy",)) -> dict[str, float]:
    """Mean loss and metrics over ``loader`` in eval mode without recording a graph (mode restored after)."""
    fns = {m: get_metric(m) for m in metrics}
    avg = _Averages((["loss"] if loss_fn is not None else []) + list(fns))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for batch in loader:
                x, y = _split(batch)
                out = model(x)
                values = {m: f(out, y) for m, f in fns.items()}
                if loss_fn is not None:
                    values["loss"] = float(loss_fn(out, y).item())
                avg.add(_size(x), values)
    finally:
        model.train(was_training)
    return avg.means("")


def fit(model: Module, loss_fn: Callable, optimizer: Any, train_loader: Iterable, *, epochs: int,
        val_loader: Iterable | None = None, scheduler: Any = None, callbacks: Sequence[Callback] = (),
        metrics: Sequence[str] = ("accuracy",), verbose: int = 1) -> History:
    """Train ``model`` for ``epochs`` epochs; returns the per-epoch History.

    Each epoch: ``model.train()``, for each batch ``loss_fn(model(x), y)``, ``zero_grad``, ``backward``,
    ``optimizer.step()``; then evaluation on ``val_loader`` (eval mode, no graph), the scheduler step
    (``ReduceLROnPlateau`` gets the val loss, or the train loss without a val set) and the callbacks.
    ``verbose=1`` shows a progress bar and a line per epoch; ``verbose=0`` is silent.
    """
    if epochs < 1:
        raise ValueError(f"fit: epochs must be >= 1, got {epochs}")
    fns = {m: get_metric(m) for m in metrics}
    history = History()
    for cb in callbacks:
        cb.model, cb.optimizer, cb.history, cb.stop_training = model, optimizer, history, False
        cb.on_train_begin()
    plateau = type(scheduler).__name__ == "ReduceLROnPlateau"
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        avg = _Averages(["loss", *fns])
        bar = _progress(train_loader, epoch, epochs, verbose)
        for batch in bar:
            x, y = _split(batch)
            out = model(x)
            loss = loss_fn(out, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            values = {"loss": float(loss.item()), **{m: f(out, y) for m, f in fns.items()}}
            avg.add(_size(x), values)
            if bar is not train_loader:
                elapsed = max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{values['loss']:.4f}", samples_per_s=f"{avg.n / elapsed:,.0f}")
        logs = {"epoch": epoch + 1, **avg.means("train_"), "lr": float(optimizer.param_groups[0]["lr"])}
        if val_loader is not None:
            logs.update({f"val_{k}": v for k, v in evaluate(model, val_loader, loss_fn, metrics).items()})
        if scheduler is not None:
            if plateau:
                scheduler.step(logs.get("val_loss", logs["train_loss"]))
            else:
                scheduler.step()
        logs["seconds"] = time.perf_counter() - start
        history.append(logs)
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if verbose:
            _print_epoch(logs, epochs)
        if any(cb.stop_training for cb in callbacks):
            history.stopped_early = True
            break
    for cb in callbacks:
        cb.on_train_end(history.last)
    return history


def _progress(loader: Iterable, epoch: int, epochs: int, verbose: int) -> Any:
    if not verbose:
        return loader
    from tqdm.auto import tqdm

    # disable=None: a bar on a terminal, nothing when stderr is a file or pipe (CI logs stay readable)
    return tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, unit="batch", file=sys.stderr, disable=None,
                dynamic_ncols=True)


def _print_epoch(logs: dict[str, float], epochs: int) -> None:
    parts = [f"epoch {int(logs['epoch']):>{len(str(epochs))}}/{epochs}"]
    parts += [f"{k} {v:.4f}" for k, v in logs.items() if k not in ("epoch", "seconds", "lr")]
    parts.append(f"lr {logs['lr']:.3g}")
    parts.append(f"{logs['seconds']:.2f}s")
    print("  ".join(parts), flush=True)
