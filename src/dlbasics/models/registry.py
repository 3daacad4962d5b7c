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
DATA_OPTIONS = ("in_features", "num_classes", "in_channels", "image_size", "vocab_size", "block_size", "src_vocab_size",
                "tgt_vocab_size", "max_len", "question_size")


class ModelInfo:
    """A registered model: ``name``, ``builder``, ``paper``, ``default_data``, ``summary``, ``options()``, the
    ``task`` that trains it, its ``recipe`` (the run options it trains with unless told otherwise) and the model
    it is ``finetune``d into (None for most)."""

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.name, self.builder = entry.name, entry.builder
        self.paper: str = entry.meta["paper"]
        self.default_data: str = entry.meta["default_data"]
        self.summary: str = entry.meta.get("summary", "")
        self.task: str = entry.meta.get("task", "supervised")
        self.recipe: dict[str, Any] = dict(entry.meta.get("recipe", {}))
        self.finetune: str | None = entry.meta.get("finetune")

    def options(self) -> list[str]:
        return list(self.entry.options())


def register(name: str, *, paper: str, default_data: str, summary: str = "", task: str = "supervised",
             recipe: dict[str, Any] | None = None, finetune: str | None = None) -> Callable:
    """Decorator: ``@register("mlp", paper="...", default_data="digits")`` on a builder or Module class.

    ``task`` is the training step a run of this model takes by default (``--task``); ``recipe`` holds run
    options (``{"steps": 2000, "optimizer": "adamw", ...}``) that replace the general defaults for this
    model: what its paper (or the reference recipe) trains it with. The user's options win over both. ``finetune``
    names the model that ``dlbasics finetune`` trains from a run of this one (a pre-trained encoder's classifier)."""
    return MODELS.register(name, paper=paper, default_data=default_data, summary=summary, task=task,
                           recipe=dict(recipe or {}), finetune=finetune)


def available() -> list[str]:
    """The names ``create`` accepts."""
    return sorted(MODELS.available())


def info(name: str) -> ModelInfo:
    return ModelInfo(MODELS.get(name))


def create(name: str, **options: Any) -> Module:
    """Build the model ``name`` with ``options`` (e.g. ``create("mlp", in_features=64, num_classes=10)``)."""
    return MODELS.create(name, **options)
