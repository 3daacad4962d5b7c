"""``nn.utils``: helpers that act on a model's parameters, as in ``torch.nn.utils``."""

from dlbasics.nn.utils import rnn
from dlbasics.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_", "rnn"]
