"""The public Tensor API and the dtype policy: float32 by default, float64 on request and then kept,
integer and bool data keep their kind, Python scalars never upcast."""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics as dl
import dlbasics.nn.functional as F


# ---- dtype policy -----------------------------------------------------------------------------------
def test_python_floats_become_float32():
    assert dl.tensor([1.0]).dtype == np.float32
    assert dl.tensor(2.5).dtype == np.float32
    assert dl.Tensor([1.0, 2.0]).dtype == np.float32


def test_float64_numpy_array_becomes_float32_and_is_copied():
    a = np.array([1.0, 2.0])
    t = dl.tensor(a)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, [1.0, 2.0])
    a64 = np.array([1.0, 2.0])
    t64 = dl.tensor(a64, dtype=dl.float64)
    a64[0] = 99.0
    assert t64.data[0] == 1.0  # dl.tensor always copies


def test_float64_on_request_stays_and_propagates():
    x = dl.tensor([1.0, 2.0], dtype=dl.float64, requires_grad=True)
    assert x.dtype == np.float64
    y = ((x * 2.5 + 1) / 3 - x.exp()).sum() ** 2
    assert y.dtype == np.float64
    for op in (lambda t: t.mean(), lambda t: t.var(), lambda t: t.softmax(0), lambda t: t @ t, lambda t: t.sqrt(),
               lambda t: t.relu(), lambda t: dl.where(t > 1, t, 0.5), lambda t: t.max(), lambda t: t[[0, 0]]):
        assert op(x).dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float64


@pytest.mark.parametrize("spec", [dl.float64, np.float64, "float64", "double", dl.double])
def test_dtype_spellings(spec):
    assert dl.tensor([1.0], dtype=spec).dtype == np.float64


def test_unknown_dtype_raises_with_hint():
    with pytest.raises(TypeError, match="unknown dtype"):
        dl.tensor([1.0], dtype="notatype")


def test_int_and_bool_data_keep_their_kind():
    assert dl.tensor([1, 2, 3]).dtype == np.int64
    assert dl.tensor(7).dtype == np.int64
    assert dl.tensor([True, False]).dtype == np.bool_
    assert dl.tensor(np.array([1, 2], dtype=np.int32)).dtype == np.int32


def test_complex_data_is_rejected():
    with pytest.raises(TypeError, match="complex"):
        dl.tensor([1 + 2j])


def test_python_scalars_never_upcast():
    x32 = dl.tensor([1.0, 2.0])
    assert (x32 * 2.5).dtype == np.float32
    assert (2.5 * x32).dtype == np.float32
    assert (x32 + 1).dtype == np.float32
    assert (x32 / 3).dtype == np.float32
    assert (1 - x32).dtype == np.float32
    assert (x32**2).dtype == np.float32
    assert (x32**0.5).dtype == np.float32
    assert (2.0**x32).dtype == np.float32
    assert dl.maximum(x32, 0.5).dtype == np.float32
    assert dl.where(x32 > 1, x32, 0.0).dtype == np.float32
    assert (x32 * np.float64(2.0)).dtype == np.float32
    x16 = dl.tensor([1.0], dtype=dl.float16)
    assert (x16 * 2.5).dtype == np.float16
    i = dl.tensor([1, 2])
    assert (i * 3).dtype == np.int64
    assert (i + True).dtype == np.int64


def test_float_meets_int_tensor_gives_the_float_dtype():
    f32 = dl.tensor([1.5, 2.5])
    i = dl.tensor([1, 2])
    assert (f32 + i).dtype == np.float32
    assert (i + f32).dtype == np.float32
    np.testing.assert_array_equal((i * f32).data, [1.5, 5.0])
    f64 = dl.tensor([1.5], dtype=dl.float64)
    assert (f64 + dl.tensor([1])).dtype == np.float64


