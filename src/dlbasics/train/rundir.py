"""Run folders: the one module that writes and reads them, for every command that trains or changes a model.

Every run folder holds ``config.json``: the kind of run, the resolved run description (every default
filled in) and what the kind adds. The trained model, where there is one, is ``model.safetensors``, whose
names are the model's ``state_dict`` keys, so PyTorch reads it with ``safetensors.torch.load_file``.

    kind       what else is in the folder
    train      checkpoint.safetensors (resumable), metrics.csv, summary.json, curves.png
    ensemble   model.safetensors of the ensemble (members.0.*, members.1.*, ...), summary.json
    cv         fold-1/ ... fold-k/ (each a train folder without a checkpoint), cv.json
    tune       trials.csv, best.json, history.png; model.safetensors of the best trial, trained again
    compress   compress.json (ranks per layer, sizes, accuracy before and after); the compressed model

``load_model(path)`` gives back a ready model (eval mode) for any of them, and ``evaluate_run`` the test
metrics; ``dlbasics evaluate`` and ``dlbasics predict`` are built on them. A new run never shares a folder:
a default name that exists gets a suffix, and an ``--out`` that holds a run is refused.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbasics.errors import ConfigError, RunFolderError, StateDictError
from dlbasics.io import atomic_write_text, load, save
from dlbasics.nn.module import Module
from dlbasics.train.callbacks import Callback
from dlbasics.train.config import RunConfig

KINDS = ("train", "ensemble", "cv", "tune", "compress")
CONFIG = "config.json"
MODEL = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"
TOKENIZER = "tokenizer.json"  # text runs: what turns their token ids back into text


# ---- making a folder ------------------------------------------------------------------------------------
def new_run_dir(out: str | Path | None, name: str, root: str | Path = "runs", option: str = "--out",
                continues: str | None = None) -> Path:
    """A fresh folder for a new run: ``out`` if given (created; refused if it is a file or already holds a
    run), else ``root/NAME-YYYYmmdd-HHMMSS``, with ``-2``, ``-3``, ... added if a run started in the same
    second (``mkdir`` is atomic, so two processes never get the same folder). ``continues``: a kind of run
    whose folder ``out`` may already be, because the new run continues it (a tune study)."""
    if out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise RunFolderError(f"{option} {path}: is a file, not a folder")
        if continues is not None and (path / CONFIG).exists() and open_run(path).kind == continues:
            return path
        if (path / CONFIG).exists():
            how = f"continue it with --resume {path}, or choose another folder" if open_run_kind(path) == "train" \
                else "choose another folder"
            raise RunFolderError(f"{option} {path}: already holds a run; {how}")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunFolderError(f"{option} {path}: cannot create the folder ({e.strerror})") from None
        return path
    base = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunFolderError(f"cannot create {base.parent} ({e.strerror}); choose a folder with {option}") from None
    for i in range(1, 1000):
        path = base if i == 1 else base.with_name(f"{base.name}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunFolderError(f"{base}: 999 runs started in the same second; choose a folder with {option}")


def open_run_kind(path: Path) -> str | None:
    """The kind of the run in ``path`` (None if its config.json cannot be read)."""
    try:
        return json.loads((path / CONFIG).read_text(encoding="utf-8")).get("kind", "train")
    except (OSError, ValueError, AttributeError):
        return None


# ---- writing ----------------------------------------------------------------------------------------------
def json_text(obj: Any) -> str:
    """Strict JSON (NaN and inf become null, which every JSON reader accepts), indented, one trailing newline."""
    return json.dumps(_finite(obj), indent=2, allow_nan=False) + "\n"


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json_text(obj))


def write_config(folder: str | Path, kind: str, cfg: RunConfig, **extra: Any) -> None:
    """``config.json``: the kind, the dlbasics version, the resolved description (``run``) and the kind's own
    settings (``extra``)."""
    from dlbasics import __version__

    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}; kinds: {', '.join(KINDS)}")
    write_json(Path(folder) / CONFIG, {"kind": kind, "dlbasics": __version__, "run": cfg.to_dict(), **extra})


def write_metrics(folder: str | Path, history: Any) -> None:
    """``metrics.csv``: one row per evaluation. Wall-clock times are left out, so that a resumed run writes
    the very same file as one that was never stopped."""
    from dlbasics.train.history import History

    rows = History()
    rows.rows = [{k: v for k, v in r.items() if k != "seconds"} for r in history.rows]
    atomic_write_text(Path(folder) / "metrics.csv", rows.to_csv())


def read_metrics(folder: str | Path) -> list[dict[str, float]]:
    """The rows of ``folder/metrics.csv`` as numbers (an empty cell - a value a row did not log - is left out)."""
    import csv

    file = Path(folder) / "metrics.csv"
    if not file.is_file():
        return []
    with file.open(newline="", encoding="utf-8") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def save_model(folder: str | Path, model: Module) -> None:
    save(model, Path(folder) / MODEL)


class MetricsWriter(Callback):
    """Rewrites ``folder/metrics.csv`` after every row of history, so a long run can be watched as it goes
    (and a stopped one shows how far it got)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        write_metrics(self.folder, self.history)


