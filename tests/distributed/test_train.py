"""``mpiexec -n 2 dlbasics train``: the one loop, data-parallel, against the same run in one process."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from tests.distributed.launch import MPIEXEC, mpi_env, needs_mpi, rank_results

pytestmark = [needs_mpi, pytest.mark.slow]  # each test starts mpiexec and dlbasics several times


def dlbasics(*args: str, ranks: int = 1, cwd: Path) -> subprocess.CompletedProcess:
    launcher = [MPIEXEC, "-n", str(ranks)] if ranks > 1 else []
    return subprocess.run([*launcher, sys.executable, "-m", "dlbasics", *args], cwd=cwd, env=mpi_env(),
                          capture_output=True, text=True, timeout=120)


def rows(path: Path) -> list[dict[str, float]]:
    with open(path) as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def assert_same_run(one: Path, two: Path, atol: float) -> None:
    a, b = rows(one / "metrics.csv"), rows(two / "metrics.csv")
    assert [list(r) for r in a] == [list(r) for r in b]
    for ra, rb in zip(a, b):
        for k in ra:
            assert ra[k] == pytest.approx(rb[k], rel=1e-5, abs=1e-6), (k, ra, rb)
    wa, wb = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert max(float(np.abs(wa[k] - wb[k]).max()) for k in wa) < atol


def test_two_ranks_train_the_run_that_one_process_trains(tmp_path: Path) -> None:
    # digits: 1,077 training samples in batches of 50, so each epoch ends with a batch of 27, split 14 / 13 and
    # weighted; no batch norm (per-rank statistics by design)
    options = ["train", "--epochs", "2", "--batch-size", "50", "--no-batch-norm", "--quiet"]
    one = dlbasics(*options, "--out", "one", "--threads", "1", cwd=tmp_path)
    two = dlbasics(*options, "--out", "two", ranks=2, cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stdout + two.stderr
    assert two.stdout.count("saved to") == 1  # rank 0 alone reports
    assert two.stdout.split("  (")[0] == one.stdout.split("  (")[0]  # the same test scores, to 4 decimals
    assert_same_run(tmp_path / "one", tmp_path / "two", atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    assert json.loads((tmp_path / "two" / "timing.json").read_text())["ranks"] == 2
    assert json.loads((tmp_path / "two" / "config.json").read_text()) == \
        json.loads((tmp_path / "one" / "config.json").read_text())


def test_a_language_model_trains_on_two_ranks_by_steps(tmp_path: Path) -> None:
    options = ["train", "--model", "gpt", "--steps", "8", "--eval-every", "4", "--batch-size", "6", "--block-size",
               "16", "--n-embd", "16", "--n-layer", "1", "--n-head", "2", "--dropout", "0", "--quiet"]
    one = dlbasics(*options, "--out", "one", "--threads", "1", cwd=tmp_path)
    two = dlbasics(*options, "--out", "two", ranks=2, cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stdout + two.stderr
    assert_same_run(tmp_path / "one", tmp_path / "two", atol=1e-5)


def test_a_stopped_two_rank_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    results = rank_results("loop_resume.py", str(tmp_path))
    for r in results.values():
        assert r["once_vs_single"] < 1e-6
        assert r["resumed_vs_once"] == 0.0  # bit-identical, as in one process
        assert r["rows_equal"]
    two, single = results[0]["rows"], results[0]["single_rows"]
    assert [list(r) for r in two] == [list(r) for r in single]
    for a, b in zip(two, single):
        assert a == pytest.approx(b, rel=1e-5)


def test_commands_that_do_not_run_as_ranks_say_which_do(tmp_path: Path) -> None:
    started = time.monotonic()
    r = dlbasics("zoo", ranks=2, cwd=tmp_path)
    assert r.returncode != 0
    assert "zoo runs in one process; of the commands, train, cv, ensemble run as MPI ranks" in r.stderr
    assert time.monotonic() - started < 30



def without_seconds(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: without_seconds(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [without_seconds(v) for v in obj]
    return obj


def test_cross_validation_folds_and_ensemble_members_as_ranks_give_the_serial_numbers(tmp_path: Path) -> None:
    cv = ["cv", "--k", "3", "--epochs", "1", "--quiet"]  # folds 1 and 3 on rank 0, fold 2 on rank 1
    ens = ["ensemble", "--members", "3", "--epochs", "1"]
    for command, ranks in [(cv, 1), (cv, 2), (ens, 1), (ens, 2)]:
        extra = ["--threads", "1"] if ranks == 1 else []
        r = dlbasics(*command, "--out", f"{command[0]}{ranks}", *extra, ranks=ranks, cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count("saved to") == 1
    one, two = (json.loads((tmp_path / f"cv{n}" / "cv.json").read_text()) for n in (1, 2))
    assert without_seconds(one) == without_seconds(two)
    assert sorted(p.name for p in (tmp_path / "cv2").iterdir()) == ["config.json", "cv.json", "fold-1", "fold-2",
                                                                     "fold-3"]
    for name in ("summary.json", "model.safetensors"):  # every member's weights came back bit for bit
        assert (tmp_path / "ensemble1" / name).read_bytes() == (tmp_path / "ensemble2" / name).read_bytes()