def test_int_scalar_float_and_true_division():
    i = dl.tensor([1, 2, 3])
    assert (i * 2.5).dtype == np.float32
    np.testing.assert_array_equal((i * 2.5).data, [2.5, 5.0, 7.5])
    q = i / dl.tensor([2, 2, 2])
    assert q.dtype == np.float32
    np.testing.assert_array_equal(q.data, [0.5, 1.0, 1.5])
    assert (i / 2).dtype == np.float32


def test_mixed_float_precisions_promote_like_pytorch():
    assert (dl.tensor([1.0]) + dl.tensor([1.0], dtype=dl.float64)).dtype == np.float64


def test_float64_tensor_keeps_float64_array_operands_exact():
    # NumPy/list operands take the float tensor's dtype directly (not rounded through float32 first)
    x = dl.tensor([0.0], dtype=dl.float64)
    assert (x + np.array([0.1])).item() == 0.1
    operand = [0.1]
    assert (x + operand).item() == 0.1
    assert (np.array([0.1]) - x).item() == 0.1
    assert dl.where(np.array([False]), x, np.array([0.1])).item() == 0.1
    assert F.mse_loss(x, np.array([0.1]), reduction="sum").item() == 0.1 * 0.1
    assert (dl.tensor([0.0]) + np.array([0.1])).dtype == np.float32  # a float32 tensor stays float32


def test_scalar_only_operands():
    w = dl.where(dl.tensor([True, False]), 1.0, 0.0)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w.data, [1.0, 0.0])
    assert dl.maximum(1.0, 2.0).item() == 2.0
    assert dl.where(np.array([True, False]), 1, 0).dtype == np.int64


@pytest.mark.parametrize(
    "op",
    [dl.exp, dl.log, dl.sqrt, dl.sigmoid, dl.tanh, F.gelu, F.leaky_relu, lambda t: dl.softmax(t, 0),
     lambda t: dl.log_softmax(t, 0), lambda t: t.clamp(0.5, 2.5), lambda t: t / 2, lambda t: t * 0.5,
     lambda t: t**0.5],
)
def test_int_data_through_float_ops_becomes_float32_not_float64(op):
    out = op(dl.tensor([1, 2, 3]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, op(dl.tensor([1.0, 2.0, 3.0])).data, rtol=1e-6)


def test_int_ops_that_stay_int():
    i = dl.tensor([1, 5, 9])
    assert i.clamp(2, 6).dtype == np.int64
    np.testing.assert_array_equal(i.clamp(2, 6).data, [2, 5, 6])
    assert i.relu().dtype == np.int64 and abs(-i).dtype == np.int64
    assert i.sum().dtype == np.int64 and (i > 2).sum().dtype == np.int64
    assert (i**2).dtype == np.int64 and (2**i).dtype == np.int64


def test_cat_of_int_and_float_gives_the_float_dtype():
    out = dl.cat([dl.tensor([1]), dl.tensor([1.5])])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.data, [1.0, 1.5])
    assert dl.cat([dl.tensor([1]), dl.tensor([2])]).dtype == np.int64
    assert dl.cat([dl.tensor([1.0]), dl.tensor([2.0], dtype=dl.float64)]).dtype == np.float64


def test_tensor_of_a_tensor_keeps_its_dtype():
    x = dl.tensor([1.0], dtype=dl.float64, requires_grad=True)
    assert dl.tensor(x).dtype == np.float64
    assert not dl.tensor(x).requires_grad
    assert dl.Tensor(x).dtype == np.float64
    assert dl.tensor(x, dtype=dl.float32).dtype == np.float32


def test_comparisons_return_bool_tensors_outside_the_graph():
    x = dl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for result, expected in [
        (x > 2, [False, False, True]), (x >= 2, [False, True, True]), (x < 2, [True, False, False]),
        (x <= 2, [True, True, False]), (x == 2, [False, True, False]), (x != 2, [True, False, True]),
        (x > dl.tensor([0.0, 5.0, 3.0]), [True, False, False]),
        ((x > 1) & (x < 3), [False, True, False]), ((x < 2) | (x > 2), [True, False, True]),
        (~(x > 2), [True, True, False]),
    ]:
        assert isinstance(result, dl.Tensor)
        assert result.dtype == np.bool_
        assert not result.requires_grad and result.grad_fn is None
        np.testing.assert_array_equal(result.data, expected)


