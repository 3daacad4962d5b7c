"""Typed options: what kind of value an option takes, read from a builder's annotation, and the check of a
value given on the command line, in a TOML file or from Python against it.

The run description (``train/config.py``) uses this for its own fields and for the options that models,
optimizers, data sets and schedules declare in their signatures. A value of the wrong type is a one-line
``ConfigError`` that names the option as its caller wrote it: ``batch_norm = "no"`` in a TOML file is
``run.toml: batch_norm: must be true or false, got 'no'``, not batch norm switched on.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dlbasics.errors import ConfigError


@dataclass(frozen=True)
class Kind:
    """The type of an option's value.

    ``base`` is "int", "float", "number" (an int or a float, kept as given), "bool", "str", "path" or "any";
    ``count`` is None for one value, -1 for a
    list of any length (``--hidden 128 64``) or n for exactly n values (``--betas 0.9 0.999``); ``choices``
    restricts a str (a ``Literal``); ``nullable`` admits None (an ``X | None`` annotation)."""

    base: str
    count: int | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False

    def describe(self) -> str:
        one = {"int": "an integer", "float": "a finite number", "number": "a finite number", "bool": "true or false",
               "str": "a string", "path": "a path (a string)", "any": "a value"}[self.base]
        if self.choices:
            one = "one of " + ", ".join(map(str, self.choices))
        if self.count is None:
            return one
        many = {"int": "integers", "float": "finite numbers", "number": "finite numbers", "bool": "booleans",
                "str": "strings", "path": "paths", "any": "values"}[self.base]
        return f"a list of {many}" if self.count < 0 else f"a list of {self.count} {many}"


_BASES = {int: "int", float: "float", bool: "bool", str: "str"}


def kind_of(annotation: Any) -> Kind:
    """The ``Kind`` of a type annotation: ``int``, ``float``, ``bool``, ``str``, ``Literal[...]``,
    ``Sequence[int]`` / ``list[int]`` / ``tuple[int, ...]``, ``tuple[float, float]``, each optionally
    ``| None``. Anything else (or no annotation) is "any": the builder checks the value itself."""
    nullable = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        if set(args) == {int, float}:  # a count or a fraction (a validation split's size)
            return Kind("number", nullable=nullable)
        if len(args) != 1:
            return Kind("any", nullable=nullable)
        annotation = args[0]
        origin = typing.get_origin(annotation)
    if annotation in _BASES:
        return Kind(_BASES[annotation], nullable=nullable)
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        return Kind("str" if all(isinstance(v, str) for v in values) else "any", choices=values, nullable=nullable)
    args = typing.get_args(annotation)
    if origin is tuple and args and args[-1] is not Ellipsis and len(set(args)) == 1 and args[0] in _BASES:
        return Kind(_BASES[args[0]], count=len(args), nullable=nullable)
    sequence = isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str
    if sequence and args and args[0] in _BASES:  # list[int], Sequence[int], tuple[int, ...]
        return Kind(_BASES[args[0]], count=-1, nullable=nullable)
    return Kind("any", nullable=nullable)


def _one(value: Any, kind: Kind, where: str) -> Any:
    def bad() -> ConfigError:
        return ConfigError(f"{where}: must be {kind.describe()}, got {value!r}")

    base = kind.base
    if base == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return int(value)
    if base in ("float", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise bad()
        return float(value) if base == "float" else value
    if base in ("str", "path"):
        if not isinstance(value, str) or (base == "path" and not value):
            raise bad()
        if kind.choices and value not in kind.choices:
            raise ConfigError(f"{where}: invalid choice {value!r} (choose from {', '.join(map(str, kind.choices))})")
        return value
    if kind.choices and value not in kind.choices:
        raise ConfigError(f"{where}: invalid choice {value!r} (choose from {', '.join(map(str, kind.choices))})")
    return value


def coerce(value: Any, kind: Kind, where: str) -> Any:
    """``value`` checked against ``kind`` (ints are accepted for floats and made floats; a single value for
    a list of any length becomes a list of one); ``ConfigError`` naming ``where`` otherwise."""
    if value is None:
        if kind.nullable:
            return None
        raise ConfigError(f"{where}: must be {kind.describe()}, got nothing (None)")
    if kind.count is None:
        return _one(value, kind, where)
    if not isinstance(value, list | tuple):
        if kind.count == -1 and not isinstance(value, str | dict):
            value = [value]
        else:
            raise ConfigError(f"{where}: must be {kind.describe()}, got {value!r}")
    if kind.count >= 0 and len(value) != kind.count:
        raise ConfigError(f"{where}: must be {kind.describe()}, got {len(value)} values: {value!r}")
    one = Kind(kind.base, None, kind.choices)
    return [_one(v, one, where) for v in value]


def parse_text(text: str) -> Any:
    """A command-line word as the value it spells: an int, else a float, else the text itself (for options
    whose annotation admits several types)."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


__all__ = ["Kind", "coerce", "kind_of", "parse_text"]
