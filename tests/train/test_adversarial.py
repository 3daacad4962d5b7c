"""The adversarial task on the one loop: a stopped GAN run resumes bit-identically (both networks, both optimizers,
the noise generator); a run folder gets a sample grid per evaluation, the best-FD snapshot and evaluation.json; and
``dlbasics sample`` draws from it."""

import json

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import models, optim
from dlbasics.cli import main
from dlbasics.data import DataLoader, TensorDataset
from dlbasics.data.datasets import availability
from dlbasics.train import Loop
from dlbasics.train.adversarial import AdversarialTask
from tests.train.crashing import CrashError, crash_at_step

MISSING = availability("fashion-mnist")


def build_loop(ckpt, name="dcgan", crash_at=None):
    dl.manual_seed(4)
    model = models.create(name, in_channels=1, image_size=8, latent_dim=4, width=4)
    task = AdversarialTask(model, optim.Adam(model.generator.parameters(), lr=2e-3, betas=(0.5, 0.999)),
                           optim.Adam(model.discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999)), seed=4)
    crash_at_step(task, crash_at)
    rng = np.random.default_rng(0)
    data = TensorDataset(rng.uniform(0, 1, (96, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 96))
    return Loop(task, DataLoader(data, batch_size=16, shuffle=True, seed=4), steps=14, eval_every=7,
                checkpoint=ckpt, checkpoint_every=5, verbose=0)


@pytest.mark.parametrize("name", ["gan", "dcgan"])
def test_a_stopped_gan_run_resumes_bit_identically(tmp_path, name):
    full = build_loop(tmp_path / "full.safetensors", name)
    history = full.run()
    with pytest.raises(CrashError):
        build_loop(tmp_path / "cut.safetensors", name, crash_at=9).run()
    resumed = build_loop(tmp_path / "cut.safetensors", name).resume()
    assert resumed.step == 5
    again = resumed.run()
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h.rows]  # noqa: E731
    assert strip(again) == strip(history)
    a, b = full.task.model.state_dict(), resumed.task.model.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)  # generator, discriminator, batch-norm statistics
    for which in ("generator", "discriminator"):
        sa, sb = full.task.optimizers[which].state_dict(), resumed.task.optimizers[which].state_dict()
        assert all(np.array_equal(sa["state"][i]["exp_avg_sq"], sb["state"][i]["exp_avg_sq"]) for i in sa["state"])
    assert set(history.rows[-1]) >= {"train_loss_d", "train_loss_g", "train_d_real", "train_d_fake"}


@pytest.mark.slow
@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_a_gan_run_folder_and_dlbasics_sample(tmp_path, capsys):
    """400 steps of the MLP GAN: two evaluations, each with its sample grid; the best-FD weights; evaluation.json
    with the references; then ``dlbasics sample`` from the best snapshot and from the last model."""
    out = tmp_path / "run"
    assert main(["train", "--model", "gan", "--steps", "400", "--eval-every", "200", "--quiet", "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-000200.png", "step-000400.png"]
    for name in ("best.safetensors", "samples.png", "curves.png", "model.safetensors"):
        assert (out / name).is_file(), name
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert set(evaluation) == {"samples", "k", "last", "best", "references"}
    refs = evaluation["references"]
    assert refs["real"]["fd"] < 10 < 200 < refs["noise"]["fd"]  # the scale every GAN number is read against
    assert evaluation["best"]["fd"] < refs["noise"]["fd"]  # 400 steps already beat noise
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_val_fd"] <= summary["val_fd"] and "test_recall" in summary
    capsys.readouterr()
    assert main(["sample", str(out), "--n", "16", "--out", str(tmp_path / "grid.png")]) == 0
    assert "16 samples of the best-FD snapshot" in capsys.readouterr().out
    assert main(["sample", str(out), "--last", "--out", str(tmp_path / "last.png")]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "grid.png").size == (2 * (8 * 30 + 2), 2 * (2 * 30 + 2))  # 8 x 2 tiles, scale 2
