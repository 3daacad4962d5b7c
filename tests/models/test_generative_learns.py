"""The GANs and SimCLR learn real Fashion-MNIST, judged against references computed in the same run.

GANs: ``dlbasics train --model gan|dcgan`` through the one loop, scored by ``train.generative_metrics`` on 2,000
samples against 2,000 test images, beside uniform noise. The thresholds are the issue's, set from its PyTorch twins;
FD and recall are always checked together (a collapse onto a few good images keeps a high precision and IS). Our own
twins (``python benchmarks/bench_generative.py``, seed 0) measured:

- MLP GAN, 10,000 steps: dlbasics FD 100 (0.13 of noise's 768), IS 4.4, 9 classes, largest share 0.18, recall 0.13;
  the twin FD 119, IS 4.2, 9, 0.24, 0.08.
- DCGAN, 500 steps (the issue sets its bar at 1,000; both sides pass it at 500): dlbasics FD 141 (0.18 of noise's),
  IS 3.1, 10 classes, 0.22, recall 0.21; the twin FD 149, IS 3.0, 9, 0.25, 0.28.

SimCLR: the recipe on 2,500 images for 20 epochs at batch 128 (400 steps, about 70 s), against the same encoder at
its random initialization, both probed linearly on those 2,500 labels (and 100 per class). Measured: 82.2% against
80.0% with all labels, 80.1% against 77.2% with 100 per class; NT-Xent from 5.5 to 4.1. Shorter runs do not clear the
issue's bar: 2 epochs of 5,000 images left the probe below the random encoder's (81.4% against 81.9%), 12 epochs of
2,500 cleared it by 1.2 and 2.2 points. The full recipe (``benchmarks/bench_generative.py --model simclr``): 85.3%
against 83.5%, and 80.0% against 77.4%; the PyTorch twin 84.7% and 79.7%.
"""

import pytest

from dlbasics import manual_seed, models
from dlbasics.data import DataLoader
from dlbasics.data.augment import simclr_augment
from dlbasics.data.datasets import availability, fashion_mnist
from dlbasics.train.adversarial import EVAL_SAMPLES
from dlbasics.train.commands import _prepare
from dlbasics.train.config import RunConfig
from dlbasics.train.generative_metrics import SampleEvaluator, reference_scores
from dlbasics.train.probe import encode, labels_per_class_subset, linear_probe
from dlbasics.train.run import train_run

MISSING = availability("fashion-mnist")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


def images(dataset, n=None):
    x, y = next(iter(DataLoader(dataset, batch_size=len(dataset))))
    return x.data[:n], y.data[:n]


@pytest.fixture(scope="module")
def scored():
    """(score samples against 2,000 test images, uniform noise's scores)."""
    splits = fashion_mnist()
    test, val = images(splits.test, EVAL_SAMPLES)[0], images(splits.val, EVAL_SAMPLES)[0]
    return SampleEvaluator(test), reference_scores(val, test)["noise"]


def train_gan(name, steps):
    cfg, splits, builder = _prepare(RunConfig.from_options(model=name, steps=steps, eval_every=steps))
    run, _ = train_run(builder, splits.train, None, seed=cfg.seed)
    return run.model.sample(EVAL_SAMPLES, 0)


@pytest.mark.parametrize("name, steps, fd_share, is_min, recall_min", [
    ("gan", 10_000, 0.25, 3.2, 0.02),
    ("dcgan", 500, 0.35, 2.5, 0.04),
])
def test_gan_samples_approach_the_data(scored, name, steps, fd_share, is_min, recall_min):
    score, noise = scored
    s = score(train_gan(name, steps))
    assert s["fd"] < fd_share * noise["fd"], (s, noise)
    assert s["is"] > is_min, s
    assert s["classes"] >= 8 and s["largest_share"] < 0.35, s  # no collapse onto a few classes
    assert s["recall"] > recall_min, s  # and some of the data's variety


def test_simclr_features_beat_the_same_encoder_at_random_init():
    """The issue's bar: both probes above the random-init encoder's, by >= 1.5 points with all labels and >= 2
    points with 100 labels per class; NT-Xent falls by >= 0.4."""
    options = {"model": "simclr", "epochs": 20, "train_size": 2500, "batch_size": 128}
    cfg, splits, builder = _prepare(RunConfig.from_options(**options))
    manual_seed(cfg.seed)
    random_init = models.create("simclr", **cfg.model.options)
    run, history = train_run(builder, splits.train, None, seed=cfg.seed)
    x, y = images(splits.train)
    xt, yt = images(splits.test)
    few = labels_per_class_subset(y, 100, seed=0)

    def probes(features):
        h, ht = encode(features, x), encode(features, xt)
        return linear_probe(h, y, ht, yt), linear_probe(h[few], y[few], ht, yt)

    (learned_all, learned_few), (init_all, init_few) = probes(run.model.features), probes(random_init.features)
    assert learned_all > init_all + 0.015, (learned_all, init_all)
    assert learned_few > init_few + 0.02, (learned_few, init_few)
    untrained = float(run.task.views_loss(random_init, x[:128], simclr_augment(0)).item())  # ln(255) = 5.54 at most
    assert history.rows[-1]["train_loss"] <= untrained - 0.4, (untrained, history.rows)
