"""Run folders: one writer and reader for every kind, so evaluate, predict and load_model work on all of them;
a new run never shares or overwrites a folder."""

import json
import re

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.cli import main
from dlbasics.data import DataLoader, datasets
from dlbasics.errors import RunFolderError
from dlbasics.train import evaluate, load_model
from dlbasics.train.rundir import new_run_dir, open_run

DIGITS = datasets.digits()
SMALL = ["--hidden", "16", "--epochs", "6", "--quiet"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One folder of every kind, each made by its command."""
    root = tmp_path_factory.mktemp("kinds")
    made = {
        "train": ["train", *SMALL],
        "cv": ["cv", "--k", "2", *SMALL],
        "ensemble": ["ensemble", "--members", "2", *SMALL],
        "tune": ["tune", "--space", "lr=1e-3:1e-2:log", "--trials", "1", "--storage",
                 f"sqlite:///{root / 'tune.db'}", *SMALL],
    }
    for kind, argv in made.items():
        assert main([*argv, "--out", str(root / kind)]) == 0, kind
    assert main(["compress", str(root / "train"), "--energy", "0.95", "--out", str(root / "compress")]) == 0
    return root


@pytest.mark.parametrize("kind", ["train", "cv", "ensemble", "tune", "compress"])
def test_evaluate_works_on_every_kind_of_run_folder(folders, kind, capsys):
    assert open_run(folders / kind).kind == kind
    capsys.readouterr()
    assert main(["evaluate", str(folders / kind)]) == 0
    out = capsys.readouterr().out
    accuracies = [float(a) for a in re.findall(r"test_accuracy (\d\.\d+)", out)]
    assert accuracies and all(a > 0.5 for a in accuracies), out
    if kind == "cv":
        assert out.count("fold ") == 2 and "mean:" in out
    model = load_model(folders / kind)  # one call: a ready model, in eval mode
    assert not model.training
    got = evaluate(model, DataLoader(DIGITS.test, batch_size=512))["accuracy"]
    if kind != "cv":
        assert f"test_accuracy {got:.4f}" in out


def test_the_trained_model_keeps_its_place_and_names(folders):
    from safetensors.numpy import load_file

    weights = load_file(str(folders / "train" / "model.safetensors"))  # what PyTorch's load_file reads too
    assert "layers.0.weight" in weights and weights["layers.0.weight"].shape == (16, 64)


def test_predict_from_npy_csv_and_to_a_file(folders, tmp_path, capsys):
    x = DIGITS.test.arrays[0][:5]
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", header=",".join(f"p{i}" for i in range(64)), comments="")
    model = load_model(folders / "train")
    expected = model(dl.tensor(x)).data.argmax(axis=1)
    for name in ("x.npy", "x.csv"):
        assert main(["predict", str(folders / "train"), str(tmp_path / name)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [int(line.split()[1]) for line in lines] == list(expected)
    np.save(tmp_path / "one.npy", x[0])  # one sample
    assert main(["predict", str(folders / "train"), str(tmp_path / "one.npy"), "--out", str(tmp_path / "p.csv")]) == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "input,class,name,probability" and rows[1].split(",")[1] == str(expected[0])
    assert main(["predict", str(folders / "train"), str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.npy")]) == 0
    p = np.load(tmp_path / "p.npy")
    assert p.shape == (5, 10) and np.allclose(p.sum(axis=1), 1, atol=1e-5)


def test_predict_images_for_an_image_model(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "resnet"
    assert main(["train", "--model", "resnet", "--depth", "8", "--width", "8", "--data", "digits", "--no-flatten",
                 "--epochs", "4", "--lr", "3e-3", "--out", str(out), "--quiet"]) == 0
    images = datasets.digits(flatten=False).test.arrays
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(6):  # 8x8 digits saved as 32x32 PNGs: predict converts and resizes them back
        pixels = (images[0][i, 0] * 255).astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32), Image.NEAREST).convert("RGB").save(folder / f"d{i}.png")
    capsys.readouterr()
    assert main(["predict", str(out), str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [f"d{i}.png" for i in range(6)]
    predicted = [int(line.split()[1]) for line in lines]
    assert sum(p == t for p, t in zip(predicted, images[1][:6])) >= 4


def test_predict_errors_name_the_shapes(folders, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((3, 10), dtype=np.float32))
    assert main(["predict", str(folders / "train"), str(tmp_path / "bad.npy")]) == 2
    assert "samples of shape (10,) (array (3, 10)) do not fit the model, which takes (64,)" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("1 2 3")
    assert main(["predict", str(folders / "train"), str(tmp_path / "x.txt")]) == 2
    assert "give a .npy array, a .csv of features, or image files" in capsys.readouterr().err


def test_new_runs_never_share_a_folder(tmp_path, monkeypatch):
    monkeypatch.setattr("time.strftime", lambda fmt: "20261206-101500")  # every run "in the same second"
    made = {new_run_dir(None, "mlp-digits", root=tmp_path) for _ in range(3)}
    assert sorted(p.name for p in made) == ["mlp-digits-20261206-101500", "mlp-digits-20261206-101500-2",
                                            "mlp-digits-20261206-101500-3"]


def test_an_existing_run_or_a_file_is_never_overwritten(folders, tmp_path, capsys):
    before = (folders / "train" / "model.safetensors").read_bytes()
    assert main(["train", *SMALL, "--out", str(folders / "train")]) == 2
    assert "already holds a run; continue it with --resume" in capsys.readouterr().err
    assert (folders / "train" / "model.safetensors").read_bytes() == before
    (tmp_path / "file").write_text("x")
    assert main(["train", *SMALL, "--out", str(tmp_path / "file")]) == 2
    assert "--out " + str(tmp_path / "file") + ": is a file, not a folder" in capsys.readouterr().err


def test_corrupt_or_foreign_run_folders_are_one_line_errors(folders, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(RunFolderError, match=re.escape(f"{bad / 'config.json'}: not valid JSON")):
        open_run(bad)
    assert main(["evaluate", str(bad)]) == 2
    assert f"{bad / 'config.json'}: not valid JSON" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text((folders / "train" / "config.json").read_text())
    dl.save(dl.models.create("mlp", in_features=64, num_classes=10, hidden=[8]), other / "model.safetensors")
    assert main(["evaluate", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Error(s) in loading state_dict for MLP" in err and "size mismatch" in err


def test_a_run_folder_of_dlbasics_0_1_still_evaluates(folders, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.safetensors").write_bytes((folders / "train" / "model.safetensors").read_bytes())
    flat = {"model": "mlp", "hidden": [16], "data": "digits", "data_dir": None, "optimizer": "adam", "lr": 0.001,
            "epochs": 2, "batch_size": 32, "seed": 0, "task": "classification", "loss": None,
            "model_options": {"in_features": 64, "num_classes": 10, "hidden": [16]}}
    (old / "config.json").write_text(json.dumps(flat))
    assert main(["evaluate", str(old)]) == 0
    assert "test_accuracy" in capsys.readouterr().out