def test_invert_requires_bool():
    with pytest.raises(TypeError, match="bool"):
        ~dl.tensor([1.0])


def test_int_tensor_cannot_require_grad_and_mean_needs_float():
    with pytest.raises(RuntimeError, match="floating point"):
        dl.tensor([1, 2]).requires_grad_()
    with pytest.raises(TypeError, match="float"):
        dl.tensor([1, 2]).mean()


def test_conversions_between_dtypes():
    x = dl.tensor([1.7, -2.2])
    assert x.double().dtype == np.float64
    assert x.long().dtype == np.int64
    np.testing.assert_array_equal(x.long().data, [1, -2])
    assert x.bool().dtype == np.bool_
    assert x.float() is x
    assert x.to("float64").dtype == np.float64


# ---- creation helpers -------------------------------------------------------------------------------
def test_zeros_ones_full():
    z = dl.zeros(2, 3)
    assert z.shape == (2, 3) and z.dtype == np.float32 and not z.data.any()
    assert dl.zeros((2, 3)).shape == (2, 3) and dl.zeros([4]).shape == (4,)
    o = dl.ones(3, dtype=dl.float64)
    assert o.dtype == np.float64
    np.testing.assert_array_equal(o.data, [1.0, 1.0, 1.0])
    f = dl.full((2, 2), 1.5)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f.data, np.full((2, 2), 1.5))
    assert dl.full((2,), 7).dtype == np.int64
    assert dl.full(3, True).dtype == np.bool_
    assert dl.full((2,), 7, dtype=dl.float64).dtype == np.float64
    assert dl.zeros(2, requires_grad=True).requires_grad
    np.testing.assert_array_equal(dl.eye(2).data, np.eye(2))
    np.testing.assert_allclose(dl.linspace(0, 1, 5).data, [0, 0.25, 0.5, 0.75, 1])


def test_like_helpers_keep_shape_and_dtype():
    x = dl.tensor([[1, 2, 3]])
    zl, ol = dl.zeros_like(x), dl.ones_like(x)
    assert zl.shape == ol.shape == (1, 3)
    assert zl.dtype == ol.dtype == np.int64
    np.testing.assert_array_equal(zl.data, [[0, 0, 0]])
    np.testing.assert_array_equal(ol.data, [[1, 1, 1]])
    y = dl.tensor([1.0, 2.0], dtype=dl.float64)
    assert dl.zeros_like(y).dtype == np.float64
    assert dl.ones_like(y, dtype=dl.float32).dtype == np.float32
    np.testing.assert_array_equal(dl.full_like(y, 3.0).data, [3.0, 3.0])


def test_arange_int_vs_float_arguments():
    a = dl.arange(5)
    assert a.dtype == np.int64
    np.testing.assert_array_equal(a.data, [0, 1, 2, 3, 4])
    b = dl.arange(2, 8, 2)
    assert b.dtype == np.int64
    np.testing.assert_array_equal(b.data, [2, 4, 6])
    c = dl.arange(5.0)
    assert c.dtype == np.float32
    d = dl.arange(0, 1, 0.25)
    assert d.dtype == np.float32
    np.testing.assert_array_equal(d.data, [0.0, 0.25, 0.5, 0.75])
    assert dl.arange(3, dtype=dl.float64).dtype == np.float64


