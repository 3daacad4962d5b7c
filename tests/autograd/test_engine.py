"""The autograd engine's contract: iterative backward, accumulation, retain_graph, skipped gradients,
unbroadcasting, private leaf gradients, grad mode, and errors that name what went wrong."""

from __future__ import annotations

import sys
import threading
from typing import ClassVar

import numpy as np
import pytest

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics.autograd import Function


def leaf(values, dtype=dl.float64):
    return dl.tensor(np.asarray(values, dtype=np.float64), dtype=dtype, requires_grad=True)


# ---- graph shape ------------------------------------------------------------------------------
def test_chain_of_10000_ops_backprops_without_recursion_error():
    assert sys.getrecursionlimit() < 10_000 * 2  # the chain is deeper than a recursive walk could go
    x = leaf([0.5, -1.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(2, 1.0001**10_000), rtol=1e-10)


def test_chain_of_alternating_ops_including_reshape_and_indexing():
    x = leaf(np.arange(4.0))
    y = x
    for _ in range(3_000):
        y = (y + 1.0).reshape(2, 2)[:, :].reshape(4) - 1.0
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * np.arange(4.0))


def test_wide_dag_one_tensor_used_many_times_accumulates():
    x = leaf([1.0, 2.0, 3.0])
    terms = [x * float(k) for k in range(1, 201)]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    total.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, 200 * 201 / 2))


def test_diamond_dag_sums_both_paths():
    x = leaf([2.0, -3.0])
    a = x * 3.0
    b = x.exp()
    c = a * b  # d/dx (3x e^x) = 3 e^x (1 + x)
    (c + a).sum().backward()
    xv = np.array([2.0, -3.0])
    np.testing.assert_allclose(x.grad, 3 * np.exp(xv) * (1 + xv) + 3)


def test_tensor_used_as_both_operands():
    x = leaf([1.5, -2.0])
    (x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 3 * np.array([1.5, -2.0]) ** 2)


def test_backward_gradient_may_be_a_tensor_or_list():
    x = leaf([1.0, 2.0])
    (x * 2.0).backward(dl.tensor([1.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 6.0])
    assert x.grad.dtype == np.float64
    (x * 2.0).backward([1.0, 1.0])
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])


def test_backward_on_a_leaf_itself():
    x = leaf([1.0, 2.0])
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


# ---- accumulation and retain_graph -------------------------------------------------------------------
def test_gradients_accumulate_across_backward_calls_until_zeroed():
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 3.0 + 2 * np.array([1.0, 2.0]))
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0])
    x.zero_grad()
    assert x.grad is None
    (x * 5.0).sum().backward()
    np.testing.assert_allclose(x.grad, [5.0, 5.0])


def test_second_backward_through_freed_graph_raises_mentioning_retain_graph():
    x = leaf([1.0, 2.0])
    y = (x.exp() * 2.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_backward_through_a_freed_subgraph_raises():
    x = leaf([1.0, 2.0])
    h = x.exp()
    h.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 2.0).sum().backward()


def test_retain_graph_allows_second_backward_and_doubles_grad():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    xv = np.array([1.0, 2.0])
    np.testing.assert_allclose(first, np.exp(xv) * (1 + xv))
    np.testing.assert_allclose(x.grad, 2 * first)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()  # the second call did not retain


# ---- gradients nobody needs --------------------------------------------------------------------------
def test_constant_operand_gets_no_grad():
    x = leaf([1.0, 2.0])
    c = dl.tensor([3.0, 4.0], dtype=dl.float64)
    assert not c.requires_grad
    (x * c + c / x - c).sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(x.grad, [3.0 - 3.0, 4.0 - 1.0])


def test_result_of_constants_only_does_not_require_grad():
    a = dl.tensor([1.0, 2.0])
    b = (a * 2.0).exp().sum()
    assert not b.requires_grad and b.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        b.backward()


class _Recorder(Function):
    """out = a * b; records needs_input_grad and which gradients backward was asked for."""

    seen: ClassVar[list] = []

    def forward(self, a, b):
        _Recorder.seen.append(self.needs_input_grad)
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        ga = g * self.b if self.needs_input_grad[0] else None
        gb = g * self.a if self.needs_input_grad[1] else None
        return ga, gb


