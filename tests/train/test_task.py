"""A task owns its training step; the one loop runs any task. Here a task whose step is not
``loss_fn(model(x), y)``: a denoising autoencoder trained with two optimizers in turn (the encoder on even
steps, the decoder on odd ones), registered in one line and run from the command line, resumed exactly."""

import json

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import io, nn, optim
from dlbasics.cli import main
from dlbasics.nn import functional as F
from dlbasics.train import TASKS, Task
from dlbasics.train.task import Averages, batch_size


class DenoisingTask(Task):
    """Reconstruct x from x + noise; labels are ignored. Two optimizers take turns."""

    def __init__(self, in_features: int, code: int = 8, lr: float = 1e-2, noise: float = 0.2):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(in_features, code), nn.Tanh(), nn.Linear(code, in_features))
        self.noise = noise
        self.opt_enc = optim.Adam(self.model[0].parameters(), lr=lr)
        self.opt_dec = optim.Adam(self.model[2].parameters(), lr=lr)
        self.modules = {"autoencoder": self.model}
        self.optimizers = {"encoder": self.opt_enc, "decoder": self.opt_dec}
        self.steps = 0

    @classmethod
    def build(cls, cfg):
        return cls(cfg.data.input_shape[0], lr=cfg.lr)

    def training_step(self, batch):
        x = batch[0]
        noisy = x + dl.randn(*x.shape) * self.noise  # draws from the default generator: checkpointed too
        loss = F.mse_loss(self.model(noisy), x)
        opt = self.opt_enc if self.steps % 2 == 0 else self.opt_dec
        self.steps += 1
        return batch_size(x), {"loss": self.optimize(loss, opt)}

    def evaluate(self, loader):
        avg = Averages()
        self.model.eval()
        with dl.no_grad():
            for x, _ in loader:
                avg.add(batch_size(x), {"loss": float(F.mse_loss(self.model(x), x).item())})
        self.model.train()
        return avg.means()

    def state_dict(self):
        return {**super().state_dict(), "steps": self.steps}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.steps = int(state["steps"])


@pytest.fixture
def denoise():
    TASKS.register("denoise", DenoisingTask, help="denoising autoencoder, two optimizers in turn")
    yield
    TASKS._entries.pop("denoise")


def test_a_registered_task_trains_from_the_command_line_and_resumes(denoise, tmp_path, monkeypatch, capsys):
    args = ["train", "--task", "denoise", "--lr", "0.01", "--epochs", "4", "--checkpoint-every", "5", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "full")]) == 0
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    history = (tmp_path / "full" / "metrics.csv").read_text().splitlines()
    first, last = (float(line.split(",")[1]) for line in (history[1], history[-1]))
    assert last < 0.5 * first  # it learns to reconstruct
    assert set(summary) >= {"test_loss", "epochs"} and "test_accuracy" not in summary
    assert main(["evaluate", str(tmp_path / "full")]) == 0
    assert f"test_loss {summary['test_loss']:.4f}" in capsys.readouterr().out

    real, calls = DenoisingTask.training_step, []

    def crash(self, batch):
        calls.append(1)
        if len(calls) == 50:
            raise KeyboardInterrupt
        return real(self, batch)

    monkeypatch.setattr(DenoisingTask, "training_step", crash)
    assert main([*args, "--out", str(tmp_path / "cut")]) == 130
    monkeypatch.setattr(DenoisingTask, "training_step", real)
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    a, b = io.load(tmp_path / "full" / "model.safetensors"), io.load(tmp_path / "cut" / "model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert (tmp_path / "full" / "metrics.csv").read_bytes() == (tmp_path / "cut" / "metrics.csv").read_bytes()


def test_unknown_task_lists_the_registered_ones(capsys):
    assert main(["train", "--task", "gan"]) == 2
    err = capsys.readouterr().err
    from dlbasics.train import TASKS

    assert f"--task: invalid choice 'gan' (choose from {', '.join(TASKS.available())})" in err
    assert {"supervised", "adversarial", "reinforcement", "segmentation", "detection", "pose"} <= set(TASKS.available())
