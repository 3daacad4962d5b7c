"""Property-based tests (hypothesis): broadcasting binary ops, reductions over random dims, and
reshape / permute round trips, against NumPy and against gradients derived independently of dlbasics.

The expected gradient of a broadcast input is computed by scattering: every output element adds its
upstream gradient to the input element it was read from (``np.bincount`` over the broadcast index map),
which shares nothing with the engine's unbroadcast (a sum over axes).
"""

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dlbasics as dl

Dim = int | tuple[int, ...] | None
SETTINGS = settings(max_examples=40, deadline=None)

FINITE = st.floats(-10, 10, width=32)
AWAY_FROM_ZERO = st.one_of(st.floats(0.5, 4, width=32), st.floats(-4, -0.5, width=32))
SMALL_INTS = st.integers(-2, 2).map(float)  # many ties


def float32_arrays(shape: tuple[int, ...], elements: st.SearchStrategy = FINITE) -> st.SearchStrategy:
    return hnp.arrays(np.float32, shape, elements=elements)


def scatter_back(values: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``values`` (in the broadcast output shape) onto the input of ``in_shape`` it was broadcast from."""
    size = math.prod(in_shape)
    source = np.broadcast_to(np.arange(size).reshape(in_shape), values.shape)
    return np.bincount(source.ravel(), weights=values.ravel().astype(np.float64), minlength=size).reshape(in_shape)


def assert_grad(grad: np.ndarray | None, local: np.ndarray, x: np.ndarray) -> None:
    """``grad`` equals ``local`` (d out / d x times upstream, in the output shape) summed back onto ``x``;
    the tolerance scales with the sum of magnitudes, as float32 summation error does."""
    assert grad is not None
    assert grad.shape == x.shape, f"grad shape {grad.shape} != input shape {x.shape}"
    assert grad.dtype == x.dtype
    expected = scatter_back(local, x.shape)
    bound = 1e-5 * scatter_back(np.abs(local), x.shape) + 1e-6
    assert (np.abs(grad - expected) <= bound).all(), f"grad {grad}\nexpected {expected}"


# ---- broadcasting binary ops ---------------------------------------------------------------------------
def _max_grads(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tie = 0.5 * (a == b)  # PyTorch splits the gradient of a tie in half
    return g * ((a > b) + tie), g * ((b > a) + tie)


BINARY = {
    # name: (dl op, numpy op, local gradients (g, a, b) -> (dout/da * g, dout/db * g), all in the output shape)
    "add": (lambda a, b: a + b, np.add, lambda g, a, b: (g, g)),
    "sub": (lambda a, b: a - b, np.subtract, lambda g, a, b: (g, -g)),
    "mul": (lambda a, b: a * b, np.multiply, lambda g, a, b: (g * b, g * a)),
    "div": (lambda a, b: a / b, np.divide, lambda g, a, b: (g / b, -g * a / (b * b))),
    "maximum": (dl.maximum, np.maximum, _max_grads),
}


@pytest.mark.parametrize("name", BINARY)
@SETTINGS
@given(data=st.data())
def test_binary_op_broadcasts_like_numpy(name: str, data: st.DataObject) -> None:
    op, np_op, local = BINARY[name]
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4))
    (sa, sb), out_shape = shapes.input_shapes, shapes.result_shape
    a = data.draw(float32_arrays(sa, SMALL_INTS if name == "maximum" else FINITE))
    b = data.draw(float32_arrays(sb, AWAY_FROM_ZERO if name == "div" else SMALL_INTS if name == "maximum" else FINITE))
    g = data.draw(float32_arrays(out_shape))

    ta, tb = dl.tensor(a, requires_grad=True), dl.tensor(b, requires_grad=True)
    out = op(ta, tb)
    assert out.shape == out_shape and out.dtype == np.float32
    np.testing.assert_allclose(out.detach().numpy(), np_op(a, b), rtol=1e-6, atol=0)

    out.backward(g)
    ga, gb = local(g.astype(np.float64), *np.broadcast_arrays(a.astype(np.float64), b.astype(np.float64)))
    assert_grad(ta.grad, ga, a)
    assert_grad(tb.grad, gb, b)


@SETTINGS
@given(data=st.data())
def test_add_gradient_is_the_upstream_summed_over_broadcast_dims(data: st.DataObject) -> None:
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4))
    (sa, sb), out_shape = shapes.input_shapes, shapes.result_shape
    a, b = data.draw(float32_arrays(sa)), data.draw(float32_arrays(sb))
    g = data.draw(float32_arrays(out_shape, SMALL_INTS))  # small integers: every sum is exact
    ta, tb = dl.tensor(a, requires_grad=True), dl.tensor(b, requires_grad=True)
    (ta + tb).backward(g)
    for x, t in ((a, ta), (b, tb)):
        lead = len(out_shape) - x.ndim
        stretched = tuple(lead + i for i, s in enumerate(x.shape) if s == 1 and out_shape[lead + i] != 1)
        axes = tuple(range(lead)) + stretched
        expected = g.sum(axis=axes).reshape(x.shape)
        assert t.grad.shape == x.shape
        np.testing.assert_array_equal(t.grad, expected)


@SETTINGS
@given(data=st.data())
def test_where_broadcasts_and_routes_the_gradient(data: st.DataObject) -> None:
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=4, max_side=4))
    (sc, sx, sy), out_shape = shapes.input_shapes, shapes.result_shape
    cond = data.draw(hnp.arrays(np.bool_, sc))
    x, y = data.draw(float32_arrays(sx)), data.draw(float32_arrays(sy))
    g = data.draw(float32_arrays(out_shape))

    tx, ty = dl.tensor(x, requires_grad=True), dl.tensor(y, requires_grad=True)
    out = dl.where(dl.tensor(cond), tx, ty)
    assert out.shape == out_shape
    np.testing.assert_array_equal(out.detach().numpy(), np.where(cond, x, y))

    out.backward(g)
    c = np.broadcast_to(cond, out_shape)
    assert_grad(tx.grad, np.where(c, g, 0).astype(np.float64), x)
    assert_grad(ty.grad, np.where(c, 0, g).astype(np.float64), y)


# ---- reductions ------------------------------------------------------------------------------------------
@st.composite
def shape_dim_keepdim(draw: st.DrawFn) -> tuple[tuple[int, ...], Dim, tuple[int, ...] | None, bool]:
    """(shape, dim as the user writes it, the same as non-negative NumPy axes, keepdim)."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4))
    nd = len(shape)
    keepdim = draw(st.booleans())
    if nd == 0 or draw(st.integers(0, 4)) == 0:
        return shape, None, None, keepdim
    axes = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
    written = [a - nd if draw(st.booleans()) else a for a in axes]  # negative dims too
    dim = written[0] if len(written) == 1 and draw(st.booleans()) else tuple(written)
    return shape, dim, tuple(axes), keepdim


def _upstream(out: dl.Tensor) -> np.ndarray:
    return np.ones(out.shape, np.float32)


@SETTINGS
@given(sdk=shape_dim_keepdim(), data=st.data())
def test_sum_over_random_dims(sdk: tuple, data: st.DataObject) -> None:
    shape, dim, axes, keepdim = sdk
    a = data.draw(float32_arrays(shape))
    t = dl.tensor(a, requires_grad=True)
    out = t.sum(dim=dim, keepdim=keepdim)
    expected = np.sum(a, axis=axes, keepdims=keepdim)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    out.backward(_upstream(out))
    assert t.grad.shape == shape
    np.testing.assert_array_equal(t.grad, np.ones(shape, np.float32))

    # a random upstream gradient is copied to every element of its group
    t2 = dl.tensor(a, requires_grad=True)
    g = data.draw(float32_arrays(expected.shape))
    t2.sum(dim=dim, keepdim=keepdim).backward(g)
    kept = np.sum(a, axis=axes, keepdims=True).shape
    np.testing.assert_array_equal(t2.grad, np.broadcast_to(g.reshape(kept), shape))


@SETTINGS
@given(sdk=shape_dim_keepdim(), data=st.data())
def test_mean_over_random_dims(sdk: tuple, data: st.DataObject) -> None:
    shape, dim, axes, keepdim = sdk
    a = data.draw(float32_arrays(shape))
    t = dl.tensor(a, requires_grad=True)
    out = t.mean(dim=dim, keepdim=keepdim)
    expected = np.mean(a, axis=axes, keepdims=keepdim)
    assert out.shape == expected.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    out.backward(_upstream(out))
    n = math.prod(shape) if axes is None else math.prod(shape[i] for i in axes)
    assert t.grad.shape == shape
    np.testing.assert_allclose(t.grad, np.full(shape, 1 / n, np.float32), rtol=1e-6)


@SETTINGS
@given(sdk=shape_dim_keepdim(), data=st.data())
def test_amax_over_random_dims_shares_ties(sdk: tuple, data: st.DataObject) -> None:
    shape, dim, axes, keepdim = sdk
    a = data.draw(float32_arrays(shape, SMALL_INTS))  # ties are common
    t = dl.tensor(a, requires_grad=True)
    out = t.amax(dim=dim, keepdim=keepdim)
    expected = np.amax(a, axis=axes, keepdims=keepdim)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    out.backward(_upstream(out))
    assert t.grad.shape == shape
    is_max = a == np.amax(a, axis=axes, keepdims=True)
    count = np.sum(is_max, axis=axes, keepdims=True)
    np.testing.assert_allclose(t.grad, np.where(is_max, 1.0 / count, 0.0), rtol=1e-6)  # spread evenly over ties
    np.testing.assert_allclose(np.sum(t.grad, axis=axes), 1.0, rtol=1e-6)


# ---- movement round trips -----------------------------------------------------------------------------------
@SETTINGS
@given(data=st.data())
def test_reshape_round_trip_preserves_values_and_gradient(data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4))
    a = data.draw(float32_arrays(shape))
    g = data.draw(float32_arrays(shape))
    sizes = list(data.draw(st.permutations(shape))) + [1] * data.draw(st.integers(0, 2))
    new = tuple(data.draw(st.permutations(sizes)))
    if new and data.draw(st.booleans()):
        k = data.draw(st.integers(0, len(new) - 1))
        new = (*new[:k], -1, *new[k + 1 :])  # let reshape infer one size

    t = dl.tensor(a, requires_grad=True)
    mid = t.reshape(new)
    assert mid.numel() == a.size
    np.testing.assert_array_equal(mid.detach().numpy(), a.reshape(new))
    back = mid.reshape(shape)
    np.testing.assert_array_equal(back.detach().numpy(), a)
    back.backward(g)
    np.testing.assert_array_equal(t.grad, g)

    t2 = dl.tensor(a, requires_grad=True)
    t2.reshape(new).backward(g.reshape(new))
    np.testing.assert_array_equal(t2.grad, g)


@SETTINGS
@given(data=st.data())
def test_permute_round_trip_preserves_values_and_gradient(data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=5, min_side=1, max_side=4))
    a = data.draw(float32_arrays(shape))
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    inverse = tuple(int(i) for i in np.argsort(perm))

    t = dl.tensor(a, requires_grad=True)
    p = t.permute(perm)
    np.testing.assert_array_equal(p.detach().numpy(), a.transpose(perm))
    back = p.permute(inverse)
    np.testing.assert_array_equal(back.detach().numpy(), a)
    g = data.draw(float32_arrays(shape))
    back.backward(g)
    np.testing.assert_array_equal(t.grad, g)

    t2 = dl.tensor(a, requires_grad=True)
    gp = data.draw(float32_arrays(a.transpose(perm).shape))
    (t2.permute(perm) * 1.0).backward(gp)
    np.testing.assert_array_equal(t2.grad, gp.transpose(inverse))