# ---- reading ----------------------------------------------------------------------------------------------
@dataclass
class RunFolder:
    """A run folder read back: its path, kind, run description and the kind's own settings."""

    path: Path
    kind: str
    config: RunConfig
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_file(self) -> Path:
        return self.path / MODEL

    @property
    def checkpoint_file(self) -> Path:
        return self.path / CHECKPOINT


def open_run(path: str | Path, data_dir: str | None = None) -> RunFolder:
    """The run folder at ``path``. ``RunFolderError`` naming the file if it is missing, is not a run folder, or
    its ``config.json`` cannot be read. ``data_dir`` replaces the folder the data was read from (data moved)."""
    path = Path(path)
    if not path.exists():
        raise RunFolderError(f"{path}: no such run folder")
    if not path.is_dir():
        raise RunFolderError(f"{path}: is a file, not a run folder")
    cfg_file = path / CONFIG
    if not cfg_file.is_file():
        raise RunFolderError(f"{path} is not a run folder (no {CONFIG})")
    try:
        raw = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunFolderError(f"{cfg_file}: not valid JSON ({e}); the run folder is damaged") from None
    if not isinstance(raw, dict):
        raise RunFolderError(f"{cfg_file}: not a run description (a JSON object was expected)")
    if "kind" not in raw and "model_options" in raw:
        raw = _from_format_1(raw)
    kind = raw.get("kind")
    if kind not in KINDS or not isinstance(raw.get("run"), dict):
        raise RunFolderError(f"{cfg_file}: not a run description (kind {kind!r}; kinds: {', '.join(KINDS)})")
    run = dict(raw["run"])
    if data_dir is not None:
        run.setdefault("data", {})["data_dir"] = data_dir
    try:
        cfg = RunConfig.from_dict(run, source=str(cfg_file))
    except ConfigError as e:
        raise RunFolderError(f"{e} (the run folder was written by another version, or edited)") from None
    extra = {k: v for k, v in raw.items() if k not in ("kind", "dlbasics", "run")}
    return RunFolder(path, kind, cfg, extra)


def _from_format_1(raw: dict[str, Any]) -> dict[str, Any]:
    """A run folder of dlbasics 0.1 (a flat description with ``model_options``), as today's format."""
    from dlbasics.train.config import FORMAT

    opts = raw.get("model_options", {})
    data = {"name": raw["data"], "batch_size": raw.get("batch_size", 32), "problem": raw.get("task")}
    if raw.get("data_dir"):
        data["data_dir"] = raw["data_dir"]
    if raw.get("augment"):
        data["augment"] = True
    algorithm = {"optimizer": raw.get("optimizer", "adam"), "lr": raw.get("lr"),
                 "weight_decay": raw.get("weight_decay", 0.0)}
    if raw.get("optimizer") in ("sgd", "rmsprop"):
        algorithm["momentum"] = raw.get("momentum", 0.0)
    if raw.get("optimizer") == "sgd":
        algorithm["nesterov"] = bool(raw.get("nesterov"))
    loss = raw.get("loss") or ("cross_entropy" if raw.get("task") == "classification" else "mse")
    run = {"format": FORMAT, "seed": raw.get("seed", 0), "data": data, "model": {"name": raw["model"], **opts},
           "loss": {"name": loss, "label_smoothing": raw.get("label_smoothing", 0.0)},
           "algorithm": {k: v for k, v in algorithm.items() if v is not None},
           "budget": {"epochs": raw.get("epochs", 40)},
           "regularizers": {"mixup": raw.get("mixup"), "patience": raw.get("patience")}}
    return {"kind": "train", "run": run}


def _resolved(run: RunFolder) -> RunConfig:
    if not run.config.resolved:
        raise RunFolderError(f"{run.path / CONFIG}: the run description was never resolved against its data")
    return run.config


def load_model(path: str | Path | RunFolder) -> Module:
    """The trained model of any run folder, weights loaded, in eval mode - one call:
    ``model = dl.train.load_model("runs/mlp-digits-20261206-101500")``. For a cv folder: the fold models
    as one ``Ensemble``."""
    from dlbasics.train.ensemble import Ensemble

    run = path if isinstance(path, RunFolder) else open_run(path)
    cfg = _resolved(run)
    if run.kind == "cv":
        folds = sorted(run.path.glob("fold-*"), key=lambda p: int(p.name.split("-")[1]))
        model: Module = Ensemble([_weights(_fresh_model(cfg), f / MODEL) for f in folds], mode="prob")
        return model.eval()
    if run.kind == "ensemble":
        e = run.extra["ensemble"]
        model = Ensemble([_fresh_model(cfg) for _ in range(int(e["members"]))], mode=e["average"])
    elif run.kind == "compress":
        from dlbasics.compress import low_rank

        model, _ = low_rank(_fresh_model(cfg), ranks={k: int(v) for k, v in run.extra["compress"]["ranks"].items()})
    else:
        model = _fresh_model(cfg)
    return _weights(model, run.model_file).eval()


