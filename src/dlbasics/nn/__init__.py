"""The **Model** component's building blocks: ``Module``, ``Parameter``, layers, and the loss modules."""

from dlbasics.nn import functional, init
from dlbasics.nn.layers.activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from dlbasics.nn.layers.container import ModuleDict, ModuleList, Sequential
from dlbasics.nn.layers.dropout import Dropout
from dlbasics.nn.layers.linear import Flatten, Identity, Linear
from dlbasics.nn.layers.norm import BatchNorm1d, BatchNorm2d, LayerNorm
from dlbasics.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from dlbasics.nn.module import Module
from dlbasics.nn.parameter import Parameter

__all__ = [
    "GELU", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "CrossEntropyLoss", "Dropout", "Flatten", "Identity",
    "LayerNorm", "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "Module", "ModuleDict", "ModuleList", "NLLLoss",
    "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh", "functional", "init",
]
