"""Ensembles of independently trained networks.

Paper: "Simple and Scalable Predictive Uncertainty Estimation using Deep Ensembles", B. Lakshminarayanan,
A. Pritzel and C. Blundell, NeurIPS 2017 (bagging: L. Breiman, "Bagging Predictors", 1996).
Idea: train the same network several times from different random seeds (optionally on bootstrap resamples)
and average their predicted probabilities; the members' errors partly cancel, so the average is better.

``Ensemble`` returns log p̄ with p̄ = mean_k softmax(f_k(x)), so ``cross_entropy`` of its output is the
ensemble's negative log-likelihood (log_softmax(log p̄) = log p̄ when p̄ sums to 1) and ``accuracy`` its
accuracy; ``train_ensemble`` trains the members with ``train_run``, as cross-validation and tuning do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from dlbasics.data.dataset import Subset
from dlbasics.nn.layers.container import ModuleList
from dlbasics.nn.module import Module
from dlbasics.ops import exp, log, log_softmax, stack
from dlbasics.rng import manual_seed
from dlbasics.tensor import Tensor
from dlbasics.train.data_parallel import world
from dlbasics.train.history import History
from dlbasics.train.run import BuildRun, train_run

MODES = ("prob", "logits")


class Ensemble(Module):
    """Average the predictions of ``models``, each mapping x (N, ...) -> logits (N, C, ...).

    ``mode="prob"``: out = log( (1/K) Σ_k softmax(f_k(x)) ), log-probabilities (N, C, ...).
    ``mode="logits"``: out = (1/K) Σ_k f_k(x), the mean logits.
    The members sit in a ``ModuleList`` (``ensemble.members``), so ``train()``/``eval()``, ``parameters()``
    and ``state_dict()`` reach all of them.
    """

    def __init__(self, models: Iterable[Module], mode: str = "prob") -> None:
        super().__init__()
        members = list(models)
        if not members:
            raise ValueError("Ensemble: needs at least one model, got an empty list")
        for i, m in enumerate(members):
            if not isinstance(m, Module):
                raise TypeError(f"Ensemble: member {i} is a {type(m).__name__}, not an nn.Module")
        if mode not in MODES:
            raise ValueError(f"Ensemble: unknown mode {mode!r}; choose from {', '.join(MODES)}")
        self.members = ModuleList(members)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        outs = stack([m(x) for m in self.members], 0)  # (K, N, C, ...)
        if self.mode == "logits":
            return outs.mean(0)
        logp = log_softmax(outs, 2 if outs.ndim > 2 else 1)  # the class dim: 1 of each member's output
        # log mean_k p_k = logsumexp_k(log p_k) - log K; shifting by the max (a constant: logsumexp is
        # shift-invariant, so its gradient is unchanged) keeps exp from underflowing to log(0)
        shift = Tensor._make(logp.data.max(axis=0), False, None)  # (N, C, ...)
        return log(exp(logp - shift).sum(0)) + shift - math.log(len(self.members))

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, idx: int) -> Module:
        return self.members[idx]

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def bootstrap_indices(n: int, seed: int) -> np.ndarray:
    """n indices drawn uniformly with replacement from range(n), fixed by ``seed`` (a bootstrap resample:
    about 1 - 1/e ≈ 63% of the samples appear, some several times)."""
    return np.random.default_rng(seed).integers(0, n, size=n)


def train_ensemble(build_run: BuildRun, train_set: Any, val_set: Any = None, n: int = 5, seed: int = 0,
                   bootstrap: bool = False, mode: str = "prob", verbose: int = 0) -> tuple[Ensemble, list[History]]:
    """Train ``n`` members and return ``(Ensemble(members, mode), [history of each member])``.

    Member i is ``train_run(build_run, data_i, val_set, seed=seed + i)``: its own initialization, shuffling
    and dropout masks. ``data_i`` is ``train_set``, or with ``bootstrap`` a resample of it drawn with
    replacement (``Subset(train_set, bootstrap_indices(len(train_set), seed + i))``), as in bagging.

    Under ``mpiexec -n R`` (an initialised process group) the R ranks share the members (member i trains on
    rank i mod R) and each member's weights and history are then sent to every rank: every rank returns the
    whole ensemble, equal to the one trained in one process.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"train_ensemble: n must be an integer >= 1, got {n!r}")
    if mode not in MODES:
        raise ValueError(f"train_ensemble: unknown mode {mode!r}; choose from {', '.join(MODES)}")
    rank, ranks = world()
    members, histories = [], []
    for i in range(n):
        if i % ranks != rank:  # another rank's member: the model to receive its weights into, and its history later
            manual_seed(seed + i)
            members.append(build_run(seed + i).model)
            histories.append(History())
            continue
        data = Subset(train_set, bootstrap_indices(len(train_set), seed + i)) if bootstrap else train_set
        run, history = train_run(build_run, data, val_set, seed=seed + i, verbose=verbose, distributed=False)
        members.append(run.model)
        histories.append(history)
    if ranks > 1:
        _share_members(members, histories)
    return Ensemble(members, mode=mode), histories


def _share_members(members: list[Module], histories: list[History]) -> None:
    """Member i's weights (broadcast, array by array) and history (as JSON) from rank i mod R to every rank."""
    from dlbasics import distributed as dist

    ranks = dist.get_world_size()
    for i, member in enumerate(members):
        for array in member.state_dict().values():  # the arrays the model holds: received in place
            dist.broadcast(array, src=i % ranks)
    rank = dist.get_rank()
    mine = {i: {"rows": h.rows, "stopped_early": h.stopped_early} for i, h in enumerate(histories) if i % ranks == rank}
    for text in dist.all_gather_text(json.dumps(mine)):
        for i, h in json.loads(text).items():
            histories[int(i)].rows, histories[int(i)].stopped_early = h["rows"], h["stopped_early"]
