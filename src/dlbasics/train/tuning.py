"""Hyperparameter search by Bayesian optimization, on Optuna (the optional extra ``dlbasics[tune]``).

A search is an ``objective(params, trial) -> float`` (typically the best validation loss of a run trained
with ``params``), a search space of ``Float`` / ``Int`` / ``Choice`` ranges, and a budget of trials. The
default sampler is TPE, which is model-based: it fits densities p(x | good) and p(x | bad) to the trials so far
and proposes the x that maximizes their ratio, which is the expected-improvement criterion. Random search
(``sampler="random"``) is the baseline it should beat; ``"gp"`` is Gaussian-process BO (needs torch + scipy).

    from dlbasics.train.tuning import Choice, Float, tune
    result = tune(lambda p, trial: (p["x"] - 2) ** 2, {"x": Float(-5, 5)}, n_trials=30)
    result.best_params, result.best_value

A study kept in a database (``storage="sqlite:///search.db"``) survives the process: running ``tune`` again
with the same ``study_name`` continues it with its trials kept, and several processes can share one study;
processes on several machines share one on a PostgreSQL server (``storage="postgresql://USER@HOST/DB"``).
Bad runs are stopped early by ``PruningCallback`` + the median pruner (a run whose validation loss at epoch
t is worse than the median of earlier runs at epoch t is abandoned). ``tune_config`` is the CLI's entry point.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from dlbasics.errors import ConfigError, MissingDependencyError
from dlbasics.train.callbacks import Callback

INSTALL_HINT = "pip install 'dlbasics[tune]'"
SAMPLERS = ("tpe", "random", "gp")
PRUNERS = ("median", "none")
DEFAULT_STUDY_NAME = "dlbasics-tune"
# Where a study can be kept: an SQLite file, or a PostgreSQL server that several machines share.
STORAGES = ("sqlite", "postgresql")
CONNECT_TIMEOUT = 5  # seconds; without it an unreachable server hangs for the OS's TCP timeout (minutes)
FIRST_USE_LOCK = 0x646C6274756E65  # "dlbtune": the PostgreSQL advisory lock key of _first_use_lock
# Keys of a run description that must not be searched over: they name where the data or the output is, and
# val losses on different data are not comparable; the seed is held fixed so trials differ only in params.
UNTUNABLE = ("task", "data", "data_dir", "seed")

SPACE_FORMS = ("NAME=LOW:HIGH (float), NAME=LOW:HIGH:log (log scale), NAME=LOW:HIGH:int (integers, :int:log too), "
               "or NAME=A,B,C (choices; a list value is written 128x64)")


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingDependencyError(f"hyperparameter search needs Optuna: {INSTALL_HINT}") from None
    return optuna


# ---- search space ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Float:
    """A real number in [low, high]; ``log=True`` samples uniformly in log(x) (learning rates, weight decay)."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_range(self, float)


@dataclass(frozen=True)
class Int:
    """An integer in [low, high] (both included); ``log=True`` samples uniformly in log(x)."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        _check_range(self, int)


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (unordered). A value may be a list, e.g. hidden sizes ``[128, 64]``."""

    values: tuple[Any, ...]

    def __init__(self, values: Sequence[Any]) -> None:
        values = tuple(list(v) if isinstance(v, list | tuple) else v for v in values)
        if not values:
            raise ValueError("Choice: needs at least one value")
        labels = [_label(v) for v in values]
        if len(set(labels)) != len(labels):
            raise ValueError(f"Choice: values must be distinct, got {', '.join(labels)}")
        object.__setattr__(self, "values", values)


Spec = Float | Int | Choice


def _check_range(spec: Float | Int, kind: type) -> None:
    name = type(spec).__name__
    for v in (spec.low, spec.high):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"{name}: low and high must be finite numbers, got {spec.low!r}, {spec.high!r}")
        if kind is int and v != int(v):
            raise ValueError(f"{name}: low and high must be integers, got {spec.low!r}, {spec.high!r}")
    if not spec.low < spec.high:
        raise ValueError(f"{name}: needs low < high, got {spec.low!r}, {spec.high!r}")
    if spec.log and spec.low <= 0:
        raise ValueError(f"{name}: a log-scale range needs low > 0, got {spec.low!r}")


