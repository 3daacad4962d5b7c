"""The lab's plumbing: the experiment registry, Finding -> finding.md / finding.json, figures, index.html."""

import json
import sys
import types

import numpy as np
import pytest

from dlbasics import lab
from dlbasics.errors import ConfigError, DataNotFoundError
from dlbasics.lab import base, report
from dlbasics.lab.base import Finding, Outcome

MINE = ("linear-regression", "linear-collapse", "activations", "universal-approximation")


def finding(name="demo", **kw):
    fields = {"title": "A demo", "claim": "Things work.", "numbers": {"acc": 0.9876, "n": 3, "tiny": 1.5e-9},
              "figures": ["curve.png"], "summary": "We measured **0.99** with `fit`.\n\nSecond paragraph.",
              "command": f"dlbasics lab {name} --out report/{name}", "seconds": 1.25}
    return Finding(name=name, **{**fields, **kw})


# ---- registry ------------------------------------------------------------------------------------------
def test_experiments_in_lecture_order():
    assert lab.EXPERIMENTS == ("linear-regression", "linear-collapse", "activations", "universal-approximation",
                               "losses", "optimizers", "regularization", "svd-compression", "resnet-depth",
                               "translation", "pretraining", "dqn")
    assert lab.available() == list(lab.EXPERIMENTS)


@pytest.mark.parametrize("name", MINE)
def test_modules_follow_the_contract(name):
    module = lab.get(name)
    assert module.__name__ == f"dlbasics.lab.{name.replace('-', '_')}"
    assert name == module.NAME
    assert module.TITLE and module.CLAIM and callable(module.run)
    assert "Claim" in module.__doc__ and "Method" in module.__doc__


def test_get_accepts_underscores_and_case():
    assert lab.get("Linear_Regression").NAME == "linear-regression"


@pytest.mark.parametrize("call", [lambda: lab.get("nope"), lambda: lab.run("nope", "x"),
                                  lambda: lab.run_all("x", names=["linear-regression", "nope"])])
def test_unknown_name_lists_the_valid_ones(call, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"unknown experiment 'nope'.*linear-regression, linear-collapse"):
        call()
    assert not any(tmp_path.iterdir())  # nothing ran, nothing was written


