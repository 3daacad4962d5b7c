"""The contrastive task on the one loop: a stopped SimCLR run resumes bit-identically (the augmentations' generators
included); validation reports NT-Xent under fixed views and a linear probe; a run folder gets probe.json."""

import json

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import models, optim
from dlbasics.cli import main
from dlbasics.data import DataLoader, TensorDataset
from dlbasics.data.datasets import availability
from dlbasics.train import Loop
from dlbasics.train.contrastive import ContrastiveTask
from tests.train.crashing import CrashError, crash_at_step

MISSING = availability("fashion-mnist")


def data(n=64, seed=0):
    """Two classes of 12x12 images a probe can tell apart: a bright square top-left or bottom-right, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.uniform(0, 0.3, (n, 1, 12, 12)).astype(np.float32)
    x[y == 0, :, 1:6, 1:6] += 0.7
    x[y == 1, :, 6:11, 6:11] += 0.7
    return TensorDataset(x, y)


def build_loop(ckpt, crash_at=None):
    dl.manual_seed(5)
    model = models.create("simclr", in_channels=1, width=4, projection_dim=8)
    task = ContrastiveTask(model, optim.Adam(model.parameters(), lr=1e-3), seed=5)
    crash_at_step(task, crash_at)
    return Loop(task, DataLoader(data(), batch_size=16, shuffle=True, seed=5), epochs=3,
                val_loader=DataLoader(data(40, seed=1), batch_size=20), checkpoint=ckpt, checkpoint_every=3, verbose=0)


def test_a_stopped_simclr_run_resumes_bit_identically(tmp_path):
    full = build_loop(tmp_path / "full.safetensors")
    history = full.run()
    with pytest.raises(CrashError):
        build_loop(tmp_path / "cut.safetensors", crash_at=8).run()
    resumed = build_loop(tmp_path / "cut.safetensors").resume()
    assert resumed.step == 6
    again = resumed.run()
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h.rows]  # noqa: E731
    assert strip(again) == strip(history)
    a, b = full.task.model.state_dict(), resumed.task.model.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert {"train_loss", "val_loss", "val_probe_accuracy"} <= set(history.rows[-1])


def test_validation_views_are_fixed_and_leave_the_training_draws_alone():
    model = models.create("simclr", in_channels=1, width=4, projection_dim=8)
    task = ContrastiveTask(model, optim.SGD(model.parameters(), lr=0.0), seed=0)
    before = task.state_dict()["augment"]
    val = DataLoader(data(40, seed=1), batch_size=20)
    first, second = task.evaluate(val), task.evaluate(val)
    assert first == second and 0 <= first["probe_accuracy"] <= 1
    assert task.state_dict()["augment"] == before
    assert first["loss"] < np.log(2 * 20 - 1) + 0.5  # NT-Xent over batches of 20: near ln(39) untrained


def test_the_step_is_nt_xent_of_two_views_in_one_pass():
    model = models.create("simclr", in_channels=1, width=4, projection_dim=8).to(np.float64)
    task = ContrastiveTask(model, None, temperature=0.2)
    x = np.random.default_rng(0).uniform(0, 1, (6, 1, 12, 12))
    views = iter([x[::-1].copy(), x])
    loss = task.views_loss(model, x, lambda _: next(views))
    z = model(np.concatenate([x[::-1], x]))
    expected = dl.nn.functional.nt_xent_loss(z[:6], z[6:], 0.2)
    assert float(loss.item()) == pytest.approx(float(expected.item()), rel=1e-12)


@pytest.mark.slow
@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_a_simclr_run_folder_has_its_probe(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--model", "simclr", "--epochs", "1", "--train-size", "1024", "--val-size", "1000", "--quiet",
                 "--out", str(out)]) == 0
    probe = json.loads((out / "probe.json").read_text())
    assert probe["train_images"] == 1024 and probe["test_images"] == 10_000
    few = next(k for k in probe if k.endswith("_per_class"))  # 1,024 images: some class has fewer than 100
    assert 0.5 < probe[few] <= probe["all_labels"] + 0.05  # far above chance (0.1) after one epoch
    summary = json.loads((out / "summary.json").read_text())
    assert {"test_loss", "test_probe_accuracy"} <= set(summary)
