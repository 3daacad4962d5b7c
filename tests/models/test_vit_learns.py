"""The ViT recipe clearly learns Fashion-MNIST in seconds: 2 epochs on the first 10,000 training images. Its PyTorch
twin reaches 0.719 there and dlbasics 0.705 (``python benchmarks/bench_vision.py --model vit --epochs 2
--train-size 10000``); chance is 0.10."""

import numpy as np
import pytest

from dlbasics.data import DataLoader, Subset
from dlbasics.data.datasets import availability, fashion_mnist
from dlbasics.train.commands import _prepare
from dlbasics.train.config import RunConfig
from dlbasics.train.run import train_run

MISSING = availability("fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_vit_recipe_learns_fashion_mnist_in_two_epochs_of_10k_images():
    cfg, _, builder = _prepare(RunConfig.from_options(model="vit", data="fashion-mnist", epochs=2))
    splits = fashion_mnist()
    run, _ = train_run(builder, Subset(splits.train, np.arange(10_000)), None, seed=cfg.seed)
    accuracy = run.task.evaluate(DataLoader(splits.test, batch_size=1000))["accuracy"]
    assert accuracy > 0.65, accuracy
