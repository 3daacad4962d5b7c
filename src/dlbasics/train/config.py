"""The run description: what a run is - data, model, loss, algorithm, budget, regularizers - as one typed
value, built the same way from command-line flags, a TOML file or Python, and checked in one place.

    cfg = RunConfig.from_options({"model": "resnet", "depth": 32, "data": "fashion-mnist", "lr": 0.1})
    cfg = RunConfig.from_toml("run.toml")          # flat keys (lr = 0.1) or sections ([algorithm] lr = 0.1)
    cfg = cfg.resolve(splits)                      # fill in what the data decides (classes, input shape)
    cfg.to_dict()                                  # sections, every default filled in: a run's config.json

An option has one flat name - the flag without its dashes, the TOML key - and belongs to one section. The
options of a model, an optimizer, a data set and a learning-rate schedule are their builders' keyword
parameters, read through the registries with their types and defaults: ResNet's ``depth`` and Adam's
``betas`` need no line here. Messages name an option as the caller wrote it: ``--lr`` on the command line,
``run.toml: lr`` in a file, ``lr`` from Python.

``build_model``, ``build_loss``, ``build_optimizer``, ``build_scheduler`` and ``RunBuilder`` turn a resolved
description into the objects a run trains; ``RunBuilder`` is a picklable ``build_run(seed)``, so the same
description trains in this process or in worker processes (k-fold, ensembles).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from dlbasics.errors import ConfigError, DLBasicsError
from dlbasics.models.registry import DATA_OPTIONS
from dlbasics.registry import Entry, Option, Registry
from dlbasics.train.options import Kind, coerce, kind_of

FORMAT = 2  # of the saved description (config.json); 1 was the flat dict of dlbasics 0.1
SECTIONS = ("data", "model", "loss", "algorithm", "budget", "regularizers")
DEFAULT_EPOCHS = 40


# ---- the options ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """An option of the run description itself (not of a model, optimizer, data set or schedule)."""

    name: str  # the flat name: --batch-size is batch_size
    section: str  # "run" (top level) or one of SECTIONS
    kind: Kind
    default: Any
    help: str


FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("task", "run", Kind("str", nullable=True), None, "what a training step does (default: the model's own, "
          "supervised for most)"),
    Field("seed", "run", Kind("int"), 0, "seeds weights, data order, dropout, MixUp and augmentation (default 0)"),
    Field("data", "data", Kind("str", nullable=True), None, "the data set (default: the model's own, see "
          "dlbasics zoo)"),
    Field("batch_size", "data", Kind("int"), 32, "samples per training batch (default 32)"),
    Field("model", "model", Kind("str"), "mlp", "the model (default mlp)"),
    Field("init_from", "model", Kind("path", nullable=True), None, "start from the weights of a run folder (or a "
          ".safetensors file): those whose names and shapes match the model's, the rest as initialized (fine-tuning)"),
    Field("loss", "loss", Kind("str", nullable=True), None, "default: cross_entropy for classification, mse for "
          "regression"),
    Field("label_smoothing", "loss", Kind("float"), 0.0, "for cross_entropy (default 0)"),
    Field("optimizer", "algorithm", Kind("str"), "adam", "the update rule (default adam); its options and their "
          "defaults are the class's"),
    Field("scheduler", "algorithm", Kind("str"), "constant", "the learning-rate schedule (default constant)"),
    Field("schedule_unit", "algorithm", Kind("str", choices=("epoch", "step"), nullable=True), None,
          "step the schedule every epoch or every training step (default: the budget's unit)"),
    Field("epochs", "budget", Kind("int", nullable=True), None, f"epochs to train (default {DEFAULT_EPOCHS}, or "
          "none with --steps)"),
    Field("steps", "budget", Kind("int", nullable=True), None, "training steps (batches) to train, instead of "
          "--epochs"),
    Field("eval_every", "budget", Kind("int", nullable=True), None, "validate and write a row of metrics every N "
          "epochs, or N steps with --steps (default 1 epoch, or a tenth of the steps)"),
    Field("clip_grad_norm", "budget", Kind("float", nullable=True), None, "scale the gradients to this total "
          "2-norm when above it (nn.utils.clip_grad_norm_)"),
    Field("checkpoint_every", "budget", Kind("int", nullable=True), None, "write the resumable checkpoint every N "
          "training steps (default: at every evaluation)"),
    Field("mixup", "regularizers", Kind("float", nullable=True), None, "MixUp training batches, lambda ~ "
          "Beta(ALPHA, ALPHA)"),
    Field("patience", "regularizers", Kind("int", nullable=True), None, "early stopping on val_loss after N "
          "evaluations without improvement (restores the best weights)"),
)}

# Checks of a value beyond its type, by option name (the same check wherever the option comes from).
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "epochs": (lambda v: v >= 1, "an integer >= 1"),
    "steps": (lambda v: v >= 1, "an integer >= 1"),
    "eval_every": (lambda v: v >= 1, "an integer >= 1"),
    "checkpoint_every": (lambda v: v >= 1, "an integer >= 1"),
    "patience": (lambda v: v >= 0, "an integer >= 0"),
    "warmup": (lambda v: v >= 0, "an integer >= 0"),
    "lr": (lambda v: v > 0, "a finite number > 0"),
    "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "weight_decay": (lambda v: v >= 0, "a finite number >= 0"),
    "dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "label_smoothing": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "mixup": (lambda v: v > 0, "a Beta(alpha, alpha) parameter > 0"),
    "clip_grad_norm": (lambda v: v > 0, "a finite number > 0"),
    "hidden": (lambda v: len(v) > 0 and all(h > 0 for h in v), "a list of positive integers"),
}


@dataclass(frozen=True)
class Component:
    """A part of the run chosen by name from a registry, whose builder's parameters are further options:
    the model (``--model resnet --depth 32``), the optimizer, the data set, the learning-rate schedule."""

    chooser: str  # the flat name that chooses the entry: "model"
    section: str
    skip: tuple[str, ...]  # builder parameters that are not user options (filled in by the run)
    rename: tuple[tuple[str, str], ...] = ()  # builder parameter -> option name (root -> data_dir)
    hints: tuple[tuple[str, str], ...] = ()  # option -> why an entry without it has none

    def registry(self) -> Registry:
        from dlbasics.data.datasets import DATASETS
        from dlbasics.models.registry import MODELS
        from dlbasics.optim import OPTIMIZERS
        from dlbasics.optim.schedules import SCHEDULES

        return {"model": MODELS, "optimizer": OPTIMIZERS, "data": DATASETS, "scheduler": SCHEDULES}[self.chooser]

    def options(self, entry: Entry) -> dict[str, Option]:
        """The entry's options under their option names."""
        names = dict(self.rename)
        return {names.get(k, k): o for k, o in entry.options(skip=self.skip).items()}

    def parameter(self, option: str) -> str:
        """The builder parameter an option name stands for."""
        return {v: k for k, v in self.rename}.get(option, option)