def _label(value: Any) -> str:
    """The CLI notation of a value: lists as 128x64, floats exactly (repr), the rest as str."""
    if isinstance(value, list | tuple):
        return "x".join(_label(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def _parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    if re.fullmatch(r"\d+(x\d+)+", text):  # 128x64 -> [128, 64]: a list-valued choice such as hidden sizes
        return [int(p) for p in text.split("x")]
    with contextlib.suppress(ValueError):
        return int(text)
    with contextlib.suppress(ValueError):
        number = float(text)
        if math.isfinite(number):
            return number
    return text


def _is_number(text: str, kind: type) -> bool:
    try:
        return math.isfinite(kind(text))
    except ValueError:
        return False


def parse_space(entries: Sequence[str]) -> dict[str, Spec]:
    """A search space from CLI-style entries, one per parameter.

    ``lr=1e-4:1e-1:log`` -> Float(1e-4, 1e-1, log=True); ``dropout=0:0.5`` -> Float(0, 0.5);
    ``epochs=5:20:int`` -> Int(5, 20) (``:int:log`` for a log-scale integer); ``optimizer=adam,sgd`` ->
    Choice(["adam", "sgd"]). Choice values are read as bool (true/false), None (none), int, float or str, and
    ``AxB...`` is a list of ints: ``hidden=64,128x64,256x128`` -> Choice([64, [128, 64], [256, 128]]);
    ``|`` separates choices too (``hidden=64|128x64``). Dashes in names become underscores (``weight-decay``).
    """
    space: dict[str, Spec] = {}
    for entry in entries:
        def bad(reason: str, entry: str = entry) -> ConfigError:
            return ConfigError(f"search space entry {entry!r}: {reason}; use {SPACE_FORMS}")

        name, eq, rest = str(entry).partition("=")
        name = name.strip().replace("-", "_")
        rest = rest.strip()
        if not eq or not rest:
            raise bad("expected NAME=SPEC")
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise bad(f"{name!r} is not a parameter name")
        if name in space:
            raise bad(f"{name!r} is given twice")
        if ":" in rest:
            low, high, *flags = (p.strip() for p in rest.split(":"))
            if any(f not in ("log", "int") for f in flags) or len(set(flags)) != len(flags):
                raise bad(f"unknown or repeated flag in {':'.join(flags)!r}")
            kind = Int if "int" in flags else Float
            for text in (low, high):
                if not _is_number(text, int if kind is Int else float):
                    raise bad(f"{text!r} is not {'an integer' if kind is Int else 'a number'}")
            try:
                bounds = [int(low), int(high)] if kind is Int else [float(low), float(high)]
                space[name] = kind(*bounds, log="log" in flags)
            except ValueError as e:
                raise bad(str(e)) from None
        else:
            texts = [t.strip() for t in re.split(r"[,|]", rest)]
            if any(not t for t in texts):
                raise bad("empty choice")
            try:
                space[name] = Choice([_parse_value(t) for t in texts])
            except ValueError as e:
                raise bad(str(e)) from None
    return space


def _suggest(trial: Any, name: str, spec: Spec) -> Any:
    if isinstance(spec, Float):
        return trial.suggest_float(name, float(spec.low), float(spec.high), log=spec.log)
    if isinstance(spec, Int):
        return trial.suggest_int(name, int(spec.low), int(spec.high), log=spec.log)
    if isinstance(spec, Choice):
        # Optuna's categorical choices must be None/bool/int/float/str (they are stored as JSON); a list such
        # as [128, 64] is suggested by its label and mapped back, so the objective always sees the value.
        if all(v is None or isinstance(v, bool | int | float | str) for v in spec.values):
            return trial.suggest_categorical(name, list(spec.values))
        by_label = {_label(v): v for v in spec.values}
        return by_label[trial.suggest_categorical(name, list(by_label))]
    raise TypeError(f"search space {name!r}: expected Float, Int or Choice, got {type(spec).__name__}")


def _decode(params: Mapping[str, Any], space: Mapping[str, Spec]) -> dict[str, Any]:
    """A stored trial's params as the objective saw them (list choices were stored by label)."""
    out = {}
    for k, v in params.items():
        spec = space.get(k)
        if isinstance(spec, Choice) and isinstance(v, str):
            v = {_label(c): c for c in spec.values}.get(v, v)
        out[k] = v
    return out


# ---- samplers, pruners, storage ---------------------------------------------------------------------
def make_sampler(name: str | Any, seed: int | None) -> Any:
    """``"tpe"``, ``"random"`` or ``"gp"`` as an Optuna sampler; an Optuna sampler object is returned as is."""
    optuna = _optuna()
    if not isinstance(name, str):
        return name
    if name == "tpe":
        # Optuna >= 5 defaults to multivariate TPE for one objective (a joint density over all params).
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        # GPSampler imports torch lazily and would fail only at its first model-based trial; fail now instead.
        missing = [m for m in ("torch", "scipy") if find_spec(m) is None]
        if missing:
            raise MissingDependencyError(f"sampler 'gp' needs {' and '.join(missing)}: pip install {' '.join(missing)}"
                                         " (the CPU build of torch is enough)")
        return optuna.samplers.GPSampler(seed=seed)  # (optional: greenlet speeds up its acquisition search)
    raise ConfigError(f"sampler: invalid choice {name!r} (choose from {', '.join(SAMPLERS)})")


def make_pruner(name: str | Any) -> Any:
    """``"median"`` (stop a trial worse than the median of earlier trials at the same epoch) or ``"none"``."""
    optuna = _optuna()
    if not isinstance(name, str):
        return name
    if name == "median":
        # No pruning during the first 5 trials (nothing to compare with yet) nor at the first epoch (too noisy).
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"pruner: invalid choice {name!r} (choose from {', '.join(PRUNERS)})")


def storage_url(storage: str | Path | None) -> str | None:
    """A database URL for Optuna; a bare file path means an SQLite file (its folder is created).

    A bare ``postgresql://`` (or ``postgres://``) becomes ``postgresql+psycopg://``: SQLAlchemy before 2.1 maps
    the bare scheme to psycopg2, while the driver that ``dlbasics[tune]`` installs is psycopg 3."""
    if storage is None:
        return None
    text = str(storage)
    if "://" not in text:
        text = f"sqlite:///{Path(text).resolve()}"
    scheme, _, rest = text.partition("://")
    if scheme in ("postgresql", "postgres"):
        text = f"postgresql+psycopg://{rest}"
    if text.startswith("sqlite:///"):
        Path(text.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return text


def hide_password(text: str) -> str:
    """``text`` with the password of a database URL (``user:secret@host``) shown as ``***``: for messages and
    the tune folder's config.json. The pattern is SQLAlchemy's: a username without ``:`` or ``/``, then up to ``@``."""
    return re.sub(r"^([\w+]+://[^:/]*:)[^@]*@", r"\1***@", text)


def check_storage(storage: str | Path | None) -> str | None:
    """The URL of ``storage`` (see ``storage_url``) if dlbasics can keep a study there: SQLite (a file path or
    ``sqlite:///FILE``) or a PostgreSQL server whose driver is installed. Nothing is connected to yet; that is
    ``open_storage``. Raises ConfigError (another database, a malformed URL) or MissingDependencyError."""
    url = storage_url(storage)
    if url is None:
        return None
    shown = hide_password(str(storage))
    scheme = url.partition("://")[0]
    if scheme.partition("+")[0] not in STORAGES:
        raise ConfigError(f"--storage {shown}: not a database URL dlbasics can use: {scheme!r} is not one of "
                          f"{', '.join(STORAGES)} (give a file path, sqlite:///FILE or postgresql://USER@HOST/DB)")
    _optuna()  # SQLAlchemy comes with Optuna
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        dialect = make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as e:
        raise ConfigError(f"--storage {shown}: not a database URL dlbasics can use ({e}); give a file path, "
                          "sqlite:///FILE or postgresql://USER@HOST/DB") from None
    try:
        dialect.import_dbapi()  # the driver; SQLAlchemy imports it only when it first connects
    except ImportError:
        if dialect.driver == "psycopg":
            raise MissingDependencyError(f"--storage {shown}: PostgreSQL needs the driver psycopg: {INSTALL_HINT}"
                                         ) from None
        raise MissingDependencyError(f"--storage {shown}: its driver {dialect.driver} is not installed (or write "
                                     f"postgresql://, whose driver psycopg comes with {INSTALL_HINT})") from None
    return url


def open_storage(storage: str | Path | Any | None) -> Any:
    """The Optuna storage for ``storage`` (a path or URL, checked by ``check_storage``), connected and with
    Optuna's tables made. None (in memory) and an Optuna storage object are returned as they are.

    A server that cannot be reached, or a database that cannot be opened, is a ConfigError naming HOST:PORT
    (never the password); a PostgreSQL connection attempt gives up after ``CONNECT_TIMEOUT`` seconds unless the
    URL sets ``?connect_timeout=``."""
    if storage is None or not isinstance(storage, str | Path):
        return storage
    optuna = _optuna()
    url = check_storage(storage)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    parsed = make_url(url)
    server = parsed.get_backend_name() == "postgresql"
    engine_kwargs = {}
    if server and "connect_timeout" not in parsed.query:
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    try:
        with _first_use_lock(url, engine_kwargs) if server else contextlib.nullcontext():
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except OperationalError as e:
        lines = str(e.orig or e).strip().splitlines()
        what = f"connect to the server at {parsed.host or 'localhost'}:{parsed.port or 5432}" if server \
            else "open the database"
        raise ConfigError(f"--storage {hide_password(str(storage))}: cannot {what} ({lines[0]})") from None


def _is_server(storage: Any) -> bool:
    """Whether ``storage`` is a database server that several machines share (not an SQLite file)."""
    return str(getattr(storage, "url", "")).startswith("postgresql")


def _worker_number() -> int:
    """A number of this process on this machine (host and process id), different for each worker of a shared
    study: the same ``seed`` on every machine (the README's recipe) still gives each worker its own draws. A
    study shared on a server is not reproducible trial by trial anyway: which worker takes which trial is a race."""
    import socket
    import zlib

    return zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 1_000_003


@contextlib.contextmanager
def _first_use_lock(url: str, engine_kwargs: Mapping[str, Any]) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock while Optuna opens the storage. Opening an empty database creates Optuna's
    tables, and workers started together would race to create them (the losers fail with 'already exists');
    under the lock the first one creates them and the others find them. Released when the transaction ends."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": FIRST_USE_LOCK})
            yield
    finally:
        engine.dispose()


