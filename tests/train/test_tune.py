"""Hyperparameter search (dlbasics.train.tuning): TPE beats random search, studies resume from SQLite and can be
shared by processes, bad runs are pruned, and ``tune_config`` searches a real run description end to end."""

import csv
import io
import json
import math
import statistics
import subprocess
import sys
import textwrap

import pytest

optuna = pytest.importorskip("optuna")

from dlbasics import nn, optim  # noqa: E402
from dlbasics.data import DataLoader, datasets  # noqa: E402
from dlbasics.errors import DLBasicsError  # noqa: E402
from dlbasics.train import fit  # noqa: E402
from dlbasics.train import tuning as tune_module  # noqa: E402
from dlbasics.train.config import ConfigError, RunConfig  # noqa: E402
from dlbasics.train.tuning import (  # noqa: E402
    Choice,
    Float,
    Int,
    MissingDependencyError,
    PruningCallback,
    TuneResult,
    parse_space,
    tune,
    tune_config,
)

PNG = b"\x89PNG\r\n\x1a\n"

# A shifted bowl with a log-scale parameter: minimum 0 at x=0.7, y=-1.3, lr=10**-2.5.
BOWL = {"x": Float(-3, 3), "y": Float(-3, 3), "lr": Float(1e-5, 1.0, log=True)}


def bowl(p, trial):
    return (p["x"] - 0.7) ** 2 + (p["y"] + 1.3) ** 2 + (math.log10(p["lr"]) + 2.5) ** 2 / 4


# ---- search space -------------------------------------------------------------------------------------
def test_parse_space_forms():
    space = parse_space(["lr=1e-4:1e-1:log", "hidden=64,128x64,256x128", "dropout=0:0.5", "epochs=5:20:int",
                         "width=8:512:int:log", "optimizer=adam|sgd", "batch-norm=true,false", "patience=none,3",
                         "momentum=0.5,0.9"])
    assert space == {
        "lr": Float(1e-4, 1e-1, log=True), "hidden": Choice([64, [128, 64], [256, 128]]),
        "dropout": Float(0.0, 0.5), "epochs": Int(5, 20), "width": Int(8, 512, log=True),
        "optimizer": Choice(["adam", "sgd"]), "batch_norm": Choice([True, False]), "patience": Choice([None, 3]),
        "momentum": Choice([0.5, 0.9]),
    }
    assert type(space["epochs"].low) is int and type(space["dropout"].low) is float
    assert [type(v) for v in space["hidden"].values] == [int, list, list]


@pytest.mark.parametrize(("entry", "says"), [
    ("lr", "expected NAME=SPEC"), ("lr=", "expected NAME=SPEC"), ("=1:2", "not a parameter name"),
    ("lr=1:0", "low < high"), ("lr=0:1:log", "low > 0"), ("epochs=1.5:3:int", "'1.5' is not an integer"),
    ("lr=a:1", "'a' is not a number"), ("lr=0:inf", "'inf' is not a number"), ("lr=1:2:cubic", "flag"),
    ("lr=1:2:log:log", "flag"), ("x=a,,b", "empty choice"), ("x=1,1", "distinct"),
])
def test_parse_space_errors_name_the_entry_and_the_forms(entry, says):
    with pytest.raises(ValueError, match=r"search space entry .*use NAME=LOW:HIGH") as e:
        parse_space([entry])
    assert says in str(e.value) and repr(entry) in str(e.value) and "\n" not in str(e.value)


def test_parse_space_rejects_a_name_given_twice():
    with pytest.raises(ValueError, match="given twice"):
        parse_space(["lr=1e-3:1e-1", "lr=0.1,0.2"])


def test_specs_check_their_bounds():
    with pytest.raises(ValueError, match="low < high"):
        Float(1.0, 1.0)
    with pytest.raises(ValueError, match="integers"):
        Int(0, 2.5)
    with pytest.raises(ValueError, match="at least one"):
        Choice([])


def test_objective_sees_values_of_each_kind_and_the_result_reports_them():
    space = {"lr": Float(1e-4, 1e-1, log=True), "n": Int(2, 5), "hidden": Choice([[8], [16, 8], 32]),
             "act": Choice(["relu", "tanh"])}
    seen = []

    def objective(p, trial):
        seen.append(p)
        return p["lr"] + p["n"]

    result = tune(objective, space, 12, sampler="random", seed=1)
    for p in seen:
        assert 1e-4 <= p["lr"] <= 1e-1 and type(p["n"]) is int and 2 <= p["n"] <= 5
        assert p["hidden"] in ([8], [16, 8], 32) and p["act"] in ("relu", "tanh")
    assert [t["params"] for t in result.trials] == seen  # stored list choices are decoded back to lists
    assert any(isinstance(p["hidden"], list) for p in seen)
    best = min(range(12), key=lambda i: seen[i]["lr"] + seen[i]["n"])
    assert result.best_params == seen[best] and result.best_value == pytest.approx(objective(seen[best], None))