COMPONENTS = (
    Component("model", "model", skip=DATA_OPTIONS),
    Component("optimizer", "algorithm", skip=("params", "maximize")),
    Component("scheduler", "algorithm", skip=("optimizer", "total")),
    Component("data", "data", skip=("seed", "augment_seed"), rename=(("root", "data_dir"),),
              hints=(("data_dir", "it is bundled or generated and reads no files"),)),
)


def option_kind(name: str, option: Option) -> Kind:
    """The kind of value an option takes: its annotation's, but a folder for ``data_dir`` (a loader's ``root``
    is annotated ``str | Path``)."""
    return Kind("path", nullable=True) if name == "data_dir" else kind_of(option.annotation)


def component_options() -> dict[str, tuple[Component, Kind, str]]:
    """Every option a model, optimizer, data set or schedule takes: name -> (component, kind, the entries that
    take it with their defaults, e.g. "alexnet (default 0.5); mlp (default 0.0)").
    A name two kinds of component would share is a bug here (one flag cannot mean two things).
    Recomputed when a registry has changed, so a model registered later brings its options too."""
    names = tuple(tuple(c.registry().available()) for c in COMPONENTS)
    return _component_options(names)


@cache
def _component_options(names: tuple[tuple[str, ...], ...]) -> dict[str, tuple[Component, Kind, str]]:
    table: dict[str, tuple[Component, Kind, str]] = {}
    for comp in COMPONENTS:
        takers: dict[str, list[str]] = {}
        kinds: dict[str, Kind] = {}
        for entry in comp.registry():
            for name, opt in comp.options(entry).items():
                default = "required" if opt.required else f"default {_plain(opt.default)}"
                takers.setdefault(name, []).append(f"{entry.name} ({default})")
                kind = option_kind(name, opt)
                first = kinds.setdefault(name, kind)
                # one flag, one number of values: --hidden 64 32 for one model cannot be --hidden 64 for another
                if first.count != kind.count or ("any" not in (first.base, kind.base) and first.base != kind.base):
                    raise RuntimeError(f"option {name!r} of {comp.chooser} {entry.name!r} takes {kind}, but "
                                       f"{takers[name][0]} takes {first}; rename the builder's parameter")
                if first.choices != kind.choices:  # the flag offers every entry's choices; each entry checks its own
                    union = None if not (first.choices and kind.choices) else tuple(
                        dict.fromkeys(first.choices + kind.choices))
                    kinds[name] = replace(first, choices=union)
        for name, entries in takers.items():
            if name in FIELDS or (name in table and table[name][0] is not comp):
                raise RuntimeError(f"option {name!r} of {comp.chooser} {entries[0]!r} clashes with another option "
                                   "of the run; rename the builder's parameter")
            table[name] = (comp, kinds[name], "; ".join(entries))
    return table


def option_names() -> list[str]:
    """Every option a run description accepts, fields first."""
    return [*FIELDS, *component_options()]


