"""``Function``: one differentiable op, its forward and backward side by side.

A subclass implements

    forward(self, *arrays, **params) -> ndarray      # inputs are the tensors' ndarrays
    backward(self, grad) -> ndarray | tuple           # one gradient per tensor input, None where unneeded

and stores what backward needs on ``self`` (the context). ``self.needs_input_grad`` is set before
``forward`` runs, so forward saves only what the needed gradients use and backward computes only those.
A gradient may come back in the broadcast shape of the output: the engine sums it to the input's shape
(the one place broadcasting is undone) and casts it to the input's dtype. Backward must not modify
``grad`` in place and must not return an array it keeps (the engine may hand it to a leaf's ``.grad``).

The node keeps its *parents* (the inputs' ``grad_fn``, or the leaf tensor itself), not the input
tensors, so an activation that backward does not need is freed as soon as the forward pass drops it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dlbasics.autograd.grad_mode import is_grad_enabled

if TYPE_CHECKING:
    from dlbasics.tensor import Tensor


class Function:
    parents: tuple = ()
    needs_input_grad: tuple[bool, ...] = ()
    input_shapes: tuple = ()
    input_dtypes: tuple = ()
    freed = False

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray | tuple[np.ndarray | None, ...] | None:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run forward on the inputs' data and, if any input requires grad, record this node."""
        ctx = cls.__new__(cls)
        record = False
        if is_grad_enabled():
            needs = tuple([t.requires_grad for t in inputs])
            record = True in needs
            ctx.needs_input_grad = needs
        if not record:
            ctx.needs_input_grad = (False,) * len(inputs)
        try:
            out = ctx.forward(*[t.data for t in inputs], **params)
        except ValueError as e:  # NumPy's broadcast errors: say which op and which shapes
            shapes = " and ".join(str(t.data.shape) for t in inputs)
            raise RuntimeError(f"{cls.__name__.lower()}: inputs of shapes {shapes}: {e}") from None
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        if not record:
            return _Tensor._make(out, False, None)
        ctx.parents = tuple(
            [(t.grad_fn if t.grad_fn is not None else t) if t.requires_grad else None for t in inputs]
        )
        ctx.input_shapes = tuple([t.data.shape for t in inputs])
        ctx.input_dtypes = tuple([t.data.dtype for t in inputs])
        return _Tensor._make(out, True, ctx)

    def release(self) -> None:
        """Drop everything saved for backward (after a backward without ``retain_graph``)."""
        self.__dict__.clear()
        self.freed = True

    @property
    def name(self) -> str:
        return type(self).__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _bind_tensor() -> None:
    # tensor.py imports this module; the Tensor class is bound once both are loaded.
    global _Tensor
    from dlbasics.tensor import Tensor

    _Tensor = Tensor


_Tensor: Any = None