def test_needs_input_grad_reports_which_inputs_need_gradients():
    _Recorder.seen = []
    x = leaf([1.0, 2.0])
    c = dl.tensor([5.0, 7.0], dtype=dl.float64)
    out = _Recorder.apply(x, c)
    assert _Recorder.seen[-1] == (True, False)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [5.0, 7.0])
    assert c.grad is None
    _Recorder.apply(c, x)
    assert _Recorder.seen[-1] == (False, True)
    _Recorder.apply(c, c)
    assert _Recorder.seen[-1] == (False, False)
    with dl.no_grad():
        _Recorder.apply(x, x)
    assert _Recorder.seen[-1] == (False, False)


def test_engine_ignores_a_gradient_returned_for_an_input_that_needs_none():
    class Greedy(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, g):
            return g, g  # returns both even if only one is needed

    x, c = leaf([1.0]), dl.tensor([2.0], dtype=dl.float64)
    Greedy.apply(x, c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad, [1.0])


def test_branch_that_does_not_require_grad_is_not_recorded():
    x = leaf([1.0, 2.0])
    c = dl.tensor([1.0, 1.0], dtype=dl.float64)
    d = c.exp() * 3.0
    assert d.grad_fn is None and not d.requires_grad
    y = x * d
    assert y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 3 * np.e * np.ones(2))


# ---- broadcasting ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [((3, 1), (1, 4)), ((4,), (2, 3, 4)), ((), (2, 3)), ((2, 3), ()), ((1,), (3,)), ((2, 1, 3), (4, 1)),
     ((), ())],
)
def test_broadcast_input_gradient_has_the_input_shape(shape_a, shape_b):
    rng = np.random.default_rng(0)
    av, bv = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    a, b = leaf(av), leaf(bv)
    out = a * b
    g = rng.standard_normal(out.shape)
    out.backward(g)
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    full = np.broadcast_shapes(shape_a, shape_b)
    ga_full, gb_full = g * np.broadcast_to(bv, full), g * np.broadcast_to(av, full)

    def reduce_to(gf, shape):
        lead = gf.ndim - len(shape)
        gf = gf.sum(axis=tuple(range(lead)))
        return gf.sum(axis=tuple(i for i, s in enumerate(shape) if s == 1), keepdims=True).reshape(shape)

    np.testing.assert_allclose(a.grad, reduce_to(ga_full, shape_a))
    np.testing.assert_allclose(b.grad, reduce_to(gb_full, shape_b))


def test_zero_dim_leaf_gets_zero_dim_grad():
    s = leaf(2.0)
    v = leaf([1.0, 2.0, 3.0])
    (s * v).sum().backward()
    assert s.grad.shape == ()
    assert s.grad == 6.0
    np.testing.assert_array_equal(v.grad, [2.0, 2.0, 2.0])


def test_expand_gradient_is_summed_back():
    x = leaf([[1.0], [2.0]])
    x.expand(2, 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [[3.0], [3.0]])


# ---- leaf gradients are private, writable, contiguous ---------------------------------------------
def _check_private(grad: np.ndarray) -> None:
    assert isinstance(grad, np.ndarray)
    assert grad.flags.writeable and grad.flags.c_contiguous


def test_leaf_grads_are_writable_contiguous_and_not_shared():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    _check_private(a.grad)
    _check_private(b.grad)
    a.grad += 1
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


@pytest.mark.parametrize(
    "make",
    [
        lambda a, b: (a + b).sum(),           # shares one gradient array between a and b
        lambda a, b: (a - b).sum(),
        lambda a, b: (a.T + b.T).sum(),        # gradients arrive as transposed views
        lambda a, b: (a.reshape(4) + b.reshape(4)).sum(),
        lambda a, b: dl.cat([a, b]).sum(),     # gradients arrive as views of one split array
        lambda a, b: dl.stack([a, b]).mean(),
        lambda a, b: (a[:, ::-1] * b).sum(),
        lambda a, b: (a.expand(3, 2, 2) * b).sum(),
    ],
)
def test_leaf_grads_are_private_whatever_the_op(make):
    a, b = leaf(np.ones((2, 2))), leaf(np.full((2, 2), 2.0))
    make(a, b).backward()
    _check_private(a.grad)
    _check_private(b.grad)
    assert not np.shares_memory(a.grad, b.grad)
    before_b = b.grad.copy()
    a.grad += 100.0
    np.testing.assert_array_equal(b.grad, before_b)


