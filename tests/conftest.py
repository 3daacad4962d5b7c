"""Fixtures shared across the test folders."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dlbasics.ops import conv as conv_ops


@pytest.fixture
def force_lowering(monkeypatch) -> Callable[[str | None], None]:
    """force_lowering(name) makes every conv in the test take that lowering where it is supported (None: each
    layer's own choice); "shifted-one-pixel-per-row" is the shifted one without pairing the pixels of few-channel
    layers."""

    def force(name: str | None) -> None:
        if name == "shifted-one-pixel-per-row":
            monkeypatch.setattr(conv_ops, "PAIR_MAX_CHANNELS", 0)
            name = "shifted"
        monkeypatch.setattr(conv_ops, "LOWERING", name)

    return force
