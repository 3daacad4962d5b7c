"""A world of one process without mpiexec: no mpi4py needed, every collective the identity."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import dlbasics as dl
import dlbasics.distributed as dist
from dlbasics.data import DistributedSampler
from dlbasics.errors import ConfigError, MissingDependencyError
from dlbasics.nn.parallel import DistributedDataParallel


@pytest.fixture
def no_mpi(monkeypatch):
    """No launcher's variables and no mpi4py: as a plain ``python train.py`` without the [mpi] extra."""
    for var in dist._LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # `import mpi4py` now raises ImportError
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_world_of_one_without_mpi(no_mpi):
    assert not dist.is_initialized()
    dist.init_process_group("mpi")
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    a = np.arange(6.0).reshape(2, 3)
    for op in ("sum", "avg", "product", "min", "max"):
        dist.all_reduce(a, op=op)
    dist.broadcast(a, src=0)
    dist.barrier()
    assert np.array_equal(a, np.arange(6.0).reshape(2, 3))
    sampler = DistributedSampler(5, shuffle=False)
    assert list(sampler) == [0, 1, 2, 3, 4]
    dist.destroy_process_group()
    assert not dist.is_initialized()


def test_ddp_in_a_world_of_one_is_the_module(no_mpi):
    dist.init_process_group()
    dl.manual_seed(0)
    model = dl.nn.Sequential(dl.nn.Linear(3, 4), dl.nn.BatchNorm1d(4), dl.nn.Linear(4, 1))
    ddp = DistributedDataParallel(model)
    assert ddp.module is model
    x = dl.randn(8, 3)
    out = ddp(x)
    out.sum().backward()
    grads = [p.grad.copy() for p in model.parameters()]
    ddp.sync_gradients()
    assert all(np.array_equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    assert list(ddp.state_dict()) == list(model.state_dict())  # no "module." prefix: loads into the bare model
    ddp.load_state_dict(model.state_dict())
    assert next(n for n, _ in ddp.named_parameters()) == "module.0.weight"  # as PyTorch's DDP
    assert "world_size=1" in repr(ddp)


def test_mpiexec_without_mpi4py_says_what_to_install(no_mpi, monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    with pytest.raises(MissingDependencyError, match=r"pip install 'dlbasics\[mpi\]'"):
        dist.init_process_group()
    assert not dist.is_initialized()


def test_errors(no_mpi):
    with pytest.raises(ConfigError, match=r"has not been initialized; call .*init_process_group"):
        dist.get_rank()
    with pytest.raises(ConfigError, match="has not been initialized"):
        DistributedDataParallel(dl.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="unknown backend 'nccl'; choose from mpi"):
        dist.init_process_group("nccl")
    with pytest.raises(ConfigError, match="timeout must be positive"):
        dist.init_process_group(timeout=0)
    dist.init_process_group()
    with pytest.raises(ConfigError, match="already initialized"):
        dist.init_process_group()
    with pytest.raises(ConfigError, match="unknown op 'mean'; choose from sum, avg, product, min, max"):
        dist.all_reduce(np.ones(2), op="mean")
    with pytest.raises(TypeError, match="op 'avg' needs a float array"):
        dist.all_reduce(np.ones(2, dtype=np.int64), op="avg")
    with pytest.raises(TypeError, match="dtype bool"):
        dist.all_reduce(np.ones(2, dtype=bool))
    with pytest.raises(ConfigError, match=r"src must be a rank in 0 \.\. 0"):
        dist.broadcast(np.ones(2), src=1)
    with pytest.raises(ConfigError, match="bucket_cap_mb must be a positive number"):
        DistributedDataParallel(dl.nn.Linear(2, 2), bucket_cap_mb=0)