def test_random_helpers_with_int_seed_are_reproducible():
    for make in (dl.randn, dl.rand):
        a, b = make(3, 4, generator=0), make(3, 4, generator=0)
        assert a.shape == (3, 4) and a.dtype == np.float32
        np.testing.assert_array_equal(a.data, b.data)
        assert not np.array_equal(a.data, make(3, 4, generator=1).data)
    np.testing.assert_array_equal(dl.randn(5, generator=3).data,
                                  np.random.default_rng(3).standard_normal(5, dtype=np.float32))
    u = dl.rand(1000, generator=0).data
    assert u.min() >= 0.0 and u.max() < 1.0
    assert dl.randn(2, generator=0, dtype=dl.float64).dtype == np.float64
    np.testing.assert_array_equal(dl.randint(0, 10, (4,), generator=5).data, dl.randint(0, 10, 4, generator=5).data)
    np.testing.assert_array_equal(np.sort(dl.randperm(6, generator=2).data), np.arange(6))


def test_random_helpers_with_numpy_generator():
    a = dl.randn(2, 3, generator=np.random.default_rng(42))
    b = dl.randn(2, 3, generator=np.random.default_rng(42))
    np.testing.assert_array_equal(a.data, b.data)
    g = np.random.default_rng(42)
    first, second = dl.rand(4, generator=g), dl.rand(4, generator=g)
    assert not np.array_equal(first.data, second.data)  # the generator's state advances


def test_manual_seed_makes_default_randn_reproducible():
    dl.manual_seed(123)
    a = dl.randn(3, 2)
    a2 = dl.randn(3, 2)
    dl.manual_seed(123)
    b = dl.randn(3, 2)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, a2.data)


def test_tensor_copy_is_c_contiguous_and_contiguous_makes_it_so():
    a = np.arange(6.0).reshape(2, 3)
    t = dl.tensor(a.T, dtype=dl.float64)
    assert t.data.flags.c_contiguous
    np.testing.assert_array_equal(t.data, a.T)
    v = dl.from_numpy(a.T).requires_grad_()
    assert not v.data.flags.c_contiguous
    c = v.contiguous()
    assert c.data.flags.c_contiguous
    np.testing.assert_array_equal(c.data, a.T)
    (c * dl.tensor(np.arange(6.0).reshape(3, 2), dtype=dl.float64)).sum().backward()
    np.testing.assert_array_equal(v.grad, np.arange(6.0).reshape(3, 2))
    assert t.contiguous() is t


def test_from_numpy_shares_memory_and_keeps_dtype():
    a = np.array([1.0, 2.0])
    t = dl.from_numpy(a)
    assert t.dtype == np.float64
    a[0] = 5.0
    assert t.data[0] == 5.0


# ---- attributes and conversion ----------------------------------------------------------------------
def test_basic_attributes():
    t = dl.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert isinstance(t.data, np.ndarray)
    assert t.grad is None
    assert t.shape == (2, 3) and t.size() == (2, 3) and t.size(1) == 3
    assert t.ndim == 2 and t.dim() == 2 and t.numel() == 6
    assert t.dtype == np.float32
    assert t.is_leaf and t.requires_grad
    assert len(t) == 2
    y = t * 2
    assert not y.is_leaf


def test_numpy_raises_when_requires_grad_and_works_after_detach():
    t = dl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        t.numpy()
    arr = t.detach().numpy()
    assert isinstance(arr, np.ndarray)
    np.testing.assert_array_equal(arr, [1.0, 2.0])
    np.testing.assert_array_equal(dl.tensor([3, 4]).numpy(), [3, 4])


def test_item_and_python_number_conversions():
    assert dl.tensor(3.5).item() == 3.5
    assert isinstance(dl.tensor([2]).item(), int)
    assert dl.tensor([[4.0]]).item() == 4.0
    assert float(dl.tensor(1.5)) == 1.5
    assert int(dl.tensor(7)) == 7
    with pytest.raises(ValueError, match="one-element"):
        dl.tensor([1.0, 2.0]).item()
    assert dl.tensor([1.0, 2.0]).tolist() == [1.0, 2.0]
    assert [10, 20, 30][dl.tensor(1)] == 20  # __index__


def test_bool_of_multi_element_tensor_is_ambiguous():
    assert bool(dl.tensor([1.0]))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(dl.tensor([1.0, 2.0]))


