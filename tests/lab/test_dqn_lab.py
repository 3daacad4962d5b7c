"""The DQN experiment: its contract, and the whole experiment at its quick size (one seed, 3,000 steps)."""

import json

from dlbasics import lab
from dlbasics.lab import dqn


def test_module_contract():
    assert dqn.NAME in lab.available() and lab.get(dqn.NAME) is dqn
    assert dqn.TITLE and dqn.CLAIM.endswith(".")
    assert "Claim" in dqn.__doc__ and "Method" in dqn.__doc__


def test_the_quick_experiment_trains_a_seed_and_reports_it(tmp_path):
    finding = lab.run("dqn", tmp_path, quick=True)
    n = finding.numbers
    assert n["steps"] == 3000 and n["seeds"] == 1
    assert 0 < n["seed0_best"] <= 500 and n["seed0_best_step"] % 1000 == 0
    assert n["needed_best_snapshot"] in ("none", "0")
    assert (tmp_path / "dqn_returns.png").is_file() and (tmp_path / "seed-0" / "evaluation.json").is_file()
    assert "| seed |" in finding.summary and "CleanRL" in finding.summary
    saved = json.loads((tmp_path / "finding.json").read_text())
    assert saved["numbers"]["seed0_best"] == n["seed0_best"]
