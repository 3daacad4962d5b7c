"""Every differentiable op's backward against central finite differences in float64.

One row per case: ``case(id, fn, *arrays)``; each array becomes a float64 leaf that requires grad and
``fn`` receives them in order. Integer indices, masks and other constants live inside ``fn``.
Inputs stay tiny (gradcheck evaluates ``fn`` twice per input element) and away from the points where an
op is not differentiable (ties, |x| = 0, clamp bounds).
"""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.autograd import Function, gradcheck

_rng = np.random.default_rng(1234)


def r(*shape: int) -> np.ndarray:
    """Normal samples kept at least 0.1 away from 0 (no relu/abs kinks, no division by ~0)."""
    x = _rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.copysign(0.1, x) + x, x)


def pos(*shape: int) -> np.ndarray:
    """Positive samples in [0.5, 2] for log, sqrt, fractional powers."""
    return _rng.uniform(0.5, 2.0, shape)


def distinct(*shape: int) -> np.ndarray:
    """A permutation of well-separated values (no ties for max/min/amax, gaps of 0.3)."""
    n = int(np.prod(shape))
    return (_rng.permutation(n) * 0.3 - 0.15 * n).reshape(shape)


def case(name: str, fn, *arrays: np.ndarray):
    return pytest.param(fn, arrays, id=name)


BOOL_MASK = np.array([[True, False, True], [False, True, True]])
W411 = dl.tensor(r(4, 1, 1), dtype=dl.float64)  # a constant operand (fn must be deterministic)

