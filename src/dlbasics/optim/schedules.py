"""Learning-rate schedules by name, as a run chooses them (``--scheduler cosine --warmup 100``).

Each entry builds a scheduler from ``dl.optim.lr_scheduler`` for an optimizer and a length ``total`` in the
units the run steps it in (epochs or training steps); its other keyword parameters are its options, which
reach the command line by themselves. The warm-up schedules are the ones the Transformer literature uses
(Hugging Face's ``get_constant_schedule_with_warmup`` / ``get_cosine_schedule_with_warmup``): a
``LambdaLR`` whose factor is a plain function of the step, so a resumed run needs only the step count.
"""

from __future__ import annotations

import math

from dlbasics.optim.lr_scheduler import ExponentialLR, LambdaLR, LRScheduler, ReduceLROnPlateau, StepLR
from dlbasics.optim.optimizer import Optimizer
from dlbasics.registry import Registry

SCHEDULES = Registry("learning-rate schedule")


class Warmup:
    """λ(t) for ``LambdaLR``: a linear warm-up over ``warmup`` steps, then constant or a half cosine down to
    ``floor`` (a fraction of the lr; nanoGPT's min_lr / lr):

        λ(t) = t / W                                                    for t < W
        λ(t) = 1                                                        after, shape "constant"
        λ(t) = f + (1 − f) · ½ (1 + cos(π · min(1, (t − W) / (T − W))))   after, shape "cosine"

    A callable object, not a lambda, so that ``LambdaLR.state_dict`` keeps its settings.
    """

    def __init__(self, warmup: int, total: int, shape: str = "cosine", floor: float = 0.0) -> None:
        if shape not in ("constant", "cosine"):
            raise ValueError(f"Warmup: shape must be 'constant' or 'cosine', got {shape!r}")
        if not 0.0 <= floor <= 1.0:
            raise ValueError(f"Warmup: the floor must be a fraction of the lr in [0, 1], got {floor!r}")
        self.warmup, self.total, self.shape, self.floor = int(warmup), int(total), shape, float(floor)

    def __call__(self, t: int) -> float:
        if t < self.warmup:
            return t / self.warmup
        if self.shape == "constant":
            return 1.0
        progress = min(1.0, (t - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@SCHEDULES.register("constant", help="the optimizer's lr throughout, after a linear warm-up if --warmup > 0")
def constant(optimizer: Optimizer, total: int, warmup: int = 0) -> LRScheduler | None:
    return LambdaLR(optimizer, Warmup(warmup, total, "constant")) if warmup else None


@SCHEDULES.register("cosine", help="linear warm-up over --warmup units, then a half cosine from lr down to --min-lr "
                                    "(default 0) at the end")
def cosine(optimizer: Optimizer, total: int, warmup: int = 0, min_lr: float = 0.0) -> LRScheduler:
    lr = float(optimizer.param_groups[0]["lr"])
    if not 0.0 <= min_lr <= lr:
        raise ValueError(f"min_lr must be in [0, lr] = [0, {lr:g}], got {min_lr:g}")
    return LambdaLR(optimizer, Warmup(warmup, total, "cosine", floor=min_lr / lr if lr else 0.0))


@SCHEDULES.register("step", help="lr times --gamma every --step-size units (StepLR)")
def step(optimizer: Optimizer, total: int, step_size: int = 30, gamma: float = 0.1) -> LRScheduler:
    return StepLR(optimizer, step_size=step_size, gamma=gamma)


@SCHEDULES.register("exponential", help="lr times --gamma every unit (ExponentialLR)")
def exponential(optimizer: Optimizer, total: int, gamma: float = 0.1) -> LRScheduler:
    return ExponentialLR(optimizer, gamma=gamma)


@SCHEDULES.register("plateau", help="lr times --plateau-factor when the validation loss has not improved for "
                                    "--plateau-patience evaluations (ReduceLROnPlateau)")
def plateau(optimizer: Optimizer, total: int, plateau_factor: float = 0.1, plateau_patience: int = 10) -> LRScheduler:
    return ReduceLROnPlateau(optimizer, factor=plateau_factor, patience=plateau_patience)


__all__ = ["SCHEDULES", "Warmup", "constant", "cosine", "exponential", "plateau", "step"]