def test_leaf_grad_is_laid_out_as_its_leaf():
    """As PyTorch: a channels-last leaf gets a channels-last .grad (a straight copy, not a transposing one), and
    a C-ordered leaf a C-ordered .grad even when its gradient arrives as a transposed view."""
    nhwc = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 4, 5, 3)
    x = dl.tensor(nhwc, requires_grad=True)
    x.data = nhwc.transpose(0, 3, 1, 2)  # logical (N, C, H, W), channels-last in memory
    (x * 2.0).sum().backward()
    assert x.grad.strides == x.data.strides and x.grad.shape == (2, 3, 4, 5)
    w = leaf(np.ones((3, 4)))
    (w.T * 3.0).sum().backward()  # the gradient comes back as a transposed view
    assert w.grad.flags.c_contiguous
    np.testing.assert_array_equal(w.grad, np.full((3, 4), 3.0))


def test_leaf_grad_not_shared_with_the_seed_gradient():
    x = leaf([1.0, 2.0])
    seed = np.array([1.0, 1.0])
    x.clone().backward(seed)
    x.grad += 1
    np.testing.assert_array_equal(seed, [1.0, 1.0])


def test_leaf_grad_not_shared_with_the_graph_after_retain_graph():
    x = leaf([1.0, 2.0])
    y = x * 1.0
    y.backward(np.array([1.0, 1.0]), retain_graph=True)
    x.grad *= 10.0
    y.backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [11.0, 11.0])


def test_float32_leaf_gets_float32_grad_through_a_cast():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    (x.double() * dl.tensor([3.0, 4.0], dtype=dl.float64)).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_non_leaf_tensors_keep_no_grad():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    y.sum().backward()
    assert y.grad is None and not y.is_leaf
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


# ---- grad mode --------------------------------------------------------------------------------------
def test_no_grad_context_manager():
    x = leaf([1.0, 2.0])
    with dl.no_grad():
        y = x * 2.0
        assert not dl.is_grad_enabled()
    assert dl.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_array_equal(y.data, [2.0, 4.0])
    z = x * 2.0
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_decorator():
    @dl.no_grad()
    def double(t):
        assert not dl.is_grad_enabled()
        return t * 2.0

    x = leaf([1.0])
    y = double(x)
    assert not y.requires_grad and y.grad_fn is None
    assert double.__name__ == "double"
    assert dl.is_grad_enabled()


def test_no_grad_restores_mode_on_exception():
    with pytest.raises(ValueError, match="boom"), dl.no_grad():
        raise ValueError("boom")
    assert dl.is_grad_enabled()

    @dl.no_grad()
    def fail():
        raise KeyError("x")

    with pytest.raises(KeyError):
        fail()
    assert dl.is_grad_enabled()


def test_nested_grad_modes_restore_the_previous_mode():
    x = leaf([1.0])
    with dl.no_grad():
        with dl.enable_grad():
            assert dl.is_grad_enabled()
            assert (x * 2.0).requires_grad
        assert not dl.is_grad_enabled()
        with dl.set_grad_enabled(False):
            assert not dl.is_grad_enabled()
        assert not dl.is_grad_enabled()
    assert dl.is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = []

    def worker():
        seen.append(dl.is_grad_enabled())
        seen.append((leaf([1.0]) * 2.0).requires_grad)

    with dl.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert seen == [True, True]


def test_detach_shares_data_and_cuts_the_graph():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.data, y.data)
    (x * d).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 6.0])  # d is a constant: no path through y


def test_detach_in_place():
    x = leaf([1.0])
    y = x * 2.0
    y.detach_()
    assert not y.requires_grad and y.grad_fn is None