CASES = [
    # ---- arithmetic, broadcasting, scalars on either side ----------------------------------------
    case("add", lambda a, b: a + b, r(2, 3), r(2, 3)),
    case("add-broadcast-row", lambda a, b: a + b, r(2, 3), r(3)),
    case("add-broadcast-outer", lambda a, b: a + b, r(3, 1), r(1, 4)),
    case("add-0d", lambda a, b: a + b, r(), r(2, 3)),
    case("add-scalar", lambda a: a + 2.5, r(2, 3)),
    case("radd-scalar", lambda a: 2.5 + a, r(2, 3)),
    case("add-method", lambda a, b: a.add(b), r(2, 3), r(2, 1)),
    case("sub", lambda a, b: a - b, r(2, 3), r(2, 3)),
    case("sub-broadcast", lambda a, b: a - b, r(4), r(2, 3, 4)),
    case("rsub-scalar", lambda a: 2 - a, r(2, 3)),
    case("mul", lambda a, b: a * b, r(2, 3), r(2, 3)),
    case("mul-broadcast", lambda a, b: a * b, r(4), r(2, 3, 4)),
    case("mul-self", lambda a: a * a, r(2, 3)),
    case("mul-self-nonleaf", lambda a: (lambda e: e * e)(a.exp()), r(2, 3)),
    case("mul-scalar", lambda a: a * 3, r(2, 3)),
    case("rmul-scalar", lambda a: -1.5 * a, r(2, 3)),
    case("div", lambda a, b: a / b, r(2, 3), r(2, 3)),
    case("div-broadcast", lambda a, b: a / b, r(2, 3), r(2, 1)),
    case("div-scalar", lambda a: a / 4.0, r(2, 3)),
    case("rdiv-scalar", lambda a: 3 / a, r(2, 3)),
    case("neg", lambda a: -a, r(2, 3)),
    case("neg-method", lambda a: a.neg(), r(2, 3)),
    case("pow-2", lambda a: a**2, r(2, 3)),
    case("pow-3", lambda a: a**3, r(2, 3)),
    case("pow-0.5", lambda a: a**0.5, pos(2, 3)),
    case("pow-neg1", lambda a: a**-1, r(2, 3)),
    case("pow-0", lambda a: a**0 + a, r(2, 3)),
    case("pow-1", lambda a: a**1, r(2, 3)),
    case("pow-neg2.5", lambda a: a**-2.5, pos(2, 3)),
    case("pow-tensor-tensor", lambda a, b: a**b, pos(2, 3), r(2, 3)),
    case("pow-tensor-tensor-broadcast", lambda a, b: a.pow(b), pos(2, 3), r(3)),
    case("rpow-scalar", lambda a: 2**a, r(2, 3)),
    case("rpow-float-scalar", lambda a: 0.7**a, r(2, 3)),
    # ---- elementwise functions ------------------------------------------------------------------
    case("exp", lambda a: a.exp(), r(2, 3)),
    case("dl.exp", dl.exp, r(3)),
    case("log", lambda a: a.log(), pos(2, 3)),
    case("dl.log", dl.log, pos(4)),
    case("sqrt", lambda a: a.sqrt(), pos(2, 3)),
    case("dl.sqrt", dl.sqrt, pos(4)),
    case("abs", lambda a: a.abs(), r(2, 3)),
    case("abs-builtin", lambda a: abs(a), r(2, 3)),
    case("clamp-min", lambda a: a.clamp(min=0.05), np.array([-1.0, -0.4, 0.3, 0.8, 1.6, -2.0])),
    case("clamp-max", lambda a: a.clamp(max=0.05), np.array([-1.0, -0.4, 0.3, 0.8, 1.6, -2.0])),
    case("clamp-both", lambda a: dl.clamp(a, -0.5, 0.5), np.array([-1.0, -0.4, 0.3, 0.8, 1.6, -0.2])),
    case("clip-alias", lambda a: a.clip(-0.5, 0.5), np.array([[-1.0, -0.4, 0.3], [0.8, 1.6, -0.2]])),
    case("maximum", lambda a, b: dl.maximum(a, b), r(2, 3), r(2, 3)),
    case("maximum-broadcast", lambda a, b: a.maximum(b), r(2, 3), r(3)),
    case("maximum-scalar", lambda a: dl.maximum(a, 0.05), r(2, 3)),
    case("minimum", lambda a, b: dl.minimum(a, b), r(2, 3), r(2, 3)),
    case("minimum-broadcast", lambda a, b: a.minimum(b), r(2, 1), r(1, 3)),
    case("where", lambda a, b: dl.where(dl.tensor(BOOL_MASK), a, b), r(2, 3), r(2, 3)),
    case("where-broadcast", lambda a, b: dl.where(BOOL_MASK, a, b), r(2, 3), r(3)),
    case("where-scalar", lambda a: dl.where(BOOL_MASK, a, 0.0), r(2, 3)),
    case("where-cond-from-compare", lambda a: dl.where(a > 0, a * 2, a * -3), r(2, 3)),
    case("clone", lambda a: a.clone() * 2, r(2, 3)),
    case("to-same-dtype", lambda a: a.to(dl.float64) * a.double(), r(2, 3)),
    # ---- reductions -----------------------------------------------------------------------------
    case("sum-all", lambda a: a.sum(), r(2, 3, 2)),
    case("sum-dim0", lambda a: a.sum(0), r(2, 3, 2)),
    case("sum-dim1-keepdim", lambda a: a.sum(1, keepdim=True), r(2, 3, 2)),
    case("sum-dim-neg", lambda a: a.sum(-1), r(2, 3, 2)),
    case("sum-tuple", lambda a: dl.sum(a, (0, 2)), r(2, 3, 2)),
    case("sum-tuple-keepdim", lambda a: a.sum((0, -1), keepdim=True), r(2, 3, 2)),
    case("sum-all-keepdim", lambda a: a.sum(keepdim=True), r(2, 3)),
    case("sum-0d", lambda a: a.sum(), r()),
    case("sum-empty-tuple-is-all", lambda a: a.sum(()), r(2, 3)),
    case("mean-all", lambda a: a.mean(), r(2, 3, 2)),
    case("mean-all-keepdim", lambda a: a.mean(keepdim=True), r(2, 3)),
    case("mean-dim1", lambda a: a.mean(1), r(2, 3, 2)),
    case("mean-dim-neg-keepdim", lambda a: a.mean(-1, keepdim=True), r(2, 3, 2)),
    case("mean-tuple", lambda a: dl.mean(a, (0, 2)), r(2, 3, 2)),
    case("mean-tuple-keepdim", lambda a: a.mean((1, 2), keepdim=True), r(2, 3, 2)),
    case("var-all", lambda a: a.var(), r(2, 3, 2)),
    case("var-all-keepdim", lambda a: a.var(keepdim=True), r(2, 3)),
    case("var-tuple-keepdim", lambda a: a.var((0, -1), keepdim=True), r(2, 3, 2)),
    case("var-dim1", lambda a: a.var(1), r(2, 3, 2)),
    case("var-dim-neg-keepdim", lambda a: a.var(-1, keepdim=True), r(2, 3, 2)),
    case("var-tuple", lambda a: dl.var(a, (0, 2)), r(2, 3, 2)),
    case("var-correction0", lambda a: a.var(1, correction=0), r(2, 3, 2)),
    case("var-unbiased-false", lambda a: a.var(0, keepdim=True, unbiased=False), r(2, 3, 2)),
    case("std-all", lambda a: a.std(), r(2, 3, 2)),
    case("std-dim0", lambda a: a.std(0), r(2, 3, 2)),
    case("std-dim-neg-keepdim", lambda a: a.std(-1, keepdim=True), r(2, 3, 3)),
    case("std-tuple", lambda a: dl.std(a, (1, 2)), r(2, 3, 2)),
    case("std-tuple-keepdim", lambda a: a.std((0, 2), keepdim=True), r(2, 3, 2)),
    case("std-all-keepdim-correction0", lambda a: a.std(keepdim=True, correction=0), r(2, 3)),
    case("amax-all", lambda a: a.amax(), distinct(2, 3, 2)),
    case("amax-dim1", lambda a: a.amax(1), distinct(2, 3, 2)),
    case("amax-dim-neg-keepdim", lambda a: a.amax(-1, keepdim=True), distinct(2, 3, 2)),
    case("amax-tuple", lambda a: dl.amax(a, (0, 2)), distinct(2, 3, 2)),
    case("amax-tuple-keepdim", lambda a: a.amax((0, 1), keepdim=True), distinct(2, 3, 2)),
    case("amin-all", lambda a: dl.amin(a), distinct(2, 3, 2)),
    case("amin-all-keepdim", lambda a: a.amin(keepdim=True), distinct(2, 3)),
    case("amax-all-keepdim", lambda a: a.amax(None, keepdim=True), distinct(2, 3)),
    case("amin-dim0", lambda a: a.amin(0), distinct(2, 3, 2)),
    case("amin-dim-neg-keepdim", lambda a: a.amin(-2, keepdim=True), distinct(2, 3, 2)),
    case("amin-tuple", lambda a: a.amin((1, 2)), distinct(2, 3, 2)),
    case("max-all", lambda a: a.max(), distinct(2, 3)),
    case("dl.max-all", lambda a: dl.max(a), distinct(3, 2)),
    case("max-dim1-values", lambda a: a.max(1).values, distinct(2, 3, 2)),
    case("max-dim-neg-keepdim", lambda a: a.max(-1, keepdim=True)[0], distinct(2, 3, 2)),
    case("min-all", lambda a: a.min(), distinct(2, 3)),
    case("min-dim0-values", lambda a: dl.min(a, 0).values, distinct(2, 3, 2)),
    case("min-dim-neg-keepdim", lambda a: a.min(-2, keepdim=True).values, distinct(2, 3, 2)),
    case("max-1d-dim0", lambda a: a.max(0).values, distinct(4)),
    # ---- movement -------------------------------------------------------------------------------
    case("reshape", lambda a: a.reshape(3, 4), r(2, 6)),
    case("reshape-tuple-infer", lambda a: a.reshape((-1, 2)) * dl.tensor(np.arange(2.0), dl.float64), r(2, 3)),
    case("dl.reshape", lambda a: dl.reshape(a, (6,)), r(2, 3)),
    case("view", lambda a: a.view(2, 2, 3), r(3, 4)),
    case("permute", lambda a: a.permute(2, 0, 1), r(2, 3, 2)),
    case("permute-neg", lambda a: dl.permute(a, (-1, 1, 0)), r(2, 3, 2)),
    case("transpose", lambda a: a.transpose(0, 2), r(2, 3, 2)),
    case("transpose-neg", lambda a: dl.transpose(a, -1, -2), r(2, 3, 2)),
    case("T", lambda a: a.T, r(2, 3)),
    case("T-3d", lambda a: a.T, r(2, 3, 2)),
    case("mT", lambda a: a.mT, r(2, 3, 2)),
    case("flatten", lambda a: a.flatten(), r(2, 3, 2)),
    case("flatten-start", lambda a: a.flatten(1), r(2, 3, 2)),
    case("flatten-range", lambda a: dl.flatten(a, 0, 1), r(2, 3, 2)),
    case("squeeze-all", lambda a: a.squeeze(), r(2, 1, 3, 1)),
    case("squeeze-dim", lambda a: a.squeeze(1), r(2, 1, 3, 1)),
    case("squeeze-dim-neg", lambda a: dl.squeeze(a, -1), r(2, 1, 3, 1)),
    case("unsqueeze", lambda a: a.unsqueeze(0) * W411, r(2, 3)),
    case("unsqueeze-neg", lambda a: dl.unsqueeze(a, -1), r(2, 3)),
    case("expand", lambda a: a.expand(2, 3, 4), r(3, 1)),
    case("expand-minus1", lambda a: a.expand(4, -1), r(1, 3)),
    case("expand-as", lambda a, b: a.expand_as(b) * b, r(1, 3), r(2, 3)),
    case("cat-dim0", lambda a, b: dl.cat([a, b]), r(2, 3), r(1, 3)),
    case("cat-dim1-three", lambda a, b, c: dl.cat([a, b, c], dim=1), r(2, 1), r(2, 3), r(2, 2)),
    case("cat-dim-neg", lambda a, b: dl.cat((a, b), -1), r(2, 2, 1), r(2, 2, 2)),
    case("cat-same-tensor-twice", lambda a: dl.cat([a, a * 2], 0), r(2, 3)),
    case("stack-dim0", lambda a, b: dl.stack([a, b]), r(2, 3), r(2, 3)),
    case("stack-dim-last", lambda a, b, c: dl.stack([a, b, c], dim=-1), r(2, 2), r(2, 2), r(2, 2)),
    case("gather-dim1", lambda a: a.gather(1, dl.tensor([[0, 0, 2], [1, 2, 2]])), r(2, 3)),
    case("gather-dim0", lambda a: dl.gather(a, 0, dl.tensor([[1, 0, 1], [1, 1, 1]])), r(2, 3)),
    case("gather-dim-neg-3d", lambda a: a.gather(-1, np.array([[[1], [0], [1]], [[0], [0], [1]]])), r(2, 3, 2)),
    # ---- indexing -------------------------------------------------------------------------------
    case("index-int", lambda a: a[1], r(3, 4)),
    case("index-neg-int", lambda a: a[-1, 2], r(3, 4)),
    case("index-slice", lambda a: a[1:], r(3, 4)),
    case("index-slice-step", lambda a: a[::2, 1::2], r(3, 4)),
    case("index-slice-neg-step", lambda a: a[::-1, ::-2], r(3, 4)),
    case("index-int-and-slice", lambda a: a[:, 2], r(3, 4)),
    case("index-none", lambda a: a[None, :, None], r(3, 4)),
    case("index-ellipsis", lambda a: a[..., 1], r(2, 3, 2)),
    case("index-ellipsis-none", lambda a: a[0, ..., None], r(2, 3, 2)),
    case("index-int-list-repeated", lambda a: a[[0, 2, 0, 0]], r(3, 2)),
    case("index-int-array-repeated", lambda a: a[np.array([[1, 1], [0, 1]])], r(3, 2)),
    case("index-int-tensor-repeated", lambda a: a[dl.tensor([2, 2, 2])], r(3, 2)),
    case("index-int-arrays-pairs-repeated", lambda a: a[[0, 0, 2, 0], [1, 1, 0, 1]], r(3, 2)),
    case("index-slice-then-int-list", lambda a: a[:, [3, 3, 0]], r(3, 4)),
    case("index-neg-int-list", lambda a: a[[-1, -1, 0]], r(3, 2)),
    case("index-bool-mask", lambda a: a[BOOL_MASK], r(2, 3)),
    case("index-bool-tensor", lambda a: a[dl.tensor(BOOL_MASK)], r(2, 3)),
    case("index-bool-rows", lambda a: a[np.array([True, False, True])], r(3, 2)),
    case("index-bool-rows-and-slice", lambda a: a[np.array([True, False, True]), 1:], r(3, 3)),
    case("index-bool-from-compare", lambda a: a[a > 0], r(2, 3)),
    case("index-bool-list", lambda a: a[[True, False, True]], r(3, 2)),
    case("index-int-array-slice-none", lambda a: a[np.array([1, 1]), :, None], r(2, 3)),
    case("index-then-add-overlapping", lambda a: a[1:] * a[:-1], r(5)),
    # ---- matmul ---------------------------------------------------------------------------------
    case("matmul-1d-1d", lambda a, b: a @ b, r(3), r(3)),
    case("matmul-1d-2d", lambda a, b: a @ b, r(3), r(3, 2)),
    case("matmul-2d-1d", lambda a, b: a @ b, r(2, 3), r(3)),
    case("matmul-2d-2d", lambda a, b: a @ b, r(2, 3), r(3, 4)),
    case("matmul-3d-3d", lambda a, b: dl.matmul(a, b), r(2, 2, 3), r(2, 3, 2)),
    case("matmul-broadcast-batch", lambda a, b: a @ b, r(2, 1, 3, 4), r(5, 4, 2)),
    case("matmul-3d-2d", lambda a, b: a.matmul(b), r(2, 3, 2), r(2, 3)),
    case("matmul-2d-3d", lambda a, b: a @ b, r(3, 2), r(2, 2, 3)),
    case("matmul-1d-3d", lambda a, b: a @ b, r(2), r(2, 2, 3)),
    case("matmul-3d-1d", lambda a, b: a @ b, r(2, 3, 2), r(2)),
    case("matmul-self-transpose", lambda a: a @ a.T, r(2, 3)),
    case("rmatmul-ndarray", lambda a: np.array([[1.0, -2.0], [0.5, 3.0]]) @ a, r(2, 3)),
    # ---- composites -----------------------------------------------------------------------------
    case("composite-normalize", lambda a: (a - a.mean(1, keepdim=True)) / (a.var(1, keepdim=True) + 1e-5).sqrt(),
         r(2, 4)),
    case("composite-logsumexp", lambda a: (a - a.amax(-1, keepdim=True)).exp().sum(-1).log(), distinct(2, 3)),
    case("composite-shared-subgraph", lambda a, b: (a * b).exp() + (a * b) ** 2 - b.sum() * a, r(2, 3), r(2, 3)),
]