# ---- where an option came from --------------------------------------------------------------------------
class Spelling:
    """How the caller wrote each option, for messages: ``--batch-size`` (command line), ``run.toml:
    batch-size`` (a file), ``batch_size`` (Python)."""

    def __init__(self, style: str = "python", source: str = "", written: Mapping[str, str] | None = None) -> None:
        self.style, self.source, self.written = style, source, dict(written or {})

    def __call__(self, name: str) -> str:
        if self.style == "cli":
            return "--" + name.replace("_", "-")
        key = self.written.get(name, name)
        return f"{self.source}: {key}" if self.source else key


CLI = Spelling("cli")


# ---- the description ------------------------------------------------------------------------------------
@dataclass
class DataConfig:
    """The **Data** section. ``options`` are the data set's own (``data_dir``, ``augment``, ``noise``, ...);
    ``problem``, ``input_shape``, ``num_classes`` and ``classes`` are filled in from the data by ``resolve``."""

    name: str
    batch_size: int
    options: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # "classification" or "regression"
    input_shape: list[int] | None = None
    num_classes: int | None = None
    classes: list[str] | None = None
    pixel_normalization: list[list[float]] | None = None  # images: per-channel (mean, std) after /255


@dataclass
class ModelConfig:
    """The **Model** section: the zoo's name and its builder's options (after ``resolve``, all of them)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None  # a run folder or .safetensors file whose matching weights the model starts from


@dataclass
class LossConfig:
    """The **Loss** section; ``name`` None means the problem's usual loss until ``resolve``."""

    name: str | None
    label_smoothing: float = 0.0


@dataclass
class AlgorithmConfig:
    """The **Algorithm** section: the optimizer with its options (every one, the class's defaults filled in)
    and the learning-rate schedule with its own."""

    optimizer: str
    options: dict[str, Any]
    scheduler: str
    schedule_options: dict[str, Any]
    schedule_unit: str  # "epoch" or "step"


@dataclass
class BudgetConfig:
    """How long to train and how often to look: one of ``epochs`` or ``steps``; evaluation every
    ``eval_every`` of that unit; gradient clipping; checkpoints every ``checkpoint_every`` steps (None: at
    every evaluation)."""

    epochs: int | None
    steps: int | None
    eval_every: int
    clip_grad_norm: float | None = None
    checkpoint_every: int | None = None


@dataclass
class RegularizerConfig:
    """Regularizers that are not a component's option (dropout and batch norm are the model's, weight decay
    the optimizer's, label smoothing the loss's): MixUp and early stopping."""

    mixup: float | None = None
    patience: int | None = None


