"""Exact resume: a run stopped at any step and continued from its checkpoint ends bit-identical to one that
was never stopped - weights, metrics.csv and summary.json - whatever draws random numbers along the way."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import io, nn, optim
from dlbasics.cli import main
from dlbasics.data import DataLoader, MixUp, datasets
from dlbasics.errors import CheckpointError
from dlbasics.optim.schedules import cosine
from dlbasics.train import EarlyStopping, Loop, SupervisedTask
from dlbasics.train.checkpoint import read_checkpoint
from tests.train.crashing import CrashError, crash_at_step

SPLITS = datasets.digits()


def build_loop(ckpt, *, epochs=None, steps=None, every=None, crash_at=None, scheduler="cosine", eval_every=None):
    """A run that uses every kind of randomness: shuffling, dropout, MixUp; with a per-step schedule,
    clipping, early stopping and a validation set."""
    dl.manual_seed(3)
    model = dl.models.create("mlp", in_features=64, num_classes=10, hidden=[32], dropout=0.2, batch_norm=True)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(SPLITS.train, batch_size=64, shuffle=True, seed=3, collate_fn=MixUp(0.4, 10, seed=3))
    total = steps if steps is not None else epochs * len(loader)
    sched = cosine(opt, total, warmup=5) if scheduler == "cosine" else optim.lr_scheduler.ReduceLROnPlateau(
        opt, patience=0, factor=0.5)
    task = SupervisedTask(model, nn.CrossEntropyLoss(), opt)
    crash_at_step(task, crash_at)
    return Loop(task, loader, epochs=epochs, steps=steps, val_loader=DataLoader(SPLITS.val, batch_size=512),
                scheduler=sched, schedule_unit="step" if scheduler == "cosine" else "epoch", eval_every=eval_every,
                callbacks=[EarlyStopping(patience=50)], clip_grad_norm=1.0, checkpoint=ckpt, checkpoint_every=every,
                verbose=0)


def rows(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history.rows]


@pytest.mark.parametrize("budget, every, crash_at", [
    ({"epochs": 3}, 5, 37),  # mid-epoch checkpoints, stopped between two
    ({"epochs": 3}, None, 30),  # a checkpoint per epoch: back to the start of the second epoch
    ({"steps": 50, "eval_every": 7}, 6, 45),  # a step budget with rows every 7 steps
    ({"epochs": 3}, 17, 35),  # a checkpoint exactly at an epoch's last batch (17 batches an epoch)
])
def test_a_stopped_loop_resumes_bit_identically(tmp_path, budget, every, crash_at):
    full = build_loop(tmp_path / "full.safetensors", every=every, **budget)
    history = full.run()
    ckpt = tmp_path / "cut.safetensors"
    with pytest.raises(CrashError):
        build_loop(ckpt, every=every, crash_at=crash_at, **budget).run()
    resumed = build_loop(ckpt, every=every, **budget).resume()
    assert resumed.step < crash_at
    again = resumed.run()
    assert rows(again) == rows(history)
    a, b = full.task.model.state_dict(), resumed.task.model.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    sa, sb = full.task.optimizer.state_dict(), resumed.task.optimizer.state_dict()
    assert all(np.array_equal(sa["state"][i]["exp_avg"], sb["state"][i]["exp_avg"]) for i in sa["state"])


def test_plateau_scheduler_and_callbacks_resume(tmp_path):
    full = build_loop(tmp_path / "a.safetensors", epochs=4, scheduler="plateau")
    h = full.run()
    with pytest.raises(CrashError):
        build_loop(tmp_path / "b.safetensors", epochs=4, scheduler="plateau", crash_at=40).run()
    resumed = build_loop(tmp_path / "b.safetensors", epochs=4, scheduler="plateau").resume()
    assert rows(resumed.run()) == rows(h)
    assert resumed.callbacks[0].best == full.callbacks[0].best


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    build_loop(tmp_path / "a.safetensors", epochs=1).run()
    model = nn.Linear(64, 10)
    loop = Loop(SupervisedTask(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters())),
                DataLoader(SPLITS.train, batch_size=64, shuffle=True, seed=0), epochs=1, verbose=0)
    with pytest.raises(Exception, match="Error\\(s\\) in loading state_dict for Linear"):
        loop.resume(tmp_path / "a.safetensors")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        loop.resume(tmp_path / "none.safetensors")


def _train_args(out, *extra):
    return ["train", "--hidden", "32", "--dropout", "0.1", "--mixup", "0.2", "--epochs", "3", "--scheduler", "cosine",
            "--warmup", "3", "--schedule-unit", "step", "--checkpoint-every", "7", "--out", str(out), "--quiet", *extra]


def _same_run_folder(a, b):
    for name in ("metrics.csv", "summary.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    wa, wb = io.load(a / "model.safetensors"), io.load(b / "model.safetensors")
    assert list(wa) == list(wb) and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_train_resume_on_the_command_line(tmp_path, monkeypatch, capsys):
    assert main(_train_args(tmp_path / "full")) == 0
    from dlbasics.train.task import SupervisedTask as S

    real, calls = S.training_step, []

    def crash(self, batch):
        calls.append(1)
        if len(calls) == 40:
            raise KeyboardInterrupt  # as a Ctrl-C outside the loop's own handler would
        return real(self, batch)

    monkeypatch.setattr(S, "training_step", crash)
    assert main(_train_args(tmp_path / "cut")) == 130
    assert "dlbasics train --resume" in capsys.readouterr().err
    monkeypatch.setattr(S, "training_step", real)
    assert read_checkpoint(tmp_path / "cut" / "checkpoint.safetensors")["position"]["step"] == 35
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    _same_run_folder(tmp_path / "full", tmp_path / "cut")
    assert main(["train", "--resume", str(tmp_path / "cut"), "--lr", "0.1"]) == 2
    assert "--resume: continues the run as it was described; --lr cannot change it" in capsys.readouterr().err


def _dlbasics(*args):
    return [sys.executable, "-m", "dlbasics", *args]


def _mtime(path):
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


@pytest.mark.slow
def test_sigkill_at_20_random_moments_then_resume_reaches_the_same_weights(tmp_path):
    """Kill -9 at 20 random moments - a few while the process starts, most while it trains and writes a checkpoint
    every step - and each time the last checkpoint loads (never a torn file); --resume then ends with the
    uninterrupted run's weights, metrics and summary. Whether a kill lands inside a checkpoint write is up to the
    timing, so a torn write is also planted for certain before the last resume: it must be ignored and removed."""
    args = ["train", "--hidden", "32", "--dropout", "0.1", "--mixup", "0.2", "--epochs", "40", "--checkpoint-every",
            "1", "--quiet"]
    subprocess.run(_dlbasics(*args, "--out", str(tmp_path / "ref")), check=True, capture_output=True)
    out, rng, kills = tmp_path / "run", random.Random(0), 0
    ckpt = out / "checkpoint.safetensors"
    while kills < 20:
        cmd = _dlbasics("train", "--resume", str(out), "--quiet") if (out / "config.json").exists() else \
            _dlbasics(*args, "--out", str(out))
        before = _mtime(ckpt)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if rng.random() < 0.2:  # while it starts up: imports, data, maybe the folder being made
            time.sleep(rng.uniform(0.0, 1.5))
        else:  # once this process is training (its first checkpoint is written), a moment later
            while _mtime(ckpt) == before and proc.poll() is None:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not (out / "model.safetensors").exists(), "the run finished: make it longer"
        kills += 1
        if ckpt.exists():
            assert read_checkpoint(ckpt)["position"]["step"] >= 1  # loads: never a half-written file
    # what a writer killed halfway leaves: the first half of a checkpoint under the writer's temporary name
    (out / ".checkpoint.safetensors.planted.tmp").write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    done = subprocess.run(_dlbasics("train", "--resume", str(out), "--quiet"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not list(out.glob(".checkpoint.safetensors.*.tmp"))  # the killed writers' leftovers are cleaned up
    _same_run_folder(tmp_path / "ref", out)


@pytest.mark.slow
def test_ctrl_c_checkpoints_the_exact_step_and_resumes(tmp_path):
    args = ["train", "--hidden", "32", "--epochs", "80", "--quiet"]  # long enough to be running at the signal
    subprocess.run(_dlbasics(*args, "--out", str(tmp_path / "ref")), check=True, capture_output=True)
    proc = subprocess.Popen(_dlbasics(*args, "--out", str(tmp_path / "run")), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    while not (tmp_path / "run" / "checkpoint.safetensors").exists():  # training has begun
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted (continue a run with: dlbasics train --resume" in err, err
    assert read_checkpoint(tmp_path / "run" / "checkpoint.safetensors")["position"]["step"] >= 1
    assert subprocess.run(_dlbasics("train", "--resume", str(tmp_path / "run"), "--quiet")).returncode == 0
    _same_run_folder(tmp_path / "ref", tmp_path / "run")


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_ctrl_c_in_a_step_ends_the_run_after_that_step_with_its_checkpoint(tmp_path):
    loop = build_loop(tmp_path / "c.safetensors", epochs=3)
    real, calls = loop.task.training_step, []

    def step(batch):
        calls.append(1)
        if len(calls) == 23:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of step 23
        return real(batch)

    loop.task.training_step = step
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    position = read_checkpoint(tmp_path / "c.safetensors")["position"]
    assert position == {"epoch": 1, "step": 23, "batch": 6}  # step 23 finished, then the checkpoint, then the stop
    expected = rows(build_loop(tmp_path / "f.safetensors", epochs=3).run())
    # (built after the other: building reseeds the default generator, which the resumed loop has restored)
    assert rows(build_loop(tmp_path / "c.safetensors", epochs=3).resume().run()) == expected


def test_summary_json_is_strict_json(tmp_path):
    from dlbasics.train.rundir import json_text

    assert json.loads(json_text({"a": float("nan"), "b": [float("inf"), 1.0]})) == {"a": None, "b": [None, 1.0]}


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_fit_without_checkpoint_leaves_ctrl_c_alone():
    model = nn.Linear(64, 10)
    loop = Loop(SupervisedTask(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters())),
                DataLoader(SPLITS.train, batch_size=64), epochs=1, verbose=0)
    before = signal.getsignal(signal.SIGINT)
    loop.run()
    assert signal.getsignal(signal.SIGINT) is before