@pytest.mark.parametrize(("fn", "arrays"), CASES)
def test_gradcheck(fn, arrays):
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=True) for a in arrays]
    assert gradcheck(fn, inputs)
    for t in inputs:
        assert t.grad is not None and t.grad.shape == t.shape and t.grad.dtype == np.float64


# (id, fn, arrays, which inputs require grad): ops must save what the needed gradients use, whichever they are.
PARTIAL = [
    ("mul-only-b", lambda a, b: a * b, (r(2, 3), r(3)), (False, True)),
    ("div-only-a", lambda a, b: a / b, (r(2, 3), r(2, 3)), (True, False)),
    ("div-only-b", lambda a, b: a / b, (r(2, 3), r(2, 1)), (False, True)),
    ("pow-only-exponent", lambda a, b: a**b, (pos(2, 3), r(2, 3)), (False, True)),
    ("pow-only-base", lambda a, b: a**b, (pos(2, 3), r(2, 3)), (True, False)),
    ("maximum-only-b", lambda a, b: dl.maximum(a, b), (r(2, 3), r(2, 3)), (False, True)),
    ("where-only-y", lambda a, b: dl.where(BOOL_MASK, a, b), (r(2, 3), r(2, 3)), (False, True)),
    ("matmul-only-a", lambda a, b: a @ b, (r(2, 3), r(3, 2)), (True, False)),
    ("matmul-only-b", lambda a, b: a @ b, (r(2, 3), r(3, 2)), (False, True)),
    ("matmul-1d-1d-only-b", lambda a, b: a @ b, (r(3), r(3)), (False, True)),
    ("matmul-1d-2d-only-b", lambda a, b: a @ b, (r(3), r(3, 2)), (False, True)),
    ("matmul-2d-1d-only-a", lambda a, b: a @ b, (r(2, 3), r(3)), (True, False)),
    ("matmul-3d-2d-only-b", lambda a, b: a @ b, (r(2, 3, 2), r(2, 3)), (False, True)),
    ("cat-middle-only", lambda a, b, c: dl.cat([a, b, c], 1), (r(2, 1), r(2, 2), r(2, 1)), (False, True, False)),
]


