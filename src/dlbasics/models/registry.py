"""The model zoo's registry: every model registers its builder with its paper, so ``dlbasics train --model``
and ``dlbasics zoo`` find it. ``create(name, **options)`` builds one; unknown names and options are
one-line errors that list the valid choices. A model's options are its builder's keyword parameters: the
run description reads them from the signature, so each reaches the command line and TOML by itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlbasics.nn.module import Module
from dlbasics.registry import Entry, Registry

MODELS = Registry("model")

# Options the data decides (the run description fills them in from the data set), not the user.
DATA_OPTIONS = ("in_features", "num_classes", "in_channels", "image_size")


class ModelInfo:
    """A registered model: ``name``, ``builder``, ``paper``, ``default_data``, ``summary``, ``options()``."""

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.name, self.builder = entry.name, entry.builder
        self.paper: str = entry.meta["paper"]
        self.default_data: str = entry.meta["default_data"]
        self.summary: str = entry.meta.get("summary", "")

    def options(self) -> list[str]:
        return list(self.entry.options())


def register(name: str, *, paper: str, default_data: str, summary: str = "") -> Callable:
    """Decorator: ``@register("mlp", paper="...", default_data="digits")`` on a builder or Module class."""
    return MODELS.register(name, paper=paper, default_data=default_data, summary=summary)


def available() -> list[str]:
    """The names ``create`` accepts."""
    return sorted(MODELS.available())


def info(name: str) -> ModelInfo:
    return ModelInfo(MODELS.get(name))


def create(name: str, **options: Any) -> Module:
    """Build the model ``name`` with ``options`` (e.g. ``create("mlp", in_features=64, num_classes=10)``)."""
    return MODELS.create(name, **options)
