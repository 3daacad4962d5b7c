"""The model zoo: one file per model family, each opening with its paper; ``available()`` / ``create()``."""

from dlbasics.models import mlp
from dlbasics.models.mlp import MLP
from dlbasics.models.registry import ModelInfo, available, create, info, register

__all__ = ["MLP", "ModelInfo", "available", "create", "info", "mlp", "register"]