def create_study(storage: str | Path | Any, study_name: str = DEFAULT_STUDY_NAME, *, direction: str = "minimize",
                 load_if_exists: bool = True) -> Any:
    """Create the study in ``storage`` (a path, URL or Optuna storage) and return it; with ``load_if_exists`` an
    existing study is returned instead. On PostgreSQL, workers started together all get the one study; a new
    SQLite file is best created once before they start (they may race to create its tables). Each worker then
    runs ``tune(..., storage=storage, study_name=study_name)`` with its own ``seed``."""
    optuna = _optuna()
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction: invalid choice {direction!r} (choose from minimize, maximize)")
    opened = open_storage(storage)
    where = hide_password(getattr(opened, "url", str(storage)))
    try:
        with _quiet_optuna(optuna):
            study = optuna.create_study(storage=opened, study_name=study_name, direction=direction,
                                        load_if_exists=load_if_exists)
    except optuna.exceptions.DuplicatedStudyError:
        raise ValueError(f"study {study_name!r} already exists in {where}; resume it (load_if_exists=True) or "
                         "choose another study name") from None
    # create_study(load_if_exists=True) silently keeps the stored direction; a mismatch would invert "best".
    if study.direction.name.lower() != direction:
        raise ValueError(f"study {study_name!r} in {where} was created to {study.direction.name.lower()}, not to "
                         f"{direction}")
    return study


