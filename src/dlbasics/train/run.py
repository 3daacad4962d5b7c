"""A run: Data + Model + Loss + Algorithm and how long to train, as one value that can be rebuilt from a
seed. Cross-validation, ensembles and hyperparameter search all train many runs; they take a
``build_run(seed) -> Run`` function and call ``train_run`` for each, so every run is trained the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dlbasics.nn.module import Module
from dlbasics.rng import manual_seed
from dlbasics.train.callbacks import Callback
from dlbasics.train.history import History
from dlbasics.train.loop import fit


@dataclass
class Run:
    """What to train and how: ``model``, ``loss_fn`` and ``optimizer`` (already built over the model's
    parameters), plus the training settings ``fit`` needs."""

    model: Module
    loss_fn: Callable
    optimizer: Any
    epochs: int = 10
    batch_size: int = 64
    scheduler: Any = None
    metrics: Sequence[str] = ("accuracy",)
    callbacks: Sequence[Callback] = ()
    collate_fn: Callable | None = None  # e.g. MixUp for the training batches
    extras: dict[str, Any] = field(default_factory=dict)  # anything the builder wants to pass along


BuildRun = Callable[[int], Run]


def train_run(build_run: BuildRun, train_set: Any, val_set: Any = None, *, seed: int = 0,
              verbose: int = 0) -> tuple[Run, History]:
    """Seed everything with ``seed``, build the run, and train it on ``train_set`` (shuffled with the same
    seed), validating on ``val_set`` each epoch. Returns the trained run and its history."""
    from dlbasics.data import DataLoader

    manual_seed(seed)
    run = build_run(seed)
    train_loader = DataLoader(train_set, batch_size=run.batch_size, shuffle=True, seed=seed,
                              collate_fn=run.collate_fn)
    val_loader = None if val_set is None else DataLoader(val_set, batch_size=max(run.batch_size, 512))
    history = fit(run.model, run.loss_fn, run.optimizer, train_loader, epochs=run.epochs, val_loader=val_loader,
                  scheduler=run.scheduler, callbacks=list(run.callbacks), metrics=run.metrics, verbose=verbose)
    return run, history