# ---- TPE against random search --------------------------------------------------------------------------
def test_tpe_beats_random_search_on_average():
    seeds, budget = range(10), 60
    tpe = [tune(bowl, BOWL, budget, sampler="tpe", seed=s, pruner="none").best_value for s in seeds]
    rnd = [tune(bowl, BOWL, budget, sampler="random", seed=s, pruner="none").best_value for s in seeds]
    # Measured with Optuna 5.0.0: TPE mean 0.032 (worst 0.063), random mean 0.40 (best seed 0.040).
    assert statistics.mean(tpe) < 0.08 and max(tpe) < 0.15  # near the optimum 0 within the budget, every seed
    assert statistics.mean(tpe) < statistics.mean(rnd) / 3


def test_same_seed_same_search():
    a = tune(bowl, BOWL, 15, sampler="tpe", seed=3)
    b = tune(bowl, BOWL, 15, sampler="tpe", seed=3)
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]


def test_gp_sampler_runs_or_names_what_to_install(monkeypatch):
    result = tune(lambda p, t: (p["x"] - 1) ** 2, {"x": Float(-3, 3)}, 3, sampler="gp", seed=0)
    assert result.count("COMPLETE") == 3
    monkeypatch.setattr(tune_module, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match="sampler 'gp' needs torch and scipy: pip install torch scipy"):
        tune(lambda p, t: 0.0, {"x": Float(0, 1)}, 1, sampler="gp")


def test_unknown_sampler_pruner_and_bad_arguments():
    with pytest.raises(ValueError, match=r"sampler: invalid choice 'bayes' \(choose from tpe, random, gp\)"):
        tune(bowl, BOWL, 1, sampler="bayes")
    with pytest.raises(ValueError, match=r"pruner: invalid choice 'hyper' \(choose from median, none\)"):
        tune(bowl, BOWL, 1, pruner="hyper")
    with pytest.raises(ValueError, match="n_trials"):
        tune(bowl, BOWL, 0)
    with pytest.raises(ValueError, match="empty"):
        tune(bowl, {}, 1)
    with pytest.raises(TypeError, match="expected Float, Int or Choice"):
        tune(bowl, {"x": (0, 1)}, 1)


def test_missing_optuna_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'dlbasics\[tune\]'") as e:
        tune(bowl, BOWL, 1)
    assert isinstance(e.value, DLBasicsError)  # so the CLI prints it as one line


def test_importing_dlbasics_does_not_import_optuna():
    code = "import sys, dlbasics, dlbasics.train, dlbasics.train.tuning; print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---- storage: resume and share ----------------------------------------------------------------------------
def test_interrupted_study_resumes_from_sqlite_with_its_trials(tmp_path):
    db = f"sqlite:///{tmp_path / 'search.db'}"
    first = tune(bowl, BOWL, 5, sampler="random", seed=0, storage=db, study_name="bowl")
    again = tune(bowl, BOWL, 5, sampler="random", seed=0, storage=db, study_name="bowl")
    assert [t["number"] for t in again.trials] == list(range(10))
    assert again.trials[:5] == first.trials  # the first session's trials are kept exactly
    # the second session draws new points (its sampler seed is offset by the trials already stored)
    old = {tuple(t["params"].values()) for t in first.trials}
    assert not old & {tuple(t["params"].values()) for t in again.trials[5:]}
    assert again.best_value == min(t["value"] for t in again.trials)
    # a bare file path is read as SQLite too
    third = tune(bowl, BOWL, 1, sampler="random", seed=0, storage=tmp_path / "search.db", study_name="bowl")
    assert len(third.trials) == 11


def test_storage_errors_are_clear(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    tune(bowl, BOWL, 1, storage=db, study_name="s")
    with pytest.raises(ValueError, match="already exists"):
        tune(bowl, BOWL, 1, storage=db, study_name="s", load_if_exists=False)
    with pytest.raises(ValueError, match="created to minimize, not to maximize"):
        tune(bowl, BOWL, 1, storage=db, study_name="s", direction="maximize")


WORKER = """
import math, sys
from dlbasics.train.tuning import Float, tune
space = {"x": Float(-3, 3), "y": Float(-3, 3)}
tune(lambda p, t: (p["x"] - 1) ** 2 + p["y"] ** 2, space, 4, seed=int(sys.argv[1]), storage=sys.argv[2],
     study_name="shared")
"""


def test_two_processes_share_one_study(tmp_path):
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    tune_module.create_study(db, "shared")  # created once, before the workers start
    workers = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(WORKER), str(seed), db],
                                stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    for w in workers:
        _, err = w.communicate(timeout=60)
        assert w.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=db)
    assert sorted(t.number for t in study.trials) == list(range(8))
    assert all(t.state.name == "COMPLETE" for t in study.trials)


