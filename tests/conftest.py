"""Fixtures shared across the test folders."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings

from dlbasics.ops import conv as conv_ops

_thread_limits: Any = None

# Hypothesis draws the same examples on every run ("seeds everywhere": a red CI is a real failure, reproducible by
# anyone); `pytest --hypothesis-profile=explore` draws new ones each run and replays what failed before.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist the worker processes share the cores: each gets its share of BLAS threads, as two
    processes with two threads each on two cores would fight over them."""
    global _thread_limits
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        from threadpoolctl import threadpool_limits

        _thread_limits = threadpool_limits(limits=max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture
def force_lowering(monkeypatch) -> Callable[[str | None], None]:
    """force_lowering(name) makes every conv in the test take that lowering where it is supported (None: each
    layer's own choice), by binding the name into the two functions that choose (``ops/conv``); "shifted-one-pixel-
    per-row" is the shifted one without pairing the pixels of few-channel layers."""

    def force(name: str | None) -> None:
        if name is None:
            return
        choose, adjoint = conv_ops.choose_lowering, conv_ops.choose_adjoint_lowering
        # a lowering the code names itself (conv2d(lowering=...)) still wins
        monkeypatch.setattr(conv_ops, "choose_lowering", lambda geo, named=None: choose(geo, named or name))
        monkeypatch.setattr(conv_ops, "choose_adjoint_lowering", lambda geo, named=None: adjoint(geo, named or name))

    return force


@pytest.fixture(scope="module")
def one_torch_thread():
    """PyTorch on one thread for a module of tiny tensors, where its thread pool only waits (and spins against the
    other work on the machine). Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
