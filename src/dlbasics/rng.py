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


# ---- every generator a run draws from, for exact resume ----------------------------------------------
def find_generators(**roots: object) -> dict[str, np.random.Generator]:
    """Every ``numpy.random.Generator`` reachable from ``roots`` through the attributes of dlbasics objects
    (and the lists, tuples and dicts they hold), by path: ``{"loader._generator": g, "loader.collate_fn.
    _generator": g2, "model.drop.generator": g3}``; plus ``"default"``, the default generator.

    A checkpoint saves their states and a resumed run puts them back, so data order, dropout masks, MixUp and
    augmentation continue exactly where they were. A generator reachable by several paths is listed once,
    under the first path in sorted attribute order (so the paths are the same in every process)."""
    found: dict[str, np.random.Generator] = {"default": _default}
    seen: set[int] = {id(_default)}

    def visit(obj: object, path: str, depth: int) -> None:
        if isinstance(obj, np.random.Generator):
            if id(obj) not in seen:
                seen.add(id(obj))
                found[path] = obj
            return
        if depth > 12 or id(obj) in seen or isinstance(obj, np.ndarray | str | bytes | int | float | bool):
            return
        if isinstance(obj, dict):
            seen.add(id(obj))
            for k in sorted(obj, key=str):
                visit(obj[k], f"{path}.{k}", depth + 1)
        elif isinstance(obj, list | tuple):
            seen.add(id(obj))
            for i, v in enumerate(obj):
                visit(v, f"{path}.{i}", depth + 1)
        elif type(obj).__module__.startswith("dlbasics") and hasattr(obj, "__dict__"):
            if type(obj).__name__ == "Tensor":
                return
            seen.add(id(obj))
            for k in sorted(vars(obj)):
                visit(vars(obj)[k], f"{path}.{k}", depth + 1)

    for name, root in roots.items():
        visit(root, name, 0)
    return found


def generator_states(generators: dict[str, np.random.Generator]) -> dict[str, dict]:
    """The bit generators' states (plain dicts of ints and strings: JSON-ready)."""
    return {path: g.bit_generator.state for path, g in generators.items()}


def set_generator_states(generators: dict[str, np.random.Generator], states: dict[str, dict]) -> None:
    """Put saved states back; the set of generators must be the one they were saved from."""
    if set(generators) != set(states):
        missing, extra = sorted(set(states) - set(generators)), sorted(set(generators) - set(states))
        raise ValueError(f"the run's random generators differ from the checkpoint's (only in the checkpoint: "
                         f"{', '.join(missing) or 'none'}; only in the run: {', '.join(extra) or 'none'})")
    for path, g in generators.items():
        g.bit_generator.state = _plain_state(states[path])


def _plain_state(state: dict) -> dict:
    """A state dict as NumPy wants it back (a loaded checkpoint gives OrderedDicts and NumPy ints)."""
    return {k: _plain_state(v) if isinstance(v, dict) else (v.item() if isinstance(v, np.generic) else v)
            for k, v in state.items()}