# ---- pruning -------------------------------------------------------------------------------------------------
def test_median_pruner_stops_trials_with_bad_curves():
    steps_run = {}

    def objective(p, trial):
        # a learning curve that decays to p["x"]: large x is a bad run, visible from the first epochs
        for step in range(10):
            value = p["x"] + 1.0 / (step + 1)
            trial.report(value, step)
            steps_run[trial.number] = step + 1
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    result = tune(objective, {"x": Float(0, 1)}, 30, sampler="random", seed=0)
    pruned = [t for t in result.trials if t["state"] == "PRUNED"]
    complete = [t for t in result.trials if t["state"] == "COMPLETE"]
    assert len(pruned) >= 8 and len(complete) >= 5
    assert all(steps_run[t["number"]] < 10 for t in pruned)
    assert statistics.mean(t["params"]["x"] for t in pruned) > statistics.mean(t["params"]["x"] for t in complete)
    assert result.count("PRUNED") == len(pruned)
    # pruner="none": every trial runs to the end
    assert tune(objective, {"x": Float(0, 1)}, 10, sampler="random", seed=0, pruner="none").count("PRUNED") == 0


class FakeTrial:
    """Stands in for an optuna Trial: records reports, prunes from a given epoch on."""

    def __init__(self, prune_at):
        self.reports, self.prune_at = [], prune_at

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return len(self.reports) > self.prune_at


def moons_fit(callback, epochs=5):
    sp = datasets.moons(n_samples=300, noise=0.2, seed=0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    return fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.01),
               DataLoader(sp.train, batch_size=32, shuffle=True, seed=0), epochs=epochs,
               val_loader=DataLoader(sp.val, batch_size=256), callbacks=[callback], verbose=0)


def test_pruning_callback_raises_inside_fit_when_told_to():
    trial = FakeTrial(prune_at=2)
    with pytest.raises(optuna.TrialPruned, match="pruned after epoch 3: val_loss"):
        moons_fit(PruningCallback(trial), epochs=5)
    assert [s for s, _ in trial.reports] == [0, 1, 2]
    trial = FakeTrial(prune_at=99)
    history = moons_fit(PruningCallback(trial), epochs=4)
    assert [v for _, v in trial.reports] == history["val_loss"]  # reports the monitored value each epoch


def test_pruning_callback_names_a_missing_monitor():
    with pytest.raises(ValueError, match="monitors 'val_auc', which is not logged"):
        moons_fit(PruningCallback(FakeTrial(99), monitor="val_auc"), epochs=1)


# ---- the result --------------------------------------------------------------------------------------------
def test_result_table_csv_and_plot(tmp_path):
    def objective(p, trial):
        if p["n"] == 3:
            trial.report(9.0, 0)
            raise optuna.TrialPruned()
        return p["lr"] * p["n"]

    space = {"lr": Float(0.1, 1.0), "n": Int(1, 3), "hidden": Choice([[16, 8], 32])}
    result = tune(objective, space, 8, sampler="random", seed=0, study_name="table")
    assert isinstance(result, TuneResult) and result.study_name == "table"
    assert [set(t) for t in result.trials] == [{"number", "state", "value", "params", "duration"}] * 8
    assert all(t["duration"] >= 0 for t in result.trials)
    assert result.count("PRUNED") >= 1 and result.count("COMPLETE") >= 1
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert list(rows[0]) == ["number", "state", "value", "duration", "params_lr", "params_n", "params_hidden"]
    assert len(rows) == 8
    for row, t in zip(rows, result.trials):
        assert int(row["number"]) == t["number"] and row["state"] == t["state"]
        assert float(row["value"]) == t["value"] and float(row["params_lr"]) == t["params"]["lr"]
        assert row["params_hidden"] == ("16x8" if t["params"]["hidden"] == [16, 8] else "32")
    assert result.best_value == min(t["value"] for t in result.trials if t["state"] == "COMPLETE")
    best = json.loads(result.best_json())
    assert best["best_params"] == result.best_params and best["pruned"] == result.count("PRUNED")
    path = tmp_path / "plots" / "history.png"
    result.plot_history(path)
    assert path.read_bytes()[:8] == PNG
    assert [p.name for p in path.parent.iterdir()] == ["history.png"]  # no temp file left behind


def test_maximize():
    result = tune(lambda p, t: -((p["x"] - 1) ** 2), {"x": Float(-3, 3)}, 20, direction="maximize", seed=0)
    assert result.direction == "maximize" and result.best_value == max(t["value"] for t in result.trials)
    assert result.best_value > -0.1


