"""Compiled kernels for the memory-bound ops, each a plain loop over the math beside its NumPy twin.

NumPy makes one pass over the data per ufunc, often through a temporary; a memory-bound op such as BatchNorm is
then five to ten passes. A kernel compiled by numba makes one pass (two where it needs a sum first). The ops
keep their ``Function`` classes; only the body of a hot loop moves here.

    relu_forward = Kernel(_relu_forward_loop, numpy=_relu_forward_numpy)   # the loop, and its NumPy twin
    relu_forward(x, out, mask)        # compiled when numba is installed, the twin with DLBASICS_NO_JIT=1

The choice is made in one place, ``JIT``: numba installed and ``DLBASICS_NO_JIT`` unset. numba is imported
and a kernel compiled the first time it is called (only those a run uses), and cached on disk
(``cache=True``), so a later process loads it instead of compiling. The tests run both implementations of
every kernel and hold them equal, float32 and float64, NaN and inf included.

One thread: the kernels are serial. On two cores a second thread pool - numba's beside OpenBLAS's, each
spinning while it waits for work - cost far more than it gave: a ResNet-20 training step took 572 ms with
two numba threads against 117 ms with one (and 160 ms with the NumPy path), because the kernels run between
GEMMs whose OpenBLAS threads are still spinning. One pass on one core already beats NumPy's many passes.

Floating-point flags: ``fastmath`` is the subset {"reassoc", "contract"}, which lets LLVM vectorize sums and
fuse multiply-adds, but not {"nnan", "ninf"}: a NaN or inf in the input still comes out (numba's full
``fastmath=True`` assumes there are none). ``error_model="numpy"``: a division by zero gives inf or NaN, as in
NumPy, instead of raising - Python's model checks every division, which stops the loop from being vectorized
(the Adam update over 535k values: 1.26 ms with the checks, 0.16 ms without).

The loops are scalar loops, without array expressions (``a[:] = b / m``, ``gamma / np.sqrt(var)``): numba
compiles each array expression as a ufunc loop of its own, which is what a first run waits for (BatchNorm's
forward compiled in 2.4 s with five of them, 0.6 s without).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

FASTMATH = frozenset({"reassoc", "contract"})
# the compiled kernels are used: numba is installed (it is imported only when a kernel first runs)
JIT = importlib.util.find_spec("numba") is not None and not os.environ.get("DLBASICS_NO_JIT")
# Below this many values NumPy's passes cost about what a kernel call does (measured: BatchNorm + ReLU on 16k
# values 168 us NumPy vs 283 us kernel, on 65k 353 vs 242 us, on 262k 1223 vs 649 us), and a small run - the
# digits MLP, whose largest arrays are its 512 x 128 evaluation batches - then never imports numba: no
# compile on its first run, no 0.3 s import on later ones. ResNet-20's activations (131k-524k values) and the
# large layers' weights take the kernels.
MIN_SIZE = 1 << 17


def use(size: int) -> bool:
    """Whether an op on ``size`` values takes its compiled kernel."""
    return JIT and size >= MIN_SIZE


class Kernel:
    """A loop compiled by numba on first use, and its NumPy twin; calling the kernel runs the one ``JIT`` says.

    ``loop`` is a plain Python function over arrays, written for ``numba.njit``; ``numpy`` computes the same
    with NumPy, with the same signature (results written into the output arguments)."""

    def __init__(self, loop: Callable[..., Any], numpy: Callable[..., Any]) -> None:
        self.loop, self.numpy = loop, numpy
        self._compiled: Callable[..., Any] | None = None
        self.__name__ = loop.__name__
        self.__doc__ = loop.__doc__

    @property
    def compiled(self) -> Callable[..., Any]:
        """The numba-compiled loop (compiled, or loaded from the disk cache, on first use); needs numba."""
        if self._compiled is None:
            try:
                import numba
            except ImportError:
                raise ImportError("compiled kernels need numba: pip install numba") from None
            self._compiled = numba.njit(fastmath=set(FASTMATH), error_model="numpy", cache=True,
                                        nogil=True)(self.loop)
        return self._compiled

    def __call__(self, *args: Any) -> Any:
        return self.compiled(*args) if JIT else self.numpy(*args)

    def __repr__(self) -> str:
        return f"Kernel({self.loop.__name__}, {'compiled' if JIT else 'numpy'})"


__all__ = ["FASTMATH", "JIT", "MIN_SIZE", "Kernel", "use"]