@contextlib.contextmanager
def _quiet_optuna(optuna: Any) -> Iterator[None]:
    """Optuna logs a line per trial at INFO; keep its warnings, restore the caller's level after."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


# ---- pruning ----------------------------------------------------------------------------------------
class PruningCallback(Callback):
    """Report ``monitor`` to the Optuna ``trial`` after every epoch and raise ``optuna.TrialPruned`` (out of
    ``fit``) when the pruner says the run is doing worse than earlier trials did at the same epoch."""

    def __init__(self, trial: Any, monitor: str = "val_loss") -> None:
        self.trial, self.monitor = trial, monitor

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.monitor not in logs:
            raise ValueError(f"PruningCallback monitors {self.monitor!r}, which is not logged (logged: "
                             f"{', '.join(logs)}); pass val_loader to fit() or monitor a train_* value")
        value = float(logs[self.monitor])
        self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            raise _optuna().TrialPruned(f"pruned after epoch {epoch + 1}: {self.monitor} {value:.4g}")


# ---- the result ---------------------------------------------------------------------------------------
@dataclass
class TuneResult:
    """The outcome of a search: the best trial and one row per trial (``number``, ``state`` - COMPLETE,
    PRUNED, FAIL or RUNNING -, ``value``, ``params``, ``duration`` in seconds). A pruned trial's value is the
    last value it reported, not a final one; only COMPLETE trials count for ``best_*``."""

    best_params: dict[str, Any]
    best_value: float | None  # None when no trial completed
    trials: list[dict[str, Any]]
    direction: str = "minimize"
    study_name: str = ""
    study: Any = field(default=None, repr=False, compare=False)  # the optuna Study, for Optuna's own tools

    def count(self, state: str) -> int:
        return sum(t["state"] == state for t in self.trials)

    def to_csv(self) -> str:
        """The trials table; params as ``params_NAME`` columns, list values written as in the CLI (128x64)."""
        names: list[str] = []
        for t in self.trials:
            names += [k for k in t["params"] if k not in names]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["number", "state", "value", "duration", *(f"params_{n}" for n in names)])
        for t in self.trials:
            value, duration = t["value"], t["duration"]
            w.writerow([t["number"], t["state"], "" if value is None else repr(value),
                        "" if duration is None else f"{duration:.3f}",
                        *("" if n not in t["params"] else _label(t["params"][n]) for n in names)])
        return buf.getvalue()

    def best_json(self, **extra: Any) -> str:
        """``best.json``: the best value and params, the study and its trial counts, and ``extra`` keys."""
        return json.dumps({"best_value": self.best_value, "best_params": self.best_params,
                           "direction": self.direction, "study_name": self.study_name,
                           "trials": len(self.trials), "complete": self.count("COMPLETE"),
                           "pruned": self.count("PRUNED"), "failed": self.count("FAIL"), **extra}, indent=2) + "\n"

    def plot_history(self, path: str | Path, title: str = "", ylabel: str = "objective") -> None:
        """A PNG of the value of each trial and the best value so far (matplotlib Agg; written atomically)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        from dlbasics.io import atomic_write_bytes

        done = [t for t in self.trials if t["state"] == "COMPLETE"]
        pruned = [t for t in self.trials if t["state"] == "PRUNED" and t["value"] is not None]
        better = max if self.direction == "maximize" else min
        best_x, best_y, best = [], [], None
        for t in done:
            best = t["value"] if best is None else better(best, t["value"])
            best_x.append(t["number"])
            best_y.append(best)
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot([t["number"] for t in done], [t["value"] for t in done], "o", markersize=4, label="trial")
        if pruned:
            ax.plot([t["number"] for t in pruned], [t["value"] for t in pruned], "x", color="0.6", markersize=4,
                    label="pruned (last reported)")
        if best_x:
            ax.step([*best_x, self.trials[-1]["number"]], [*best_y, best_y[-1]], where="post", color="C3",
                    label="best so far")
        values = [t["value"] for t in done + pruned]
        # Losses of bad trials can be orders of magnitude above the good ones; a log axis keeps both readable.
        if values and min(values) > 0 and max(values) / min(values) > 30:
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("trial")
        ax.set_ylabel(ylabel)
        ax.set_title(title or f"{self.study_name or 'search'}: {len(done)} complete, {len(pruned)} pruned")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        atomic_write_bytes(path, buf.getvalue())


