"""The model zoo: one file per model family, each opening with its paper; ``available()`` / ``create()``."""

from dlbasics.models import alexnet, char_lstm, gpt, lenet, mlp, resnet
from dlbasics.models.alexnet import AlexNet
from dlbasics.models.char_lstm import CharLSTM
from dlbasics.models.gpt import GPT, GPTConfig
from dlbasics.models.lenet import LeNet5
from dlbasics.models.mlp import MLP
from dlbasics.models.registry import ModelInfo, available, create, info, register
from dlbasics.models.resnet import BasicBlock, Bottleneck, ResNet

__all__ = [
    "GPT", "MLP", "AlexNet", "BasicBlock", "Bottleneck", "CharLSTM", "GPTConfig", "LeNet5", "ModelInfo", "ResNet",
    "alexnet", "available", "char_lstm", "create", "gpt", "info", "lenet", "mlp", "register", "resnet",
]
