"""The model zoo's registry: every model registers its builder with its paper, so ``dlbasics train --model``
and ``dlbasics zoo`` find it. ``create(name, **options)`` builds one; unknown names and options are
one-line errors that list the valid choices."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlbasics.nn.module import Module


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[..., Module]
    paper: str
    default_data: str
    summary: str

    def options(self) -> list[str]:
        return list(inspect.signature(self.builder).parameters)


_REGISTRY: dict[str, ModelInfo] = {}


def register(name: str, *, paper: str, default_data: str, summary: str = "") -> Callable:
    """Decorator: ``@register("mlp", paper="...", default_data="digits")`` on a builder or Module class."""

    def deco(builder: Callable[..., Module]) -> Callable[..., Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelInfo(name, builder, paper, default_data, summary)
        return builder

    return deco


def available() -> list[str]:
    """The names ``create`` accepts."""
    return sorted(_REGISTRY)


def info(name: str) -> ModelInfo:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def create(name: str, **options: Any) -> Module:
    """Build the model ``name`` with ``options`` (e.g. ``create("mlp", in_features=64, num_classes=10)``)."""
    entry = info(name)
    valid = entry.options()
    unknown = [k for k in options if k not in valid]
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {', '.join(unknown)}; options: {', '.join(valid)}")
    return entry.builder(**options)
