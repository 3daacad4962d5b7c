"""The model registry and the MLP."""

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import models, nn


def test_registry_lists_and_builds():
    assert "mlp" in models.available()
    info = models.info("mlp")
    assert "Rumelhart" in info.paper and info.default_data == "digits"
    m = models.create("mlp", in_features=64, num_classes=10, hidden=[32, 16], activation="tanh", dropout=0.1,
                      batch_norm=True)
    kinds = [type(x).__name__ for x in m.layers]
    assert kinds == ["Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear"]
    assert m(dl.randn(5, 64)).shape == (5, 10)
    assert m(dl.randn(5, 1, 8, 8)).shape == (5, 10)  # images are flattened


def test_unknown_names_and_options_list_the_choices():
    with pytest.raises(ValueError, match=r"unknown model 'resnet9000'; available: .*mlp"):
        models.create("resnet9000")
    with pytest.raises(ValueError, match=r"unknown option.*width.*options: in_features, num_classes, hidden"):
        models.create("mlp", in_features=2, num_classes=2, width=3)
    with pytest.raises(ValueError, match="unknown activation 'swish'; choose from relu"):
        models.create("mlp", in_features=2, num_classes=2, activation="swish")


def test_mlp_parameter_count():
    m = models.create("mlp", in_features=64, num_classes=10, hidden=[128, 64], batch_norm=False)
    assert sum(p.numel() for p in m.parameters()) == 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert isinstance(m, nn.Module)
    assert np.all(np.isfinite(m(dl.zeros(1, 64)).data))


@pytest.mark.parametrize("name, option, table, needed", [
    ("mlp", "activation", "mlp.ACTIVATIONS", {"in_features": 4, "num_classes": 3}),
    ("lenet5", "activation", "lenet.ACTIVATIONS", {}),
    ("resnet", "block", "resnet.BLOCKS", {"width": 2}),
    ("resnet", "shortcut", "resnet.SHORTCUTS", {"width": 2}),
    ("seq2seq", "attention", "seq2seq.ATTENTIONS", {"src_vocab_size": 5, "tgt_vocab_size": 5}),
])
def test_every_choice_an_option_offers_builds(name, option, table, needed):
    """An option annotated with its choices (a ``Literal``: the command line offers them and checks them by flag)
    offers exactly the names of the builder's own table, and each builds."""
    import importlib

    from dlbasics.models.registry import MODELS
    from dlbasics.train.options import kind_of

    choices = kind_of(MODELS.get(name).options()[option].annotation).choices
    module, attr = table.split(".")
    assert set(choices) == set(getattr(importlib.import_module(f"dlbasics.models.{module}"), attr)), table
    for choice in choices:
        assert isinstance(models.create(name, **needed, **{option: choice}), nn.Module)
