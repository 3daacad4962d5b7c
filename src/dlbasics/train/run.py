"""A run: Data + Model + Loss + Algorithm and how long to train, as one value that can be rebuilt from a
seed. The command line, cross-validation, ensembles and hyperparameter search all train runs the same
way: a ``build_run(seed) -> Run`` function and ``train_run``, which puts the run on the one ``Loop``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbasics.nn.module import Module
from dlbasics.rng import manual_seed
from dlbasics.train.callbacks import Callback
from dlbasics.train.data_parallel import check_task, shard, world
from dlbasics.train.history import History
from dlbasics.train.loop import Loop
from dlbasics.train.task import SupervisedTask, Task


@dataclass
class Run:
    """What to train and how: ``model``, ``loss_fn`` and ``optimizer`` (already built over the model's
    parameters) - or a ``task`` that holds its own (a GAN's two models, say) - plus the settings of the loop.

    ``scheduler`` is a scheduler, or a function ``(optimizer, steps_per_epoch) -> scheduler`` for schedules
    whose length depends on the data (cosine over the whole run); ``epochs`` or ``steps`` is the budget."""

    model: Module
    loss_fn: Callable | None = None
    optimizer: Any = None
    epochs: int | None = 10
    batch_size: int = 64
    scheduler: Any = None
    metrics: Sequence[str] = ("accuracy",)
    callbacks: Sequence[Callback] = ()
    collate_fn: Callable | None = None  # e.g. MixUp for the training batches
    extras: dict[str, Any] = field(default_factory=dict)  # anything the builder wants to pass along
    steps: int | None = None
    eval_every: int | None = None
    schedule_unit: str = "epoch"
    clip_grad_norm: float | None = None
    task: Task | None = None

    def __post_init__(self) -> None:
        if self.steps is not None:
            self.epochs = None
        if self.task is None:
            if self.loss_fn is None or self.optimizer is None:
                raise ValueError("Run: give loss_fn and optimizer, or a task")
            self.task = SupervisedTask(self.model, self.loss_fn, self.optimizer, self.metrics)


BuildRun = Callable[[int], Run]


def make_loop(run: Run, train_set: Any, val_set: Any = None, *, seed: int = 0, verbose: int = 0,
              checkpoint: str | Path | None = None, checkpoint_every: int | None = None,
              distributed: bool | None = None) -> Loop:
    """The ``Loop`` that trains ``run`` on ``train_set`` (shuffled with ``seed``), validating on ``val_set``.

    In a process group of R > 1 ranks (``mpiexec -n R``) each rank gets its share of every batch of
    ``run.batch_size`` and of the validation set, and the loop trains data-parallel (``train/data_parallel.py``);
    ``distributed=False`` trains this rank's own run instead (a fold of cross-validation, say)."""
    rank, ranks = world()
    if distributed is None:
        distributed = ranks > 1
    if distributed:
        check_task(run.task)
        train_loader = run.task.train_loader(train_set, run.batch_size, seed, run.collate_fn, num_replicas=ranks,
                                             rank=rank)
    else:
        train_loader = run.task.train_loader(train_set, run.batch_size, seed, run.collate_fn)
    val_loader = None if val_set is None else run.task.eval_loader(shard(val_set) if distributed else val_set,
                                                                  run.batch_size)
    scheduler = run.scheduler
    if callable(scheduler) and not hasattr(scheduler, "step"):
        optimizers = list(run.task.optimizers.values())
        per_epoch = len(train_loader) if hasattr(train_loader, "__len__") else 1  # an endless stream: by steps
        built = [scheduler(opt, per_epoch) for opt in optimizers]
        scheduler = [s for s in built if s is not None] or None
    return Loop(run.task, train_loader, epochs=run.epochs, steps=run.steps, val_loader=val_loader,
                eval_every=run.eval_every, scheduler=scheduler, schedule_unit=run.schedule_unit,
                callbacks=list(run.callbacks), clip_grad_norm=run.clip_grad_norm, checkpoint=checkpoint,
                checkpoint_every=checkpoint_every, verbose=verbose, distributed=distributed)


def train_run(build_run: BuildRun, train_set: Any, val_set: Any = None, *, seed: int = 0, verbose: int = 0,
              checkpoint: str | Path | None = None, checkpoint_every: int | None = None,
              resume: bool = False, callbacks: Sequence[Callback] = (),
              distributed: bool | None = None) -> tuple[Run, History]:
    """Seed everything with ``seed``, build the run, and train it on ``train_set`` (shuffled with the same
    seed), validating on ``val_set``. Returns the trained run and its history.

    With ``checkpoint`` (a file) the loop keeps a resumable checkpoint there; ``resume=True`` continues from
    it, ending bit-identical to a run that was never stopped. ``callbacks`` are added to the run's own.
    ``distributed``: as ``make_loop``'s."""
    manual_seed(seed)
    run = build_run(seed)
    run.callbacks = [*run.callbacks, *callbacks]
    loop = make_loop(run, train_set, val_set, seed=seed, verbose=verbose, checkpoint=checkpoint,
                     checkpoint_every=checkpoint_every, distributed=distributed)
    if resume:
        loop.resume()
    return run, loop.run()