@pytest.mark.parametrize(("fn", "arrays", "mask"), [pytest.param(f, a, m, id=i) for i, f, a, m in PARTIAL])
def test_gradcheck_with_some_inputs_constant(fn, arrays, mask):
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=m) for a, m in zip(arrays, mask)]
    assert gradcheck(fn, inputs)
    for t, m in zip(inputs, mask):
        assert (t.grad is not None) == m


def test_gradcheck_only_checks_inputs_that_require_grad():
    a = dl.tensor(r(2, 3), dtype=dl.float64, requires_grad=True)
    b = dl.tensor(r(2, 3), dtype=dl.float64)
    assert gradcheck(lambda x, y: x * y, [a, b])
    assert b.grad is None
    np.testing.assert_allclose(a.grad.shape, (2, 3))


def test_gradcheck_detects_a_wrong_backward():
    class WrongSquare(Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return g * self.x  # should be 2 x g

    x = dl.tensor(r(4), dtype=dl.float64, requires_grad=True)
    with pytest.raises(AssertionError, match="input 0 of shape"):
        gradcheck(lambda t: WrongSquare.apply(t), [x])


def test_gradcheck_rejects_float32_inputs():
    x = dl.tensor(r(3), requires_grad=True)
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda t: t * 2, [x])


def test_gradcheck_rejects_non_contiguous_inputs_with_a_clear_message():
    x = dl.from_numpy(np.arange(6.0).reshape(2, 3).T).requires_grad_()
    with pytest.raises(ValueError, match="not C-contiguous"):
        gradcheck(lambda t: t * 2, [x])
    assert gradcheck(lambda t: t * 2, [x.detach().contiguous().requires_grad_()])