@dataclass
class RunConfig:
    """A whole run: Data + Model + Loss + Algorithm, the budget and the regularizers, plus the task (what one
    training step does) and the seed. Build it with ``from_options``, ``from_toml`` or ``from_dict``, never
    by hand: those check every value."""

    task: str
    seed: int
    data: DataConfig
    model: ModelConfig
    loss: LossConfig
    algorithm: AlgorithmConfig
    budget: BudgetConfig
    regularizers: RegularizerConfig
    # the options the caller gave, as they gave them (the rest are defaults): what ``replace`` starts from
    given: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # how the caller spelled them, so that what ``resolve`` and the builders find names the option the same way
    spelling: Spelling = field(default_factory=Spelling, compare=False, repr=False)

    # ---- building ----
    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None, spelling: Spelling | None = None,
                     **kwargs: Any) -> RunConfig:
        """The description of ``options``: flat names (``lr``, ``depth``, dashes or underscores) or sections
        (``{"algorithm": {"lr": 0.1}}``), plus keyword arguments. Every value is checked here; a mistake is a
        ``ConfigError`` naming the option as ``spelling`` says the caller wrote it."""
        spelling = spelling or Spelling()
        flat, resolved = _flatten({**(options or {}), **kwargs}, spelling)
        return _build(flat, resolved, spelling)

    @classmethod
    def from_toml(cls, path: str | Path, overrides: Mapping[str, Any] | None = None,
                  override_spelling: Spelling = CLI) -> RunConfig:
        """The description in TOML file ``path`` (flat keys or sections), with ``overrides`` (command-line
        options, which win) applied."""
        loaded, written = read_toml(path)
        spelling = Spelling("toml", str(path), written)
        flat, resolved = _flatten(loaded, spelling)
        over, _ = _flatten(dict(overrides or {}), override_spelling)
        merged = {**flat, **over}
        return _build(merged, resolved, _Mixed(spelling, override_spelling, set(over)))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "") -> RunConfig:
        """The inverse of ``to_dict`` (a run folder's ``config.json``)."""
        if d.get("format") != FORMAT:
            raise ConfigError(f"{source or 'config'}: format {d.get('format')!r} is not {FORMAT}, the run "
                              "description this dlbasics writes")
        body = {k: v for k, v in d.items() if k != "format"}
        return cls.from_options(body, Spelling("json", source))

    def to_dict(self) -> dict[str, Any]:
        """Sections of plain values, every default filled in (JSON-ready)."""
        data = {"name": self.data.name, "batch_size": self.data.batch_size, **self.data.options}
        data |= {k: getattr(self.data, k) for k in _RESOLVED["data"] if getattr(self.data, k) is not None}
        a = self.algorithm
        return {
            "format": FORMAT, "task": self.task, "seed": self.seed, "data": data,
            "model": {"name": self.model.name, **self.model.options,
                      **({"init_from": self.model.init_from} if self.model.init_from else {})},
            "loss": {"name": self.loss.name, "label_smoothing": self.loss.label_smoothing},
            "algorithm": {"optimizer": a.optimizer, **a.options, "scheduler": a.scheduler, **a.schedule_options,
                          "schedule_unit": a.schedule_unit},
            "budget": dataclasses.asdict(self.budget),
            "regularizers": dataclasses.asdict(self.regularizers),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def options(self) -> dict[str, Any]:
        """The flat options the caller gave (what ``from_options`` took); defaults and what the data decides
        are left out, so that a changed option (another optimizer, say) brings its own defaults."""
        return dict(self.given)

    def replace(self, spelling: Spelling | None = None, **options: Any) -> RunConfig:
        """A new description with ``options`` changed, checked like any other (hyperparameter search)."""
        return RunConfig.from_options({**self.options(), **options}, spelling)

    # ---- what the data decides ----
    @property
    def resolved(self) -> bool:
        return self.data.problem is not None

    def resolve(self, splits: Any) -> RunConfig:
        """This description with what the data decides filled in: the problem, input shape and classes; the
        model's data-given options (in_features, num_classes, in_channels, image_size) and all its defaults;
        the loss. Checks that the options fit the data (a regression cannot take cross-entropy, a batch cannot
        be larger than the training split)."""
        from dlbasics.data.checks import check_batch_size

        info = splits.info
        out = copy.deepcopy(self)  # ``given`` comes along: a resolved description still knows what was asked
        out.data.problem = info.task
        out.data.input_shape = [int(s) for s in info.input_shape]
        out.data.num_classes = None if info.num_classes is None else int(info.num_classes)
        out.data.classes = None if info.classes is None else [str(c) for c in info.classes]
        norm = getattr(info, "pixel_normalization", None)
        out.data.pixel_normalization = None if norm is None else [list(map(float, v)) for v in norm]
        if info.task == "reinforcement_learning" and out.task != "reinforcement":
            raise ConfigError(f"{self.spelling('data')} {out.data.name}: an environment to act in, not samples to "
                              f"learn from; the {out.task} task cannot train on it (train an agent: --model dqn)")
        _resolve_model(out, info)
        _resolve_loss(out)
        if out.regularizers.mixup is not None and info.task != "classification":
            raise ConfigError(f"{self.spelling('mixup')}: mixes class labels; the data set {out.data.name!r} is a "
                              f"{info.task.replace('_', ' ')} task")
        if hasattr(splits.train, "__len__"):  # an environment has no size: its batches are replayed steps
            check_batch_size(out.data.batch_size, len(splits.train), self.spelling("batch_size"))
        return out

    # ---- convenience ----
    @property
    def metrics(self) -> tuple[str, ...]:
        return {"classification": ("accuracy",), "regression": ("mae",)}.get(self.data.problem, ())

    @property
    def lr(self) -> float:
        return float(self.algorithm.options["lr"])

    def __str__(self) -> str:
        return self.to_json()


class _Mixed(Spelling):
    """File options spelled as in the file, command-line overrides as flags."""

    def __init__(self, file: Spelling, cli: Spelling, from_cli: set[str]) -> None:
        super().__init__()
        self.file, self.cli, self.from_cli = file, cli, from_cli

    def __call__(self, name: str) -> str:
        return self.cli(name) if name in self.from_cli else self.file(name)


def read_toml(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The keys of a TOML file, flat or in sections, and how each was written (``batch-size``)."""
    import re

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"--config {path}: not valid TOML (not UTF-8: byte 0x{e.object[e.start]:02x} at offset "
                          f"{e.start})") from None
    except OSError as e:  # e.g. no permission: the user's to fix, so one line, not a traceback
        raise ConfigError(f"--config {path}: cannot be read: {e.strerror or e}") from None
    # tomllib's memory grows with the square of a dotted key's parts (one line "a.a.a...=1" of 16 kB takes
    # 260 MB); a run description has two at most (a section and a key), so refuse a key of 16 before parsing
    part = r"""(?:[\w-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
    if deep := re.search(rf"^[ \t]*\[*[ \t]*{part}(?:[ \t]*\.[ \t]*{part}){{15}}", text, flags=re.M):
        line = text.count("\n", 0, deep.start()) + 1
        raise ConfigError(f"--config {path}: not valid TOML for a run (line {line}: a dotted key of more than 15 "
                          "parts; a run description nests at most [section] key)")
    try:
        loaded = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--config {path}: not valid TOML ({e})") from None
    except RecursionError:  # arrays or inline tables nested a thousand deep
        raise ConfigError(f"--config {path}: not valid TOML (values nested too deeply to read)") from None
    written: dict[str, str] = {}
    for key, value in loaded.items():
        if isinstance(value, dict) and key in SECTIONS:
            for k in value:
                written[_flat_key(key, k)] = f"[{key}] {k}"
        else:
            written[key.replace("-", "_")] = key
    return loaded, written


# ---- the checks, in one place ---------------------------------------------------------------------------
_RESOLVED = {"data": ("problem", "input_shape", "num_classes", "classes", "pixel_normalization")}


def _flat_key(section: str, key: str) -> str:
    key = key.replace("-", "_")
    if key == "name":
        return {"data": "data", "model": "model", "loss": "loss"}.get(section, key)
    return key


def _flatten(options: Mapping[str, Any], spelling: Spelling) -> tuple[dict[str, Any], dict[str, Any]]:
    """Flat options, and the values a resolved description carries (problem, input_shape, the model's data
    options) that only a saved description may give."""
    flat: dict[str, Any] = {}
    resolved: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict) and key in SECTIONS:
            for k, v in value.items():
                name = _flat_key(key, k)
                if name in _RESOLVED.get(key, ()) or (key == "model" and name in DATA_OPTIONS):
                    resolved[f"{key}.{name}"] = v
                else:
                    _put(flat, name, v, spelling)
        else:
            _put(flat, key.replace("-", "_"), value, spelling)
    return flat, resolved


def _put(flat: dict[str, Any], name: str, value: Any, spelling: Spelling) -> None:
    if name in flat:
        raise ConfigError(f"{spelling(name)}: given twice")
    flat[name] = value


def _unknown(name: str, spelling: Spelling) -> ConfigError:
    import difflib

    valid = option_names()
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (valid: {', '.join(valid)})"
    return ConfigError(f"{spelling(name)}: unknown option{hint}")


def _check(name: str, value: Any, kind: Kind, spelling: Spelling) -> Any:
    value = coerce(value, kind, spelling(name))
    if value is not None and name in CHECKS:
        ok, what = CHECKS[name]
        if not ok(value):
            raise ConfigError(f"{spelling(name)}: must be {what}, got {value!r}")
    return value


def _choose(flat: dict[str, Any], comp: Component, default: str, spelling: Spelling) -> Entry:
    name = flat.get(comp.chooser)
    name = default if name is None else _check(comp.chooser, name, Kind("str"), spelling)
    return comp.registry().get(name, spelling(comp.chooser))


def _component(flat: dict[str, Any], comp: Component, entry: Entry, spelling: Spelling,
               fill: bool = True) -> dict[str, Any]:
    """The entry's options from ``flat`` (checked), its defaults filled in where ``fill``; an option of another
    entry of the same component is an error naming the entry's own options."""
    own = comp.options(entry)
    table = component_options()
    out: dict[str, Any] = {}
    for name, value in flat.items():
        if name in FIELDS or table.get(name, (None,))[0] is not comp:
            continue
        if name not in own:
            hint = dict(comp.hints).get(name)
            what = f"{spelling(name)}: the {comp.registry().what} {entry.name!r}"
            if hint:
                raise ConfigError(f"{what} takes no such option: {hint}")
            raise ConfigError(f"{what} has no such option (its options: {', '.join(own) or 'none'})")
        out[name] = _check(name, value, option_kind(name, own[name]), spelling)
    for name, opt in own.items():
        if name in out:
            continue
        if opt.required:
            what = "folder that holds its files" if name == "data_dir" else "value"
            raise ConfigError(f"{spelling(name)}: the {comp.registry().what} {entry.name!r} needs it; give the {what}")
        if fill:
            out[name] = _plain(opt.default)
    return out


def _plain(value: Any) -> Any:
    """A default as JSON would give it back (tuples as lists), so a saved description reads back equal."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _data_argument(value: str, flat: dict[str, Any], comp: Component,
                   spelling: Spelling) -> tuple[str, dict[str, Any]]:
    """``--data NAME:VALUE`` as ``--data NAME`` and the option the data set names as its ``argument``."""
    name, arg = value.split(":", 1)
    entry = comp.registry().get(name, spelling("data"))
    option = entry.meta.get("argument")
    if option is None:
        takers = [e.name for e in comp.registry() if "argument" in e.meta]
        raise ConfigError(f"{spelling('data')} {value}: the data set {entry.name!r} takes no NAME:VALUE argument "
                          f"(those that do: {', '.join(takers)})")
    if option in flat:
        raise ConfigError(f"{spelling('data')} {value}: gives {option} twice ({spelling(option)} is given too)")
    return entry.name, {**flat, option: arg}


def _recipe(model: Entry, flat: dict[str, Any], table: dict[str, tuple[Component, Kind, str]]) -> dict[str, Any]:
    """The model's recipe options that stand in for the general defaults: those the caller did not give, nor
    made meaningless - a budget given in epochs drops the recipe's steps, another optimizer (data set, schedule)
    drops the recipe's options of its own."""
    chosen = {c.chooser for c in COMPONENTS if c.chooser in flat and flat[c.chooser] is not None}
    out = {}
    for key, value in model.meta.get("recipe", {}).items():
        owner = table[key][0].chooser if key in table else None
        if key in flat or owner in chosen or (key in ("steps", "epochs") and ("steps" in flat or "epochs" in flat)):
            continue
        out[key] = value
    return out


def _build(flat: dict[str, Any], resolved: dict[str, Any], spelling: Spelling) -> RunConfig:
    table = component_options()
    for name in flat:
        if name not in FIELDS and name not in table:
            raise _unknown(name, spelling)
    comps = {c.chooser: c for c in COMPONENTS}
    model = _choose(flat, comps["model"], "mlp", spelling)
    given = dict(flat)
    flat = {**_recipe(model, flat, table), **flat}
    fields = {name: _check(name, flat.get(name, f.default), f.kind, spelling) for name, f in FIELDS.items()}
    from dlbasics.train.task import TASKS

    task = TASKS.get(fields["task"] or model.meta.get("task", "supervised"), spelling("task")).name
    data_name = fields["data"] or model.meta["default_data"]
    if ":" in data_name:  # NAME:VALUE, e.g. text:notes.txt: the value is the data set's argument option
        data_name, flat = _data_argument(data_name, flat, comps["data"], spelling)
    data = _choose({**flat, "data": data_name}, comps["data"], data_name, spelling)
    optimizer = _choose(flat, comps["optimizer"], "adam", spelling)
    schedule = _choose(flat, comps["scheduler"], "constant", spelling)

    model_options = _component(flat, comps["model"], model, spelling, fill=False)
    for key, value in resolved.items():  # a saved description: the data's part of the model options
        section, name = key.split(".")
        if section == "model":
            model_options[name] = value
    opt_options = _component(flat, comps["optimizer"], optimizer, spelling)
    if opt_options.get("nesterov") and opt_options.get("momentum", 0) <= 0:
        raise ConfigError(f"{spelling('nesterov')}: needs {spelling('momentum')} > 0")

    epochs, steps = fields["epochs"], fields["steps"]
    if epochs is not None and steps is not None:
        raise ConfigError(f"{spelling('steps')}: a budget is in epochs or in steps, not both (epochs is given too)")
    if steps is None and epochs is None:
        epochs = DEFAULT_EPOCHS
    unit = "epoch" if steps is None else "step"
    eval_every = fields["eval_every"] or (1 if steps is None else max(1, steps // 10))
    if fields["loss"] is not None:
        from dlbasics.nn.losses import LOSSES

        LOSSES.get(fields["loss"], spelling("loss"))
    if fields["mixup"] is not None and fields["loss"] not in (None, "cross_entropy"):
        raise ConfigError(f"{spelling('mixup')}: trains on mixed (soft) targets, which needs {spelling('loss')} "
                          f"cross_entropy, not {fields['loss']}")

    cfg = RunConfig(
        task=task, seed=fields["seed"],
        data=DataConfig(data.name, fields["batch_size"], _component(flat, comps["data"], data, spelling)),
        model=ModelConfig(model.name, model_options, fields["init_from"]),
        loss=LossConfig(fields["loss"], fields["label_smoothing"]),
        algorithm=AlgorithmConfig(optimizer.name, opt_options, schedule.name,
                                  _component(flat, comps["scheduler"], schedule, spelling),
                                  fields["schedule_unit"] or unit),
        budget=BudgetConfig(epochs, steps, eval_every, fields["clip_grad_norm"], fields["checkpoint_every"]),
        regularizers=RegularizerConfig(fields["mixup"], fields["patience"]),
        given=given, spelling=spelling,
    )
    for key, value in resolved.items():
        section, name = key.split(".")
        if section == "data":
            setattr(cfg.data, name, value)
    return cfg


def model_options(name: str, info: Any, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every option of model ``name`` for data described by ``info`` (a ``DatasetInfo``), in its builder's
    order: what the data decides (in_features, num_classes, in_channels, image_size), then ``given``, then
    the builder's defaults."""
    from dlbasics.models.registry import MODELS

    accepted = MODELS.get(name).options()
    data: dict[str, Any] = {"in_features": info.in_features, "num_classes": info.out_features}
    if len(info.input_shape) == 3:  # images (C, H, W)
        data |= {"in_channels": info.input_shape[0], "image_size": info.input_shape[1]}
    if info.task == "language_modeling":  # windows of block_size tokens from a vocabulary
        data |= {"vocab_size": info.num_classes, "block_size": info.input_shape[0]}
    data |= info.model_options
    options = {k: v for k, v in data.items() if k in accepted}
    for key, opt in accepted.items():
        if given and key in given:
            options[key] = given[key]
        elif key not in options and not opt.required:
            options[key] = _plain(opt.default)
    return {k: options[k] for k in accepted if k in options}


def _resolve_model(cfg: RunConfig, info: Any) -> None:
    cfg.model.options = model_options(cfg.model.name, info, cfg.model.options)


def _resolve_loss(cfg: RunConfig) -> None:
    problem = cfg.data.problem
    name = cfg.loss.name or ("mse" if problem == "regression" else "cross_entropy")
    if problem == "language_modeling" and name != "cross_entropy":
        raise ConfigError(f"{cfg.spelling('loss')} {name}: a language model is trained by the next token's "
                          "cross-entropy; use cross_entropy")
    if problem == "reinforcement_learning":
        name = cfg.loss.name or "huber"
        if name != "huber":
            raise ConfigError(f"{cfg.spelling('loss')} {name}: a DQN learns by the Huber loss of its TD error; use "
                              "huber")
    if problem == "segmentation" and name not in ("cross_entropy", "cross_entropy_dice"):
        raise ConfigError(f"{cfg.spelling('loss')} {name}: a segmentation model is trained by the pixels' "
                          "cross-entropy; use cross_entropy or cross_entropy_dice")
    if problem == "regression" and name != "mse":
        raise ConfigError(f"{cfg.spelling('loss')} {name}: the data set {cfg.data.name!r} is a regression task; "
                          "use mse")
    cfg.loss.name = name


# ---- from the description to the objects a run trains --------------------------------------------------
def load_data(cfg: RunConfig) -> Any:
    """The ``Splits`` (train, val, test, info) the description names, checked: no NaN or inf inputs, labels
    inside the classes, no empty split (``dlbasics.data.checks``)."""
    from dlbasics.data.checks import check_splits
    from dlbasics.data.datasets import DATASETS

    comp = next(c for c in COMPONENTS if c.chooser == "data")
    kwargs = {comp.parameter(k): v for k, v in cfg.data.options.items()}
    entry = DATASETS.get(cfg.data.name)
    params = entry.options()
    if "seed" in params:
        kwargs["seed"] = 0  # the split is the data set's, the same for every run seed
    if "augment_seed" in params and kwargs.get("augment"):
        kwargs["augment_seed"] = cfg.seed
    try:
        splits = entry.builder(**kwargs)
    except ValueError as e:  # the loader's own argument checks (scikit-learn's for moons' noise, say)
        if isinstance(e, DLBasicsError):
            raise
        raise ConfigError(f"{cfg.spelling('data')} {cfg.data.name}: {e}") from e
    check_splits(splits)
    return splits


def check_model_fits_data(task: Any, splits: Any, cfg: RunConfig) -> None:
    """One forward pass of the task's model on two training samples (eval mode, no graph): a model that cannot take
    the data's samples fails here with a ``DataError`` naming both, not with a traceback from inside a layer."""
    from dlbasics.autograd.grad_mode import no_grad
    from dlbasics.errors import DataError

    batch = task.example_batch(splits)
    x = batch[0] if isinstance(batch, tuple | list) else batch
    while isinstance(x, tuple | list):  # the first array of the inputs, for the message
        x = x[0]
    model = task.model
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            task.probe(batch)
    except (RuntimeError, ValueError) as e:  # a layer that got the wrong shape says which shapes
        if isinstance(e, DLBasicsError):
            raise
        raise DataError(f"the model {cfg.model.name!r} does not take the samples of the data set {cfg.data.name!r}, "
                        f"of shape {tuple(x.shape[1:])}: {e}") from e
    finally:
        model.train(was_training)


def build_model(cfg: RunConfig) -> Any:
    """The model of a resolved description. A value its builder rejects is a ``ConfigError`` naming it."""
    from dlbasics.models.registry import MODELS

    try:
        model = MODELS.create(cfg.model.name, **cfg.model.options)
    except ValueError as e:  # the builder's own argument checks (depth 6n + 2, an unknown activation)
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{cfg.spelling('model')} {cfg.model.name}: {e}") from e
    if cfg.model.init_from:
        load_matching(model, cfg.model.init_from, cfg.spelling("init_from"))
    return model


def load_matching(model: Any, source: str | Path, where: str = "init_from") -> list[str]:
    """Copy into ``model`` every weight of ``source`` (a run folder's model.safetensors, or a .safetensors file)
    whose name and shape match one of the model's; returns their names. The model's other weights keep their
    initialization: a pre-trained encoder under a new head (BERT's ``bert.*`` under a classifier)."""
    from dlbasics.io import load

    path = Path(source)
    file = path / "model.safetensors" if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(f"{where} {source}: no trained model there (expected a run folder with model.safetensors, "
                          "or a .safetensors file)")
    weights = load(file)
    own = model.state_dict()
    matched = [k for k, v in weights.items() if k in own and tuple(own[k].shape) == tuple(v.shape)]
    if not matched:
        raise ConfigError(f"{where} {source}: none of its {len(weights)} weights matches a name and shape of the "
                          f"model {type(model).__name__}")
    model.load_state_dict({k: weights[k] for k in matched}, strict=False)
    return matched


def build_loss(cfg: RunConfig) -> Callable:
    """The loss of a resolved description: the registered loss module, adapted to a classifier's logits where
    the loss expects something else (NLL takes log-probabilities; MSE compares softmax with one-hot rows)."""
    from dlbasics.nn.losses import LOSSES

    name = cfg.loss.name
    classification = cfg.data.problem == "classification"
    if name == "cross_entropy":
        return LOSSES.create(name, label_smoothing=float(cfg.loss.label_smoothing))
    if name == "nll" and classification:
        return _nll_of_logits
    if name == "mse" and classification:
        return _mse_on_one_hot
    return LOSSES.create(name)


def _nll_of_logits(out: Any, y: Any) -> Any:
    from dlbasics.nn import functional as F

    return F.nll_loss(F.log_softmax(out, 1), y)  # the categorical likelihood of the model's logits


def _mse_on_one_hot(out: Any, y: Any) -> Any:
    from dlbasics.nn import functional as F

    return F.mse_loss(F.softmax(out, 1), F.one_hot(y, out.shape[1]).float())  # the lecture's MSE-vs-CE foil


def build_optimizer(cfg: RunConfig, model: Any) -> Any:
    """The optimizer over ``model``'s parameters. Weight decay (L2, or decoupled for adamw) applies to weights
    only: biases and normalization parameters are not decayed (``optim.param_groups``)."""
    from dlbasics import optim

    options = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.algorithm.options.items()}
    wd = float(options.get("weight_decay", 0) or 0)
    params = optim.param_groups(model, wd) if wd else model.parameters()
    try:
        return optim.OPTIMIZERS.create(cfg.algorithm.optimizer, params, **options)
    except ValueError as e:  # the class's own checks (a betas outside [0, 1), say)
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{cfg.spelling('optimizer')} {cfg.algorithm.optimizer}: {e}") from e


def schedule_length(cfg: RunConfig, steps_per_epoch: int) -> int:
    """The run's length in the schedule's unit."""
    b, unit = cfg.budget, cfg.algorithm.schedule_unit
    if unit == "step":
        return b.steps if b.steps is not None else b.epochs * steps_per_epoch
    return b.epochs if b.epochs is not None else math.ceil(b.steps / steps_per_epoch)


def build_scheduler(cfg: RunConfig, optimizer: Any, steps_per_epoch: int) -> Any:
    """The learning-rate scheduler (or None) over the run's length in its unit."""
    from dlbasics.optim.schedules import SCHEDULES

    total = schedule_length(cfg, steps_per_epoch)
    try:
        return SCHEDULES.get(cfg.algorithm.scheduler).builder(optimizer, total, **cfg.algorithm.schedule_options)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{cfg.spelling('scheduler')} {cfg.algorithm.scheduler}: {e}") from e


class RunBuilder:
    """``build_run(seed) -> Run`` for a resolved description; picklable, so worker processes can rebuild the
    same run. The task is built by its registry entry (``Task.build(cfg)``); early stopping (``patience``)
    monitors val_loss; MixUp is seeded with the run's seed."""

    def __init__(self, cfg: RunConfig, steps_per_epoch: int | None = None) -> None:
        if not cfg.resolved:
            raise ValueError("RunBuilder needs a resolved description: cfg.resolve(splits) first")
        self.cfg, self.steps_per_epoch = cfg, steps_per_epoch

    def __call__(self, seed: int) -> Any:
        from dlbasics.data.mixup import MixUp
        from dlbasics.train.callbacks import EarlyStopping
        from dlbasics.train.run import Run
        from dlbasics.train.task import TASKS

        cfg = self.cfg
        task = TASKS.get(cfg.task).builder.build(cfg)
        b, r = cfg.budget, cfg.regularizers
        callbacks = [EarlyStopping(patience=r.patience)] if r.patience is not None else []
        mixup = None if r.mixup is None else MixUp(r.mixup, cfg.data.num_classes, seed=seed)
        return Run(model=task.model, task=task, epochs=b.epochs, steps=b.steps, eval_every=b.eval_every,
                   batch_size=cfg.data.batch_size, metrics=cfg.metrics, callbacks=callbacks, collate_fn=mixup,
                   clip_grad_norm=b.clip_grad_norm, schedule_unit=cfg.algorithm.schedule_unit,
                   scheduler=lambda optimizer, steps_per_epoch: build_scheduler(cfg, optimizer, steps_per_epoch))


__all__ = [
    "CLI",
    "COMPONENTS",
    "FIELDS",
    "AlgorithmConfig",
    "BudgetConfig",
    "ConfigError",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "RegularizerConfig",
    "RunBuilder",
    "RunConfig",
    "Spelling",
    "build_loss",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "check_model_fits_data",
    "component_options",
    "load_data",
    "load_matching",
    "model_options",
    "option_names",
    "read_toml",
]
