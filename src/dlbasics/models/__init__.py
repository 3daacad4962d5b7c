"""The model zoo: one file per model family, each opening with its paper; ``available()`` / ``create()``."""

from dlbasics.models import alexnet, gpt, lenet, mlp, resnet
from dlbasics.models.alexnet import AlexNet
from dlbasics.models.lenet import LeNet5
from dlbasics.models.mlp import MLP
from dlbasics.models.registry import ModelInfo, available, create, info, register
from dlbasics.models.resnet import BasicBlock, Bottleneck, ResNet

__all__ = [
    "MLP", "AlexNet", "BasicBlock", "Bottleneck", "LeNet5", "ModelInfo", "ResNet", "alexnet", "available",
    "create", "info", "lenet", "mlp", "register", "resnet",
]