def result_of(study: Any, space: Mapping[str, Spec]) -> TuneResult:
    """The ``TuneResult`` of an Optuna study (e.g. one loaded from storage)."""
    optuna = _optuna()
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
                     "params": _decode(t.params, space),
                     "duration": None if t.duration is None else t.duration.total_seconds()})
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    best = study.best_trial if complete else None
    return TuneResult(best_params=_decode(best.params, space) if best else {},
                      best_value=best.value if best else None, trials=rows,
                      direction=study.direction.name.lower(), study_name=study.study_name, study=study)


# ---- the search ---------------------------------------------------------------------------------------
Objective = Callable[[dict[str, Any], Any], float]


def tune(objective: Objective, search_space: Mapping[str, Spec], n_trials: int, *, sampler: str | Any = "tpe",
         seed: int | None = 0, storage: str | Path | Any | None = None, study_name: str | None = None,
         direction: str = "minimize", pruner: str | Any = "median", n_jobs: int = 1, load_if_exists: bool = True,
         timeout: float | None = None, callbacks: Sequence[Callable[[Any, Any], None]] = (),
         verbose: bool = False) -> TuneResult:
    """Run ``n_trials`` more trials of ``objective(params, trial) -> float`` over ``search_space``.

    TPE (the default) is model-based Bayesian optimization: it models p(x | good) and p(x | bad) from the
    trials so far and picks the x maximizing their ratio - the expected-improvement criterion.
    ``sampler``: "tpe", "random" (the baseline), "gp" (Gaussian process; needs torch and scipy) or an Optuna
    sampler. ``storage``: None keeps the study in memory; a database URL such as ``"sqlite:///search.db"`` (or
    a bare file path, read as SQLite) keeps it, so calling ``tune`` again with the same ``study_name`` (default
    ``"dlbasics-tune"``) continues it with its trials kept, and several processes can share it (give each its
    own ``seed``; across machines use a PostgreSQL server, ``"postgresql://USER@HOST/DB"``: SQLite files do not
    lock reliably over NFS). ``n_trials`` counts this call's trials, not the study's: two workers with
    ``n_trials=10`` add 20 trials to their shared study. On a server each worker's sampler also takes a number of
    its own (host and process), so workers given the same ``seed`` do not propose the same points.
    ``pruner``: "median" (default), "none" or an Optuna pruner; the objective reports with ``trial.report``
    (``PruningCallback`` does it for ``fit``). ``n_jobs`` runs trials in threads. ``callbacks`` are Optuna
    study callbacks ``(study, frozen_trial)``, called after each trial. Exceptions from the objective other
    than ``optuna.TrialPruned`` end the search (the trial is recorded as FAIL); a NaN value is recorded as FAIL.
    """
    optuna = _optuna()
    if not search_space:
        raise ValueError("tune: the search space is empty")
    for name, spec in search_space.items():
        if not isinstance(spec, Float | Int | Choice):
            raise TypeError(f"search space {name!r}: expected Float, Int or Choice, got {type(spec).__name__}")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"tune: n_trials must be an integer >= 1, got {n_trials!r}")
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction: invalid choice {direction!r} (choose from minimize, maximize)")
    make_pruner(pruner)  # reject a bad name before anything is created in the storage
    if isinstance(sampler, str) and sampler not in SAMPLERS:
        raise ConfigError(f"sampler: invalid choice {sampler!r} (choose from {', '.join(SAMPLERS)})")

    with _quiet_optuna(optuna):
        opened = open_storage(storage)
        if opened is None:
            study = optuna.create_study(sampler=make_sampler(sampler, seed), pruner=make_pruner(pruner),
                                        study_name=study_name or DEFAULT_STUDY_NAME, direction=direction)
        else:
            name = study_name or DEFAULT_STUDY_NAME
            done = len(create_study(opened, name, direction=direction, load_if_exists=load_if_exists).trials)
            # A resumed search must not replay the random draws of the first session (random search would
            # propose the very same points again): offset the seed by the trials already in the study.
            offset = done
            if _is_server(opened):  # workers started together see the same count: each also takes its own draw
                offset += _worker_number()
            study = optuna.load_study(study_name=name, storage=opened, pruner=make_pruner(pruner),
                                      sampler=make_sampler(sampler, None if seed is None else seed + offset))

        def run_trial(trial: Any) -> float:
            params = {name: _suggest(trial, name, spec) for name, spec in search_space.items()}
            return float(objective(params, trial))

        report = [_print_trial(search_space)] if verbose else []
        study.optimize(run_trial, n_trials=n_trials, timeout=timeout, n_jobs=n_jobs,
                       callbacks=[*callbacks, *report])
    return result_of(study, search_space)