def test_np_asarray_uses_array_protocol():
    t = dl.tensor([[1.0, 2.0]])
    a = np.asarray(t)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    np.testing.assert_array_equal(a, [[1.0, 2.0]])
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.array(t, copy=True) is not t.data


def test_repr_shows_values_and_grad_fn():
    t = dl.tensor([1.0, 2.0], requires_grad=True)
    s = repr(t)
    assert s.startswith("tensor(") and "1." in s and "requires_grad=True" in s
    y = t * 2
    assert "tensor(" in repr(y) and "grad_fn=<MulBackward>" in repr(y)
    assert "dtype=float64" in repr(dl.tensor([1.0], dtype=dl.float64))
    assert "dtype" not in repr(dl.tensor([1, 2]))


def test_len_of_0d_raises():
    with pytest.raises(TypeError):
        len(dl.tensor(1.0))


# ---- max/min/argmax ---------------------------------------------------------------------------------
def test_max_with_dim_returns_values_and_indices():
    x = dl.tensor([[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]])
    values, indices = x.max(dim=1)
    np.testing.assert_array_equal(values.data, [5.0, 4.0])
    np.testing.assert_array_equal(indices.data, [1, 2])
    assert indices.dtype == np.int64
    result = x.max(1)
    np.testing.assert_array_equal(result.values.data, [5.0, 4.0])
    np.testing.assert_array_equal(result.indices.data, [1, 2])
    kept = x.max(0, keepdim=True)
    assert kept.values.shape == (1, 3) and kept.indices.shape == (1, 3)
    np.testing.assert_array_equal(kept.indices.data, [[1, 0, 1]])
    mn = dl.min(x, dim=-1)
    np.testing.assert_array_equal(mn.values.data, [1.0, 0.0])
    np.testing.assert_array_equal(mn.indices.data, [0, 1])


def test_max_min_without_dim_return_a_0d_tensor():
    x = dl.tensor([[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]])
    assert x.max().shape == () and x.max().item() == 5.0
    assert dl.min(x).item() == 0.0


def test_argmax_argmin():
    x = dl.tensor([[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]])
    assert x.argmax().item() == 1  # over the flattened tensor
    assert dl.argmax(x).dtype == np.int64
    np.testing.assert_array_equal(x.argmax(1).data, [1, 2])
    np.testing.assert_array_equal(dl.argmax(x, dim=0).data, [1, 0, 1])
    assert x.argmax(1, keepdim=True).shape == (2, 1)
    np.testing.assert_array_equal(x.argmin(0).data, [0, 1, 0])
    assert dl.argmin(x).item() == 4
    assert not x.argmax(1).requires_grad


# ---- indexing, assignment, iteration ----------------------------------------------------------------
def test_indexing_with_a_bool_tensor():
    x = dl.tensor([[1.0, -2.0], [-3.0, 4.0]])
    np.testing.assert_array_equal(x[x > 0].data, [1.0, 4.0])
    np.testing.assert_array_equal(x[dl.tensor([False, True])].data, [[-3.0, 4.0]])


def test_indexing_matches_numpy():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = dl.tensor(a)
    for index in [1, -1, (0, 2), (slice(None), 1), (Ellipsis, 0), (None, 0), (slice(None, None, -1),),
                  ([1, 0, 1],), (0, [2, 2], [3, 0])]:
        np.testing.assert_array_equal(x[index].data, a[index])
    np.testing.assert_array_equal(x[dl.tensor([1, 1])].data, a[[1, 1]])


def test_index_out_of_range_names_the_shape():
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        dl.zeros(2, 3)[5]


def test_setitem_under_no_grad():
    x = dl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        x[0] = 5.0
    with dl.no_grad():
        x[0] = 5.0
        x[dl.tensor([False, True, False])] = dl.tensor(-1.0)
    np.testing.assert_array_equal(x.data, [5.0, -1.0, 3.0])
    assert x.requires_grad and x.grad_fn is None