# ---- tune_config: the CLI's entry point ----------------------------------------------------------------------
def test_tune_config_end_to_end_on_digits(tmp_path, capsys):
    space = parse_space(["lr=1e-3:1e-1:log", "hidden=16,16x8"])
    result, _ = tune_config(RunConfig.from_options(epochs=2, hidden=[16]), space, 3, sampler="tpe", seed=0,
                            storage=None, study_name=None, out_dir=tmp_path / "search", verbose=1)
    assert len(result.trials) == 3 and result.count("COMPLETE") == 3
    assert all(0 < t["value"] < math.log(10) for t in result.trials)  # val losses below chance (ln 10)
    assert result.best_value == min(t["value"] for t in result.trials)
    assert result.best_params["hidden"] in ([16], [16, 8])  # as config values: hidden=16 means [16]
    assert all(t["params"]["hidden"] in ([16], [16, 8]) for t in result.trials)
    out = tmp_path / "search"
    assert sorted(p.name for p in out.iterdir()) == ["best.json", "config.json", "history.png", "metrics.csv",
                                                     "model.safetensors", "trials.csv"]
    rows = list(csv.DictReader(io.StringIO((out / "trials.csv").read_text())))
    assert len(rows) == 3 and {"params_lr", "params_hidden"} <= set(rows[0])
    best = json.loads((out / "best.json").read_text())
    assert best["best_value"] == pytest.approx(result.best_value) and best["best_params"] == result.best_params
    assert best["config"]["model"]["hidden"] == result.best_params["hidden"]
    assert best["config"]["budget"]["epochs"] == 2
    assert (out / "history.png").read_bytes()[:8] == PNG
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("trial")]
    assert len(lines) == 3 and "lr=" in lines[0]


def test_tune_config_trains_what_the_trial_says(tmp_path):
    # The objective is the best val_loss of a train_run with the trial's params: rerun the best by hand.
    from dlbasics.train.config import RunBuilder, load_data
    from dlbasics.train.run import train_run

    base = {"epochs": 5, "hidden": [16], "seed": 3}
    result, _ = tune_config(RunConfig.from_options(base), parse_space(["lr=0.05"]), 1, out_dir=tmp_path / "t",
                            pruner="none")
    cfg = RunConfig.from_options({**base, **result.best_params})
    splits = load_data(cfg)
    _, history = train_run(RunBuilder(cfg.resolve(splits)), splits.train, splits.val, seed=3)
    assert result.best_value == pytest.approx(min(history["val_loss"]), rel=1e-6)
    assert result.best_value < history["val_loss"][-1]  # the best epoch's loss, not the last one's


@pytest.mark.parametrize(("entry", "says"), [
    ("hiden=16,32", "'hiden' is not a run option"),
    ("seed=0,1", "'seed' cannot be searched over"),
    ("dropout=0:1", "dropout=1.0 in the search space is not a valid run: dropout: must be in [0, 1)"),
    ("optimizer=adam,lbfgs", "optimizer=lbfgs in the search space is not a valid run"),
])
def test_tune_config_rejects_a_bad_space_before_training(tmp_path, entry, says):
    with pytest.raises(ConfigError) as e:
        tune_config(RunConfig.from_options(epochs=1), parse_space([entry]), 1, out_dir=tmp_path / "out")
    assert says in str(e.value)
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_no_completed_trial(tmp_path):
    result = tune(lambda p, t: math.nan, {"x": Float(0, 1)}, 3, seed=0)  # Optuna records NaN as a failed trial
    assert result.best_value is None and result.best_params == {} and result.count("FAIL") == 3
    assert "FAIL" in result.to_csv()
    result.plot_history(tmp_path / "h.png")  # an empty plot, not a crash
    assert (tmp_path / "h.png").read_bytes()[:8] == PNG


def test_interrupted_tune_config_keeps_the_finished_trials(tmp_path, monkeypatch):
    import dlbasics.train.run as run_module

    calls, real = [], run_module.train_run

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "train_run", interrupted)
    db = tmp_path / "s.db"
    with pytest.raises(KeyboardInterrupt):
        tune_config(RunConfig.from_options(epochs=1, hidden=[8]), parse_space(["lr=1e-3:1e-1:log"]), 5, storage=db,
                    study_name="cut", out_dir=tmp_path / "out")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "trials.csv").read_text())))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"]
    monkeypatch.setattr(run_module, "train_run", real)
    result, _ = tune_config(RunConfig.from_options(epochs=1, hidden=[8]), parse_space(["lr=1e-3:1e-1:log"]), 2,
                            storage=db, study_name="cut", out_dir=tmp_path / "out")
    assert [t["state"] for t in result.trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