def _fresh_model(cfg: RunConfig) -> Module:
    """The model a run of ``cfg`` trains (its task's ``model``), freshly built, to load weights into."""
    from dlbasics.train.task import TASKS

    return TASKS.get(cfg.task).builder.build(cfg).model


def _weights(model: Module, file: Path) -> Module:
    if not file.is_file():
        raise RunFolderError(f"{file.parent} holds no trained model (no {file.name}): the run was stopped before "
                             "it ended; continue it with --resume")
    return load_weights(model, file)


def load_weights(model: Module, file: Path) -> Module:
    """``model`` with the weights of ``file`` (a run's model or snapshot) loaded; weights of another model are a
    ``StateDictError`` that names the file."""
    try:
        model.load_state_dict(load(file))
    except StateDictError as e:
        raise StateDictError(f"{file}: {e}") from None
    return model


def load_tokenizer(path: str | Path | RunFolder) -> Any:
    """The tokenizer a text run trained with (its ``tokenizer.json``, read as ``Tokenizer.save`` writes one: a
    damaged file is a ``DataError`` naming it)."""
    from dlbasics.data.text.tokenizers import load_tokenizer as read_tokenizer

    run = path if isinstance(path, RunFolder) else open_run(path)
    file = run.path / TOKENIZER
    if not file.is_file():
        raise RunFolderError(f"{run.path} holds no {TOKENIZER}: it is not the run of a text model "
                             f"({run.config.model.name} on {run.config.data.name})")
    return read_tokenizer(file)


def evaluate_run(path: str | Path, split: str = "test", data_dir: str | None = None, episodes: int | None = None,
                 best: bool = False) -> list[tuple[str, dict]]:
    """The loss and metrics of a run folder's model(s) on ``split`` of its data: one row for most kinds;
    for a cv folder one row per fold, then their mean. A reinforcement run plays ``episodes`` greedy episodes of
    the split (default: its own number). ``best``: the run's best evaluated snapshot (best.safetensors)."""
    from dlbasics.train.config import load_data
    from dlbasics.train.task import TASKS

    if split not in ("train", "val", "test"):
        raise ConfigError(f"--split: invalid choice {split!r} (choose from train, val, test)")
    run = open_run(path, data_dir)
    cfg = _resolved(run)
    if episodes is not None:
        if cfg.data.problem != "reinforcement_learning":
            raise ConfigError(f"--episodes: {run.path} is a {cfg.data.problem} run; episodes are played by a "
                              "reinforcement run's agent")
        if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
            raise ConfigError(f"--episodes: must be an integer >= 1, got {episodes!r}")
        if split == "train":
            raise ConfigError("--split train: a reinforcement run's training split is its environment; evaluate on "
                              "val or test episodes")
        cfg = copy.deepcopy(cfg)
        cfg.data.options["eval_episodes" if split == "val" else "test_episodes"] = episodes
    splits = load_data(cfg)
    if getattr(splits, split) is None:
        raise ConfigError(f"--split {split}: the data set {cfg.data.name!r} has no {split} split; use --split val")
    task = TASKS.get(cfg.task).builder
    loader = task.eval_loader(getattr(splits, split), 512)
    model = load_model(run)
    if best:
        snapshot = run.path / "best.safetensors"
        if not snapshot.is_file():
            raise RunFolderError(f"--best: {run.path} keeps no best snapshot (best.safetensors); GAN and DQN runs do")
        load_weights(model, snapshot)
    if run.kind != "cv":
        return [(run.kind, task.evaluate_model(cfg, model, loader))]
    rows = [(f"fold {i + 1}", task.evaluate_model(cfg, m, loader)) for i, m in enumerate(model.members)]
    mean = {k: sum(r[k] for _, r in rows) / len(rows) for k in rows[0][1]}
    return [*rows, ("mean", mean)]


__all__ = ["CHECKPOINT", "CONFIG", "KINDS", "MODEL", "TOKENIZER", "MetricsWriter", "RunFolder", "evaluate_run",
           "json_text", "load_model", "load_tokenizer", "load_weights", "new_run_dir", "open_run", "open_run_kind",
           "read_metrics", "save_model", "write_config", "write_json", "write_metrics"]
