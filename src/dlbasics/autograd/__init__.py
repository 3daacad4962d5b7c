"""Reverse-mode automatic differentiation: ``Function`` nodes, the engine, grad mode, gradcheck."""

from dlbasics.autograd.engine import backward, unbroadcast
from dlbasics.autograd.function import Function
from dlbasics.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from dlbasics.autograd.gradcheck import gradcheck, numerical_grad

__all__ = [
    "Function",
    "backward",
    "enable_grad",
    "gradcheck",
    "is_grad_enabled",
    "no_grad",
    "numerical_grad",
    "set_grad_enabled",
    "unbroadcast",
]
