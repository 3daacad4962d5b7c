"""K-fold cross-validation: train k runs, each validated on a different k-th of the data.

The data set is cut into k folds D_1..D_k; run i trains on D \\ D_i and is scored on D_i, so every sample
is validated exactly once, by a model that never saw it. The CV estimate of a metric is the mean of the k
validation scores, CV = (1/k) Σ_i score_i, with the spread across folds s = std(score_1..score_k; ddof=1).

    builder = RunBuilder(validate({"epochs": 10}), info)
    result = cross_validate(builder, ConcatDataset([train, val]), k=5, workers=2)
    print(result.table())

Folds are independent (fold i is seeded with ``seed + i``), so they can run in worker processes in any
order and give the same numbers, to the last bit, as running them one after another.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.tensor import Tensor
from dlbasics.train.data_parallel import world
from dlbasics.train.run import BuildRun

# The variables BLAS / OpenMP libraries read when they load; set in each worker so libraries loaded there
# later start with one thread (threadpoolctl limits the ones already loaded).
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


# ---- which samples are labelled how ---------------------------------------------------------------------
def targets_of(dataset: Any) -> np.ndarray:
    """The targets of every sample of ``dataset``, in order: (N,) class labels or (N, ...) values.

    Read without touching the inputs where the structure allows: a ``TensorDataset``'s second array, a
    ``Subset``'s indices into its dataset's targets, a ``ConcatDataset``'s parts one after another, a
    ``targets`` attribute (torchvision's convention); otherwise the second field of each sample.
    """
    from dlbasics.data.dataset import ConcatDataset, Subset, TensorDataset

    if isinstance(dataset, TensorDataset):
        if len(dataset.arrays) < 2:
            raise ValueError(f"{dataset!r} has no targets (one array per sample); pass stratified=False")
        return dataset.arrays[1]
    if isinstance(dataset, Subset):
        return targets_of(dataset.dataset)[dataset.indices]
    if isinstance(dataset, ConcatDataset):
        return np.concatenate([targets_of(d) for d in dataset.datasets])
    if getattr(dataset, "targets", None) is not None:
        return _plain(dataset.targets)
    targets = []
    for i in range(len(dataset)):
        sample = dataset[i]
        if not isinstance(sample, tuple | list) or len(sample) < 2:
            raise ValueError(f"cannot read targets from samples of {type(dataset).__name__}: sample {i} is "
                             f"{type(sample).__name__}, not (input, target, ...); pass stratified=False")
        targets.append(_plain(sample[1]))
    return np.asarray(targets)


def _plain(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _class_labels(targets: np.ndarray) -> np.ndarray | None:
    """The targets as one class label per sample, or None when they are not labels (float values:
    regression or soft labels; several entries per sample) and stratifying makes no sense."""
    y = targets.reshape(len(targets), -1) if targets.ndim > 1 else targets
    if y.ndim > 1 and y.shape[1] != 1:
        return None
    y = y.reshape(-1)
    return None if y.dtype.kind in "fc" else y


# ---- the folds -----------------------------------------------------------------------------------------
def _check_k(k: Any, n: int) -> None:
    if not isinstance(k, int | np.integer) or isinstance(k, bool):
        raise TypeError(f"k must be an integer number of folds, got {k!r}")
    if k < 2:
        raise ValueError(f"k must be at least 2 folds, got k={k}")
    if k > n:
        raise ValueError(f"k={k} folds need at least {k} samples; the dataset has {n}")


def _split(dataset: Any, k: int, stratified: bool, seed: int) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """The splitter used and its (train indices, val indices) per fold."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(dataset)
    _check_k(k, n)
    labels = _class_labels(targets_of(dataset)) if stratified else None
    if labels is None:  # asked for no stratification, or the targets are not class labels (regression)
        splitter: Any = KFold(n_splits=k, shuffle=True, random_state=seed)
        return "KFold", list(splitter.split(np.zeros(n)))
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < k:
        # StratifiedKFold only warns here and then leaves the class out of some folds; say so plainly instead
        c = classes[counts.argmin()].item()  # a Python scalar: prints as 3, not np.int64(3)
        fix = "pass stratified=False" + (f" or k <= {counts.min()}" if counts.min() >= 2 else "")
        raise ValueError(f"stratified {k}-fold needs at least {k} samples of every class, but class {c!r} has "
                         f"{counts.min()}; {fix}")
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return "StratifiedKFold", list(splitter.split(np.zeros(n), labels))


def fold_indices(dataset: Any, k: int = 5, *, stratified: bool = True,
                 seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train indices, val indices) of each of the k folds ``cross_validate`` uses for these arguments.

    Stratified (scikit-learn's ``StratifiedKFold``): each fold keeps the class proportions of the whole.
    Targets that are not class labels (floats: regression) fall back to ``KFold``, as does
    ``stratified=False``. Both shuffle with ``random_state=seed``.
    """
    return _split(dataset, k, stratified, seed)[1]


# ---- the result ----------------------------------------------------------------------------------------
@dataclass(eq=False)  # eq=False: fields hold arrays, whose == is elementwise
class CVResult:
    """What k-fold cross-validation measured.

    ``metrics[i]`` is fold i's validation score ({"loss": ..., "accuracy": ...}), ``val_indices[i]`` the
    samples it validated on, ``histories[i]`` its per-epoch rows (plain dicts, as in ``History.rows``).
    ``mean`` and ``std`` are per metric across the folds; std is the sample standard deviation (ddof=1),
    the spread of the k scores, not the standard error of their mean (that is std / √k).
    """

    metrics: list[dict[str, float]]
    val_indices: list[np.ndarray]
    histories: list[list[dict[str, float]]] = field(default_factory=list)
    splitter: str = "StratifiedKFold"
    seed: int = 0
    seconds: list[float] = field(default_factory=list)  # wall time of each fold

    @property
    def k(self) -> int:
        return len(self.metrics)

    @property
    def n_samples(self) -> int:
        return sum(len(v) for v in self.val_indices)

    def train_indices(self, fold: int) -> np.ndarray:
        """The samples fold ``fold`` (0-based) trained on: all the others."""
        return np.setdiff1d(np.arange(self.n_samples), self.val_indices[fold])

    def _values(self) -> dict[str, np.ndarray]:
        names = list(self.metrics[0]) if self.metrics else []
        return {m: np.array([f[m] for f in self.metrics], dtype=np.float64) for m in names}

    @property
    def mean(self) -> dict[str, float]:
        """The CV estimate per metric: (1/k) Σ_i score_i."""
        return {m: float(v.mean()) for m, v in self._values().items()}

    @property
    def std(self) -> dict[str, float]:
        """Spread of the fold scores per metric: sqrt(Σ_i (score_i - mean)² / (k - 1)), i.e. ddof=1."""
        return {m: float(v.std(ddof=1)) if len(v) > 1 else float("nan") for m, v in self._values().items()}

    def summary(self) -> str:
        """One line: ``5-fold StratifiedKFold (seed 0): loss 0.1234 ± 0.0100  accuracy 0.9750 ± 0.0050``."""
        mean, std = self.mean, self.std
        scores = "  ".join(f"{m} {mean[m]:.4f} ± {std[m]:.4f}" for m in mean)
        return f"{self.k}-fold {self.splitter} (seed {self.seed}): {scores}"

    def table(self) -> str:
        """One line per fold, then the mean ± std (ddof=1) of each metric."""
        width = len(f"fold {self.k}:")
        lines = [f"{f'fold {i + 1}:':<{width}} " + "  ".join(f"{m} {v:.4f}" for m, v in fold.items())
                 for i, fold in enumerate(self.metrics)]
        mean, std = self.mean, self.std
        lines.append("mean ± std: " + "  ".join(f"{m} {mean[m]:.4f} ± {std[m]:.4f}" for m in mean))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, dicts, numbers and strings: ``json.dumps(result.to_dict())`` works."""
        return {
            "k": self.k, "splitter": self.splitter, "seed": self.seed, "n_samples": self.n_samples,
            "mean": self.mean, "std": self.std, "std_ddof": 1,
            "metrics": [dict(f) for f in self.metrics],
            "val_indices": [[int(i) for i in v] for v in self.val_indices],
            "histories": [[dict(r) for r in h] for h in self.histories],
            "seconds": list(self.seconds),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CVResult:
        """The inverse of ``to_dict`` (mean and std are recomputed from the folds)."""
        return cls(metrics=[dict(f) for f in d["metrics"]],
                   val_indices=[np.asarray(v, dtype=np.int64) for v in d["val_indices"]],
                   histories=[[dict(r) for r in h] for h in d.get("histories", [])],
                   splitter=d.get("splitter", "StratifiedKFold"), seed=int(d.get("seed", 0)),
                   seconds=list(d.get("seconds", [])))


# ---- running the folds ---------------------------------------------------------------------------------
@dataclass
class _FoldOutcome:
    index: int
    metrics: dict[str, float]
    history: list[dict[str, float]]
    seconds: float


def _run_fold(build_run: BuildRun, dataset: Any, index: int, train_idx: np.ndarray, val_idx: np.ndarray,
              seed: int, verbose: int, save_dir: str | None = None) -> _FoldOutcome:
    """Train fold ``index`` from scratch and score it on its validation part. Depends only on its
    arguments (train_run reseeds everything), so it gives the same numbers in any process, in any order.
    With ``save_dir`` the fold's model and metrics go to ``save_dir/fold-{index + 1}/``."""
    from dlbasics.data import DataLoader
    from dlbasics.data.dataset import Subset
    from dlbasics.train.run import train_run

    start = time.perf_counter()
    val_set = Subset(dataset, val_idx)
    run, history = train_run(build_run, Subset(dataset, train_idx), val_set, seed=seed, verbose=verbose,
                             distributed=False)
    # the same loader train_run validates with, so without early stopping this equals the last epoch's val_*
    loader = DataLoader(val_set, batch_size=max(run.batch_size, 512))
    metrics = run.task.evaluate(loader)
    if save_dir is not None:
        from dlbasics.train.rundir import save_model, write_metrics

        folder = Path(save_dir) / f"fold-{index + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        save_model(folder, run.model)
        write_metrics(folder, history)
    return _FoldOutcome(index, metrics, [dict(r) for r in history.rows], time.perf_counter() - start)


# In a worker process: the build_run and dataset every fold of this cross-validation uses. Handed over once
# per worker through the pool's initializer (inherited for free under fork) instead of with every fold.
_worker_job: dict[str, Any] = {}


def _init_worker(build_run: BuildRun, dataset: Any, save_dir: str | None = None) -> None:
    # One BLAS thread per worker: w workers on w cores, each with its own BLAS pool, would otherwise run w²
    # threads that fight over the cores. The environment covers libraries loaded from now on; threadpoolctl
    # (a scikit-learn dependency) resizes those already loaded - inherited through fork, or imported while
    # the initializer's arguments were deserialised under spawn - for which the environment comes too late.
    for var in _THREAD_ENV:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # only the environment, then
        pass
    else:
        threadpool_limits(limits=1)
    _worker_job.update(build_run=build_run, dataset=dataset, save_dir=save_dir)


def _run_fold_in_worker(index: int, train_idx: np.ndarray, val_idx: np.ndarray, seed: int) -> _FoldOutcome:
    return _run_fold(_worker_job["build_run"], _worker_job["dataset"], index, train_idx, val_idx, seed, 0,
                     _worker_job["save_dir"])


def _mp_context() -> Any:
    # fork starts a worker in milliseconds and shares the dataset copy-on-write; it is safe on Linux (OpenBLAS
    # re-initialises its threads after fork) but not on macOS, whose system libraries may not survive a fork.
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _check_picklable(build_run: BuildRun, dataset: Any, context: Any) -> None:
    # Checked on every platform, although fork would not need it, so that code which works here also works
    # where workers are spawned and every argument is serialised by multiprocessing (the IPC pickler: this
    # is process-to-process transport, not saving or loading).
    try:
        ForkingPickler.dumps(build_run)
    except Exception as e:
        raise TypeError(f"cross_validate(workers > 1) sends build_run to worker processes, so it must be picklable: "
                        f"a module-level function or a RunBuilder, not {build_run!r} ({type(e).__name__}: {e}); "
                        "or use workers=1") from None
    if context.get_start_method() != "fork":
        try:
            ForkingPickler.dumps(dataset)
        except Exception as e:
            raise TypeError(f"cross_validate(workers > 1) sends the dataset to spawned worker processes, so it "
                            f"must be picklable ({type(e).__name__}: {e}); or use workers=1") from None


def _gather(outcomes: list[_FoldOutcome]) -> list[_FoldOutcome]:
    """Every rank's folds on every rank, in fold order (as JSON, whose floats round-trip exactly)."""
    from dlbasics import distributed as dist

    texts = dist.all_gather_text(json.dumps([asdict(o) for o in outcomes]))
    return sorted((_FoldOutcome(**o) for t in texts for o in json.loads(t)), key=lambda o: o.index)


def _report(outcome: _FoldOutcome, k: int) -> None:
    scores = "  ".join(f"{m} {v:.4f}" for m, v in outcome.metrics.items())
    print(f"fold {outcome.index + 1}/{k}: {scores}  ({outcome.seconds:.1f}s)", flush=True)


def cross_validate(build_run: BuildRun, dataset: Any, k: int = 5, *, stratified: bool = True, seed: int = 0,
                   workers: int = 1, verbose: int = 0, save_dir: str | Path | None = None) -> CVResult:
    """K-fold cross-validation of the run ``build_run`` makes: CV = (1/k) Σ_i score_i.

    Fold i trains a fresh run, ``train_run(build_run, Subset(dataset, train_i), Subset(dataset, val_i),
    seed=seed + i)``, and scores it with ``evaluate`` on its validation part; every sample is validated
    exactly once.

    Args:
        build_run: ``build_run(seed) -> Run``; with ``workers > 1`` it must be picklable (a module-level
            function or a ``RunBuilder``, not a lambda or closure).
        dataset: any dataset of (input, target) samples.
        k: number of folds, 2 <= k <= len(dataset).
        stratified: keep each fold's class proportions those of the whole (``StratifiedKFold``). Targets
            that are not class labels (floats, as in regression) cannot be stratified and silently use
            ``KFold``; ``stratified=False`` always does. Both shuffle with ``random_state=seed``.
        seed: seeds the split and, as ``seed + i``, fold i's run (init, dropout, shuffling).
        workers: folds trained at once, each in its own process with one BLAS thread; the results equal
            those of ``workers=1`` exactly. Under ``mpiexec -n R`` (an initialised process group) the R ranks
            share the folds instead (fold i on rank i mod R; ``workers`` must be 1) and every rank returns
            the whole result, again equal to ``workers=1``'s.
        verbose: 1 prints a line per finished fold; 2 also the epochs of each fold (``workers=1`` only:
            from parallel workers they would interleave).
        save_dir: a folder to keep each fold's model and metrics in (``fold-1/`` ... ``fold-k/``).

    Returns:
        ``CVResult`` with per-fold metrics, histories and validation indices, and their mean and std (ddof=1).
    """
    if not isinstance(workers, int | np.integer) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    splitter, folds = _split(dataset, k, stratified, seed)
    k = len(folds)
    outcomes: list[_FoldOutcome] = []
    rank, ranks = world()
    if ranks > 1 and workers > 1:
        raise ValueError(f"workers: the {ranks} MPI ranks share the folds; give workers=1, not {workers}")
    if workers == 1:
        for i, (train_idx, val_idx) in enumerate(folds):
            if i % ranks != rank:
                continue
            outcomes.append(_run_fold(build_run, dataset, i, train_idx, val_idx, seed + i, max(verbose - 1, 0),
                                      None if save_dir is None else str(save_dir)))
            if verbose and rank == 0:
                _report(outcomes[-1], k)
        if ranks > 1:
            outcomes = _gather(outcomes)
    else:
        context = _mp_context()
        _check_picklable(build_run, dataset, context)
        with ProcessPoolExecutor(max_workers=min(int(workers), k), mp_context=context, initializer=_init_worker,
                                 initargs=(build_run, dataset, None if save_dir is None else str(save_dir))) as pool:
            futures = [pool.submit(_run_fold_in_worker, i, tr, va, seed + i) for i, (tr, va) in enumerate(folds)]
            for future in as_completed(futures):
                outcomes.append(future.result())
                if verbose:
                    _report(outcomes[-1], k)
        outcomes.sort(key=lambda o: o.index)
    return CVResult(metrics=[o.metrics for o in outcomes], val_indices=[va for _, va in folds],
                    histories=[o.history for o in outcomes], splitter=splitter, seed=seed,
                    seconds=[o.seconds for o in outcomes])


__all__ = ["CVResult", "cross_validate", "fold_indices", "targets_of"]
