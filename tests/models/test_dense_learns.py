"""The issue's bars for the shapes world, through the one loop and each task's own validation: U-Net segments, CenterNet
detects, keypoint_net finds the joints - each within a small budget, far above its baseline (slow: ~1 minute each)."""

import pytest

from dlbasics.train.config import RunBuilder, RunConfig, load_data
from dlbasics.train.run import train_run


def train(options):
    cfg = RunConfig.from_options(options)
    splits = load_data(cfg)
    cfg = cfg.resolve(splits)
    run, history = train_run(RunBuilder(cfg), splits.train, splits.val, seed=cfg.seed)
    return run.task.evaluate(run.task.eval_loader(splits.test, 64)), history


@pytest.mark.slow
def test_unet_segments_the_shapes_world():
    """300 steps of batch 32 on 2,000 images: mIoU >= 0.90 (all-background: 0.21; the PyTorch twin: 0.997)."""
    test, _ = train({"model": "unet", "steps": 300, "eval_every": 300, "n_val": 100, "n_test": 200})
    assert test["miou"] >= 0.90, test


@pytest.mark.slow
def test_centernet_detects_the_shapes():
    """400 steps: mAP@0.5 >= 0.95 and mAP@0.75 >= 0.85 on the test scenes."""
    test, _ = train({"model": "centernet", "steps": 400, "eval_every": 400, "n_val": 100, "n_test": 200})
    assert test["map50"] >= 0.95 and test["map75"] >= 0.85, test


@pytest.mark.slow
def test_keypoint_net_finds_the_joints():
    """400 steps: PCK@0.1 >= 0.95 and PCK@0.05 >= 0.75 (the mean pose: 0.09 and 0.01)."""
    test, _ = train({"model": "keypoint_net", "steps": 400, "eval_every": 400, "n_val": 100, "n_test": 200})
    assert test["pck10"] >= 0.95 and test["pck05"] >= 0.75, test