def test_repeated_index_gradient_counts_every_pick():
    x = dl.tensor(np.arange(3.0), dtype=dl.float64, requires_grad=True)
    x[[0, 2, 0, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])
    y = dl.tensor(np.zeros((2, 3)), dtype=dl.float64, requires_grad=True)
    y.gather(1, dl.tensor([[1, 1, 1], [0, 2, 0]])).sum().backward()
    np.testing.assert_array_equal(y.grad, [[0.0, 3.0, 0.0], [2.0, 0.0, 1.0]])


def test_tied_max_splits_gradient_evenly():
    # amax shares the gradient among ties (PyTorch's amax); maximum splits a tie in half.
    x = dl.tensor([1.0, 3.0, 3.0, 2.0], dtype=dl.float64, requires_grad=True)
    x.amax().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5, 0.0])
    a = dl.tensor([1.0, 2.0], dtype=dl.float64, requires_grad=True)
    b = dl.tensor([1.0, 0.0], dtype=dl.float64, requires_grad=True)
    dl.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.5, 1.0])
    np.testing.assert_array_equal(b.grad, [0.5, 0.0])


def test_max_with_dim_sends_gradient_to_the_returned_index():
    x = dl.tensor([[1.0, 5.0, 5.0], [4.0, 0.0, 2.0]], dtype=dl.float64, requires_grad=True)
    values, indices = x.max(1)
    values.sum().backward()
    np.testing.assert_array_equal(values.data, [5.0, 4.0])
    assert x.grad[0, indices.data[0]] == 1.0 and x.grad.sum() == 2.0
    np.testing.assert_array_equal(x.grad[1], [1.0, 0.0, 0.0])


def test_nondifferentiable_points_follow_pytorch():
    x = dl.tensor([-1.0, 0.0, 2.0], dtype=dl.float64, requires_grad=True)
    (x.abs() + x.relu()).sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 2.0])  # abs'(0) = 0, relu'(0) = 0
    y = dl.tensor([-1.0, 0.0, 0.5, 1.0, 2.0], dtype=dl.float64, requires_grad=True)
    y.clamp(0.0, 1.0).sum().backward()
    np.testing.assert_array_equal(y.grad, [0.0, 1.0, 1.0, 1.0, 0.0])  # bounds pass the gradient
