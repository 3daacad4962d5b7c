"""Tasks: what one training step does. The loop (``train/loop.py``) is the same for every task.

A task holds the modules and optimizers it trains and implements ``training_step(batch)``: it computes its
losses, and for each update calls ``self.optimize(loss, optimizer)`` (zero_grad, backward, gradient clipping,
step - and a stop with ``DivergedError`` if the loss is NaN or inf, before any weight changes). That is the
spirit of Lightning's ``training_step`` and Keras' ``train_step``: the supervised step is
``loss_fn(model(x), y)``; a GAN's makes two updates with two optimizers; a contrastive one compares two views
of each batch; a reinforcement one acts in an environment. Registering a task class in ``TASKS`` makes it
a choice of ``--task``; its ``build(cfg)`` makes it from a run description.

Everything a task holds in ``modules`` and ``optimizers`` is checkpointed by name, so a resumed run
continues every one of them exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dlbasics.autograd.grad_mode import no_grad
from dlbasics.errors import ConfigError, DataError, DivergedError
from dlbasics.nn.module import Module
from dlbasics.nn.utils import clip_grad_norm_
from dlbasics.registry import Registry
from dlbasics.tensor import Tensor
from dlbasics.train.metrics import get_metric

TASKS = Registry("task")


def batch_size(x: Any) -> int:
    """The number of samples in a batch (its leading dimension; 1 for a scalar; a tuple's first entry's)."""
    if isinstance(x, tuple) and x:
        x = x[0]
    return x.shape[0] if getattr(x, "ndim", 0) else 1


def split_batch(batch: Any) -> tuple[Tensor, Any]:
    if isinstance(batch, tuple | list) and len(batch) == 2:
        return batch[0], batch[1]
    raise DataError(f"a supervised step expects batches of (inputs, targets), got {type(batch).__name__}"
                    + (f" of length {len(batch)}" if isinstance(batch, tuple | list) else ""))


@contextmanager
def evaluating(model: Module) -> Iterator[Module]:
    """``with evaluating(model):`` eval mode (dropout off, BatchNorm's running statistics) and no graph inside;
    the model's mode is restored after, whatever happens."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            yield model
    finally:
        model.train(was_training)


def forward(model: Module, x: Any) -> Any:
    """``model`` on a batch's inputs: a tuple of inputs is its positional arguments (padded text collates to
    ``(tokens (B, L), lengths (B,))``, so a text classifier is called as ``model(tokens, lengths)``)."""
    return model(*x) if isinstance(x, tuple) else model(x)


class Averages:
    """Running means of logged values, weighted by batch size (exact for means over samples). Each value is
    averaged over the steps that logged it: a reinforcement step logs a loss only when it updates, and an
    episode's return only when one ends."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.n = 0

    def add(self, n: int, values: dict[str, float]) -> None:
        self.n += n
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * n
            self.counts[k] = self.counts.get(k, 0) + n

    def means(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": s / max(self.counts[k], 1) for k, s in self.sums.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "counts": dict(self.counts), "n": self.n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums, self.n = {k: float(v) for k, v in state["sums"].items()}, int(state["n"])
        self.counts = {k: int(v) for k, v in state.get("counts", {k: self.n for k in self.sums}).items()}


class Task:
    """Base class: subclasses set ``modules`` and ``optimizers`` (dicts by name) and ``model`` (the module a
    run folder saves as ``model.safetensors`` and ``evaluate``/``predict`` use), and implement
    ``training_step``. The loop sets ``clip_grad_norm``."""

    model: Module
    clip_grad_norm: float | None = None
    # set by the loop on R > 1 ranks: combines the ranks' gradients, between backward and clipping
    gradient_sync: Callable[[], None] | None = None
    # whether R ranks may each train on a share of every batch (``train/data_parallel.py``): the loss is a mean
    # over the batch's samples and ``evaluate`` returns means over samples
    data_parallel: bool = False
    # the logged values a run folder's curves.png draws (train_ and val_ of each), besides the run's first metric
    curves: tuple[str, ...] = ("loss",)
    # the validation value whose best a run's summary reports (best_val_loss), and whether lower or higher is better
    best: tuple[str, str] = ("loss", "min")

    def __init__(self, model: Module | None = None, optimizer: Any = None) -> None:
        """With ``model`` and ``optimizer``: the common case of one of each (as "model" and "optimizer")."""
        self.modules: dict[str, Module] = {}
        self.optimizers: dict[str, Any] = {}
        if model is not None:
            self.model, self.modules["model"] = model, model
        if optimizer is not None:
            self.optimizer, self.optimizers["optimizer"] = optimizer, optimizer

    @classmethod
    def build(cls, cfg: Any) -> Task:
        """The task of a resolved run description (``train.config.RunConfig``)."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from a run description")

    @staticmethod
    def require_problem(cfg: Any, problem: str, task: str, trains_on: str) -> None:
        """ConfigError unless the description's data is a ``problem`` (e.g. "translation") data set."""
        if cfg.data.problem != problem:
            raise ConfigError(f"{cfg.spelling('task')} {task}: {trains_on}; the data set {cfg.data.name!r} is a "
                              f"{cfg.data.problem} task")

    # ---- one step ----
    def training_step(self, batch: Any) -> tuple[int, dict[str, float]]:
        """Train on one batch; returns (samples in it, values to average into the logs, such as "loss")."""
        raise NotImplementedError(f"{type(self).__name__} must implement training_step")

    def optimize(self, loss: Tensor, optimizer: Any, parameters: Iterable[Tensor] | None = None) -> float:
        """One update: zero_grad, backward, clip (if the loop says so), step. Returns the loss as a float.
        A NaN or inf loss raises ``DivergedError`` before anything changes."""
        value = float(loss.item())
        if not math.isfinite(value):
            raise DivergedError(f"the loss is {value}")
        optimizer.zero_grad()
        loss.backward()
        if self.gradient_sync is not None:
            self.gradient_sync()
        if self.clip_grad_norm is not None:
            params = parameters if parameters is not None else (p for g in optimizer.param_groups for p in g["params"])
            clip_grad_norm_(params, self.clip_grad_norm)
        optimizer.step()
        return value

    # ---- the data: how a split becomes what the loop iterates ----
    def train_loader(self, dataset: Any, batch_size: int, seed: int, collate_fn: Callable | None = None, *,
                     num_replicas: int = 1, rank: int = 0) -> Iterable:
        """The training batches: ``dataset`` shuffled with ``seed`` in batches of ``batch_size``, of which this
        process takes its ``rank``-th share of ``num_replicas`` (a reinforcement task returns its interaction
        with an environment instead)."""
        from dlbasics.data import DataLoader

        return DataLoader(dataset, batch_size=batch_size, shuffle=True, seed=seed, collate_fn=collate_fn,
                          num_replicas=num_replicas, rank=rank)

    @staticmethod
    def eval_loader(dataset: Any, batch_size: int) -> Iterable:
        """What ``evaluate`` takes for a validation or test split: its batches, at least 512 samples each."""
        from dlbasics.data import DataLoader

        return DataLoader(dataset, batch_size=max(batch_size, 512))

    def example_batch(self, splits: Any) -> Any:
        """A small batch of the training split (two samples), for ``probe``."""
        import numpy as np

        from dlbasics.data.dataloader import dataset_collate
        from dlbasics.data.dataset import _fetch

        return dataset_collate(splits.train)(_fetch(splits.train, np.arange(min(2, len(splits.train)))))

    def probe(self, batch: Any) -> None:
        """The model's forward on ``batch`` (no step): the run checks with it, before training, that the model
        takes the data (``check_model_fits_data``)."""
        forward(self.model, split_batch(batch)[0])

    # ---- evaluation ----
    def evaluate(self, loader: Iterable) -> dict[str, float]:
        """Mean validation values over ``loader`` ("loss" and metrics)."""
        raise NotImplementedError(f"{type(self).__name__} must implement evaluate")

    @classmethod
    def evaluate_model(cls, cfg: Any, model: Module, loader: Iterable) -> dict[str, float]:
        """Evaluate a trained ``model`` (a run folder's) on ``loader`` as this task validates: by default, a task
        built from ``cfg`` with ``model``'s weights."""
        task = cls.build(cfg)
        task.model.load_state_dict(model.state_dict())
        return task.evaluate(loader)

    @classmethod
    def folder_callbacks(cls, out_dir: Any, cfg: Any) -> list[Any]:
        """Callbacks a run of this task adds when it trains into a run folder (a GAN's sample grid at every
        evaluation, say); none by default."""
        return []

    def write_outputs(self, out_dir: Any, cfg: Any, splits: Any) -> None:
        """Files a finished run adds to its folder beyond the model and metrics (a language model's sample, a
        translator's test translations); nothing by default."""

    # ---- modes and state ----
    def train(self, mode: bool = True) -> None:
        for m in self.modules.values():
            m.train(mode)

    def state_dict(self) -> dict[str, Any]:
        return {"modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.modules.items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])

    def parameters_finite(self) -> bool:
        """Whether every trained parameter is finite (a checkpoint is written only then)."""
        import numpy as np

        return all(bool(np.isfinite(p.data).all()) for m in self.modules.values() for p in m.parameters())


def evaluate(model: Module, loader: Iterable, loss_fn: Callable | None = None,
             metrics: Sequence[str] = ("accuracy",)) -> dict[str, float]:
    """Mean loss and metrics over ``loader`` in eval mode without recording a graph (mode restored after)."""
    fns = {m: get_metric(m) for m in metrics}
    avg = Averages()
    with evaluating(model):
        for batch in loader:
            x, y = split_batch(batch)
            out = forward(model, x)
            values = {"loss": float(loss_fn(out, y).item())} if loss_fn is not None else {}
            values |= {m: f(out, y) for m, f in fns.items()}
            avg.add(batch_size(x), values)
    means = avg.means()
    order = (["loss"] if loss_fn is not None else []) + list(fns)
    return {k: means.get(k, 0.0) for k in order}


@TASKS.register("supervised", help="loss_fn(model(x), y) on (input, target) batches")
class SupervisedTask(Task):
    """Supervised learning: one model, one loss, one optimizer; the step is ``loss_fn(model(x), y)``."""

    data_parallel = True

    def __init__(self, model: Module, loss_fn: Callable, optimizer: Any, metrics: Sequence[str] = ("accuracy",)):
        super().__init__(model, optimizer)
        self.loss_fn = loss_fn
        self.metrics = tuple(metrics)
        self.metric_fns = {m: get_metric(m) for m in self.metrics}

    @classmethod
    def build(cls, cfg: Any) -> SupervisedTask:
        from dlbasics.train.config import build_loss, build_model, build_optimizer

        model = build_model(cfg)
        return cls(model, build_loss(cfg), build_optimizer(cfg, model), cfg.metrics)

    def training_step(self, batch: Any) -> tuple[int, dict[str, float]]:
        x, y = split_batch(batch)
        out = forward(self.model, x)
        loss = self.optimize(self.loss_fn(out, y), self.optimizer)
        return batch_size(x), {"loss": loss, **{m: f(out, y) for m, f in self.metric_fns.items()}}

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        return evaluate(self.model, loader, self.loss_fn, self.metrics)

    @classmethod
    def evaluate_model(cls, cfg: Any, model: Module, loader: Iterable) -> dict[str, float]:
        from dlbasics.train.config import build_loss

        return evaluate(model, loader, build_loss(cfg), cfg.metrics)  # any module: an ensemble, a compressed copy


__all__ = ["TASKS", "Averages", "SupervisedTask", "Task", "batch_size", "evaluate", "evaluating", "forward",
           "split_batch"]