def test_setitem_on_plain_tensor():
    x = dl.zeros(2, 3)
    x[1] = dl.tensor([1.0, 2.0, 3.0])
    x[0, x[1] > 1.5] = 7.0
    np.testing.assert_array_equal(x.data, [[0.0, 7.0, 7.0], [1.0, 2.0, 3.0]])


def test_iteration_yields_rows():
    x = dl.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    rows = list(x)
    assert len(rows) == 3 and all(isinstance(r, dl.Tensor) for r in rows)
    np.testing.assert_array_equal(rows[2].data, [5.0, 6.0])
    total = sum(float(v) for row in x for v in row)
    assert total == 21.0


def test_iteration_keeps_the_graph():
    x = dl.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=dl.float64, requires_grad=True)
    total = None
    for k, row in enumerate(x):
        term = row.sum() * (k + 1)
        total = term if total is None else total + term
    total.backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 1.0], [2.0, 2.0]])


# ---- mixing with NumPy ------------------------------------------------------------------------------
def test_numpy_array_and_tensor_give_a_tensor():
    a = np.array([1.0, 2.0])
    x = dl.tensor([10.0, 20.0])
    for result, expected in [(a + x, [11.0, 22.0]), (a - x, [-9.0, -18.0]), (a * x, [10.0, 40.0]),
                             (a / x, [0.1, 0.1]), (x + a, [11.0, 22.0])]:
        assert isinstance(result, dl.Tensor)
        assert result.dtype.kind == "f"
        np.testing.assert_allclose(result.data, expected, rtol=1e-6)
    y = dl.tensor([1.0, 2.0], dtype=dl.float64, requires_grad=True)
    out = np.array([3.0, 4.0]) * y
    assert isinstance(out, dl.Tensor) and out.requires_grad
    out.sum().backward()
    np.testing.assert_array_equal(y.grad, [3.0, 4.0])


def test_numpy_scalar_and_tensor_give_a_tensor():
    x = dl.tensor([1.0, 2.0])
    for result in (np.float64(2.0) * x, x * np.float32(2.0), np.int64(2) * x):
        assert isinstance(result, dl.Tensor)
        np.testing.assert_array_equal(result.data, [2.0, 4.0])


# ---- methods map to the right math ------------------------------------------------------------------
def test_method_values_match_numpy():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2.0, (2, 3))
    b = rng.standard_normal((3, 2))
    x = dl.tensor(a, dtype=dl.float64)
    checks = [
        (x.exp(), np.exp(a)), (x.log(), np.log(a)), (x.sqrt(), np.sqrt(a)), ((-x).abs(), a),
        (x @ dl.tensor(b, dtype=dl.float64), a @ b), (x.sum(1), a.sum(1)),
        (x.mean(0, keepdim=True), a.mean(0, keepdims=True)),
        (x.var(1), a.var(1, ddof=1)), (x.std(), a.std(ddof=1)), (x.var(0, correction=0), a.var(0)),
        (x.T, a.T), (x.reshape(3, 2), a.reshape(3, 2)), (x.flatten(), a.ravel()),
        (x.unsqueeze(1).shape, (2, 1, 3)), (x.clamp(0.8, 1.5), np.clip(a, 0.8, 1.5)),
        (x.softmax(1), np.exp(a) / np.exp(a).sum(1, keepdims=True)),
        (x.sigmoid(), 1 / (1 + np.exp(-a))), (x.tanh(), np.tanh(a)), ((x - 1).relu(), np.maximum(a - 1, 0)),
        (x**2.5, a**2.5), (2**x, 2**a), (x.amax(1), a.max(1)), (x.amin(), a.min()),
        (dl.cat([x, x], 1), np.concatenate([a, a], 1)), (dl.stack([x, x]), np.stack([a, a])),
        (x.expand(4, 2, 3), np.broadcast_to(a, (4, 2, 3))), (x.permute(1, 0), a.T),
    ]
    for got, expected in checks:
        np.testing.assert_allclose(got.data if isinstance(got, dl.Tensor) else got, expected, rtol=1e-12)
