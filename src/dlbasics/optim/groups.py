"""Parameter groups for weight decay: decay the weights that multiply inputs, not biases or normalization.

Decaying a bias or a BatchNorm/LayerNorm scale and shift does not limit the function's complexity the way
decaying a weight matrix does (a normalized layer's output does not even depend on its input weights'
scale), it only pulls these parameters towards 0; the usual recipe (e.g. BERT, ViT, nanoGPT) leaves
them out:

    opt = optim.AdamW(param_groups(model, weight_decay=0.01), lr=1e-3)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dlbasics.nn.layers.norm import BatchNorm1d, BatchNorm2d, LayerNorm
from dlbasics.nn.module import Module

# Entries are parameter names (the attribute, e.g. "bias" matches "layers.0.bias") or module types (all the
# parameters a module of that type, or a subclass, holds itself).
NO_DECAY: tuple[str | type[Module], ...] = ("bias", BatchNorm1d, BatchNorm2d, LayerNorm)


def param_groups(model: Module, weight_decay: float,
                 no_decay: Sequence[str | type[Module]] = NO_DECAY) -> list[dict[str, Any]]:
    """Split ``model``'s parameters into ``[{"params": decayed, "weight_decay": weight_decay},
    {"params": rest, "weight_decay": 0.0}]``, each in ``model.parameters()`` order.

    ``rest`` holds every parameter whose own name is in ``no_decay`` or whose module is an instance of a
    type in ``no_decay``; a parameter shared by several modules is exempt if any of them exempts it.
    A group that would be empty is left out (an optimizer rejects empty groups).
    """
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, int | float) or weight_decay < 0:
        raise ValueError(f"param_groups: weight_decay must be a number >= 0, got {weight_decay!r}")
    names = {e for e in no_decay if isinstance(e, str)}
    types = tuple(e for e in no_decay if isinstance(e, type))
    bad = [e for e in no_decay if not isinstance(e, str) and not (isinstance(e, type) and issubclass(e, Module))]
    if bad:
        raise TypeError(f"param_groups: no_decay entries must be parameter names or nn.Module types, got {bad!r}")
    exempt: set[int] = set()
    for _, module in model.named_modules():
        by_type = bool(types) and isinstance(module, types)
        for name, p in module._parameters.items():
            if p is not None and (by_type or name in names):
                exempt.add(id(p))
    params = list(model.parameters())
    decayed = [p for p in params if id(p) not in exempt]
    rest = [p for p in params if id(p) in exempt]
    groups = [{"params": decayed, "weight_decay": float(weight_decay)}, {"params": rest, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
