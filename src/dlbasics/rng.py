"""The default random generator and seed handling: every source of randomness in dlbasics takes a seed
or a ``numpy.random.Generator`` and otherwise draws from the default generator set by ``manual_seed``."""

from __future__ import annotations

import numpy as np

_default = np.random.default_rng()

Seed = int | np.random.Generator | None


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator (dropout masks, init, shuffling without their own seed)."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_generator() -> np.random.Generator:
    return _default


def get_generator(generator: Seed = None) -> np.random.Generator:
    """``None`` -> the default generator; an int -> a fresh generator seeded with it; a Generator as is."""
    if generator is None:
        return _default
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, int | np.integer):
        return np.random.default_rng(int(generator))
    raise TypeError(f"generator must be None, an int seed or numpy.random.Generator, got {type(generator).__name__}")
