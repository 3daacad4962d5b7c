"""What the kernel tests share: run a kernel both ways, and compare to float rounding."""

import numpy as np

import dlbasics as dl
from dlbasics import kernels

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}


def both(kernel, make_args):
    """Run the compiled kernel and the NumPy twin on fresh copies of the same arguments."""
    a, b = make_args(), make_args()
    ra, rb = kernel.compiled(*a), kernel.numpy(*b)
    return a, b, ra, rb


def assert_same(x, y, dtype):
    np.testing.assert_allclose(x, y, equal_nan=True, **TOL[dtype])


def run_layer(layer, x, monkeypatch, jit):
    """Forward and backward of ``layer`` on ``x`` with the kernels on or off (every size takes them when on):
    the output, the input's gradient and the parameters' gradients."""
    monkeypatch.setattr(kernels, "JIT", jit)
    monkeypatch.setattr(kernels, "MIN_SIZE", 0)  # small test arrays take the kernels too
    layer.zero_grad()
    xt = dl.tensor(x.copy(), dtype=x.dtype, requires_grad=True)  # (floats become float32 unless told)
    out = layer(xt)
    weights = np.linspace(-1, 1, out.data.size).reshape(out.shape)
    (out * dl.tensor(weights, dtype=x.dtype)).sum().backward()
    grads = [p.grad.copy() for p in layer.parameters()]
    return out.data.copy(), xt.grad.copy(), grads