# ---- errors -----------------------------------------------------------------------------------------
def test_backward_on_non_scalar_without_gradient_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"one-element.*\(2,\)"):
        (x * 2.0).backward()


def test_backward_with_wrong_gradient_shape_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        (x * 2.0).backward(np.ones(3))


def test_backward_on_one_element_non_scalar_is_allowed():
    x = leaf([[2.0]])
    (x * 3.0).backward()
    np.testing.assert_array_equal(x.grad, [[3.0]])


def test_matmul_shape_error_names_both_shapes_and_sizes():
    a, b = dl.zeros(32, 64), dl.zeros(10, 128)
    with pytest.raises(RuntimeError) as info:
        a @ b
    msg = str(info.value)
    assert "matmul" in msg and "(32, 64)" in msg and "(10, 128)" in msg and "64 != 10" in msg


def test_matmul_batch_shape_error_names_the_batch_dims():
    with pytest.raises(RuntimeError, match=r"matmul.*\(2, 3, 4\).*\(5, 4, 2\)"):
        dl.zeros(2, 3, 4) @ dl.zeros(5, 4, 2)


def test_matmul_rejects_0d_operands():
    with pytest.raises(RuntimeError, match="matmul"):
        dl.tensor(2.0) @ dl.zeros(2)


def test_linear_shape_error_names_both_shapes():
    with pytest.raises(RuntimeError) as info:
        F.linear(dl.zeros(4, 3), dl.zeros(5, 2))
    msg = str(info.value)
    assert "linear" in msg and "(4, 3)" in msg and "(5, 2)" in msg
    with pytest.raises(RuntimeError, match=r"bias.*\(4,\).*\(5, 3\)"):
        F.linear(dl.zeros(2, 3), dl.zeros(5, 3), dl.zeros(4))


def test_elementwise_broadcast_error_names_both_shapes():
    with pytest.raises(RuntimeError) as info:
        dl.zeros(2, 3) + dl.zeros(4)
    msg = str(info.value)
    assert msg.startswith("add:") and "(2, 3) and (4,)" in msg


def test_requires_grad_on_int_tensor_raises():
    with pytest.raises(RuntimeError, match="floating point"):
        dl.tensor([1, 2], requires_grad=True)


def test_in_place_on_leaf_that_requires_grad_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="in-place"):
        x.zero_()
    with dl.no_grad():
        x.zero_()
    np.testing.assert_array_equal(x.data, [0.0, 0.0])


# ---- a user-defined Function ------------------------------------------------------------------------
class Cube(Function):
    """x^3;  d/dx = 3 x^2."""

    def forward(self, x):
        self.x = x
        return x**3

    def backward(self, g):
        return 3 * self.x**2 * g


class ScaledAdd(Function):
    """a + alpha * b, with a keyword parameter."""

    def forward(self, a, b, alpha):
        self.alpha = alpha
        return a + alpha * b

    def backward(self, g):
        return g, self.alpha * g


def test_user_defined_function_forward_and_backward():
    x = leaf([1.0, -2.0, 0.5])
    y = Cube.apply(x)
    assert isinstance(y, dl.Tensor) and y.requires_grad
    assert "Cube" in repr(y.grad_fn)
    np.testing.assert_allclose(y.data, [1.0, -8.0, 0.125])
    (y * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad, 6 * np.array([1.0, -2.0, 0.5]) ** 2)


def test_user_defined_function_passes_gradcheck():
    x = leaf([0.3, -1.2, 2.0])
    b = leaf([[1.0, 0.5, -0.5], [2.0, 1.0, 0.0]])
    assert dl.autograd.gradcheck(lambda t, u: ScaledAdd.apply(Cube.apply(t), u, alpha=0.7), [x, b])
    np.testing.assert_allclose(x.grad.shape, (3,))  # broadcast gradient summed by the engine


def test_user_defined_function_in_no_grad_records_nothing():
    x = leaf([2.0])
    with dl.no_grad():
        y = Cube.apply(x)
    assert y.grad_fn is None and not y.requires_grad
    np.testing.assert_array_equal(y.data, [8.0])
