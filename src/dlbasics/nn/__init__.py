"""The **Model** component's building blocks: ``Module``, ``Parameter``, layers, and the loss modules."""

from dlbasics.nn import functional, init, parallel, utils
from dlbasics.nn.layers.activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from dlbasics.nn.layers.attention import MultiheadAttention
from dlbasics.nn.layers.container import ModuleDict, ModuleList, Sequential
from dlbasics.nn.layers.conv import Conv2d, ConvTranspose2d
from dlbasics.nn.layers.dropout import Dropout
from dlbasics.nn.layers.embedding import Embedding
from dlbasics.nn.layers.linear import Flatten, Identity, Linear
from dlbasics.nn.layers.norm import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNormReLU1d,
    BatchNormReLU2d,
    LayerNorm,
    LocalResponseNorm,
)
from dlbasics.nn.layers.pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from dlbasics.nn.layers.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from dlbasics.nn.layers.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from dlbasics.nn.losses import (
    BCEWithLogitsLoss,
    CrossEntropyDiceLoss,
    CrossEntropyLoss,
    HuberLoss,
    MSELoss,
    NLLLoss,
    NTXentLoss,
    SmoothL1Loss,
)
from dlbasics.nn.module import Module
from dlbasics.nn.parameter import Parameter

__all__ = [
    "GELU",
    "GRU",
    "LSTM",
    "RNN",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNormReLU1d",
    "BatchNormReLU2d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyDiceLoss",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "HuberLoss",
    "Identity",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LocalResponseNorm",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "MultiheadAttention",
    "NLLLoss",
    "NTXentLoss",
    "Parameter",
    "RNNCell",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Tanh",
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "functional",
    "init",
    "parallel",
    "utils",
]
