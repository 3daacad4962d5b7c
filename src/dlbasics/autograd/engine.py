"""Reverse-mode differentiation: walk the graph from the output in topological order (iteratively, so a
chain of any length works), sum gradients per node, undo broadcasting, and accumulate into leaves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dlbasics.autograd.function import Function

if TYPE_CHECKING:
    from dlbasics.tensor import Tensor

_FREED = (
    "Trying to backward through the graph a second time (or after its saved arrays were freed): "
    "call .backward(retain_graph=True) the first time if you need to backward twice."
)


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...], op: str = "") -> np.ndarray:
    """Sum ``grad`` (in a broadcast shape) back to ``shape``: the adjoint of broadcasting."""
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise RuntimeError(f"{op}: gradient of shape {grad.shape} cannot be reduced to input shape {shape}")
    axes = tuple(range(extra)) + tuple(
        i + extra for i, s in enumerate(shape) if s == 1 and grad.shape[i + extra] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:
        if grad.size != int(np.prod(shape)):
            raise RuntimeError(f"{op}: gradient of shape {grad.shape} does not fit input shape {shape}")
        grad = grad.reshape(shape)
    return grad


def topological_order(root: Function) -> list[Function]:
    """Nodes reachable from ``root``, each before the nodes it depends on (iterative DFS post-order)."""
    order: list[Function] = []
    visited: set[int] = set()
    stack: list[tuple[Function, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        if node.freed:
            raise RuntimeError(_FREED)
        visited.add(id(node))
        stack.append((node, True))
        for p in node.parents:
            if isinstance(p, Function) and id(p) not in visited:
                stack.append((p, False))
    order.reverse()
    return order


def _owned(g: np.ndarray, like: np.ndarray) -> bool:
    """Whether ``g`` owns its memory, laid out as ``like`` (the leaf's data), so it can become the leaf's .grad."""
    f = g.flags
    return f.owndata and f.writeable and g.strides == like.strides


def backward(root: Tensor, grad: np.ndarray, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf), seeded with ``grad``, into every leaf's ``.grad``."""
    if root.grad_fn is None:
        _accumulate({id(root): (root, grad)})
        return
    grads: dict[int, np.ndarray] = {id(root.grad_fn): grad}
    leaves: dict[int, tuple[Tensor, np.ndarray]] = {}
    for fn in topological_order(root.grad_fn):
        g = grads.pop(id(fn), None)
        if g is None:  # every path from the root to here carried no gradient
            if not retain_graph:
                fn.release()
            continue
        in_grads = fn.backward(g)
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        for parent, ig, shape, dtype in zip(fn.parents, in_grads, fn.input_shapes, fn.input_dtypes):
            if parent is None or ig is None:
                continue
            if type(ig) is not np.ndarray:
                ig = np.asarray(ig)
            if ig.shape != shape:
                ig = unbroadcast(ig, shape, fn.name)
            if ig.dtype != dtype:
                ig = ig.astype(dtype)
            key = id(parent)
            if isinstance(parent, Function):
                prev = grads.get(key)
                grads[key] = ig if prev is None else prev + ig  # never in place: ig may be shared
            else:
                prev_leaf = leaves.get(key)
                leaves[key] = (parent, ig if prev_leaf is None else prev_leaf[1] + ig)
        if not retain_graph:
            fn.release()
    _accumulate(leaves)


def _accumulate(leaves: dict[int, tuple[Tensor, np.ndarray]]) -> None:
    taken: set[int] = set()
    for leaf, g in leaves.values():
        if g.dtype != leaf.data.dtype:
            g = g.astype(leaf.data.dtype)
        if leaf.grad is None:
            # Take the array over when nothing else can see it; a view, a read-only broadcast or an
            # array handed to two leaves is copied so that later in-place accumulation stays private. The
            # gradient is laid out as the leaf's data (as PyTorch: a channels-last input gets a channels-last
            # .grad, and a parameter a C-ordered one, whose flat view the optimizers' kernels take).
            if id(g) in taken or not _owned(g, leaf.data):
                g_own = np.empty_like(leaf.data)
                np.copyto(g_own, g)
                g = g_own
            taken.add(id(g))
            leaf.grad = g
        else:
            leaf.grad += g