def _print_trial(space: Mapping[str, Spec]) -> Callable[[Any, Any], None]:
    def report(study: Any, trial: Any) -> None:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={_label(v)}"
                           for k, v in _decode(trial.params, space).items())
        what = f"{trial.value:.4g}" if trial.state.name == "COMPLETE" else trial.state.name.lower()
        if trial.state.name == "PRUNED":
            what += f" after {trial.last_step + 1 if trial.last_step is not None else 0} epochs"
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        print(f"trial {trial.number:>3}  {what:<24} {params}  ({seconds:.1f}s)", flush=True)

    return report


# ---- the CLI's entry point ----------------------------------------------------------------------------
def _as_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as run options: a bare number for a list-valued option (``hidden=64``) means ``[64]``."""
    from dlbasics.train.config import component_options

    lists = {name for name, (_, kind, _) in component_options().items() if kind.count == -1}
    return {k: [v] if k in lists and not isinstance(v, list) else v for k, v in params.items()}


def check_space_for_config(base: Any, space: Mapping[str, Spec]) -> None:
    """Every parameter names a run option, and the ends of each range / each choice make a valid run, so a
    mistake is reported before the first trial trains rather than after an hour of search."""
    from dlbasics.train.config import option_names

    valid = option_names()
    for name, spec in space.items():
        if name not in valid:
            raise ConfigError(f"tune: {name!r} is not a run option (valid: "
                              f"{', '.join(k for k in valid if k not in UNTUNABLE)})")
        if name in UNTUNABLE:
            raise ConfigError(f"tune: {name!r} cannot be searched over (it is fixed for every trial)")
        ends = spec.values if isinstance(spec, Choice) else (spec.low, spec.high)
        for value in ends:
            try:
                base.replace(**_as_config({name: value}))
            except ConfigError as e:
                raise ConfigError(f"tune: {name}={_label(value)} in the search space is not a valid run: {e}"
                                  ) from None


def tune_config(base: Any, space: Mapping[str, Spec], n_trials: int, *, sampler: str = "tpe", seed: int = 0,
                storage: str | Path | None = None, study_name: str | None = None, out_dir: str | Path | None = None,
                verbose: int = 0, pruner: str = "median", n_jobs: int = 1,
                timeout: float | None = None) -> tuple[TuneResult, Path]:
    """Search ``space`` around the run description ``base`` (a ``RunConfig``): each trial trains ``base`` with
    the trial's params (same seed every trial, so trials differ only in the params) on the train split and
    scores it by its best val_loss; the median pruner stops runs that lag behind. Writes a tune folder
    (``out_dir`` or a new one): ``trials.csv`` and ``best.json`` after every trial (an interrupted search keeps
    them), ``history.png``, and - trained again with the best params - the best run's ``model.safetensors``,
    ``metrics.csv`` and its description in ``config.json``. ``seed`` seeds the sampler.
    ``n_jobs > 1`` trains in threads that share dlbasics' default generator, so trials are no longer
    bit-reproducible; for parallel search prefer several processes sharing one ``storage``. Each such worker
    adds ``n_trials`` to the study and writes its own folder (by default a new ``runs/tune-...``): its tables
    list the whole study as it stood when the worker last wrote them, and it trains the best trial it saw.
    Raises ConfigError for a space that cannot make valid runs, a storage that cannot be opened, and when no
    trial completed.
    """
    import numpy as np

    from dlbasics.train import rundir
    from dlbasics.train.config import RunBuilder, load_data
    from dlbasics.train.run import train_run

    _optuna()
    check_space_for_config(base, space)
    check_storage(storage)
    splits = load_data(base)
    if splits.val is None or len(splits.val) == 0:
        raise ConfigError(f"tune: the data set {base.data.name!r} has no validation split to score trials on")
    resolved = base.resolve(splits)
    RunBuilder(resolved)(resolved.seed)  # the base run builds: its own mistakes show before the search
    opened = open_storage(storage)  # connects: a server that cannot be reached fails before the folder is made
    out = rundir.new_run_dir(out_dir, f"tune-{base.model.name}-{base.data.name}", continues="tune")

    def trial_config(params: Mapping[str, Any]) -> Any:
        return base.replace(**_as_config(params)).resolve(splits)

    def objective(params: dict[str, Any], trial: Any) -> float:
        builder = RunBuilder(trial_config(params))

        def build(seed: int) -> Any:
            run = builder(seed)
            run.callbacks = [*run.callbacks, PruningCallback(trial, "val_loss")]
            return run

        _, history = train_run(build, splits.train, splits.val, seed=resolved.seed, verbose=0)
        losses = np.asarray(history["val_loss"], dtype=float)
        # The best epoch, not the last: with early stopping (patience) the run keeps the best epoch's weights.
        # A run that diverged everywhere returns NaN, which Optuna records as a failed trial.
        return float(np.nanmin(losses)) if np.isfinite(losses).any() else math.nan

    def config_result(study: Any) -> TuneResult:
        result = result_of(study, space)
        result.best_params = _as_config(result.best_params)
        for t in result.trials:
            t["params"] = _as_config(t["params"])
        return result

    def save_tables(study: Any, _trial: Any) -> None:
        result = config_result(study)
        # the whole run description of the best trial, so it can be trained again as is
        best_config = trial_config(result.best_params).to_dict() if result.best_value is not None else None
        atomic_write_text(out / "trials.csv", result.to_csv())
        atomic_write_text(out / "best.json", result.best_json(config=best_config))

    from dlbasics.io import atomic_write_text

    name = study_name or f"tune-{base.model.name}-{base.data.name}"
    result = tune(objective, space, n_trials, sampler=sampler, seed=seed, storage=opened, study_name=name,
                  pruner=pruner, n_jobs=n_jobs, timeout=timeout, callbacks=[save_tables], verbose=bool(verbose))
    save_tables(result.study, None)
    result = config_result(result.study)
    result.plot_history(out / "history.png", ylabel="best val_loss of the run",
                        title=f"{base.model.name} on {base.data.name}: {result.count('COMPLETE')} complete, "
                        f"{result.count('PRUNED')} pruned, {result.count('FAIL')} failed")
    if result.best_value is None:
        raise ConfigError(f"tune: no trial completed ({result.count('PRUNED')} pruned, {result.count('FAIL')} "
                          f"failed); see {out / 'trials.csv'}")
    best = trial_config(result.best_params)
    rundir.write_config(out, "tune", best, tune={"space": {k: repr(v) for k, v in space.items()},
                                                 "study": name,
                                                 "storage": None if storage is None else hide_password(str(storage)),
                                                 "best_value": result.best_value, "best_params": result.best_params})
    run, history = train_run(RunBuilder(best), splits.train, splits.val, seed=best.seed, verbose=0)
    rundir.save_model(out, run.model)
    rundir.write_metrics(out, history)
    return result, out
