"""The one training loop, for every task; and ``fit``/``evaluate``, its supervised front door.

``Loop(task, train_loader, epochs=... or steps=...)`` runs ``task.training_step`` on batch after batch and
does, once for every kind of run: the budget (epochs or training steps, one step a batch), evaluation every N epochs or
steps, learning-rate schedules stepped per epoch or per step, gradient clipping, callbacks, the progress
bar with throughput, the history (one row per evaluation), divergence checks, and checkpoints that hold
everything needed to continue bit-identically: the task's modules and optimizers, the schedulers, the
position (epoch, step, batch), every random generator (data order, dropout, MixUp, augmentation), the
running averages, the history and the callbacks' state.

    loop = Loop(SupervisedTask(model, loss_fn, opt), loader, epochs=10, val_loader=val, checkpoint="ckpt.safetensors")
    history = loop.run()                    # killed half-way? Loop(...same...).resume("ckpt.safetensors").run()
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dlbasics.errors import CheckpointError, DataError, DivergedError
from dlbasics.nn.module import Module
from dlbasics.optim.lr_scheduler import ReduceLROnPlateau
from dlbasics.rng import find_generators, generator_states, set_generator_states
from dlbasics.train.callbacks import Callback
from dlbasics.train.data_parallel import DataParallel, world
from dlbasics.train.history import History
from dlbasics.train.task import Averages, SupervisedTask, Task
from dlbasics.train.task import evaluate as evaluate

CHECKPOINT_FORMAT = 1
# A loss this many times its first value (or more) is a run that has blown up, though still finite: with a huge
# learning rate batch norm keeps the loss finite at ~1e5 while the weights are garbage.
DIVERGENCE_FACTOR = 1e4
# On several ranks a Ctrl-C is agreed on every this many steps (and at each epoch's end): one all-reduce of a flag,
# which on every step would cost a small model's step a few percent
STOP_AGREE_EVERY = 16


class Loop:
    """Train ``task`` on ``train_loader`` for ``epochs`` epochs or ``steps`` training steps (one a batch).

    Args:
        eval_every: evaluate on ``val_loader`` and append a row to the history every N epochs (epoch budget)
            or N steps (step budget); default every epoch, or a tenth of the steps.
        scheduler: an ``lr_scheduler`` (or a list of them) stepped every ``schedule_unit`` ("epoch" or
            "step"); ``ReduceLROnPlateau`` is stepped at every evaluation with the validation loss.
        clip_grad_norm: passed to the task, which clips before every optimizer step.
        divergence: stop with ``DivergedError`` when the training loss is NaN or inf, or above ``divergence``
            times the first step's loss (at least 1e-3); None checks only for NaN and inf.
        checkpoint: a file to keep the resumable checkpoint in, written at every evaluation, every
            ``checkpoint_every`` steps, on Ctrl-C and at the end; never with NaN or inf weights.
        verbose: 1 shows a progress bar (on a terminal) and a line per row; 0 is silent.
        distributed: train data-parallel on the ranks of the process group (``train/data_parallel.py``); None
            (default) does so when ``dlbasics.distributed`` has been initialised with more than one rank. Each
            rank then passes its own share: ``train_loader`` a ``DataLoader(num_replicas=R, rank=r)`` of the
            global batch, ``val_loader`` one over ``data_parallel.shard(val_set)``. Only rank 0 prints and
            writes the checkpoint.
    """

    def __init__(self, task: Task, train_loader: Iterable, *, epochs: int | None = None, steps: int | None = None,
                 val_loader: Iterable | None = None, eval_every: int | None = None, scheduler: Any = None,
                 schedule_unit: str = "epoch", callbacks: Sequence[Callback] = (), clip_grad_norm: float | None = None,
                 checkpoint: str | Path | None = None, checkpoint_every: int | None = None, verbose: int = 1,
                 divergence: float | None = DIVERGENCE_FACTOR, distributed: bool | None = None) -> None:
        if (epochs is None) == (steps is None):
            raise ValueError(f"Loop: give epochs or steps (one of them), got epochs={epochs!r}, steps={steps!r}")
        budget = epochs if steps is None else steps
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ValueError(f"Loop: {'epochs' if steps is None else 'steps'} must be an integer >= 1, got {budget!r}")
        if schedule_unit not in ("epoch", "step"):
            raise ValueError(f"Loop: schedule_unit must be 'epoch' or 'step', got {schedule_unit!r}")
        self.task, self.train_loader, self.val_loader = task, train_loader, val_loader
        self.epochs, self.steps = epochs, steps
        self.eval_every = eval_every or (1 if steps is None else max(1, steps // 10))
        self.schedulers = [] if scheduler is None else list(scheduler) if isinstance(scheduler, list | tuple) \
            else [scheduler]
        self.schedule_unit = schedule_unit
        self.callbacks = list(callbacks)
        task.clip_grad_norm = clip_grad_norm
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.checkpoint_every = checkpoint_every
        self.verbose = verbose
        rank, ranks = world()
        if distributed is None:
            distributed = ranks > 1
        self.parallel = DataParallel(task, train_loader) if distributed else None
        self.writes = rank == 0 or not distributed  # one data-parallel run: rank 0 prints and writes files
        if rank != 0:  # only rank 0 prints (a rank's own run too: a fold of cross-validation, say)
            self.verbose = 0
        self.divergence = divergence
        self.first_loss: float | None = None
        self.history = History()
        self.epoch = 0  # epochs completed
        self.step = 0  # training steps completed (one a batch; a task may update several optimizers in one)
        self.batch = 0  # batches of the current epoch completed
        self.averages = Averages()  # since the last row
        self._stop_requested = False
        self._last_checkpoint_step: int | None = None

    # ---- state ----
    def generators(self) -> dict[str, Any]:
        """Every random generator the run draws from, found now (``dl.manual_seed`` replaces the default one)."""
        return find_generators(loader=self.train_loader, modules=self.task.modules,
                               collate=getattr(self.train_loader, "collate_fn", None))

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs; arrays stay arrays, the rest is JSON-ready."""
        mid_epoch = self.batch > 0 and hasattr(self.train_loader, "state_dict")
        return {
            "format": CHECKPOINT_FORMAT,
            "position": {"epoch": self.epoch, "step": self.step, "batch": self.batch},
            "task": self.task.state_dict(),
            "schedulers": [s.state_dict() for s in self.schedulers],
            "generators": generator_states(self.generators()),
            "loader": self.train_loader.state_dict() if mid_epoch else None,
            "averages": self.averages.state_dict(),
            "history": {"rows": [dict(r) for r in self.history.rows], "stopped_early": self.history.stopped_early},
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "first_loss": self.first_loss,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}")
        pos = state["position"]
        self.epoch, self.step, self.batch = int(pos["epoch"]), int(pos["step"]), int(pos["batch"])
        self.task.load_state_dict(state["task"])
        if len(state["schedulers"]) != len(self.schedulers):
            raise CheckpointError(f"the checkpoint has {len(state['schedulers'])} learning-rate schedulers, this "
                                  f"run {len(self.schedulers)}")
        for s, saved in zip(self.schedulers, state["schedulers"]):
            s.load_state_dict(_plain(saved))
        set_generator_states(self.generators(), state["generators"])
        if state["loader"] is not None:
            self.train_loader.load_state_dict(_plain(state["loader"]))
        self.averages.load_state_dict(state["averages"])
        self.history.rows = [dict(r) for r in state["history"]["rows"]]
        self.history.stopped_early = bool(state["history"]["stopped_early"])
        if len(state["callbacks"]) != len(self.callbacks):
            raise CheckpointError(f"the checkpoint has the state of {len(state['callbacks'])} callbacks, this run "
                                  f"has {len(self.callbacks)}")
        for cb, saved in zip(self.callbacks, state["callbacks"]):
            cb.load_state_dict(saved)
        self.first_loss = None if state.get("first_loss") is None else float(state["first_loss"])
        self._last_checkpoint_step = self.step

    def resume(self, path: str | Path | None = None) -> Loop:
        """Load the checkpoint at ``path`` (default: this loop's own) and return the loop, ready to ``run``."""
        from dlbasics.train.checkpoint import read_checkpoint

        target = Path(path) if path is not None else self.checkpoint
        if target is None:
            raise CheckpointError("resume: this loop has no checkpoint file; pass its path")
        self.load_state_dict(read_checkpoint(target))
        return self

    @property
    def done(self) -> bool:
        if self.history.stopped_early:
            return True
        return self.step >= self.steps if self.steps is not None else self.epoch >= self.epochs

    # ---- running ----
    def run(self) -> History:
        """Train until the budget is spent or a callback stops the run; returns the history."""
        for cb in self.callbacks:
            cb.model = getattr(self.task, "model", None)
            cb.optimizer = next(iter(self.task.optimizers.values()), None)
            cb.history, cb.stop_training = self.history, False
            cb.on_train_begin()
        with self._ctrl_c_between_steps():
            while not self.done:
                self._run_epoch()
        if self.checkpoint is not None and self._last_checkpoint_step != self.step:
            self.save_checkpoint()
        for cb in self.callbacks:
            cb.on_train_end(self.history.last)
        return self.history

    def _run_epoch(self) -> None:
        task, loader = self.task, self.train_loader
        task.train()
        start = time.perf_counter()
        samples, fresh = 0, self.batch == 0  # not a resumed epoch (which may have no batch left)
        bar = self._progress()
        for batch in loader:
            try:
                n, values = task.training_step(batch)
            except DivergedError as e:
                raise self._diverged(e) from None
            self._check_blow_up(values.get("loss"))
            self.step += 1
            self.batch += 1
            samples += n
            self.averages.add(n, values)
            if self.schedule_unit == "step":
                self._step_schedulers()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{values.get('loss', math.nan):.4f}",
                                samples_per_s=f"{samples / max(time.perf_counter() - start, 1e-9):,.0f}")
            if self.steps is not None and self.step % self.eval_every == 0:
                self._row(start)
                start = time.perf_counter()
            if self._should_checkpoint():
                self.save_checkpoint()
            if self._stop_here(self.step % STOP_AGREE_EVERY == 0):
                raise KeyboardInterrupt
            if self.done:
                break
        else:  # the epoch is complete
            if fresh and samples == 0 and self.batch == 0:
                raise DataError(f"the training data gave no batch in epoch {self.epoch + 1} (an empty data set, or "
                                "an iterator that is used up after one pass)")
            self.epoch += 1
            self.batch = 0
            if self.schedule_unit == "epoch":
                self._step_schedulers()
            if self.steps is None and self.epoch % self.eval_every == 0:
                self._row(start)
                if self.checkpoint is not None and self.checkpoint_every is None:
                    self.save_checkpoint()
            if self._stop_here(True):
                raise KeyboardInterrupt
        if bar is not None:
            bar.close()
        if self.steps is not None and self.done and self.averages.n:  # a last, partial row
            self._row(start)

    def _stop_here(self, ranks_agree: bool) -> bool:
        """Whether a Ctrl-C asks to stop now. On several ranks (with a checkpoint file; without one Ctrl-C stops at
        once) all must stop after the same step, so they stop only where ``ranks_agree``, if it was asked on any."""
        if self.parallel is not None and self.checkpoint is not None:
            if not ranks_agree:
                return False
            self._stop_requested = self.parallel.any(self._stop_requested)
        return self._stop_requested

    def _row(self, start: float) -> None:
        """One row of history: the training averages since the last row, the lr, the validation values; then
        the plateau scheduler and the callbacks (which may stop the run)."""
        logs: dict[str, Any] = {"epoch": self.epoch} if self.steps is None else {"step": self.step}
        averages = self.averages if self.parallel is None else self.parallel.reduce_averages(self.averages)
        logs |= averages.means("train_")
        # an epoch's row gives the lr used during it, before the epoch's scheduler step
        per_epoch = self.steps is None and self.schedule_unit == "epoch"
        logs["lr"] = self._lr_used if per_epoch else self._current_lr()
        if self.val_loader is not None:
            values = self.task.evaluate(self.val_loader) if self.parallel is None else \
                self.parallel.evaluate(self.task, self.val_loader)
            logs |= {f"val_{k}": v for k, v in values.items()}
            self.task.train()
        for s in self.schedulers:
            if isinstance(s, ReduceLROnPlateau):
                s.step(logs.get("val_loss", logs.get("train_loss")))
        logs["seconds"] = time.perf_counter() - start
        self.history.append(logs)
        self.averages = Averages()
        for cb in self.callbacks:
            cb.on_epoch_end(len(self.history) - 1, logs)
        if self.verbose:
            _print_row(logs, self.epochs, self.steps)
        if any(cb.stop_training for cb in self.callbacks):
            self.history.stopped_early = True

    def _current_lr(self) -> float:
        optimizers = self.task.optimizers
        return float(next(iter(optimizers.values())).param_groups[0]["lr"]) if optimizers else 0.0

    def _step_schedulers(self) -> None:
        self._lr_used = self._current_lr()
        for s in self.schedulers:
            if not isinstance(s, ReduceLROnPlateau):  # the plateau scheduler steps with a value, at each row
                s.step()

    def _should_checkpoint(self) -> bool:
        if self.checkpoint is None:
            return False
        if self.checkpoint_every is not None:
            return self.step % self.checkpoint_every == 0
        return self.steps is not None and self.step % self.eval_every == 0

    def save_checkpoint(self) -> None:
        """Write the checkpoint (atomically) unless a weight is NaN or inf: the last good one stays."""
        from dlbasics.train.checkpoint import write_checkpoint

        if self.checkpoint is None or not self.task.parameters_finite():
            return
        if self.parallel is not None:
            self.parallel.sync_buffers()  # rank 0's running statistics are the run's, on every rank
        if self.writes:
            write_checkpoint(self.checkpoint, self.state_dict())
        self._last_checkpoint_step = self.step

    def _check_blow_up(self, loss: float | None) -> None:
        if loss is None or self.divergence is None:
            return
        if self.first_loss is None:
            self.first_loss = loss
        elif loss > self.divergence * max(self.first_loss, 1e-3):
            raise self._diverged(DivergedError(f"the loss is {loss:.4g}, over {self.divergence:,.0f} times its first "
                                               f"value {self.first_loss:.4g}"))

    def _diverged(self, e: DivergedError) -> DivergedError:
        lr = next(iter(self.task.optimizers.values())).param_groups[0]["lr"] if self.task.optimizers else None
        kept = (f"the last good checkpoint (step {self._last_checkpoint_step}) is kept in {self.checkpoint}"
                if self.checkpoint is not None and self._last_checkpoint_step is not None else "no checkpoint was kept")
        hint = f"; try a lower learning rate than {lr:g}" if lr else ""
        return DivergedError(f"training diverged at step {self.step + 1} (epoch {self.epoch + 1}): {e}; {kept}"
                             f"{hint}", step=self.step + 1)

    def _progress(self) -> Any:
        if not self.verbose:
            return None
        from tqdm.auto import tqdm

        total = _length(self.train_loader)
        desc = f"epoch {self.epoch + 1}" + (f"/{self.epochs}" if self.epochs else "")
        # disable=None: a bar on a terminal, nothing when stderr is a file or pipe (CI logs stay readable)
        return tqdm(total=total, initial=self.batch, desc=desc, leave=False, unit="batch", file=sys.stderr,
                    disable=None, dynamic_ncols=True)

    @contextlib.contextmanager
    def _ctrl_c_between_steps(self) -> Iterator[None]:
        """With a checkpoint file, Ctrl-C ends the run at the next step boundary, after a checkpoint of that
        exact position (a step cut in half could not be resumed exactly). A second Ctrl-C stops at once."""
        if self.checkpoint is None or threading.current_thread() is not threading.main_thread():
            yield
            return

        hard_stop = False

        def handler(signum: int, frame: Any) -> None:
            nonlocal hard_stop
            if self._stop_requested:
                hard_stop = True  # mid-step, maybe mid-update: this state must not become the checkpoint
                raise KeyboardInterrupt
            self._stop_requested = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        except KeyboardInterrupt:
            if self._stop_requested and not hard_stop and self._last_checkpoint_step != self.step:
                self.save_checkpoint()
            raise
        finally:
            signal.signal(signal.SIGINT, previous)


