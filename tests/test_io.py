"""dl.save / dl.load: safetensors + JSON, no pickle, atomic, readable by PyTorch."""

import os
from collections import OrderedDict

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import io, nn


def test_model_round_trip(tmp_path):
    dl.manual_seed(0)
    a = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    path = tmp_path / "m.safetensors"
    io.save(a, path)
    sd = io.load(path)
    assert list(sd) == list(a.state_dict())
    b = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    b.load_state_dict(sd)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
        assert v.dtype == b.state_dict()[k].dtype


def test_pytorch_reads_a_model_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    dl.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3), nn.Tanh(), nn.Linear(3, 2))
    path = tmp_path / "m.safetensors"
    io.save(model, path)
    tmodel = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    tmodel.load_state_dict(load_file(str(path)))  # strict: same names, shapes and dtypes
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose(model(dl.tensor(x)).data, tmodel(torch.tensor(x)).detach().numpy(), rtol=1e-6)


def test_nested_checkpoint_keeps_types(tmp_path):
    ckpt = {
        "model": OrderedDict([("w", np.arange(6, dtype=np.float32).reshape(2, 3))]),
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(2)}, 1: {"step": 3.0}},
                      "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "nesterov": False, "params": [0, 1],
                                        "foreach": None}]},
        "epoch": 4,
        "name": "run",
        "zero_d": np.array(2.5, np.float64),
        "labels": np.array([1, 2], np.int64),
    }
    path = tmp_path / "c.safetensors"
    io.save(ckpt, path)
    out = io.load(path)
    assert out["epoch"] == 4 and out["name"] == "run"
    assert list(out["optimizer"]["state"]) == [0, 1]  # int keys survive
    assert out["optimizer"]["state"][0]["step"] == 3 and isinstance(out["optimizer"]["state"][1]["step"], float)
    assert out["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)  # tuples survive
    assert out["optimizer"]["param_groups"][0]["foreach"] is None
    np.testing.assert_array_equal(out["model"]["w"], ckpt["model"]["w"])
    assert out["zero_d"].shape == () and out["zero_d"].dtype == np.float64
    assert out["labels"].dtype == np.int64


def test_non_contiguous_and_tensor_values(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4).T
    path = tmp_path / "t.safetensors"
    io.save({"a": a, "t": dl.tensor([1.0, 2.0])}, path)
    out = io.load(path)
    np.testing.assert_array_equal(out["a"], a)
    np.testing.assert_array_equal(out["t"], [1.0, 2.0])


def test_unsupported_values_are_clear_errors(tmp_path):
    with pytest.raises(TypeError, match="cannot store a set at 'x'"):
        io.save({"x": {1, 2}}, tmp_path / "bad.safetensors")
    with pytest.raises(TypeError, match="dtype"):
        io.save({"x": np.array(["a"])}, tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        io.load(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        io.load(junk)


def test_write_is_atomic(tmp_path, monkeypatch):
    """A crash while writing leaves the previous checkpoint intact and no temp file behind."""
    path = tmp_path / "ckpt.safetensors"
    io.save({"w": np.zeros(3, np.float32)}, path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        io.save({"w": np.ones(3, np.float32)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors"]


def test_no_pickle_in_the_package():
    import pathlib

    src = pathlib.Path(dl.__file__).parent
    for f in src.rglob("*.py"):
        text = f.read_text()
        assert "import pickle" not in text and "allow_pickle=True" not in text, f


def test_saved_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "m.safetensors"
    io.save({"w": np.zeros(2, np.float32)}, path)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
