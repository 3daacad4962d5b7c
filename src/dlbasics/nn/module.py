"""``Module``: the base of every layer and model.

Assigning a ``Parameter``, a ``Module`` or a registered buffer as an attribute registers it (PyTorch's
contract), so ``parameters()``, ``state_dict()`` and ``train()`` find it. Registered objects live in the
instance ``__dict__`` too, so attribute access is plain Python (no ``__getattr__`` that could hide a typo).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from dlbasics import dtypes
from dlbasics.errors import StateDictError
from dlbasics.nn.parameter import Parameter
from dlbasics.tensor import Tensor


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class: subclasses call ``super().__init__()``, assign layers and parameters, define forward."""

    training: bool

    def __init__(self) -> None:
        d = self.__dict__
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_non_persistent"] = set()
        d["_modules"] = {}
        d["training"] = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ---- registration ---------------------------------------------------------------------------
    def _registries(self) -> tuple[dict, dict, dict]:
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        return d["_parameters"], d["_buffers"], d["_modules"]

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Parameter | Module) or name in self.__dict__.get("_parameters", ()) or name in \
                self.__dict__.get("_buffers", ()) or name in self.__dict__.get("_modules", ()):
            params, buffers, modules = self._registries()
            # replacing a registered object keeps its place (a Sequential runs its layers in that order)
            if isinstance(value, Parameter):
                if name not in params:
                    self._forget(name)
                params[name] = value
            elif isinstance(value, Module):
                if name not in modules:
                    self._forget(name)
                modules[name] = value
            elif name in params:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} as parameter '{name}' "
                                    "(dl.nn.Parameter or None expected)")
                params[name] = None
            elif name in modules:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}' "
                                    "(dl.nn.Module or None expected)")
                modules[name] = None
            else:  # a buffer
                if value is not None and not isinstance(value, Tensor):
                    raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}' "
                                    "(Tensor or None expected)")
                buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._forget(name)
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        for registry in self._registries():
            registry.pop(name, None)
        self.__dict__["_non_persistent"].discard(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: '{name}' must be a Parameter or None, got {type(param).__name__}")
        self._registries()[0][name] = None  # mark the name, then assign through __setattr__
        setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that is part of the module's state but not learned (e.g. BatchNorm's running mean)."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: '{name}' must be a Tensor or None, got {type(tensor).__name__}")
        self._forget(name)
        self._registries()[1][name] = None
        if not persistent:
            self.__dict__["_non_persistent"].add(name)
        setattr(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        self._registries()[2][name] = None
        setattr(self, name, module)

    # ---- traversal ------------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant once, depth first, with dotted names."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            children = [(f"{name}.{k}" if name else k, c) for k, c in m._modules.items() if c is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        mods = self.named_modules() if recurse else iter([("", self)])
        for prefix, m in mods:
            for k, v in m.__dict__[registry].items():
                if v is None or id(v) in seen:
                    continue
                seen.add(id(v))
                yield (f"{prefix}.{k}" if prefix else k), v

    def named_parameters(self, recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        yield from self._named_members("_parameters", recurse)  # type: ignore[misc]

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse):
            yield p

    def named_buffers(self, recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse):
            yield b

    # ---- modes and gradients ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule (children first) and on self, e.g. for custom init."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, dtype: Any) -> Module:
        """Cast floating parameters and buffers to ``dtype`` in place (e.g. float64 for gradient checks)."""
        dt = dtypes.as_dtype(dtype)
        for t in (*self.parameters(), *self.buffers()):
            if t.data.dtype.kind == "f":
                t.data = t.data.astype(dt)
                if t.grad is not None:
                    t.grad = t.grad.astype(dt)
        return self

    def float(self) -> Module:
        return self.to(dtypes.float32)

    def double(self) -> Module:
        return self.to(dtypes.float64)

    # ---- state ---------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Every parameter and persistent buffer by dotted name, as the ndarray it holds (no copy)."""
        return OrderedDict((k, t.data) for k, t in self._state_tensors().items())

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the parameters and buffers in place; names and shapes must match.

        With ``strict`` (default) missing or unexpected keys raise; shape mismatches (and dtypes that cannot be
        cast, e.g. float into an integer buffer) always raise. All is checked before anything is copied, so a
        failed load leaves the model as it was. Raises ``StateDictError`` (a ``RuntimeError``, as in PyTorch).
        """
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        for k, t in own.items():
            if k in state_dict:
                v = state_dict[k]
                arr = v.data if isinstance(v, Tensor) else np.asarray(v)
                if arr.shape != t.data.shape:
                    problems.append(f"size mismatch for {k}: checkpoint {arr.shape} vs model {t.data.shape}")
                elif not np.can_cast(arr.dtype, t.data.dtype, casting="same_kind"):
                    problems.append(f"dtype mismatch for {k}: checkpoint {arr.dtype} vs model {t.data.dtype}")
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__} (is it another "
                                 "model's?): " + "; ".join(problems))
        for k, t in own.items():
            if k in state_dict:
                v = state_dict[k]
                np.copyto(t.data, v.data if isinstance(v, Tensor) else np.asarray(v), casting="same_kind")
        return IncompatibleKeys(missing, unexpected)

    def _state_tensors(self) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for prefix, m in self.named_modules():
            head = f"{prefix}." if prefix else ""
            for k, p in m._parameters.items():
                if p is not None:
                    out[head + k] = p
            for k, b in m._buffers.items():
                if b is not None and k not in m._non_persistent:
                    out[head + k] = b
        return out

    # ---- printing ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        head = type(self).__name__ + "("
        if not lines:
            return head + ")"
        if len(lines) == 1 and not self._modules:
            return head + lines[0] + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
