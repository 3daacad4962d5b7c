"""Every Python example in the README runs as written, and prints what the README says it prints."""

import ast
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 3


def printed(out: str, prefix: str = "") -> object:
    """The value a ``print`` wrote on the last line of ``out`` that starts with ``prefix`` (a dict, a number)."""
    line = [ln for ln in out.splitlines() if ln.startswith(prefix)][-1]
    return ast.literal_eval(line[len(prefix):].strip())


def accuracy_near(out: str, readme: float, prefix: str = "") -> bool:
    return abs(printed(out, prefix)["accuracy"] - readme) <= 0.02


def first_number(out: str) -> float:
    return float(next(ln for ln in out.splitlines() if re.match(r"^[0-9.]+ ", ln)).split()[0])


def moons(out: str) -> bool:
    loss, accuracy = (float(v) for v in out.strip().splitlines()[-1].split())
    return loss < 0.06 and accuracy > 0.99


# What each example prints, against the number the README writes beside the print (found by a line of the block)
PRINTS = {
    "epochs=40, val_loader": lambda out: accuracy_near(out, 0.975),                   # accuracy ~0.975
    'result.summary["test_accuracy"], model': lambda out: abs(first_number(out) - 0.97) <= 0.02,        # ~0.97
    "model.sync_gradients()": lambda out: accuracy_near(out, 0.92),                   # accuracy ~0.92
    'print("one run:"': lambda out: accuracy_near(out, 0.97, "one run:") and accuracy_near(out, 0.97, "ensemble:"),
    "for step in range(400)": moons,                                                  # ~0.03, ~0.996
}


def test_every_printed_claim_names_its_example():
    for marker in PRINTS:
        assert sum(marker in code for code in BLOCKS) == 1, marker


@pytest.mark.slow
@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # examples may write files (dl.save)
    namespace = {"__name__": "readme"}
    if "import dlbasics as dl" not in code:
        exec("import dlbasics as dl", namespace)
    exec(compile(code, "README block", "exec"), namespace)
    out = capsys.readouterr().out
    for marker, check in PRINTS.items():
        if marker in code:
            assert check(out), f"the README's example prints something else than it says:\n{out[-2000:]}"
