"""``Optimizer``: the base of every update rule - parameter groups, per-parameter state, ``state_dict``.

A subclass gives its hyperparameters' defaults, checks a group in ``_validate``, and updates one group's
parameters in ``_step_group``. Contract (PyTorch's): ``param_groups`` is a list of dicts, each with a
``"params"`` list and every hyperparameter; ``state`` maps a parameter (the object) to a dict of its
running buffers; a parameter whose ``.grad`` is ``None`` is skipped.

Updates run in place on ``p.data`` with NumPy ``out=`` arguments on buffers allocated at the first step,
so a training step allocates nothing here. ``p.grad`` is never written: where a rule needs a modified
gradient (weight decay, ``maximize``) it goes to a private scratch array per parameter, kept outside
``state`` so it is never saved.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import numpy as np

from dlbasics.autograd import enable_grad
from dlbasics.registry import Registry
from dlbasics.tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]

# Elements per block in ``blocks``: the half-dozen float32 arrays of one block (~1.5 MB) stay in a core's
# L2 cache across the ~12 passes of an update, instead of streaming every pass from memory (measured:
# an Adam step over 535k floats 1.17 -> 0.89 ms).
BLOCK = 65536

# The optimizers by name (``--optimizer sgd``): each file registers its classes; options come from __init__.
OPTIMIZERS = Registry("optimizer")


class Optimizer:
    """Base class: holds ``param_groups`` and ``state``; subclasses implement ``_step_group``.

    ``params`` is an iterable of parameters, or of dicts (parameter groups) whose entries override
    ``defaults`` for that group, e.g. ``SGD([{"params": body}, {"params": head, "lr": 0.1}], lr=0.01)``.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults: dict[str, Any] = _plain(dict(defaults))
        self._validate(self.defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        # id(param) -> scratch arrays of the param's shape; never saved, never aliasing p.grad
        self._scratch: dict[int, list[np.ndarray]] = {}
        if isinstance(params, Tensor):
            raise TypeError(f"{self._name}: params must be an iterable of Parameters or of dicts, "
                            "not a single Tensor (wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    # ---- groups ---------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones come from ``defaults``)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}: a parameter group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}: a parameter group needs a 'params' entry")
        params = param_group["params"]
        if isinstance(params, set):
            raise TypeError(f"{self._name}: parameters must be an ordered collection, not a set "
                            "(a set's order changes between runs, which would scramble state_dict)")
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{self._name}: got an empty parameter list")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{self._name}: can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{self._name}: can't optimize a non-leaf Tensor (one made by an op)")
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self._name}: a parameter group contains the same parameter twice")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if taken.intersection(ids):
            raise ValueError(f"{self._name}: some parameters appear in more than one parameter group")
        hyper = _plain({k: v for k, v in param_group.items() if k != "params"})
        for k, v in self.defaults.items():
            hyper.setdefault(k, v)
        self._validate(hyper)
        self.param_groups.append({"params": params, **hyper})

    # hyperparameters that must be >= 0 wherever an optimizer has them, and their names in errors
    _NON_NEGATIVE: ClassVar[dict[str, str]] = {
        "lr": "learning rate", "eps": "epsilon", "momentum": "momentum", "weight_decay": "weight_decay"}

    def _validate(self, group: dict[str, Any]) -> None:
        """Raise ``ValueError`` naming the optimizer and the bad hyperparameter. Checks the shared
        non-negative ones here; subclasses call this and add their own."""
        for key, what in self._NON_NEGATIVE.items():
            if key in group:
                self._require(group[key] >= 0, what, group[key], "must be >= 0")

    def _require(self, ok: bool, what: str, value: Any, rule: str) -> None:
        if not ok:
            raise ValueError(f"{self._name}: invalid {what} {value!r} ({rule})")

    def _with_state(self, group: dict[str, Any],
                    init: Callable[[Tensor, dict[str, Any]], None]) -> Iterator[tuple[Tensor, dict[str, Any]]]:
        """(param, state) for each parameter of ``group`` that has a gradient. A parameter's first step
        creates its state (``step = 0``, then ``init(p, state)`` adds the arrays); every step counts."""
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state.setdefault(p, {})
            if not state:
                state["step"] = 0
                init(p, state)
            state["step"] += 1
            yield p, state

    # ---- gradients and the step -----------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``p.grad = None`` (default), or fill the existing arrays with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; ``closure`` (re-evaluates the loss) runs first."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{self._name} does not implement _step_group")

    def _scratch_array(self, p: Tensor, i: int) -> np.ndarray:
        """The ``i``-th private scratch array for ``p`` (allocated once; again only if p's array changed)."""
        bufs = self._scratch.get(id(p))
        if bufs is None or bufs[0].shape != p.data.shape or bufs[0].dtype != p.data.dtype:
            bufs = self._scratch[id(p)] = []
        while len(bufs) <= i:
            bufs.append(np.empty(p.data.shape, p.data.dtype))
        return bufs[i]

    # ---- saving and loading ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: value}}, "param_groups": [{hyper..., "params": [index]}]}``.

        Parameters are numbered in the order of ``param_groups``. It is a snapshot: arrays are copies,
        so training on does not change a state dict already taken.
        """
        index: dict[int, int] = {}
        groups = []
        for g in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in g["params"]]
            groups.append(packed)
        state = {
            index[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else copy.deepcopy(v)) for k, v in s.items()}
            for p, s in self.state.items()
            if id(p) in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by ``state_dict`` into this optimizer's parameters.

        Groups are matched by position and must have the same sizes. Arrays are copied (cast to the
        parameter's dtype) so the caller's arrays are never aliased; sequences such as ``betas`` may
        come back from JSON as lists; state keys may be ints or their strings.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{self._name}: the state dict has {len(saved_groups)} parameter groups, "
                             f"this optimizer {len(self.param_groups)}")
        by_index: dict[int, Tensor] = {}
        for i, (saved, own) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"{self._name}: parameter group {i} of the state dict has {len(saved['params'])} "
                                 f"parameters, this optimizer's {len(own['params'])}")
            for k, p in zip(saved["params"], own["params"]):
                by_index[int(k)] = p
        new_state: dict[Tensor, dict[str, Any]] = {}
        for k, values in state_dict["state"].items():
            if int(k) not in by_index:
                raise ValueError(f"{self._name}: the state dict has state for parameter {k}, "
                                 "which no parameter group lists")
            p = by_index[int(k)]
            new_state[p] = {name: self._load_value(name, v, p, k) for name, v in values.items()}
        new_groups = []
        for saved, own in zip(saved_groups, self.param_groups):
            hyper = _plain({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
            for k, v in self.defaults.items():
                hyper.setdefault(k, v)
            self._validate(hyper)
            new_groups.append({"params": own["params"], **hyper})
        self.state = new_state
        self.param_groups = new_groups

    def _new_state_array(self, p: Tensor, fill: float = 0.0) -> np.ndarray:
        """A C-contiguous state array shaped like ``p`` (C order lets ``blocks`` slice it without copying)."""
        return np.full(p.data.shape, fill, p.data.dtype)

    def _load_value(self, name: str, value: Any, p: Tensor, index: Any) -> Any:
        if isinstance(value, Tensor):
            value = value.data
        if name == "step":
            return int(np.asarray(value).item())  # a count; torch keeps a float tensor, safetensors a 0-d array
        if isinstance(value, np.ndarray):
            arr = np.array(value, dtype=p.data.dtype, order="C", copy=True)
            if arr.shape != p.data.shape:
                raise ValueError(f"{self._name}: state '{name}' of parameter {index} has shape {arr.shape}, "
                                 f"the parameter {p.data.shape}")
            return arr
        return copy.deepcopy(value)

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {g[k]}" for k in sorted(g) if k != "params")
        return "\n".join([*lines, ")"])


def blocks(*arrays: np.ndarray | None) -> Iterator[tuple[Any, ...]]:
    """Matching views of same-shaped arrays, ``BLOCK`` elements at a time (``None`` passes through).

    Arrays that are not all C-contiguous (where a flat view would be a copy) come back whole, once.
    """
    present = [a for a in arrays if a is not None]
    n = present[0].size
    if n <= BLOCK or not all(a.flags.c_contiguous for a in present):
        yield arrays
        return
    size = -(-n // -(-n // BLOCK))  # equal blocks of at most BLOCK elements
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    for lo in range(0, n, size):
        yield tuple(None if f is None else f[lo:lo + size] for f in flat)


NO_ARRAY = np.empty(0, np.float32)  # an absent state array (no momentum, no AMSGrad) for a kernel's argument


def kernel_ready(*arrays: np.ndarray) -> bool:
    """Whether the arrays are C-contiguous and of one dtype, so their flat views go through one kernel loop."""
    return all(a.flags.c_contiguous and a.dtype == arrays[0].dtype for a in arrays)


def _plain(value: Any) -> Any:
    """Hyperparameters as plain JSON-able Python: NumPy scalars -> int/float/bool, lists -> tuples.

    Sequences become tuples (as PyTorch stores ``betas``), so a group read back from JSON, where tuples
    turn into lists, equals the group that was saved.
    """
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value
