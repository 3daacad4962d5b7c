"""Registries: names that a run description, the command line and TOML files resolve to things.

Models, data sets, losses, optimizers, learning-rate schedules and tasks each have one ``Registry``. Adding
one is one ``register`` call next to its code; ``dlbasics --help``, the CLI's options and the "valid
choices" of an error message all come from here, so the command line never lists names of its own.

An entry's *options* are the keyword parameters of its builder, read from its signature with their types
and defaults: that is how every model option (ResNet's ``depth``, the MLP's ``hidden``) reaches the command
line and TOML without being listed anywhere else.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dlbasics.errors import ConfigError

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Option:
    """One keyword parameter of a builder: its name, its annotated type (None if unannotated) and its
    default (``inspect.Parameter.empty`` if it has none)."""

    name: str
    annotation: Any
    default: Any

    @property
    def required(self) -> bool:
        return self.default is _EMPTY


@dataclass(frozen=True)
class Entry:
    """A registered name: the builder (a class or a function), the metadata given at registration
    (``paper=``, ``default_data=``, ``help=``, ...), and the builder's options."""

    name: str
    builder: Callable[..., Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def options(self, skip: tuple[str, ...] = ()) -> dict[str, Option]:
        """The builder's keyword parameters by name (``self``, ``*args``/``**kwargs`` and ``skip`` left out)."""
        target = self.builder.__init__ if inspect.isclass(self.builder) else self.builder
        try:
            hints = typing.get_type_hints(target)
        except Exception:  # an annotation that does not evaluate here: treat the options as untyped
            hints = {}
        out = {}
        for p in inspect.signature(self.builder).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in skip:
                continue
            out[p.name] = Option(p.name, hints.get(p.name), p.default)
        return out


class Registry:
    """Names of one kind (``what``: "model", "data set", ...) mapped to builders.

    ``@registry.register("name", help="...")`` on a class or function registers it; ``registry.get(name)``
    looks it up and raises a one-line ``ConfigError`` naming the valid choices. Names ignore case, and
    ``_`` equals ``-`` (``fashion_mnist`` is ``fashion-mnist``)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, Entry] = {}

    @staticmethod
    def key(name: str) -> str:
        return str(name).strip().lower().replace("_", "-")

    def register(self, name: str, builder: Callable[..., Any] | None = None, **meta: Any) -> Any:
        """Register ``builder`` under ``name``; without ``builder``, a decorator that does so."""

        def add(b: Callable[..., Any]) -> Callable[..., Any]:
            key = self.key(name)
            if key in self._entries:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            self._entries[key] = Entry(name, b, dict(meta))
            return b

        return add if builder is None else add(builder)

    def available(self) -> list[str]:
        """The registered names, in registration order."""
        return [e.name for e in self._entries.values()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.key(name) in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    def get(self, name: str, option: str | None = None) -> Entry:
        """The entry called ``name``; if there is none, a ``ConfigError`` naming the valid choices and
        ``option``, the name under which the caller gave it (a flag, a TOML key)."""
        if isinstance(name, str) and self.key(name) in self._entries:
            return self._entries[self.key(name)]
        if option is None:  # a Python caller: name the kind of thing, not a flag
            raise ConfigError(f"unknown {self.what} {name!r}; available: {', '.join(self.available())}")
        raise ConfigError(f"{option}: invalid choice {name!r} (choose from {', '.join(self.available())})")

    def create(self, name: str, /, *args: Any, **options: Any) -> Any:
        """Build ``name`` with ``args`` and ``options``; an option its builder does not take is a ``ConfigError``."""
        entry = self.get(name)
        valid = entry.options()
        unknown = [k for k in options if k not in valid]
        if unknown:
            raise ConfigError(f"{entry.name}: unknown option(s) {', '.join(unknown)}; options: {', '.join(valid)}")
        return entry.builder(*args, **options)


__all__ = ["Entry", "Option", "Registry"]