def _length(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _plain(obj: Any) -> Any:
    """A loaded checkpoint's OrderedDicts and NumPy scalars as plain dicts and Python numbers."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _print_row(logs: dict[str, float], epochs: int | None, steps: int | None) -> None:
    if steps is None:
        parts = [f"epoch {int(logs['epoch']):>{len(str(epochs))}}/{epochs}"]
    else:
        parts = [f"step {int(logs['step']):>{len(str(steps))}}/{steps}"]
    parts += [f"{k} {v:.4f}" for k, v in logs.items() if k not in ("epoch", "step", "seconds", "lr")]
    parts.append(f"lr {logs['lr']:.3g}")
    parts.append(f"{logs['seconds']:.2f}s")
    print("  ".join(parts), flush=True)


def fit(model: Module, loss_fn: Callable, optimizer: Any, train_loader: Iterable, *, epochs: int | None = None,
        steps: int | None = None, val_loader: Iterable | None = None, scheduler: Any = None,
        schedule_unit: str = "epoch", callbacks: Sequence[Callback] = (), metrics: Sequence[str] = ("accuracy",),
        eval_every: int | None = None, clip_grad_norm: float | None = None, checkpoint: str | Path | None = None,
        checkpoint_every: int | None = None, verbose: int = 1) -> History:
    """Train ``model`` for ``epochs`` epochs (or ``steps`` training steps); returns the History.

    The supervised task on the one ``Loop``. Each epoch: ``model.train()``, for each batch
    ``loss_fn(model(x), y)``, ``zero_grad``, ``backward``, (clipping), ``optimizer.step()``; then evaluation on
    ``val_loader`` (eval mode, no graph), the scheduler step (``ReduceLROnPlateau`` gets the val loss, or the
    train loss without a val set) and the callbacks. A NaN or inf loss stops with ``DivergedError``.
    ``verbose=1`` shows a progress bar and a line per epoch; ``verbose=0`` is silent.
    """
    task = SupervisedTask(model, loss_fn, optimizer, metrics)
    loop = Loop(task, train_loader, epochs=epochs, steps=steps, val_loader=val_loader, eval_every=eval_every,
                scheduler=scheduler, schedule_unit=schedule_unit, callbacks=callbacks, clip_grad_norm=clip_grad_norm,
                checkpoint=checkpoint, checkpoint_every=checkpoint_every, verbose=verbose)
    return loop.run()


__all__ = ["Loop", "evaluate", "fit"]
