"""The schedules a run chooses by name (``--scheduler``): warm-up + cosine as Hugging Face's
get_cosine_schedule_with_warmup defines it, the others as PyTorch's classes, all stepped by the one loop."""

import math

import numpy as np
import pytest
import torch

from dlbasics import nn, optim
from dlbasics.optim.schedules import SCHEDULES, Warmup


def hf_cosine_with_warmup(step, warmup, total):  # transformers.get_cosine_schedule_with_warmup's lambda
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))


@pytest.mark.parametrize("warmup, total", [(10, 100), (0, 50), (5, 5)])
def test_warmup_cosine_is_the_transformers_schedule(warmup, total):
    w = Warmup(warmup, total, "cosine")
    for t in range(total + 1):
        assert w(t) == pytest.approx(hf_cosine_with_warmup(t, warmup, total), abs=1e-12)
    if warmup < total:
        assert w(total + 5) == 0.0  # past the end it stays at 0 (the HF lambda would climb back)


def test_warmup_cosine_lrs_equal_torch_lambda_lr():
    model = nn.Linear(2, 2)
    opt = optim.SGD(model.parameters(), lr=0.3)
    sched = SCHEDULES.get("cosine").builder(opt, 40, warmup=8)
    t_opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.3)
    t_sched = torch.optim.lr_scheduler.LambdaLR(t_opt, Warmup(8, 40, "cosine"))
    for _ in range(45):
        assert opt.param_groups[0]["lr"] == t_opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        t_opt.step()
        t_sched.step()


def test_constant_without_warmup_is_no_scheduler_and_others_are_torchs():
    opt = optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    assert SCHEDULES.get("constant").builder(opt, 10) is None
    assert type(SCHEDULES.get("step").builder(opt, 10, step_size=3)).__name__ == "StepLR"
    assert [e.name for e in SCHEDULES] == ["constant", "cosine", "step", "exponential", "plateau"]


def test_schedule_per_step_in_a_run(tmp_path, monkeypatch):
    from dlbasics.train.commands import train

    monkeypatch.chdir(tmp_path)  # the run folder goes to runs/ here
    from dlbasics.train.config import RunConfig

    cfg = RunConfig.from_options(hidden=[8], steps=60, eval_every=20, scheduler="cosine", warmup=10, lr=0.01)
    result = train(cfg, out=None, verbose=0)
    lrs = [r["lr"] for r in result.history.rows]
    want = [0.01 * Warmup(10, 60)(s) for s in (20, 40, 60)]
    assert lrs == pytest.approx(want, abs=1e-12)
    assert [r["step"] for r in result.history.rows] == [20, 40, 60]
    assert (tmp_path / result.run_dir / "model.safetensors").is_file()


def test_cosine_decays_to_min_lr_as_nanogpt():
    """nanoGPT's get_lr after warm-up: min_lr + ½(1 + cos(π ratio)) (lr − min_lr), reaching min_lr at the end."""
    opt = optim.AdamW([nn.Parameter(np.ones(1, np.float32))], lr=1e-3)
    sched = SCHEDULES.get("cosine").builder(opt, 2000, warmup=100, min_lr=1e-4)
    lrs = []
    for _ in range(2001):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    for t in (100, 500, 1000, 1999, 2000):
        ratio = (t - 100) / (2000 - 100)
        assert lrs[t] == pytest.approx(1e-4 + 0.5 * (1 + math.cos(math.pi * ratio)) * (1e-3 - 1e-4), rel=1e-9)
    assert lrs[50] == pytest.approx(1e-3 * 50 / 100)
    with pytest.raises(ValueError, match="min_lr"):
        SCHEDULES.get("cosine").builder(opt, 10, min_lr=0.1)
