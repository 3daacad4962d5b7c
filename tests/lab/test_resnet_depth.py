"""Lab experiment resnet-depth: the deeper plain network trains worse than the shallower one (degradation),
the deeper ResNet does not. The pieces that need no data are checked directly (fast); the whole experiment
runs once with ``quick=True`` on the real Fashion-MNIST (marked slow; skipped when the files are absent).

Measured with quick=True (2,000 images at 14x14, 100 steps, depths 8 and 32), final training loss
plain-8 / plain-32 / ResNet-8 / ResNet-32: seed 0 0.730 / 1.361 / 0.708 / 0.712; seed 1 0.707 / 1.241 /
0.628 / 0.681; seed 2 0.828 / 1.340 / 0.781 / 0.800. Degradation plain +0.51..+0.63, residual +0.00..+0.05;
the thresholds sit well inside these.
"""

import json

import numpy as np
import pytest

from dlbasics import lab
from dlbasics.data.datasets import availability
from dlbasics.lab import resnet_depth

MISSING = availability("fashion-mnist")  # None, or why not and the command that installs it
needs_data = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


def test_module_contract():
    assert resnet_depth.NAME in lab.available()
    assert lab.available()[lab.available().index("resnet-depth") - 1] == "svd-compression"
    assert lab.get(resnet_depth.NAME) is resnet_depth
    assert resnet_depth.TITLE and resnet_depth.CLAIM.endswith(".")
    doc = resnet_depth.__doc__
    assert "Claim:" in doc and "Method:" in doc
    assert resnet_depth.DATA == ("fashion-mnist",)  # so lab all skips it where the data is not installed


def test_downsample_averages_2x2_patches():
    x = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 1, 28, 28)
    d = resnet_depth.downsample(x)
    assert d.shape == (2, 1, 14, 14) and d.dtype == np.float32
    assert d[1, 0, 3, 5] == pytest.approx(x[1, 0, 6:8, 10:12].mean())


def test_plain_and_residual_twins_start_from_the_same_weights():
    plain, res = resnet_depth.build(8, True, seed=3), resnet_depth.build(8, False, seed=3)
    p, r = dict(plain.named_parameters()), dict(res.named_parameters())
    assert p.keys() == r.keys()
    for name in p:
        np.testing.assert_array_equal(p[name].data, r[name].data)


@pytest.mark.slow
@needs_data
def test_deeper_plain_degrades_deeper_residual_does_not(tmp_path):
    f = lab.run("resnet-depth", tmp_path, quick=True)
    n = f.numbers
    assert n["depth_deep"] > n["depth_shallow"]
    assert n["train_loss_plain_deep"] > n["train_loss_plain_shallow"] + 0.25  # the degradation (measured +0.63)
    assert n["degradation_plain"] == pytest.approx(n["train_loss_plain_deep"] - n["train_loss_plain_shallow"])
    assert n["train_loss_res_deep"] <= n["train_loss_res_shallow"] + 0.15  # no degradation (measured +0.004)
    assert n["train_loss_res_deep"] < n["train_loss_plain_deep"] - 0.25
    assert n["test_acc_res_deep"] > n["test_acc_plain_deep"]
    assert f.figures == ["training_loss.png"] and (tmp_path / "training_loss.png").is_file()
    saved = json.loads((tmp_path / "finding.json").read_text())
    assert saved["numbers"]["train_loss_plain_deep"] == pytest.approx(n["train_loss_plain_deep"])
    assert "--quick" in f.command