# ---- figures and findings ------------------------------------------------------------------------------
def test_save_figure_writes_a_png_atomically(tmp_path):
    fig, axes = base.new_figure(1, 2)
    axes[0].plot([0, 1], [1, 0])
    name = base.save_figure(fig, tmp_path / "sub", "curve")
    assert name == "curve.png"
    assert (tmp_path / "sub" / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["curve.png"]  # no temp file left behind
    with pytest.raises(ValueError, match="plain file name"):
        base.save_figure(base.new_figure()[0], tmp_path, "../escape.png")


def test_save_figure_closes_pyplot_figures(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    assert base.save_figure(fig, tmp_path, "p.png") == "p.png"
    assert not plt.fignum_exists(fig.number)


def test_write_finding_markdown_and_json(tmp_path):
    f = finding(numbers={"acc": np.float32(0.5), "count": np.int64(7), "bad": float("nan"), "note": "a|b"})
    base.write_finding(f, tmp_path)
    md = (tmp_path / "finding.md").read_text()
    assert md.startswith("# A demo\n")
    assert "> **Claim.** Things work." in md
    assert "We measured **0.99** with `fit`." in md
    assert "| `acc` | 0.5 |" in md and "| `count` | 7 |" in md and "| `note` | a\\|b |" in md
    assert "![curve](curve.png)" in md
    assert "dlbasics lab demo --out report/demo" in md and "1.2 s" in md
    data = json.loads((tmp_path / "finding.json").read_text())
    assert data["numbers"] == {"acc": 0.5, "count": 7, "bad": "nan", "note": "a|b"}
    assert data["figures"] == ["curve.png"] and data["seconds"] == 1.25 and data["name"] == "demo"
    back = base.load_finding(tmp_path)
    assert back.title == f.title and back.numbers["count"] == 7 and back.command == f.command
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finding.json", "finding.md"]


def test_format_number():
    assert base.format_number(3) == "3"
    assert base.format_number(0.98765) == "0.9877"
    assert base.format_number(1.5e-9) == "1.500e-09"
    assert base.format_number(0.0) == "0"
    assert base.format_number(np.float64(2.5e6)) == "2.500e+06"
    assert base.format_number("ReLU") == "ReLU"


def test_command_for():
    assert base.command_for("linear-regression", "report/linear-regression") == \
        "dlbasics lab linear-regression --out report/linear-regression"
    assert base.command_for("activations", "my out", quick=True, seed=3) == \
        "dlbasics lab activations --out 'my out' --quick --seed 3"


# ---- the runner ----------------------------------------------------------------------------------------
def fake_experiment(name):
    """A stand-in experiment module: writes one figure and returns its Finding."""
    module = types.ModuleType(f"fake_{name}")
    module.NAME, module.TITLE, module.CLAIM = name, f"Title of {name}", f"Claim of {name}."

    def run(out_dir, quick=False, seed=0):
        fig, ax = base.new_figure()
        ax.plot([0, 1], [seed, quick])
        fig_name = base.save_figure(fig, out_dir, "plot")
        return Finding(name, module.TITLE, module.CLAIM, {"seed": seed, "quick": int(quick)}, [fig_name],
                       f"Ran **{name}**.", base.command_for(name, out_dir, quick, seed), 0.0)

    module.run = run
    return module


def test_run_all_writes_each_folder_and_the_index(tmp_path, monkeypatch):
    monkeypatch.setattr(lab, "get", lambda name: fake_experiment(lab.canonical(name)))
    outcomes = lab.run_all(tmp_path / "report", quick=True, seed=5, names=["activations", "linear_regression"])
    assert [(o.name, o.status, o.reason) for o in outcomes] == [("activations", "ok", ""),
                                                                ("linear-regression", "ok", "")]
    for o in outcomes:
        folder = tmp_path / "report" / o.name
        assert {p.name for p in folder.iterdir()} == {"plot.png", "finding.md", "finding.json"}
        assert json.loads((folder / "finding.json").read_text())["numbers"] == {"seed": 5, "quick": 1}
        assert o.seconds > 0 and o.seconds == o.finding.seconds and o.finding.name == o.name
    assert lab.exit_status(outcomes) == 0
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.index('id="activations"') < page.index('id="linear-regression"')
    assert 'src="linear-regression/plot.png"' in page


def missing_fashion_mnist(monkeypatch, tmp_path):
    """Make ``datasets.availability`` answer as on a machine without Fashion-MNIST installed."""
    from dlbasics.data import datasets

    real = datasets.availability
    monkeypatch.setattr(datasets, "availability", lambda name, root=None: real(
        name, tmp_path / "no-fashion-mnist" if name == "fashion-mnist" else root))


def test_run_all_skips_an_experiment_whose_data_is_missing(tmp_path, monkeypatch):
    missing_fashion_mnist(monkeypatch, tmp_path)
    assert lab.availability("linear-regression") is None
    assert "apt-get install dataset-fashion-mnist" in lab.availability("resnet-depth")
    outcomes = lab.run_all(tmp_path / "report", quick=True, names=["linear-regression", "resnet-depth"])
    ok, skipped = outcomes
    assert (ok.name, ok.status, ok.finding.name) == ("linear-regression", "ok", "linear-regression")
    assert (skipped.name, skipped.status, skipped.finding) == ("resnet-depth", "skipped", None)
    assert skipped.reason.startswith("fashion-mnist folder not found: ") and "\n" not in skipped.reason
    assert "apt-get install dataset-fashion-mnist" in skipped.reason
    assert not (tmp_path / "report" / "resnet-depth").exists()  # nothing of it ran
    assert lab.exit_status(outcomes) == 0  # missing data is reported, not a failure of the lab
    page = (tmp_path / "report" / "index.html").read_text()
    assert '<section id="resnet-depth">' in page and "<strong>Skipped.</strong>" in page
    assert "apt-get install dataset-fashion-mnist" in page and lab.get("resnet-depth").CLAIM in page
    assert "1 skipped" in page and 'src="linear-regression/' in page


def test_run_refuses_an_experiment_whose_data_is_missing(tmp_path, monkeypatch):
    missing_fashion_mnist(monkeypatch, tmp_path)
    with pytest.raises(DataNotFoundError, match=r"^lab resnet-depth: fashion-mnist folder not found: .*apt-get "
                       "install dataset-fashion-mnist"):
        lab.run("resnet-depth", tmp_path / "out", quick=True)
    assert not (tmp_path / "out").exists()  # refused before any work


def test_run_all_goes_on_after_a_failing_experiment(tmp_path, monkeypatch):
    modules = {n: fake_experiment(n) for n in ("linear-regression", "activations", "losses")}

    def boom(out_dir, quick=False, seed=0):
        raise ZeroDivisionError("the loss\nwent to zero")

    modules["activations"].run = boom
    monkeypatch.setattr(lab, "get", lambda name: modules[lab.canonical(name)])
    outcomes = lab.run_all(tmp_path / "report", quick=True, names=list(modules))
    assert [o.status for o in outcomes] == ["ok", "failed", "ok"]
    failed = outcomes[1]
    assert failed.reason == "ZeroDivisionError: the loss went to zero" and failed.finding is None
    error = (tmp_path / "report" / "activations" / "error.txt").read_text()
    assert error.startswith("Traceback") and "in boom" in error and "ZeroDivisionError" in error
    assert lab.exit_status(outcomes) == 1
    page = (tmp_path / "report" / "index.html").read_text()
    assert "<strong>Failed.</strong> ZeroDivisionError: the loss went to zero" in page
    assert 'href="activations/error.txt"' in page and 'src="losses/plot.png"' in page and "1 failed" in page
    # the next run of it succeeds: its stale error.txt goes
    modules["activations"] = fake_experiment("activations")
    assert [o.status for o in lab.run_all(tmp_path / "report", names=["activations"])] == ["ok"]
    assert not (tmp_path / "report" / "activations" / "error.txt").exists()


def test_run_all_keeps_the_report_when_stopped(tmp_path, monkeypatch):
    modules = {n: fake_experiment(n) for n in ("linear-regression", "activations")}

    def interrupted(out_dir, quick=False, seed=0):
        raise KeyboardInterrupt

    modules["activations"].run = interrupted
    monkeypatch.setattr(lab, "get", lambda name: modules[lab.canonical(name)])
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C is not an experiment's failure: it stops the run
        lab.run_all(tmp_path / "report", names=list(modules))
    page = (tmp_path / "report" / "index.html").read_text()
    assert '<section id="linear-regression">' in page and 'id="activations"' not in page


def test_exit_status():
    assert lab.exit_status([]) == 0
    assert lab.exit_status([Outcome("a", "ok"), Outcome("b", "skipped", reason="no data")]) == 0
    assert lab.exit_status([Outcome("a", "ok"), Outcome("b", "failed", reason="ValueError: x")]) == 1


def test_run_a_real_experiment(tmp_path):
    f = lab.run("linear-regression", tmp_path / "lr", quick=True)
    assert f.seconds > 0 and f.name == "linear-regression"
    assert f.command == f"dlbasics lab linear-regression --out {(tmp_path / 'lr').as_posix()} --quick"
    data = json.loads((tmp_path / "lr" / "finding.json").read_text())
    assert data["numbers"]["max_grad_diff"] < 1e-10
    for fig in f.figures:
        assert (tmp_path / "lr" / fig).is_file()


# ---- index.html ----------------------------------------------------------------------------------------
def test_index_has_every_section_escaped_with_relative_images(tmp_path):
    evil = finding("evil", title="<script>alert('x')</script> & co", claim="a < b & c > d",
                   summary="Use **bold** and `<b>code</b>` here.\n\n- one <i>\n- **two**",
                   figures=["fig one.png"], command="dlbasics lab evil --out 'a&b'")
    findings = [finding("first"), evil, finding("third", numbers={"x": 1.0})]
    path = report.write_index(tmp_path, findings)
    assert path == tmp_path / "index.html"
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "<script" not in page
    for f in findings:
        assert f'<section id="{f.name}">' in page and f'href="#{f.name}"' in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page
    assert "a &lt; b &amp; c &gt; d" in page
    assert "<strong>bold</strong>" in page and "<code>&lt;b&gt;code&lt;/b&gt;</code>" in page
    assert "<ul><li>one &lt;i&gt;</li><li><strong>two</strong></li></ul>" in page
    assert 'src="evil/fig%20one.png"' in page and 'src="first/curve.png"' in page
    assert "base64" not in page and str(tmp_path) not in page
    assert "dlbasics lab evil --out &#x27;a&amp;b&#x27;" in page
    assert "<td class=\"num\">0.9876</td>" in page and "<td class=\"num\">1.500e-09</td>" in page


def test_markdown_to_html():
    html = report.markdown_to_html("First line\ncontinues **here**.\n\n  \n`a**b**` & more")
    assert html == "<p>First line continues <strong>here</strong>.</p>\n<p><code>a**b**</code> &amp; more</p>"
    assert report.markdown_to_html("") == ""


def test_lab_imports_no_pyplot():
    code = "import sys, dlbasics.lab; assert 'matplotlib.pyplot' not in sys.modules"
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)
