"""The model zoo: one file per model family, each opening with its paper; ``available()`` / ``create()``."""

from dlbasics.models import (
    alexnet,
    bert,
    centernet,
    char_lstm,
    dqn,
    gan,
    gpt,
    keypoint_net,
    lenet,
    mlp,
    relation_net,
    resnet,
    seq2seq,
    simclr,
    transformer,
    unet,
    vit,
)
from dlbasics.models.alexnet import AlexNet
from dlbasics.models.bert import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel
from dlbasics.models.centernet import CenterNet
from dlbasics.models.char_lstm import CharLSTM
from dlbasics.models.dqn import DQN
from dlbasics.models.gan import GAN
from dlbasics.models.gpt import GPT, GPTConfig
from dlbasics.models.keypoint_net import KeypointNet
from dlbasics.models.lenet import LeNet5
from dlbasics.models.mlp import MLP
from dlbasics.models.registry import ModelInfo, available, create, info, register
from dlbasics.models.relation_net import CNNMLP, RelationNet
from dlbasics.models.resnet import BasicBlock, Bottleneck, ResNet
from dlbasics.models.seq2seq import Seq2Seq
from dlbasics.models.simclr import SimCLR
from dlbasics.models.transformer import TransformerTranslator
from dlbasics.models.unet import UNet
from dlbasics.models.vit import ViT

__all__ = [
    "CNNMLP",
    "DQN",
    "GAN",
    "GPT",
    "MLP",
    "AlexNet",
    "BasicBlock",
    "BertConfig",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertModel",
    "Bottleneck",
    "CenterNet",
    "CharLSTM",
    "GPTConfig",
    "KeypointNet",
    "LeNet5",
    "ModelInfo",
    "RelationNet",
    "ResNet",
    "Seq2Seq",
    "SimCLR",
    "TransformerTranslator",
    "UNet",
    "ViT",
    "alexnet",
    "available",
    "bert",
    "centernet",
    "char_lstm",
    "create",
    "dqn",
    "gan",
    "gpt",
    "info",
    "keypoint_net",
    "lenet",
    "mlp",
    "register",
    "relation_net",
    "resnet",
    "seq2seq",
    "simclr",
    "transformer",
    "unet",
    "vit",
]
