"""One table of cases drives both libraries and three checks; a tiny harness checks dlbasics against PyTorch.

Each case is declared once and runs three ways: parity with PyTorch in float32 (``check``), parity in float64
(``check_float64``) and, where it is smooth, the finite-difference gradient check in float64 (``check_gradcheck``).
The ops' cases run in ``tests/ops/test_ops.py``, nn.functional's in ``tests/nn/test_functional.py``; the
convolution and attention tables (``tests/ops/test_conv.py``, ``tests/ops/test_attention.py``) use this harness.

A case is ``(id, fn, inputs)``: ``fn(m, F, *xs)`` is written once and called with
``(m=dlbasics, F=dlbasics.nn.functional)`` and with ``(m=torch, F=torch.nn.functional)`` on tensors
made from the same NumPy ``inputs``. ``check(case)`` compares every output (values, shape, dtype),
backpropagates one random upstream gradient through every differentiable output in both libraries and
compares each float input's ``.grad``.

Float inputs are wrapped without copying (``dl.Tensor`` / ``torch.from_numpy``), so a non-contiguous
NumPy view (Fortran order, a transpose, a strided slice) reaches both libraries as such; integer and
bool inputs (class indices, index arrays, masks) never require grad.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as torch_F

import dlbasics as dl
import dlbasics.nn.functional as dl_F

RTOL, ATOL = 1e-5, 1e-6  # float32: a few ulps of accumulated rounding
RTOL64, ATOL64 = 1e-10, 1e-12  # float64: the same algorithms, up to summation order


@dataclass(frozen=True)
class Case:
    id: str
    fn: Callable[..., Any]
    inputs: tuple[np.ndarray, ...]
    rtol: float = RTOL
    atol: float = ATOL
    const: tuple[int, ...] = ()  # positions of float inputs passed without requires_grad
    finite: bool = False  # also require every dl output and gradient to be finite
    nan_ok: bool = False  # the case makes nan/inf on purpose: NumPy's floating-point warnings are expected
    # False where the case sits on a kink or makes NaN on purpose (ties, zeros, clamp bounds, all-ignored targets):
    # finite differences define no gradient there, PyTorch's rule does; parity checks it, gradcheck does not
    smooth: bool = True
    # a table that runs only some of its cases in float64 too (tests/ops/test_conv.py) runs those declared True;
    # the ops' and nn.functional's tables run every case with a float input in float64 (FLOAT64_CASES below)
    float64: bool = False

    def __repr__(self) -> str:
        return self.id


def case(id: str, fn: Callable[..., Any], *inputs: Any, **options: Any) -> Case:
    return Case(id, fn, tuple(np.asarray(x) if not isinstance(x, np.ndarray) else x for x in inputs), **options)


# ---- the harness -----------------------------------------------------------------------------------
def _torch_tensor(x: np.ndarray, grad: bool) -> torch.Tensor:
    # from_numpy keeps the strides (a non-contiguous view stays one); torch cannot hold negative strides
    t = torch.from_numpy(x) if all(s >= 0 for s in x.strides) else torch.tensor(x)
    return t.requires_grad_(grad)


def _dl_tensor(x: np.ndarray, grad: bool) -> dl.Tensor:
    if x.dtype.kind == "f":
        return dl.Tensor(x, dtype=x.dtype, requires_grad=grad)  # no copy: the view's strides survive
    return dl.from_numpy(x)


def _outputs(out: Any) -> list[Any]:
    return list(out) if isinstance(out, tuple | list) else [out]


def _np(x: Any) -> np.ndarray:
    return x.detach().numpy()  # the same spelling in both libraries


def _is_float(x: Any) -> bool:
    return x.is_floating_point() if isinstance(x, torch.Tensor) else x.dtype.kind == "f"


def run(case: Case, lib: str) -> tuple[list[Any], list[Any]]:
    """Run ``case`` in ``lib`` ("dl" or "torch"): (its outputs, its input tensors)."""
    m, F, make = (dl, dl_F, _dl_tensor) if lib == "dl" else (torch, torch_F, _torch_tensor)
    xs = [make(x, x.dtype.kind == "f" and i not in case.const) for i, x in enumerate(case.inputs)]
    outs = _outputs(case.fn(m, F, *xs))
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    diff = [o for o in outs if _is_float(o) and o.requires_grad]
    for k, o in enumerate(diff):
        g = rng.standard_normal(tuple(o.shape)).astype(_np(o).dtype)
        more = k < len(diff) - 1
        if lib == "dl":
            o.backward(g, retain_graph=more)
        else:
            o.backward(torch.from_numpy(g), retain_graph=more)
    return outs, xs


def check(case: Case) -> None:
    """Forward outputs and input gradients of dlbasics equal PyTorch's on ``case``."""
    before = [x.copy() for x in case.inputs]
    with warnings.catch_warnings():
        if case.nan_ok:  # torch may warn too (e.g. var with no degrees of freedom)
            warnings.simplefilter("ignore")
        t_outs, t_xs = run(case, "torch")
        # a NumPy overflow / divide / invalid warning inside dl means a non-finite intermediate
        warnings.simplefilter("ignore" if case.nan_ok else "error", RuntimeWarning)
        d_outs, d_xs = run(case, "dl")
    for x, x0 in zip(case.inputs, before):
        np.testing.assert_array_equal(x, x0, err_msg=f"{case.id}: an input array was modified in place")

    assert len(d_outs) == len(t_outs), f"{case.id}: {len(d_outs)} outputs, torch has {len(t_outs)}"
    for k, (d, t) in enumerate(zip(d_outs, t_outs)):
        dv, tv = _np(d), _np(t)
        where = f"{case.id}: output {k}"
        assert dv.shape == tv.shape, f"{where}: shape {dv.shape}, torch {tv.shape}"
        assert dv.dtype == tv.dtype, f"{where}: dtype {dv.dtype}, torch {tv.dtype}"
        assert d.requires_grad == t.requires_grad, f"{where}: requires_grad {d.requires_grad}, torch {t.requires_grad}"
        if dv.dtype.kind == "f":
            np.testing.assert_allclose(dv, tv, rtol=case.rtol, atol=case.atol, err_msg=where)
            if case.finite:
                assert np.isfinite(dv).all(), f"{where}: not finite: {dv}"
        else:
            np.testing.assert_array_equal(dv, tv, err_msg=where)

    for i, (d, t) in enumerate(zip(d_xs, t_xs)):
        if not t.requires_grad:
            assert d.grad is None, f"{case.id}: input {i} does not require grad but got a gradient"
            continue
        where = f"{case.id}: grad of input {i}"
        if t.grad is None:
            assert d.grad is None, f"{where}: torch has none, dl has {d.grad}"
            continue
        assert d.grad is not None, f"{where}: missing (torch has one)"
        assert isinstance(d.grad, np.ndarray), f"{where}: .grad is {type(d.grad).__name__}, not an ndarray"
        tg = t.grad.numpy()
        assert d.grad.shape == tg.shape, f"{where}: shape {d.grad.shape}, torch {tg.shape}"
        assert d.grad.dtype == case.inputs[i].dtype, f"{where}: dtype {d.grad.dtype}, input {case.inputs[i].dtype}"
        np.testing.assert_allclose(d.grad, tg, rtol=case.rtol, atol=case.atol, err_msg=where)
        if case.finite:
            assert np.isfinite(d.grad).all(), f"{where}: not finite: {d.grad}"


# ---- inputs ------------------------------------------------------------------------------------------
_rng = np.random.default_rng(20240601)


def r(*shape: int, scale: float = 1.0) -> np.ndarray:
    """Standard normal float32 (times ``scale``)."""
    return (_rng.standard_normal(shape) * scale).astype(np.float32)


def pos(*shape: int) -> np.ndarray:
    """float32 in [0.5, 2): safe for log, sqrt, division and fractional powers."""
    return _rng.uniform(0.5, 2.0, shape).astype(np.float32)


def ix(high: int, *shape: int) -> np.ndarray:
    """int64 indices in [0, high)."""
    return _rng.integers(0, high, shape).astype(np.int64)


def mask(*shape: int) -> np.ndarray:
    return _rng.random(shape) < 0.5


def probs(*shape: int, axis: int = -1) -> np.ndarray:
    """float32 rows of class probabilities along ``axis``."""
    e = np.exp(_rng.standard_normal(shape))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def fortran(a: np.ndarray) -> np.ndarray:
    """The same values in column-major layout (a non-C-contiguous array)."""
    return np.asfortranarray(a)


def transposed(*shape: int) -> np.ndarray:
    """A ``shape`` array that is the transpose view of a C-contiguous one."""
    return r(*shape[::-1]).T


def strided(*shape: int) -> np.ndarray:
    """A ``shape`` array that is every other column of a wider one (non-unit stride)."""
    return r(*shape[:-1], 2 * shape[-1])[..., ::2]


def f64(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64)


def exact(*rows: Any) -> np.ndarray:
    """float32 from literal values (ties and boundaries are exact)."""
    return np.array(rows, dtype=np.float32)


TIES = exact([1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 2.0, 0.0], [5.0, -1.0, 5.0, 5.0])  # (3, 4), tied maxima
WITH_ZEROS = exact([0.0, -1.5, 2.0], [0.0, 0.5, -0.0])  # exact zeros: relu/abs/leaky_relu/pow at 0


# ---- elementwise -------------------------------------------------------------------------------------
ELEMENTWISE = [
    case("add", lambda m, F, a, b: a + b, r(3, 4), r(3, 4)),
    case("add_bcast_col_row", lambda m, F, a, b: a + b, r(3, 1), r(1, 4)),
    case("add_bcast_rank", lambda m, F, a, b: b + a, r(4), r(2, 3, 4)),
    case("add_0d", lambda m, F, a, b: a + b, r(), r(3)),
    case("add_0d_0d", lambda m, F, a, b: a + b, r(), r()),
    case("add_scalar", lambda m, F, a: a + 2.5, r(3)),
    case("radd_scalar", lambda m, F, a: 2.5 + a, r(3)),
    case("add_method", lambda m, F, a, b: a.add(b), r(2, 3), r(3)),
    case("add_same_tensor_twice", lambda m, F, a: a + a, r(3, 2)),
    case("sub", lambda m, F, a, b: a - b, r(2, 3, 4), r(3, 1)),
    case("sub_rsub_scalar", lambda m, F, a: 1.5 - a, r(2, 3)),
    case("sub_scalar", lambda m, F, a: a - 1.5, r(2, 3)),
    case("sub_method", lambda m, F, a, b: a.sub(b), r(4, 1), r(4)),
    case("mul", lambda m, F, a, b: a * b, r(3, 4), r(3, 4)),
    case("mul_bcast_rank", lambda m, F, a, b: a * b, r(4), r(2, 3, 4)),
    case("mul_bcast_col_row", lambda m, F, a, b: a * b, r(3, 1), r(1, 4)),
    case("mul_0d", lambda m, F, a, b: a * b, r(), r(2, 3)),
    case("mul_scalar", lambda m, F, a: a * 3.0, r(4)),
    case("rmul_scalar", lambda m, F, a: 3.0 * a, r(4)),
    case("mul_self", lambda m, F, a: a * a, r(5)),
    case("mul_method", lambda m, F, a, b: a.mul(b), r(2, 1), r(1, 3)),
    case("div", lambda m, F, a, b: a / b, r(3, 4), pos(3, 4)),
    case("div_bcast", lambda m, F, a, b: a / b, r(2, 3), pos(3)),
    case("div_bcast_denominator_larger", lambda m, F, a, b: a / b, r(3), pos(2, 3)),
    case("div_scalar", lambda m, F, a: a / 4.0, r(3)),
    case("rdiv_scalar", lambda m, F, a: 2.0 / a, pos(3, 2)),
    case("div_method", lambda m, F, a, b: a.div(b), r(3), pos(3)),
    case("neg", lambda m, F, a: -a, r(2, 3)),
    case("neg_method", lambda m, F, a: a.neg(), r(2, 3)),
    case("pos", lambda m, F, a: +a * 1.0, r(3)),
    # powers
    case("pow_2", lambda m, F, a: a**2, r(3, 4)),
    case("pow_3_negative_base", lambda m, F, a: a**3, r(3, 4)),
    case("pow_half", lambda m, F, a: a**0.5, pos(3, 4)),
    case("pow_negative_fractional", lambda m, F, a: a**-1.5, pos(3, 4)),
    case("pow_int_negative", lambda m, F, a: a**-2, pos(5)),
    case("pow_1_at_zero", lambda m, F, a: a**1, WITH_ZEROS),
    case("pow_0_at_zero", lambda m, F, a: a**0, WITH_ZEROS),
    case("pow_2_at_zero", lambda m, F, a: a**2, WITH_ZEROS),
    case("pow_method", lambda m, F, a: a.pow(3), r(4)),
    case("rpow_scalar_base", lambda m, F, a: 2.0**a, r(3, 2)),
    case("pow_tensor", lambda m, F, a, b: a**b, pos(3, 4), r(3, 4)),
    case("pow_tensor_bcast", lambda m, F, a, b: a**b, pos(3, 1), r(4)),
    case("pow_tensor_zero_base", lambda m, F, a, b: a**b,
         exact(0.0, 1.0, 2.0, 0.0, 0.0, 3.0), exact(0.0, 0.0, 1.0, 2.0, 1.0, 0.0), smooth=False),
    # unary
    case("exp", lambda m, F, a: a.exp(), r(3, 4)),
    case("exp_fn", lambda m, F, a: m.exp(a), r(2, 3)),
    case("exp_0d", lambda m, F, a: m.exp(a), r()),
    case("log", lambda m, F, a: a.log(), pos(3, 4)),
    case("log_fn", lambda m, F, a: m.log(a), pos(5)),
    case("sqrt", lambda m, F, a: a.sqrt(), pos(3, 4)),
    case("sqrt_fn", lambda m, F, a: m.sqrt(a), pos(2, 2)),
    case("abs", lambda m, F, a: a.abs(), r(3, 4)),
    case("abs_at_zero", lambda m, F, a: m.abs(a), WITH_ZEROS),
    case("abs_builtin", lambda m, F, a: abs(a), r(4)),
    case("clamp_both", lambda m, F, a: a.clamp(-0.5, 0.5), r(4, 5)),
    case("clamp_min", lambda m, F, a: m.clamp(a, min=0.1), r(4, 5)),
    case("clamp_max", lambda m, F, a: m.clamp(a, max=-0.1), r(4, 5)),
    case("clamp_at_bounds", lambda m, F, a: a.clamp(min=-1.0, max=1.0), exact(-1.0, 1.0, 0.0, -2.0, 2.0), smooth=False),
    case("clip_alias", lambda m, F, a: a.clip(-0.3, 0.3), r(6)),
    # maximum / minimum (ties split the gradient in half)
    case("maximum", lambda m, F, a, b: m.maximum(a, b), r(3, 4), r(3, 4)),
    case("maximum_bcast", lambda m, F, a, b: m.maximum(a, b), r(3, 1), r(4)),
    case("maximum_ties", lambda m, F, a, b: m.maximum(a, b), exact(1.0, 2.0, 3.0, 0.0), exact(1.0, 0.0, 3.0, 0.0)),
    case("maximum_ties_bcast", lambda m, F, a, b: m.maximum(a, b), exact([1.0], [2.0]), exact(1.0, 2.0, 3.0)),
    case("maximum_method", lambda m, F, a, b: a.maximum(b), r(5), r(5)),
    case("minimum", lambda m, F, a, b: m.minimum(a, b), r(3, 4), r(3, 4)),
    case("minimum_bcast", lambda m, F, a, b: m.minimum(a, b), r(2, 3, 1), r(1, 4)),
    case("minimum_ties", lambda m, F, a, b: m.minimum(a, b), exact(1.0, 2.0, -3.0, 0.0), exact(1.0, 0.0, -3.0, 0.0)),
    case("minimum_method", lambda m, F, a, b: a.minimum(b), r(5), r(5)),
    # where
    case("where", lambda m, F, c, a, b: m.where(c, a, b), mask(3, 4), r(3, 4), r(3, 4)),
    case("where_bcast", lambda m, F, c, a, b: m.where(c, a, b), mask(3, 1), r(1, 4), r(3, 4)),
    case("where_bcast_cond_largest", lambda m, F, c, a, b: m.where(c, a, b), mask(2, 3, 4), r(4), r(3, 1)),
    case("where_scalar_other", lambda m, F, c, a: m.where(c, a, 0.0), mask(3, 4), r(3, 4)),
    case("where_computed_cond", lambda m, F, a, b: m.where(a > b, a * 2.0, b), r(3, 4), r(3, 4)),
    # comparisons and logic (boolean outputs, compared for equality)
    case("gt", lambda m, F, a, b: a > b, TIES, TIES[::-1].copy()),
    case("lt_bcast", lambda m, F, a, b: a < b, r(3, 1), r(4)),
    case("ge_ties", lambda m, F, a, b: a >= b, exact(1.0, 2.0, 3.0), exact(1.0, 3.0, 2.0)),
    case("le_scalar", lambda m, F, a: a <= 0.0, WITH_ZEROS),
    case("eq", lambda m, F, a, b: a == b, exact(1.0, 2.0, 3.0), exact(1.0, 3.0, 3.0)),
    case("ne_scalar", lambda m, F, a: a != 2.0, TIES),
    # dtype promotion (PyTorch's rules: an int tensor meeting a float tensor or a float scalar becomes float)
    case("int_plus_float_tensor", lambda m, F, a, i: a + i, r(3), ix(5, 3)),
    case("int_times_float_scalar", lambda m, F, i: i * 2.5, ix(5, 3)),
    case("int_true_division", lambda m, F, i: (i / 2, i + 1, i.sum()), ix(5, 4)),
    case("float32_times_float64", lambda m, F, a, b: a * b, r(3), f64(r(3))),
    case("rpow_int_base", lambda m, F, a: 2**a, r(4)),
    case("clamp_min_above_max", lambda m, F, a: a.clamp(min=0.5, max=-0.5), r(6)),
    case("bool_sum", lambda m, F, a: (a > 0).sum(), r(3, 4)),
    case("int_into_float_ops", lambda m, F, i: (m.exp(i), m.sqrt(i), m.log(i + 1), i.clamp(0.5, 2.5)),
         ix(4, 2, 3)),
    case("logical_and_or", lambda m, F, a, b: ((a > 0) & (b > 0), (a > 0) | (b > 0), ~(a > 0)), r(3, 4), r(3, 4)),
]

# ---- reductions ------------------------------------------------------------------------------------------
REDUCTIONS = [
    case("sum_all", lambda m, F, a: a.sum(), r(3, 4)),
    case("sum_dim", lambda m, F, a: a.sum(dim=1), r(3, 4)),
    case("sum_dim_keepdim", lambda m, F, a: a.sum(dim=1, keepdim=True), r(3, 4)),
    case("sum_negative_dim", lambda m, F, a: a.sum(-1), r(2, 3, 4)),
    case("sum_tuple", lambda m, F, a: a.sum(dim=(0, 2)), r(2, 3, 4)),
    case("sum_tuple_negative_keepdim", lambda m, F, a: a.sum(dim=(-1, 0), keepdim=True), r(2, 3, 4)),
    case("sum_all_keepdim", lambda m, F, a: m.sum(a, dim=(0, 1, 2), keepdim=True), r(2, 3, 4)),
    case("sum_empty_dims_means_all", lambda m, F, a: a.sum(dim=()), r(2, 3)),
    case("sum_0d", lambda m, F, a: a.sum(), r()),
    case("sum_0d_dim0", lambda m, F, a: a.sum(dim=0), r()),
    case("sum_fn", lambda m, F, a: m.sum(a, 0), r(4, 2)),
    case("sum_empty_tensor", lambda m, F, a: a.sum(dim=0), r(0, 3)),
    case("var_single_element_is_nan", lambda m, F, a: a.var(dim=0), r(1, 3), nan_ok=True, smooth=False),
    case("amax_0d", lambda m, F, a: (a.amax(), a.max(), a.amin(dim=0)), r()),
    case("mean_all", lambda m, F, a: a.mean(), r(3, 4)),
    case("mean_dim", lambda m, F, a: a.mean(dim=0), r(3, 4)),
    case("mean_dim_keepdim", lambda m, F, a: a.mean(dim=-1, keepdim=True), r(2, 3, 4)),
    case("mean_tuple", lambda m, F, a: m.mean(a, dim=(1, 2)), r(2, 3, 4)),
    case("mean_tuple_keepdim", lambda m, F, a: a.mean(dim=(0, -1), keepdim=True), r(2, 3, 4)),
    case("mean_empty_dims_means_all", lambda m, F, a: a.mean(dim=()), r(2, 3)),
    case("mean_0d", lambda m, F, a: a.mean(), r()),
    case("var_all", lambda m, F, a: a.var(), r(3, 4)),
    case("var_all_correction0", lambda m, F, a: a.var(correction=0), r(3, 4)),
    case("var_dim", lambda m, F, a: a.var(dim=1), r(3, 4)),
    case("var_dim_correction0_keepdim", lambda m, F, a: a.var(dim=1, keepdim=True, correction=0), r(3, 4)),
    case("var_tuple_negative", lambda m, F, a: m.var(a, dim=(0, -1)), r(2, 3, 4)),
    case("var_unbiased_false", lambda m, F, a: a.var(dim=0, unbiased=False), r(5, 2)),
    case("std_all", lambda m, F, a: a.std(), r(3, 4)),
    case("std_dim_correction0", lambda m, F, a: a.std(dim=0, correction=0), r(3, 4)),
    case("std_tuple_keepdim", lambda m, F, a: m.std(a, dim=(1, 2), keepdim=True), r(2, 3, 4)),
    case("amax_all", lambda m, F, a: a.amax(), r(3, 4)),
    case("amax_dim", lambda m, F, a: a.amax(dim=1), r(3, 4)),
    case("amax_negative_keepdim", lambda m, F, a: a.amax(dim=-2, keepdim=True), r(2, 3, 4)),
    case("amax_tuple", lambda m, F, a: m.amax(a, dim=(0, 2)), r(2, 3, 4)),
    case("amax_ties_dim", lambda m, F, a: a.amax(dim=1), TIES, smooth=False),
    case("amax_ties_all", lambda m, F, a: a.amax(), TIES, smooth=False),
    case("amax_ties_tuple_keepdim", lambda m, F, a: m.amax(a, dim=(0, 1), keepdim=True), TIES, smooth=False),
    case("amin_all", lambda m, F, a: a.amin(), r(3, 4)),
    case("amin_dim", lambda m, F, a: m.amin(a, dim=0), r(3, 4)),
    case("amin_tuple_keepdim", lambda m, F, a: a.amin(dim=(1, -1), keepdim=True), r(2, 3, 4)),
    case("amin_ties", lambda m, F, a: a.amin(dim=1), -TIES, smooth=False),
    case("max_all", lambda m, F, a: a.max(), r(3, 4)),
    case("max_all_ties", lambda m, F, a: m.max(a), TIES, smooth=False),
    case("min_all", lambda m, F, a: a.min(), r(3, 4)),
    case("min_all_ties", lambda m, F, a: m.min(a), -TIES, smooth=False),
    case("max_dim", lambda m, F, a: a.max(dim=1), r(3, 4)),
    case("max_dim_keepdim", lambda m, F, a: a.max(dim=0, keepdim=True), r(3, 4)),
    case("max_dim_negative_3d", lambda m, F, a: m.max(a, dim=-1), r(2, 3, 4)),
    case("max_dim_ties_first_index", lambda m, F, a: a.max(dim=1), TIES, smooth=False),
    case("max_dim_values_indices_fields", lambda m, F, a: (a.max(dim=1).values * 2.0, a.max(dim=1).indices), r(3, 4)),
    case("min_dim", lambda m, F, a: a.min(dim=1), r(3, 4)),
    case("min_dim_keepdim_ties", lambda m, F, a: m.min(a, dim=0, keepdim=True), -TIES),
    case("argmax_all", lambda m, F, a: a.argmax(), r(3, 4)),
    case("argmax_dim", lambda m, F, a: m.argmax(a, dim=1), r(3, 4)),
    case("argmax_dim_keepdim", lambda m, F, a: a.argmax(dim=0, keepdim=True), r(3, 4)),
    case("argmax_ties", lambda m, F, a: (a.argmax(dim=1), a.argmax()), TIES),
    case("argmin", lambda m, F, a: (a.argmin(), m.argmin(a, dim=-1)), r(2, 3, 4)),
]

# ---- movement -----------------------------------------------------------------------------------------
MOVEMENT = [
    case("reshape", lambda m, F, a: a.reshape(4, 6), r(2, 3, 4)),
    case("reshape_minus1", lambda m, F, a: a.reshape(2, -1, 2), r(2, 3, 4)),
    case("reshape_tuple", lambda m, F, a: a.reshape((-1,)), r(2, 3, 4)),
    case("reshape_fn", lambda m, F, a: m.reshape(a, (3, 8)), r(2, 3, 4)),
    case("reshape_0d", lambda m, F, a: a.reshape(1, 1), r()),
    case("view", lambda m, F, a: a.view(6, 4), r(2, 3, 4)),
    case("permute", lambda m, F, a: a.permute(2, 0, 1), r(2, 3, 4)),
    case("permute_tuple_negative", lambda m, F, a: a.permute((-1, 1, 0)), r(2, 3, 4)),
    case("permute_fn", lambda m, F, a: m.permute(a, (1, 0, 2)), r(2, 3, 4)),
    case("transpose", lambda m, F, a: a.transpose(0, 2), r(2, 3, 4)),
    case("transpose_negative", lambda m, F, a: m.transpose(a, -1, -2), r(2, 3, 4)),
    case("T", lambda m, F, a: a.T, r(3, 4)),
    case("mT", lambda m, F, a: a.mT, r(2, 3, 4)),
    case("flatten", lambda m, F, a: a.flatten(), r(2, 3, 4)),
    case("flatten_start", lambda m, F, a: a.flatten(1), r(2, 3, 4)),
    case("flatten_range", lambda m, F, a: m.flatten(a, 0, 1), r(2, 3, 4)),
    case("flatten_negative", lambda m, F, a: a.flatten(-2, -1), r(2, 3, 4, 2)),
    case("flatten_0d", lambda m, F, a: a.flatten(), r()),
    case("squeeze_all", lambda m, F, a: a.squeeze(), r(1, 3, 1, 2)),
    case("squeeze_dim", lambda m, F, a: a.squeeze(2), r(1, 3, 1, 2)),
    case("squeeze_negative", lambda m, F, a: m.squeeze(a, -2), r(1, 3, 1, 2)),
    case("squeeze_tuple", lambda m, F, a: a.squeeze((0, 2)), r(1, 3, 1, 2)),
    case("squeeze_non_one_kept", lambda m, F, a: a.squeeze(1), r(1, 3, 1, 2)),
    case("unsqueeze", lambda m, F, a: a.unsqueeze(0), r(3, 4)),
    case("unsqueeze_end", lambda m, F, a: a.unsqueeze(-1), r(3, 4)),
    case("unsqueeze_middle_fn", lambda m, F, a: m.unsqueeze(a, 1), r(3, 4)),
    case("unsqueeze_0d", lambda m, F, a: a.unsqueeze(0), r()),
    case("expand", lambda m, F, a: a.expand(2, 3, 4), r(3, 1)),
    case("expand_minus1", lambda m, F, a: a.expand(-1, 5), r(3, 1)),
    case("expand_tuple", lambda m, F, a: a.expand((4, 3)), r(3)),
    case("expand_0d", lambda m, F, a: a.expand(2, 2), r()),
    case("expand_as", lambda m, F, a, b: a.expand_as(b) * b, r(1, 4), r(3, 4)),
    case("cat_dim0", lambda m, F, a, b: m.cat([a, b]), r(2, 3), r(4, 3)),
    case("cat_dim1", lambda m, F, a, b: m.cat([a, b], dim=1), r(2, 3), r(2, 5)),
    case("cat_three_negative", lambda m, F, a, b, c: m.cat((a, b, c), dim=-1), r(2, 3, 1), r(2, 3, 2), r(2, 3, 3)),
    case("cat_same_tensor", lambda m, F, a: m.cat([a, a * 2.0], dim=0), r(2, 2)),
    case("stack", lambda m, F, a, b: m.stack([a, b]), r(2, 3), r(2, 3)),
    case("stack_dim1", lambda m, F, a, b, c: m.stack([a, b, c], dim=1), r(2, 3), r(2, 3), r(2, 3)),
    case("stack_0d", lambda m, F, a, b: m.stack([a, b]), r(), r()),
    case("cat_single", lambda m, F, a: m.cat([a], dim=1), r(2, 3)),
    case("view_permute_reshape_chain", lambda m, F, a: a.view(6, 4).permute(1, 0).reshape(2, 12), r(2, 3, 4)),
    case("gather_argmax", lambda m, F, a: a.gather(1, a.argmax(dim=1, keepdim=True)), r(3, 5)),
    case("stack_negative", lambda m, F, a, b: m.stack((a, b), dim=-1), r(2, 3), r(2, 3)),
    case("gather_dim1_repeats", lambda m, F, a, i: a.gather(1, i), r(3, 4),
         np.array([[0, 0, 3], [1, 2, 1], [3, 3, 3]], np.int64)),
    case("gather_dim0", lambda m, F, a, i: m.gather(a, 0, i), r(3, 4), ix(3, 2, 4)),
    case("gather_negative_3d", lambda m, F, a, i: a.gather(-1, i), r(2, 3, 5), ix(5, 2, 3, 7)),
    # ops on non-contiguous results of permute / transpose
    case("permuted_then_matmul", lambda m, F, a, b: a.permute(1, 0) @ b, r(4, 3), r(4, 5)),
    case("transposed_then_mul_sum", lambda m, F, a, b: (a.transpose(0, 1) * b).sum(0), r(4, 3), r(3, 4)),
    case("T_then_reshape", lambda m, F, a: a.T.reshape(-1), r(3, 4)),
    case("permuted_then_view_flatten", lambda m, F, a: a.permute(0, 2, 1).flatten(1), r(2, 3, 4)),
    case("transposed_then_softmax", lambda m, F, a: m.softmax(a.transpose(0, 1), dim=1), r(4, 3)),
]

# ---- indexing -------------------------------------------------------------------------------------------
INDEXING = [
    case("int", lambda m, F, a: a[1], r(3, 4)),
    case("int_negative", lambda m, F, a: a[-1], r(3, 4)),
    case("int_int_to_0d", lambda m, F, a: a[1, 2], r(3, 4)),
    case("slice", lambda m, F, a: a[1:3], r(4, 3)),
    case("slice_step", lambda m, F, a: a[::2], r(5, 3)),
    case("slice_step_both", lambda m, F, a: a[1:, ::2], r(4, 5)),
    case("slice_open_negative", lambda m, F, a: a[:-1, -3:], r(4, 5)),
    case("ellipsis", lambda m, F, a: a[..., 0], r(2, 3, 4)),
    case("ellipsis_middle", lambda m, F, a: a[0, ..., 1:], r(2, 3, 4)),
    case("none", lambda m, F, a: a[None], r(3, 4)),
    case("none_middle", lambda m, F, a: a[:, None, 1:], r(3, 4)),
    case("ellipsis_none", lambda m, F, a: a[..., None], r(3, 4)),
    case("int_array_repeats", lambda m, F, a, i: a[i], r(4, 3), np.array([0, 2, 2, 0, 3], np.int64)),
    case("list_repeats", lambda m, F, a: a[[1, 1, 0]], r(4, 3)),
    case("int_array_second_dim", lambda m, F, a, i: a[:, i], r(3, 4), np.array([3, 3, 0], np.int64)),
    case("int_array_pair", lambda m, F, a, i, j: a[i, j], r(3, 4), np.array([0, 2, 0], np.int64),
         np.array([1, 3, 1], np.int64)),
    case("int_arrays_around_slice", lambda m, F, a, i, j: a[i, :, j], r(3, 4, 5), np.array([0, 2, 2], np.int64),
         np.array([4, 1, 4], np.int64)),
    case("int_array_2d", lambda m, F, a, i: a[i], r(4, 3), np.array([[0, 1], [1, 3], [0, 0]], np.int64)),
    case("int_array_with_int", lambda m, F, a, i: a[1, i], r(2, 5), np.array([4, 4, 0], np.int64)),
    case("bool_mask_full", lambda m, F, a, k: a[k], r(3, 4), mask(3, 4)),
    case("bool_mask_rows", lambda m, F, a, k: a[k], r(4, 3), np.array([True, False, True, True])),
    case("bool_mask_cols", lambda m, F, a, k: a[:, k], r(3, 4), np.array([False, True, True, False])),
    case("bool_mask_leading_2d", lambda m, F, a, k: a[k], r(3, 4, 2), mask(3, 4)),
    case("bool_mask_none_selected", lambda m, F, a, k: a[k], r(3, 2), np.zeros(3, bool)),
    case("int_array_negative", lambda m, F, a, i: a[i], r(4, 2), np.array([-1, 0, -1], np.int64)),
    case("index_0d_none_ellipsis", lambda m, F, a: (a[None], a[...] * 2.0), r()),
    case("computed_mask", lambda m, F, a: a[a > 0], r(4, 5)),
    case("index_0d_result_then_mul", lambda m, F, a: a[2] * a[0], r(3)),
]

# ---- matmul -----------------------------------------------------------------------------------------------
MATMUL = [
    case("mm_1d_1d", lambda m, F, a, b: a @ b, r(4), r(4)),
    case("mm_1d_2d", lambda m, F, a, b: a @ b, r(4), r(4, 5)),
    case("mm_2d_1d", lambda m, F, a, b: a @ b, r(3, 4), r(4)),
    case("mm_2d_2d", lambda m, F, a, b: a @ b, r(3, 4), r(4, 5)),
    case("mm_3d_2d", lambda m, F, a, b: a @ b, r(2, 3, 4), r(4, 5)),
    case("mm_4d_2d", lambda m, F, a, b: a @ b, r(2, 2, 3, 4), r(4, 5)),
    case("mm_2d_3d", lambda m, F, a, b: a @ b, r(3, 4), r(2, 4, 5)),
    case("mm_3d_3d", lambda m, F, a, b: a @ b, r(2, 3, 4), r(2, 4, 5)),
    case("mm_batch_bcast", lambda m, F, a, b: a @ b, r(2, 1, 3, 4), r(5, 4, 2)),
    case("mm_batch_bcast_ones", lambda m, F, a, b: a @ b, r(1, 3, 4), r(2, 4, 5)),
    case("mm_1d_3d", lambda m, F, a, b: a @ b, r(4), r(2, 4, 5)),
    case("mm_3d_1d", lambda m, F, a, b: a @ b, r(2, 3, 4), r(4)),
    case("mm_4d_1d", lambda m, F, a, b: a @ b, r(2, 2, 3, 4), r(4)),
    case("mm_1d_4d", lambda m, F, a, b: a @ b, r(3), r(2, 1, 3, 2)),
    case("matmul_fn", lambda m, F, a, b: m.matmul(a, b), r(3, 4), r(4, 2)),
    case("matmul_method", lambda m, F, a, b: a.matmul(b), r(2, 3, 4), r(4, 2)),
    case("mm_same_operand", lambda m, F, a: a @ a.T, r(3, 4)),
]

# ---- non-contiguous NumPy inputs (views handed to both libraries as they are) -----------------------------
NONCONTIGUOUS = [
    case("nc_fortran_add", lambda m, F, a, b: a + b, fortran(r(3, 4)), r(3, 4)),
    case("nc_fortran_matmul", lambda m, F, a, b: a @ b, fortran(r(3, 4)), fortran(r(4, 5))),
    case("nc_transposed_matmul_3d", lambda m, F, a, b: a @ b, transposed(2, 3, 4), transposed(4, 5)),
    case("nc_transposed_sum_dim", lambda m, F, a: a.sum(dim=0), transposed(3, 4)),
    case("nc_strided_mul_bcast", lambda m, F, a, b: a * b, strided(3, 4), r(4)),
    case("nc_strided_reshape", lambda m, F, a: a.reshape(-1), strided(3, 4)),
    case("nc_transposed_view", lambda m, F, a: a.view(2, 6), transposed(3, 4).copy(order="C")),
    case("nc_transposed_amax_ties", lambda m, F, a: a.amax(dim=0), TIES.T, smooth=False),
    case("nc_fortran_var", lambda m, F, a: a.var(dim=1), fortran(r(3, 5))),
    case("nc_transposed_index", lambda m, F, a, i: a[i, 1:], transposed(4, 3), np.array([0, 3, 0], np.int64)),
    case("nc_strided_gather", lambda m, F, a, i: a.gather(1, i), strided(3, 4), ix(4, 3, 2)),
    case("nc_transposed_cat", lambda m, F, a, b: m.cat([a, b], dim=1), transposed(3, 2), fortran(r(3, 4))),
    case("nc_fortran_where", lambda m, F, c, a, b: m.where(c, a, b), fortran(mask(3, 4)), fortran(r(3, 4)),
         transposed(3, 4)),
    case("nc_transposed_maximum", lambda m, F, a, b: m.maximum(a, b), transposed(3, 4), strided(3, 4)),
    case("nc_transposed_permute", lambda m, F, a: a.permute(1, 0, 2), transposed(2, 3, 4)),
]

# ---- every spelling: method, function and operator, scalars on either side, each dim form, some inputs constant --
# Their inputs keep 0.1 clear of 0 and of ties (no kinks: each is also gradient-checked), drawn from a generator of
# their own so that the cases above keep their inputs.
_spelling_rng = np.random.default_rng(1234)


def sr(*shape: int) -> np.ndarray:
    """Standard normal float32 kept at least 0.1 away from 0 (no relu/abs kinks, no division by ~0)."""
    x = _spelling_rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.copysign(0.1, x) + x, x).astype(np.float32)


def distinct(*shape: int) -> np.ndarray:
    """A permutation of well-separated float32 values (no ties for max, min, amax; gaps of 0.3)."""
    n = int(np.prod(shape))
    return (_spelling_rng.permutation(n) * 0.3 - 0.15 * n).reshape(shape).astype(np.float32)


def f32(a: Any) -> np.ndarray:
    return np.asarray(a, np.float32)


BOOL_MASK = np.array([[True, False, True], [False, True, True]])


SPELLINGS = [
    case("add-broadcast-row", lambda m, F, a, b: a + b, sr(2, 3), sr(3)),
    case("add-broadcast-outer", lambda m, F, a, b: a + b, sr(3, 1), sr(1, 4)),
    case("add-0d", lambda m, F, a, b: a + b, sr(), sr(2, 3)),
    case("add-scalar", lambda m, F, a: a + 2.5, sr(2, 3)),
    case("radd-scalar", lambda m, F, a: 2.5 + a, sr(2, 3)),
    case("add-method", lambda m, F, a, b: a.add(b), sr(2, 3), sr(2, 1)),
    case("sub-broadcast", lambda m, F, a, b: a - b, sr(4), sr(2, 3, 4)),
    case("rsub-scalar", lambda m, F, a: 2 - a, sr(2, 3)),
    case("mul-broadcast", lambda m, F, a, b: a * b, sr(4), sr(2, 3, 4)),
    case("mul-self", lambda m, F, a: a * a, sr(2, 3)),
    case("mul-self-nonleaf", lambda m, F, a: (lambda e: e * e)(a.exp()), sr(2, 3)),
    case("mul-scalar", lambda m, F, a: a * 3, sr(2, 3)),
    case("rmul-scalar", lambda m, F, a: -1.5 * a, sr(2, 3)),
    case("div-broadcast", lambda m, F, a, b: a / b, sr(2, 3), sr(2, 1)),
    case("div-scalar", lambda m, F, a: a / 4.0, sr(2, 3)),
    case("rdiv-scalar", lambda m, F, a: 3 / a, sr(2, 3)),
    case("neg-method", lambda m, F, a: a.neg(), sr(2, 3)),
    case("pow-2", lambda m, F, a: a ** 2, sr(2, 3)),
    case("pow-3", lambda m, F, a: a ** 3, sr(2, 3)),
    case("pow-0.5", lambda m, F, a: a ** 0.5, pos(2, 3)),
    case("pow-neg1", lambda m, F, a: a ** (-1), sr(2, 3)),
    case("pow-0", lambda m, F, a: a ** 0 + a, sr(2, 3)),
    case("pow-1", lambda m, F, a: a ** 1, sr(2, 3)),
    case("pow-neg2.5", lambda m, F, a: a ** (-2.5), pos(2, 3)),
    case("pow-tensor-tensor", lambda m, F, a, b: a ** b, pos(2, 3), sr(2, 3)),
    case("pow-tensor-tensor-broadcast", lambda m, F, a, b: a.pow(b), pos(2, 3), sr(3)),
    case("rpow-scalar", lambda m, F, a: 2 ** a, sr(2, 3)),
    case("rpow-float-scalar", lambda m, F, a: 0.7 ** a, sr(2, 3)),
    case("dl.exp", lambda m, F, a: m.exp(a), sr(3)),
    case("dl.log", lambda m, F, a: m.log(a), pos(4)),
    case("dl.sqrt", lambda m, F, a: m.sqrt(a), pos(4)),
    case("abs-builtin", lambda m, F, a: abs(a), sr(2, 3)),
    case("clamp-min", lambda m, F, a: a.clamp(min=0.05), f32(np.array([-1.0, -0.4, 0.3, 0.8, 1.6, -2.0]))),
    case("clamp-max", lambda m, F, a: a.clamp(max=0.05), f32(np.array([-1.0, -0.4, 0.3, 0.8, 1.6, -2.0]))),
    case("clamp-both", lambda m, F, a: m.clamp(a, -0.5, 0.5), f32(np.array([-1.0, -0.4, 0.3, 0.8, 1.6, -0.2]))),
    case("clip-alias", lambda m, F, a: a.clip(-0.5, 0.5), f32(np.array([[-1.0, -0.4, 0.3], [0.8, 1.6, -0.2]]))),
    case("maximum-broadcast", lambda m, F, a, b: a.maximum(b), sr(2, 3), sr(3)),
    case("minimum-broadcast", lambda m, F, a, b: a.minimum(b), sr(2, 1), sr(1, 3)),
    case("where-cond-from-compare", lambda m, F, a: m.where(a > 0, a * 2, a * -3), sr(2, 3)),
    case("clone", lambda m, F, a: a.clone() * 2, sr(2, 3)),
    case("to-same-dtype", lambda m, F, a: a.to(m.float64) * a.double(), sr(2, 3)),
    case("sum-all", lambda m, F, a: a.sum(), sr(2, 3, 2)),
    case("sum-dim0", lambda m, F, a: a.sum(0), sr(2, 3, 2)),
    case("sum-dim1-keepdim", lambda m, F, a: a.sum(1, keepdim=True), sr(2, 3, 2)),
    case("sum-dim-neg", lambda m, F, a: a.sum(-1), sr(2, 3, 2)),
    case("sum-tuple", lambda m, F, a: m.sum(a, (0, 2)), sr(2, 3, 2)),
    case("sum-tuple-keepdim", lambda m, F, a: a.sum((0, -1), keepdim=True), sr(2, 3, 2)),
    case("sum-0d", lambda m, F, a: a.sum(), sr()),
    case("sum-empty-tuple-is-all", lambda m, F, a: a.sum(()), sr(2, 3)),
    case("mean-all", lambda m, F, a: a.mean(), sr(2, 3, 2)),
    case("mean-dim1", lambda m, F, a: a.mean(1), sr(2, 3, 2)),
    case("mean-dim-neg-keepdim", lambda m, F, a: a.mean(-1, keepdim=True), sr(2, 3, 2)),
    case("mean-tuple", lambda m, F, a: m.mean(a, (0, 2)), sr(2, 3, 2)),
    case("mean-tuple-keepdim", lambda m, F, a: a.mean((1, 2), keepdim=True), sr(2, 3, 2)),
    case("var-all", lambda m, F, a: a.var(), sr(2, 3, 2)),
    case("var-all-keepdim", lambda m, F, a: a.var(keepdim=True), sr(2, 3)),
    case("var-tuple-keepdim", lambda m, F, a: a.var((0, -1), keepdim=True), sr(2, 3, 2)),
    case("var-dim1", lambda m, F, a: a.var(1), sr(2, 3, 2)),
    case("var-dim-neg-keepdim", lambda m, F, a: a.var(-1, keepdim=True), sr(2, 3, 2)),
    case("var-tuple", lambda m, F, a: m.var(a, (0, 2)), sr(2, 3, 2)),
    case("var-correction0", lambda m, F, a: a.var(1, correction=0), sr(2, 3, 2)),
    case("var-unbiased-false", lambda m, F, a: a.var(0, keepdim=True, unbiased=False), sr(2, 3, 2)),
    case("std-all", lambda m, F, a: a.std(), sr(2, 3, 2)),
    case("std-dim0", lambda m, F, a: a.std(0), sr(2, 3, 2)),
    case("std-dim-neg-keepdim", lambda m, F, a: a.std(-1, keepdim=True), sr(2, 3, 3)),
    case("std-tuple", lambda m, F, a: m.std(a, (1, 2)), sr(2, 3, 2)),
    case("std-tuple-keepdim", lambda m, F, a: a.std((0, 2), keepdim=True), sr(2, 3, 2)),
    case("std-all-keepdim-correction0", lambda m, F, a: a.std(keepdim=True, correction=0), sr(2, 3)),
    case("amax-all", lambda m, F, a: a.amax(), distinct(2, 3, 2)),
    case("amax-dim1", lambda m, F, a: a.amax(1), distinct(2, 3, 2)),
    case("amax-dim-neg-keepdim", lambda m, F, a: a.amax(-1, keepdim=True), distinct(2, 3, 2)),
    case("amax-tuple", lambda m, F, a: m.amax(a, (0, 2)), distinct(2, 3, 2)),
    case("amax-tuple-keepdim", lambda m, F, a: a.amax((0, 1), keepdim=True), distinct(2, 3, 2)),
    case("amin-all", lambda m, F, a: m.amin(a), distinct(2, 3, 2)),
    case("amin-all-keepdim", lambda m, F, a: a.amin(keepdim=True), distinct(2, 3)),
    case("amax-all-keepdim", lambda m, F, a: a.amax(None, keepdim=True), distinct(2, 3)),
    case("amin-dim0", lambda m, F, a: a.amin(0), distinct(2, 3, 2)),
    case("amin-dim-neg-keepdim", lambda m, F, a: a.amin(-2, keepdim=True), distinct(2, 3, 2)),
    case("amin-tuple", lambda m, F, a: a.amin((1, 2)), distinct(2, 3, 2)),
    case("max-all", lambda m, F, a: a.max(), distinct(2, 3)),
    case("dl.max-all", lambda m, F, a: m.max(a), distinct(3, 2)),
    case("max-dim1-values", lambda m, F, a: a.max(1).values, distinct(2, 3, 2)),
    case("max-dim-neg-keepdim", lambda m, F, a: a.max(-1, keepdim=True)[0], distinct(2, 3, 2)),
    case("min-all", lambda m, F, a: a.min(), distinct(2, 3)),
    case("min-dim0-values", lambda m, F, a: m.min(a, 0).values, distinct(2, 3, 2)),
    case("min-dim-neg-keepdim", lambda m, F, a: a.min(-2, keepdim=True).values, distinct(2, 3, 2)),
    case("max-1d-dim0", lambda m, F, a: a.max(0).values, distinct(4)),
    case("reshape-tuple-infer", lambda m, F, a: a.reshape((-1, 2)).sum(0), sr(2, 3)),
    case("dl.reshape", lambda m, F, a: m.reshape(a, (6,)), sr(2, 3)),
    case("permute-neg", lambda m, F, a: m.permute(a, (-1, 1, 0)), sr(2, 3, 2)),
    case("transpose-neg", lambda m, F, a: m.transpose(a, -1, -2), sr(2, 3, 2)),
    case("flatten-start", lambda m, F, a: a.flatten(1), sr(2, 3, 2)),
    case("flatten-range", lambda m, F, a: m.flatten(a, 0, 1), sr(2, 3, 2)),
    case("squeeze-all", lambda m, F, a: a.squeeze(), sr(2, 1, 3, 1)),
    case("squeeze-dim", lambda m, F, a: a.squeeze(1), sr(2, 1, 3, 1)),
    case("squeeze-dim-neg", lambda m, F, a: m.squeeze(a, -1), sr(2, 1, 3, 1)),
    case("unsqueeze-neg", lambda m, F, a: m.unsqueeze(a, -1), sr(2, 3)),
    case("expand-minus1", lambda m, F, a: a.expand(4, -1), sr(1, 3)),
    case("expand-as", lambda m, F, a, b: a.expand_as(b) * b, sr(1, 3), sr(2, 3)),
    case("cat-dim0", lambda m, F, a, b: m.cat([a, b]), sr(2, 3), sr(1, 3)),
    case("cat-dim1-three", lambda m, F, a, b, c: m.cat([a, b, c], dim=1), sr(2, 1), sr(2, 3), sr(2, 2)),
    case("cat-dim-neg", lambda m, F, a, b: m.cat((a, b), -1), sr(2, 2, 1), sr(2, 2, 2)),
    case("cat-same-tensor-twice", lambda m, F, a: m.cat([a, a * 2], 0), sr(2, 3)),
    case("stack-dim0", lambda m, F, a, b: m.stack([a, b]), sr(2, 3), sr(2, 3)),
    case("stack-dim-last", lambda m, F, a, b, c: m.stack([a, b, c], dim=-1), sr(2, 2), sr(2, 2), sr(2, 2)),
    case("gather-dim1", lambda m, F, a: a.gather(1, m.tensor([[0, 0, 2], [1, 2, 2]])), sr(2, 3)),
    case("gather-dim0", lambda m, F, a: m.gather(a, 0, m.tensor([[1, 0, 1], [1, 1, 1]])), sr(2, 3)),
    case("index-int", lambda m, F, a: a[1], sr(3, 4)),
    case("index-neg-int", lambda m, F, a: a[-1, 2], sr(3, 4)),
    case("index-slice", lambda m, F, a: a[1:], sr(3, 4)),
    case("index-slice-step", lambda m, F, a: a[::2, 1::2], sr(3, 4)),
    case("index-int-and-slice", lambda m, F, a: a[:, 2], sr(3, 4)),
    case("index-none", lambda m, F, a: a[None, :, None], sr(3, 4)),
    case("index-ellipsis", lambda m, F, a: a[..., 1], sr(2, 3, 2)),
    case("index-ellipsis-none", lambda m, F, a: a[0, ..., None], sr(2, 3, 2)),
    case("index-int-list-repeated", lambda m, F, a: a[[0, 2, 0, 0]], sr(3, 2)),
    case("index-int-array-repeated", lambda m, F, a: a[np.array([[1, 1], [0, 1]])], sr(3, 2)),
    case("index-int-tensor-repeated", lambda m, F, a: a[m.tensor([2, 2, 2])], sr(3, 2)),
    case("index-int-arrays-pairs-repeated", lambda m, F, a: a[[0, 0, 2, 0], [1, 1, 0, 1]], sr(3, 2)),
    case("index-slice-then-int-list", lambda m, F, a: a[:, [3, 3, 0]], sr(3, 4)),
    case("index-neg-int-list", lambda m, F, a: a[[-1, -1, 0]], sr(3, 2)),
    case("index-bool-mask", lambda m, F, a: a[BOOL_MASK], sr(2, 3)),
    case("index-bool-tensor", lambda m, F, a: a[m.tensor(BOOL_MASK)], sr(2, 3)),
    case("index-bool-rows", lambda m, F, a: a[np.array([True, False, True])], sr(3, 2)),
    case("index-bool-rows-and-slice", lambda m, F, a: a[np.array([True, False, True]), 1:], sr(3, 3)),
    case("index-bool-from-compare", lambda m, F, a: a[a > 0], sr(2, 3)),
    case("index-bool-list", lambda m, F, a: a[[True, False, True]], sr(3, 2)),
    case("index-int-array-slice-none", lambda m, F, a: a[np.array([1, 1]), :, None], sr(2, 3)),
    case("index-then-add-overlapping", lambda m, F, a: a[1:] * a[:-1], sr(5)),
    case("matmul-1d-1d", lambda m, F, a, b: a @ b, sr(3), sr(3)),
    case("matmul-1d-2d", lambda m, F, a, b: a @ b, sr(3), sr(3, 2)),
    case("matmul-2d-1d", lambda m, F, a, b: a @ b, sr(2, 3), sr(3)),
    case("matmul-2d-2d", lambda m, F, a, b: a @ b, sr(2, 3), sr(3, 4)),
    case("matmul-3d-3d", lambda m, F, a, b: m.matmul(a, b), sr(2, 2, 3), sr(2, 3, 2)),
    case("matmul-broadcast-batch", lambda m, F, a, b: a @ b, sr(2, 1, 3, 4), sr(5, 4, 2)),
    case("matmul-3d-2d", lambda m, F, a, b: a.matmul(b), sr(2, 3, 2), sr(2, 3)),
    case("matmul-2d-3d", lambda m, F, a, b: a @ b, sr(3, 2), sr(2, 2, 3)),
    case("matmul-1d-3d", lambda m, F, a, b: a @ b, sr(2), sr(2, 2, 3)),
    case("matmul-3d-1d", lambda m, F, a, b: a @ b, sr(2, 3, 2), sr(2)),
    case("matmul-self-transpose", lambda m, F, a: a @ a.T, sr(2, 3)),
    case("composite-normalize",
         lambda m, F, a: (a - a.mean(1, keepdim=True)) / (a.var(1, keepdim=True) + 1e-05).sqrt(), sr(2, 4)),
    case("composite-logsumexp", lambda m, F, a: (a - a.amax(-1, keepdim=True)).exp().sum(-1).log(), distinct(2, 3)),
    case("composite-shared-subgraph", lambda m, F, a, b: (a * b).exp() + (a * b) ** 2 - b.sum() * a, sr(2, 3),
         sr(2, 3)),
    case("mul-only-b", lambda m, F, a, b: a * b, sr(2, 3), sr(3), const=(0,)),
    case("div-only-a", lambda m, F, a, b: a / b, sr(2, 3), sr(2, 3), const=(1,)),
    case("div-only-b", lambda m, F, a, b: a / b, sr(2, 3), sr(2, 1), const=(0,)),
    case("pow-only-exponent", lambda m, F, a, b: a ** b, pos(2, 3), sr(2, 3), const=(0,)),
    case("pow-only-base", lambda m, F, a, b: a ** b, pos(2, 3), sr(2, 3), const=(1,)),
    case("maximum-only-b", lambda m, F, a, b: m.maximum(a, b), sr(2, 3), sr(2, 3), const=(0,)),
    case("matmul-only-a", lambda m, F, a, b: a @ b, sr(2, 3), sr(3, 2), const=(1,)),
    case("matmul-only-b", lambda m, F, a, b: a @ b, sr(2, 3), sr(3, 2), const=(0,)),
    case("matmul-1d-1d-only-b", lambda m, F, a, b: a @ b, sr(3), sr(3), const=(0,)),
    case("matmul-1d-2d-only-b", lambda m, F, a, b: a @ b, sr(3), sr(3, 2), const=(0,)),
    case("matmul-2d-1d-only-a", lambda m, F, a, b: a @ b, sr(2, 3), sr(3), const=(1,)),
    case("matmul-3d-2d-only-b", lambda m, F, a, b: a @ b, sr(2, 3, 2), sr(2, 3), const=(0,)),
    case("cat-middle-only", lambda m, F, a, b, c: m.cat([a, b, c], 1), sr(2, 1), sr(2, 2), sr(2, 1), const=(0, 2)),
]

OPS_CASES = ELEMENTWISE + REDUCTIONS + MOVEMENT + INDEXING + MATMUL + NONCONTIGUOUS + SPELLINGS


# ---- nn.functional -----------------------------------------------------------------------------------------
HUGE = 1e4  # logits of this magnitude overflow a naive exp in any float type


def huge_logits(*shape: int) -> np.ndarray:
    return r(*shape, scale=HUGE)


GELU_TANH_ATOL = 1e-5

ACTIVATIONS = [
    case("linear", lambda m, F, x, w, b: F.linear(x, w, b), r(5, 4), r(3, 4), r(3)),
    case("linear_no_bias", lambda m, F, x, w: F.linear(x, w), r(5, 4), r(3, 4)),
    case("linear_3d_input", lambda m, F, x, w, b: F.linear(x, w, b), r(2, 5, 4), r(3, 4), r(3)),
    case("linear_1d_input", lambda m, F, x, w, b: F.linear(x, w, b), r(4), r(3, 4), r(3)),
    case("linear_bias_const", lambda m, F, x, w, b: F.linear(x, w, b), r(5, 4), r(3, 4), r(3), const=(2,)),
    case("linear_fortran_weight", lambda m, F, x, w, b: F.linear(x, w, b), transposed(5, 4), fortran(r(3, 4)), r(3)),
    case("relu", lambda m, F, x: F.relu(x), r(3, 4)),
    case("relu_at_zero", lambda m, F, x: F.relu(x), WITH_ZEROS, smooth=False),
    case("relu_fn_method", lambda m, F, x: (m.relu(x), x.relu()), r(5)),
    case("leaky_relu", lambda m, F, x: F.leaky_relu(x), r(3, 4)),
    case("leaky_relu_slope", lambda m, F, x: F.leaky_relu(x, 0.2), r(3, 4)),
    case("leaky_relu_at_zero", lambda m, F, x: F.leaky_relu(x, negative_slope=0.3), WITH_ZEROS, smooth=False),
    case("sigmoid", lambda m, F, x: F.sigmoid(x), r(3, 4, scale=3.0)),
    case("sigmoid_saturated", lambda m, F, x: m.sigmoid(x), exact(-100.0, -20.0, 0.0, 20.0, 100.0), finite=True),
    case("sigmoid_method", lambda m, F, x: x.sigmoid(), r(4)),
    case("tanh", lambda m, F, x: F.tanh(x), r(3, 4, scale=2.0)),
    case("tanh_fn_method", lambda m, F, x: (m.tanh(x), x.tanh()), r(4)),
    case("gelu", lambda m, F, x: F.gelu(x), r(3, 4, scale=2.0)),
    # tanh-GELU's derivative cancels (1 - tanh^2 near saturation): in float32 torch and dl are each up to
    # ~1.2e-6 (times |g|) off the float64 value over [-10, 10], so they may differ by a few 1e-6
    case("gelu_tanh", lambda m, F, x: F.gelu(x, approximate="tanh"), r(3, 4, scale=2.0), atol=GELU_TANH_ATOL),
    case("gelu_none_explicit_wide", lambda m, F, x: F.gelu(x, approximate="none"),
         np.linspace(-8, 8, 33, dtype=np.float32)),
    case("gelu_tanh_wide", lambda m, F, x: F.gelu(x, approximate="tanh"), np.linspace(-8, 8, 33, dtype=np.float32),
         atol=GELU_TANH_ATOL),
    case("softmax_dim1", lambda m, F, x: F.softmax(x, dim=1), r(3, 5)),
    case("softmax_dim0", lambda m, F, x: F.softmax(x, dim=0), r(3, 5)),
    case("softmax_3d_negative", lambda m, F, x: F.softmax(x, dim=-1), r(2, 3, 4)),
    case("softmax_middle", lambda m, F, x: m.softmax(x, 1), r(2, 3, 4)),
    case("softmax_method", lambda m, F, x: x.softmax(-1), r(4, 3)),
    case("softmax_1d", lambda m, F, x: F.softmax(x, dim=0), r(6)),
    case("log_softmax_dim1", lambda m, F, x: F.log_softmax(x, dim=1), r(3, 5)),
    case("log_softmax_dim0", lambda m, F, x: F.log_softmax(x, dim=0), r(3, 5)),
    case("log_softmax_3d", lambda m, F, x: m.log_softmax(x, 1), r(2, 3, 4)),
    case("log_softmax_method", lambda m, F, x: x.log_softmax(-1), r(4, 3)),
    # extreme logits: finite, and the same as torch (values and gradients)
    case("softmax_huge", lambda m, F, x: F.softmax(x, dim=1), huge_logits(4, 6), finite=True),
    case("softmax_huge_equal", lambda m, F, x: F.softmax(x, dim=-1), exact([1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]),
         finite=True),
    case("log_softmax_huge", lambda m, F, x: F.log_softmax(x, dim=1), huge_logits(4, 6), finite=True),
    case("log_softmax_huge_dim0", lambda m, F, x: F.log_softmax(x, dim=0), huge_logits(5, 3), finite=True),
    case("softmax_with_minus_inf", lambda m, F, x: F.softmax(x, dim=-1),
         exact([0.5, -np.inf, 1.0], [-np.inf, 2.0, 0.0])),
    case("log_softmax_with_minus_inf", lambda m, F, x: F.log_softmax(x, dim=-1),
         exact([0.5, -np.inf, 1.0], [-np.inf, 2.0, 0.0]), smooth=False),
    case("log_softmax_huge_equal", lambda m, F, x: F.log_softmax(x, dim=-1),
         exact([1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]), finite=True),
]

N, C = 6, 4
T_IDX = np.array([0, 3, 1, 1, 2, 0], np.int64)
T_IGN = np.array([0, -100, 1, 3, -100, 2], np.int64)  # two rows ignored with the default ignore_index
T_IGN1 = np.array([1, 0, 1, 3, 2, 2], np.int64)  # class 1 ignored when ignore_index=1
T_ALL_IGN = np.full(N, -100, np.int64)
W = np.array([0.5, 2.0, 1.0, 0.25], np.float32)
T_4D = ix(C, 2, 3, 2)
T_4D[0, 1, 0] = -100
X_4D = r(2, C, 3, 2)

CROSS_ENTROPY = [
    case("ce", lambda m, F, x, t: F.cross_entropy(x, t), r(N, C), T_IDX),
    case("ce_sum", lambda m, F, x, t: F.cross_entropy(x, t, reduction="sum"), r(N, C), T_IDX),
    case("ce_none", lambda m, F, x, t: F.cross_entropy(x, t, reduction="none"), r(N, C), T_IDX),
    case("ce_weight", lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w), r(N, C), T_IDX, W, const=(2,)),
    case("ce_weight_sum", lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w, reduction="sum"),
         r(N, C), T_IDX, W, const=(2,)),
    case("ce_weight_none", lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w, reduction="none"),
         r(N, C), T_IDX, W, const=(2,)),
    case("ce_ignore_default", lambda m, F, x, t: F.cross_entropy(x, t), r(N, C), T_IGN),
    case("ce_ignore_none", lambda m, F, x, t: F.cross_entropy(x, t, reduction="none"), r(N, C), T_IGN),
    case("ce_ignore_custom", lambda m, F, x, t: F.cross_entropy(x, t, ignore_index=1), r(N, C), T_IGN1),
    case("ce_ignore_weight", lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w, ignore_index=1),
         r(N, C), T_IGN1, W, const=(2,)),
    case("ce_all_ignored_mean_is_nan", lambda m, F, x, t: F.cross_entropy(x, t), r(N, C), T_ALL_IGN, nan_ok=True,
         smooth=False),
    case("ce_all_ignored_sum", lambda m, F, x, t: F.cross_entropy(x, t, reduction="sum"), r(N, C), T_ALL_IGN),
    case("ce_all_ignored_smooth", lambda m, F, x, t: F.cross_entropy(x, t, label_smoothing=0.1), r(N, C), T_ALL_IGN,
         nan_ok=True, smooth=False),
    case("ce_zero_total_weight", lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w),  # nan rows, as torch
         r(3, C), np.array([0, 1, -100], np.int64), exact(0.0, 0.0, 1.0, 1.0), const=(2,), nan_ok=True, smooth=False),
    case("ce_smooth", lambda m, F, x, t: F.cross_entropy(x, t, label_smoothing=0.1), r(N, C), T_IDX),
    case("ce_smooth_sum", lambda m, F, x, t: F.cross_entropy(x, t, label_smoothing=0.2, reduction="sum"),
         r(N, C), T_IDX),
    case("ce_smooth_none", lambda m, F, x, t: F.cross_entropy(x, t, label_smoothing=0.3, reduction="none"),
         r(N, C), T_IDX),
    case("ce_smooth_full", lambda m, F, x, t: F.cross_entropy(x, t, label_smoothing=1.0), r(N, C), T_IDX),
    case("ce_smooth_weight", lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.1),
         r(N, C), T_IDX, W, const=(2,)),
    case("ce_smooth_weight_none",
         lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.1, reduction="none"),
         r(N, C), T_IDX, W, const=(2,)),
    case("ce_smooth_ignore", lambda m, F, x, t: F.cross_entropy(x, t, label_smoothing=0.1), r(N, C), T_IGN),
    case("ce_smooth_ignore_none", lambda m, F, x, t: F.cross_entropy(x, t, label_smoothing=0.1, reduction="none"),
         r(N, C), T_IGN),
    case("ce_smooth_weight_ignore",
         lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w, ignore_index=1, label_smoothing=0.15),
         r(N, C), T_IGN1, W, const=(2,)),
    case("ce_smooth_weight_ignore_sum",
         lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.15, reduction="sum"),
         r(N, C), T_IGN, W, const=(2,)),
    case("ce_probs", lambda m, F, x, q: F.cross_entropy(x, q), r(N, C), probs(N, C), const=(1,)),
    case("ce_probs_sum", lambda m, F, x, q: F.cross_entropy(x, q, reduction="sum"), r(N, C), probs(N, C), const=(1,)),
    case("ce_probs_none", lambda m, F, x, q: F.cross_entropy(x, q, reduction="none"), r(N, C), probs(N, C),
         const=(1,)),
    case("ce_probs_smooth", lambda m, F, x, q: F.cross_entropy(x, q, label_smoothing=0.2), r(N, C), probs(N, C),
         const=(1,)),
    case("ce_probs_weight", lambda m, F, x, q, w: F.cross_entropy(x, q, weight=w), r(N, C), probs(N, C), W,
         const=(1, 2)),
    case("ce_probs_weight_smooth_none",
         lambda m, F, x, q, w: F.cross_entropy(x, q, weight=w, label_smoothing=0.1, reduction="none"),
         r(N, C), probs(N, C), W, const=(1, 2)),
    case("ce_probs_target_grad", lambda m, F, x, q: F.cross_entropy(x, q), r(N, C), probs(N, C)),
    case("ce_probs_target_grad_weight_smooth_none",
         lambda m, F, x, q, w: F.cross_entropy(x, q, weight=w, label_smoothing=0.1, reduction="none"),
         r(N, C), probs(N, C), W, const=(2,)),
    case("ce_probs_target_grad_4d_sum", lambda m, F, x, q, w: F.cross_entropy(x, q, weight=w, reduction="sum"),
         X_4D, probs(2, C, 3, 2, axis=1), W, const=(2,)),
    case("ce_probs_target_grad_unbatched_smooth", lambda m, F, x, q: F.cross_entropy(x, q, label_smoothing=0.3),
         r(C), probs(C)),
    case("ce_probs_target_grad_huge", lambda m, F, x, q: F.cross_entropy(x, q), huge_logits(N, C), probs(N, C),
         finite=True),
    case("ce_4d", lambda m, F, x, t: F.cross_entropy(x, t), X_4D, T_4D),
    case("ce_4d_none", lambda m, F, x, t: F.cross_entropy(x, t, reduction="none"), X_4D, T_4D),
    case("ce_4d_weight_smooth_sum",
         lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.1, reduction="sum"),
         X_4D, T_4D, W, const=(2,)),
    case("ce_4d_probs", lambda m, F, x, q: F.cross_entropy(x, q), X_4D, probs(2, C, 3, 2, axis=1), const=(1,)),
    case("ce_4d_probs_smooth_none",
         lambda m, F, x, q: F.cross_entropy(x, q, label_smoothing=0.1, reduction="none"),
         X_4D, probs(2, C, 3, 2, axis=1), const=(1,)),
    case("ce_3d", lambda m, F, x, t: F.cross_entropy(x, t, label_smoothing=0.05), r(2, C, 5), ix(C, 2, 5)),
    case("ce_unbatched", lambda m, F, x, t: F.cross_entropy(x, t), r(C), np.array(2, np.int64)),
    case("ce_unbatched_none_smooth_weight",
         lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.1, reduction="none"),
         r(C), np.array(1, np.int64), W, const=(2,)),
    case("ce_unbatched_probs", lambda m, F, x, q: F.cross_entropy(x, q, reduction="sum"), r(C), probs(C),
         const=(1,)),
    case("ce_noncontiguous_logits", lambda m, F, x, t: F.cross_entropy(x, t, label_smoothing=0.1),
         transposed(N, C), T_IGN),
    case("ce_permuted_logits", lambda m, F, x, t: F.cross_entropy(x.permute(1, 0), t), r(C, N), T_IDX),
    case("ce_huge", lambda m, F, x, t: F.cross_entropy(x, t), huge_logits(N, C), T_IDX, finite=True),
    case("ce_huge_none_smooth", lambda m, F, x, t: F.cross_entropy(x, t, label_smoothing=0.1, reduction="none"),
         huge_logits(N, C), T_IDX, finite=True),
    case("ce_huge_weight_ignore", lambda m, F, x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.2),
         huge_logits(N, C), T_IGN, W, const=(2,), finite=True),
    case("ce_huge_probs", lambda m, F, x, q: F.cross_entropy(x, q), huge_logits(N, C), probs(N, C), const=(1,),
         finite=True),
]

NLL = [
    case("nll", lambda m, F, x, t: F.nll_loss(x, t), r(N, C), T_IDX),
    case("nll_sum", lambda m, F, x, t: F.nll_loss(x, t, reduction="sum"), r(N, C), T_IDX),
    case("nll_none", lambda m, F, x, t: F.nll_loss(x, t, reduction="none"), r(N, C), T_IDX),
    case("nll_of_log_softmax", lambda m, F, x, t: F.nll_loss(F.log_softmax(x, dim=1), t), r(N, C), T_IDX),
    case("nll_weight", lambda m, F, x, t, w: F.nll_loss(x, t, weight=w), r(N, C), T_IDX, W, const=(2,)),
    case("nll_weight_none", lambda m, F, x, t, w: F.nll_loss(x, t, weight=w, reduction="none"),
         r(N, C), T_IDX, W, const=(2,)),
    case("nll_ignore_default", lambda m, F, x, t: F.nll_loss(x, t), r(N, C), T_IGN),
    case("nll_ignore_custom_weight", lambda m, F, x, t, w: F.nll_loss(x, t, weight=w, ignore_index=1),
         r(N, C), T_IGN1, W, const=(2,)),
    case("nll_ignore_sum", lambda m, F, x, t: F.nll_loss(x, t, reduction="sum"), r(N, C), T_IGN),
    case("nll_all_ignored_mean_is_nan", lambda m, F, x, t: F.nll_loss(x, t), r(N, C), T_ALL_IGN, nan_ok=True,
         smooth=False),
    case("nll_zero_total_weight", lambda m, F, x, t, w: F.nll_loss(x, t, weight=w),  # nan where torch has nan
         r(3, C), np.array([0, 1, -100], np.int64), exact(0.0, 0.0, 1.0, 1.0), const=(2,), nan_ok=True, smooth=False),
    case("nll_ignored_row_holds_minus_inf", lambda m, F, x, t: (F.nll_loss(x, t), F.nll_loss(x, t, reduction="none")),
         exact([-np.inf, -1.0, -2.0], [-0.5, -np.inf, -1.5]), np.array([-100, 0], np.int64), nan_ok=True),
    case("nll_4d", lambda m, F, x, t: F.nll_loss(x, t), X_4D, T_4D),
    case("nll_4d_weight_none", lambda m, F, x, t, w: F.nll_loss(x, t, weight=w, reduction="none"),
         X_4D, T_4D, W, const=(2,)),
    case("nll_unbatched", lambda m, F, x, t: F.nll_loss(x, t), r(C), np.array(3, np.int64)),
    case("nll_unbatched_none", lambda m, F, x, t: F.nll_loss(x, t, reduction="none"), r(C), np.array(0, np.int64)),
    case("nll_noncontiguous", lambda m, F, x, t: F.nll_loss(x, t), fortran(r(N, C)), T_IDX),
]

BCE_X, BCE_Y = r(5, 3, scale=2.0), _rng.random((5, 3)).astype(np.float32)
BCE_W, BCE_PW = pos(5, 3), np.array([0.5, 2.0, 3.0], np.float32)
BCE = [
    case("bce", lambda m, F, x, y: F.binary_cross_entropy_with_logits(x, y), BCE_X, BCE_Y, const=(1,)),
    case("bce_sum", lambda m, F, x, y: F.binary_cross_entropy_with_logits(x, y, reduction="sum"),
         BCE_X, BCE_Y, const=(1,)),
    case("bce_none", lambda m, F, x, y: F.binary_cross_entropy_with_logits(x, y, reduction="none"),
         BCE_X, BCE_Y, const=(1,)),
    case("bce_hard_targets", lambda m, F, x, y: F.binary_cross_entropy_with_logits(x, y), BCE_X,
         (BCE_Y > 0.5).astype(np.float32), const=(1,)),
    case("bce_weight", lambda m, F, x, y, w: F.binary_cross_entropy_with_logits(x, y, weight=w),
         BCE_X, BCE_Y, BCE_W, const=(1, 2)),
    case("bce_weight_bcast_none",
         lambda m, F, x, y, w: F.binary_cross_entropy_with_logits(x, y, weight=w, reduction="none"),
         BCE_X, BCE_Y, BCE_PW, const=(1, 2)),
    case("bce_pos_weight", lambda m, F, x, y, pw: F.binary_cross_entropy_with_logits(x, y, pos_weight=pw),
         BCE_X, BCE_Y, BCE_PW, const=(1, 2)),
    case("bce_pos_weight_weight_sum",
         lambda m, F, x, y, w, pw: F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction="sum"),
         BCE_X, BCE_Y, BCE_W, BCE_PW, const=(1, 2, 3)),
    case("bce_target_grad", lambda m, F, x, y: F.binary_cross_entropy_with_logits(x, y), BCE_X, BCE_Y),
    case("bce_target_grad_pos_weight_none",
         lambda m, F, x, y, pw: F.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="none"),
         BCE_X, BCE_Y, BCE_PW, const=(2,)),
    case("bce_target_grad_weight_pos_weight",
         lambda m, F, x, y, w, pw: F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw),
         BCE_X, BCE_Y, BCE_W, BCE_PW, const=(2, 3)),
    case("bce_huge_logits", lambda m, F, x, y: F.binary_cross_entropy_with_logits(x, y, reduction="none"),
         exact(-1e4, -100.0, 0.0, 100.0, 1e4), exact(1.0, 0.0, 0.5, 1.0, 0.0), const=(1,), finite=True),
    case("bce_1d_pos_weight", lambda m, F, x, y, pw: F.binary_cross_entropy_with_logits(x, y, pos_weight=pw),
         r(4), exact(1.0, 0.0, 1.0, 0.0), pos(4), const=(1, 2)),
]

def _loose(*shape: int, scale: float = 1.0) -> np.ndarray:
    """Like ``r`` from a generator of its own: cases added here leave the shared stream (and every input drawn after
    them) as it was."""
    return (_LOOSE.standard_normal(shape) * scale).astype(np.float32)


_LOOSE = np.random.default_rng(1605)

MSE = [
    case("mse", lambda m, F, x, y: F.mse_loss(x, y), r(4, 3), r(4, 3), const=(1,)),
    case("mse_sum", lambda m, F, x, y: F.mse_loss(x, y, reduction="sum"), r(4, 3), r(4, 3), const=(1,)),
    case("mse_none", lambda m, F, x, y: F.mse_loss(x, y, reduction="none"), r(4, 3), r(4, 3), const=(1,)),
    case("mse_target_grad", lambda m, F, x, y: F.mse_loss(x, y), r(4, 3), r(4, 3)),
    case("mse_0d", lambda m, F, x, y: F.mse_loss(x, y), r(), r()),
    case("mse_noncontiguous", lambda m, F, x, y: F.mse_loss(x, y), transposed(3, 5), fortran(r(3, 5))),
    case("huber", lambda m, F, x, y: F.huber_loss(x, y), _loose(4, 3, scale=2.0), _loose(4, 3), const=(1,)),
    case("huber_delta", lambda m, F, x, y: F.huber_loss(x, y, reduction="sum", delta=0.5), _loose(4, 3, scale=2.0),
         _loose(4, 3)),
    case("huber_none", lambda m, F, x, y: F.huber_loss(x, y, reduction="none", delta=2.0), _loose(5, 2, scale=3.0),
         _loose(5, 2), const=(1,)),
    case("smooth_l1", lambda m, F, x, y: F.smooth_l1_loss(x, y), _loose(4, 3, scale=2.0), _loose(4, 3), const=(1,)),
    case("smooth_l1_beta", lambda m, F, x, y: F.smooth_l1_loss(x, y, beta=0.5), _loose(4, 3, scale=2.0), _loose(4, 3)),
]

COMPOSITE = [
    case("mlp_cross_entropy",
         lambda m, F, x, w1, b1, w2, t: F.cross_entropy(F.linear(F.relu(F.linear(x, w1, b1)), w2), t,
                                                        label_smoothing=0.1),
         r(N, 5), r(7, 5), r(7), r(C, 7), T_IDX),
    case("attention_like", lambda m, F, q, k, v: F.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1) @ v,
         r(2, 3, 4), r(2, 5, 4), r(2, 5, 4)),
    case("diamond_reuse", lambda m, F, a, b: (a * b + a.exp() * a - m.maximum(a, b) / b.abs()).sum(dim=0),
         r(3, 4), r(4)),
    case("layer_norm_like", lambda m, F, x: (x - x.mean(dim=-1, keepdim=True)) / (x.var(dim=-1, keepdim=True,
         correction=0) + 1e-5).sqrt(), r(4, 6)),
    case("logsumexp_like", lambda m, F, x: (x - x.amax(dim=1, keepdim=True)).exp().sum(dim=1).log() + x.amax(dim=1),
         r(3, 5)),
]

NORMALIZE = [
    case("normalize", lambda m, F, x: F.normalize(x), r(4, 5)),
    case("normalize_dim0", lambda m, F, x: F.normalize(x, dim=0), r(4, 5)),
    case("normalize_3d_last", lambda m, F, x: F.normalize(x, dim=-1), r(2, 3, 4)),
    case("normalize_p1", lambda m, F, x: F.normalize(x, p=1.0), r(3, 4)),
    case("normalize_p3", lambda m, F, x: F.normalize(x, p=3.0, dim=-1), r(3, 4)),
    case("normalize_pinf", lambda m, F, x: F.normalize(x, p=float("inf")), r(3, 4)),
    case("normalize_eps_clamps", lambda m, F, x: F.normalize(x, eps=0.5), r(4, 3, scale=0.1)),
    case("normalize_zero_row", lambda m, F, x: F.normalize(x), exact([0.0, 0.0, 0.0], [3.0, -4.0, 0.0]),
         finite=True, smooth=False),
    case("normalize_noncontiguous", lambda m, F, x: F.normalize(x, dim=1), transposed(3, 5)),
]

# ---- layer and batch normalization, as functions (the modules' own parts - parameter names, running statistics,
# state dicts - are tested in tests/nn/test_norm.py); their own generator, so the cases above keep their inputs
_norm_rng = np.random.default_rng(2025)
NORM = {"rtol": 1e-4, "atol": 2e-5}  # a channel's statistics sum over N * H * W values, in another order than torch's


def nr(*shape: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    return (_norm_rng.standard_normal(shape) * scale + shift).astype(np.float32)


def _layer_norm(id: str, shape: tuple[int, ...], normalized_shape: Any, weight: bool = True, bias: bool = True,
                eps: float = 1e-5, rtol: float = NORM["rtol"]) -> Case:
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    params = [nr(*ns) for _ in range(int(weight) + int(weight and bias))]

    def fn(m: Any, F: Any, x: Any, *wb: Any) -> Any:
        return F.layer_norm(x, ns if isinstance(normalized_shape, int) else normalized_shape, *wb, eps=eps)

    return case(f"layer_norm_{id}", fn, nr(*shape, scale=3.0, shift=2.0), *params, rtol=rtol, atol=NORM["atol"])


def _batch_norm(id: str, shape: tuple[int, ...], training: bool, affine: bool = True, eps: float = 1e-5) -> Case:
    c = shape[1]
    stats = [] if training else [nr(c), np.abs(nr(c)) + 0.5]  # eval: the running mean and variance, constants
    params = [nr(c), nr(c)] if affine else []

    def fn(m: Any, F: Any, x: Any, *rest: Any) -> Any:
        running = rest[:2] if not training else (None, None)
        return F.batch_norm(x, *running, *rest[len(stats):], training=training, eps=eps)

    return case(f"batch_norm_{id}", fn, nr(*shape, scale=2.0, shift=1.0), *stats, *params,
                const=(1, 2) if stats else (), **NORM)


NORMS = [
    _layer_norm("last_dim", (8, 5), 5),
    _layer_norm("last_1_of_3", (4, 6, 7), (7,)),
    _layer_norm("last_2_of_3", (4, 6, 7), (6, 7)),
    _layer_norm("last_2_of_4", (2, 3, 4, 5), [4, 5]),
    _layer_norm("no_affine", (3, 4, 5), (5,), weight=False),
    _layer_norm("no_bias", (3, 4, 5), (4, 5), bias=False),
    # a row of two close values (4.10, 4.07): 1/std ~ 65 makes the float32 gradient ill-conditioned; PyTorch's is
    # 2e-4 off the float64 value, ours 2e-6 (the float64 case holds both to 1e-10)
    _layer_norm("two_features", (16, 2), 2, rtol=1e-3),
    _layer_norm("eps", (5, 9), 9, eps=1e-3),
    _batch_norm("train_1d", (8, 5), True),
    _batch_norm("train_1d_sequence", (4, 5, 3), True),
    _batch_norm("train_2d", (4, 3, 5, 6), True),
    _batch_norm("train_2d_no_affine", (4, 3, 5, 6), True, affine=False),
    _batch_norm("train_eps", (6, 4), True, eps=1e-2),
    _batch_norm("eval_2d", (4, 3, 5, 6), False),
    _batch_norm("eval_1d_no_affine", (8, 5), False, affine=False),
]


# ---- embedding: a lookup of rows, whose gradient adds up over repeated ids; the padding row gets none (a rule, not
# a derivative: parity holds it, finite differences cannot)
IDS = np.array([[1, 2, 9, 1], [9, 9, 0, 2], [1, 1, 1, 3]], np.int64)  # repeated ids, 2-D
EMBEDDING = [
    case("embedding", lambda m, F, i, w: F.embedding(i, w), IDS, nr(10, 6)),
    case("embedding_1d_ids", lambda m, F, i, w: F.embedding(i, w), IDS[0], nr(10, 6)),
    case("embedding_padding_idx", lambda m, F, i, w: F.embedding(i, w, padding_idx=2), IDS, nr(10, 6), smooth=False),
    case("embedding_padding_idx_negative", lambda m, F, i, w: F.embedding(i, w, padding_idx=-1), IDS, nr(10, 6),
         smooth=False),
]


# ---- the losses' options crossed with every reduction, and softmax over every dim ---------------------------------
# Inputs from the spellings' own generator (the cases above keep theirs); logits scaled by 2, BCE targets in (0, 1).
def _unit(*shape: int) -> np.ndarray:
    return _spelling_rng.uniform(0.1, 0.9, shape).astype(np.float32)


def _probs(*shape: int) -> np.ndarray:
    """Rows of class probabilities along dim 1 (dim 0 for a 1-D shape)."""
    p = _spelling_rng.uniform(0.1, 1.0, shape)
    return (p / p.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)).astype(np.float32)


REDUCTIONS_ALL = ("mean", "sum", "none")
T3, T3_IGN, T3_IGN2 = (np.array(t, np.int64) for t in ([1, 0, 3], [1, -100, 3], [2, 0, 2]))
T_ND, T_ND_IGN = np.array([[2, 0], [1, 1]], np.int64), np.array([[2, -100], [1, 0]], np.int64)
W4, W3 = f32([0.2, 1.0, 2.5, 0.7]), f32([1.5, 0.5, 2.0])
Q34, Q_ND, Q4 = _probs(3, 4), _probs(2, 3, 2), _probs(4)
# (name, logits shape, target, class weights or None, options): the forms cross_entropy and nll_loss share
_CLASS_TARGETS = [
    ("indices", (3, 4), T3, None, {}),
    ("weight", (3, 4), T3, W4, {}),
    ("ignore_default", (3, 4), T3_IGN, None, {}),
    ("ignore_2", (3, 4), T3_IGN2, None, {"ignore_index": 2}),
    ("weight_ignore", (3, 4), T3_IGN, W4, {}),
    ("NCd_indices", (2, 3, 2), T_ND, None, {}),
    ("NCd_weight_ignore", (2, 3, 2), T_ND_IGN, W3, {}),
    ("unbatched_index", (4,), np.array(2), None, {}),
    ("unbatched_weight", (4,), np.array(1), W4, {}),
]
# cross_entropy's own: label smoothing and probability targets
_CE_ONLY = [
    ("smoothing", (3, 4), T3, None, {"label_smoothing": 0.1}),
    ("smoothing_weight", (3, 4), T3, W4, {"label_smoothing": 0.2}),
    ("smoothing_ignore", (3, 4), T3_IGN, None, {"label_smoothing": 0.3}),
    ("smoothing_weight_ignore", (3, 4), T3_IGN, W4, {"label_smoothing": 0.25}),
    ("probs", (3, 4), Q34, None, {}),
    ("probs_weight", (3, 4), Q34, W4, {}),
    ("probs_smoothing", (3, 4), Q34, None, {"label_smoothing": 0.15}),
    ("NCd_smoothing", (2, 3, 2), T_ND, None, {"label_smoothing": 0.1}),
    ("NCd_probs", (2, 3, 2), Q_ND, None, {}),
    ("unbatched_probs", (4,), Q4, None, {}),
]


def _grid(prefix: str, loss: str, forms: list, scale: float = 1.0) -> list[Case]:
    """``F.<loss>(logits, target, weight=..., **options)`` for each form at each reduction; the target and the
    weights are inputs that need no gradient."""
    cases = []
    for name, shape, target, weight, options in forms:
        others = (target,) if weight is None else (target, weight)
        for red in REDUCTIONS_ALL:
            def fn(m, F, x, t, *w, options=options, red=red):
                return getattr(F, loss)(x, t, **({"weight": w[0]} if w else {}), **options, reduction=red)

            cases.append(case(f"{prefix}_{name}_{red}", fn, sr(*shape) * np.float32(scale), *others,
                              const=tuple(1 + i for i, o in enumerate(others) if o.dtype.kind == "f")))
    return cases


_BCE_W, _BCE_W_ROW, _POS_W = _unit(3, 2) * 2, f32([0.3, 1.7]), f32([2.0, 0.5])
LOSS_GRID = _grid("ce_grid", "cross_entropy", _CLASS_TARGETS + _CE_ONLY, 2.0) + _grid(
    "nll_grid", "nll_loss", _CLASS_TARGETS) + [
    *[case(f"nll_grid_of_log_softmax_{red}", lambda m, F, x, t, w, red=red: F.nll_loss(
        F.log_softmax(x, 1), t, weight=w, reduction=red), sr(3, 4), T3, W4, const=(2,)) for red in REDUCTIONS_ALL],
    # probability targets that require grad too
    *[case(f"ce_grid_soft_target_{name}_{red}", lambda m, F, x, q, *w, f=f, red=red: f(F, x, q, *w, red),
           sr(*shape), _probs(*shape), *w, const=(2,) if w else ())
      for name, f, shape, w in [
          ("probs", lambda F, x, q, red: F.cross_entropy(x, q, reduction=red), (3, 4), ()),
          ("weight_smoothing",
           lambda F, x, q, w, red: F.cross_entropy(x, q, weight=w, label_smoothing=0.1, reduction=red), (3, 4), (W4,)),
          ("NCd", lambda F, x, q, w, red: F.cross_entropy(x, q, weight=w, reduction=red), (2, 3, 2), (W3,)),
          ("unbatched", lambda F, x, q, red: F.cross_entropy(x, q, reduction=red), (4,), ())]
      for red in REDUCTIONS_ALL],
    # BCE with logits: the target requires grad as well
    *[case(f"bce_grid_{name}_{red}", lambda m, F, x, y, *w, f=f, red=red: f(F, x, y, *w, red),
           sr(3, 2) * np.float32(2), _unit(3, 2), *w, const=tuple(range(2, 2 + len(w))))
      for name, f, w in [
          ("plain", lambda F, x, y, red: F.binary_cross_entropy_with_logits(x, y, reduction=red), ()),
          ("weight", lambda F, x, y, w, red: F.binary_cross_entropy_with_logits(x, y, weight=w, reduction=red),
           (_BCE_W,)),
          ("weight_row", lambda F, x, y, w, red: F.binary_cross_entropy_with_logits(x, y, weight=w, reduction=red),
           (_BCE_W_ROW,)),
          ("pos_weight",
           lambda F, x, y, p, red: F.binary_cross_entropy_with_logits(x, y, pos_weight=p, reduction=red), (_POS_W,)),
          ("weight_pos_weight", lambda F, x, y, w, p, red: F.binary_cross_entropy_with_logits(
              x, y, weight=w, pos_weight=p, reduction=red), (_BCE_W, f32([3.0, 0.25])))]
      for red in REDUCTIONS_ALL],
    # softmax and log-softmax over every dim of a 3-D input, negative dims included
    *[case(f"{name}_grid_dim{d}", lambda m, F, x, fn=fn, d=d: getattr(F, fn)(x, dim=d), sr(2, 3, 2))
      for name, fn in (("softmax", "softmax"), ("log_softmax", "log_softmax")) for d in (0, 1, 2, -1, -2, -3)],
]


FUNCTIONAL_CASES = ACTIVATIONS + CROSS_ENTROPY + NLL + BCE + MSE + COMPOSITE + NORMALIZE + NORMS + EMBEDDING + LOSS_GRID


# ---- float64: both libraries in double precision, tight tolerance ------------------------------------------
def _double(c: Case) -> Case:
    return Case("f64_" + c.id, c.fn, tuple(f64(x) if x.dtype.kind == "f" else x for x in c.inputs),
                rtol=RTOL64, atol=ATOL64, const=c.const, finite=c.finite, nan_ok=c.nan_ok, smooth=c.smooth)


def _float_inputs(c: Case) -> list[int]:
    return [i for i, x in enumerate(c.inputs) if x.dtype.kind == "f" and i not in c.const]


# Every case with a float input runs three ways from its one declaration: parity in float32 (``check``), parity in
# float64 (``check_float64``: both libraries in double precision, tight tolerance) and the finite-difference
# gradient check in float64 (``check_gradcheck``, for the smooth cases with a float output)
FLOAT64_CASES = [_double(c) for c in OPS_CASES + FUNCTIONAL_CASES if _float_inputs(c)]


def check_float64(case: Case) -> None:
    """``check`` a float64 case, and that dl kept float64 in every float output and input gradient."""
    check(case)
    with warnings.catch_warnings():
        if case.nan_ok:  # NaN on purpose: NumPy's warnings are expected, as in check
            warnings.simplefilter("ignore")
        outs, xs = run(case, "dl")
    for out in outs:
        if out.dtype.kind == "f":
            assert out.dtype == dl.float64, f"{case.id}: output is {out.dtype}, not float64"
    for x in xs:
        if x.requires_grad and x.grad is not None:  # a comparison's inputs get none
            assert x.grad.dtype == dl.float64, f"{case.id}: grad is {x.grad.dtype}, not float64"


def gradcheck_function(case: Case) -> tuple[Callable[..., Any], list[dl.Tensor]]:
    """(fn, leaves): ``fn`` of the case's float inputs (float64 leaves) that contracts every float output with a
    fixed random tensor, the scalar ``dl.autograd.gradcheck`` differentiates; the other inputs are constants."""
    floats = _float_inputs(case)

    def fn(*leaves: dl.Tensor) -> dl.Tensor:
        given = iter(leaves)
        xs = [next(given) if i in floats else _dl_tensor(f64(x) if x.dtype.kind == "f" else x, False)
              for i, x in enumerate(case.inputs)]
        outs = [o for o in _outputs(case.fn(dl, dl_F, *xs)) if o.dtype.kind == "f"]
        rng = np.random.default_rng(zlib.crc32(case.id.encode()))
        return sum(((o * dl.tensor(rng.standard_normal(o.shape), dtype=dl.float64)).sum() for o in outs),
                   start=dl.tensor(0.0, dtype=dl.float64))

    leaves = [dl.tensor(np.ascontiguousarray(case.inputs[i], dtype=np.float64), dtype=dl.float64, requires_grad=True)
              for i in floats]
    return fn, leaves


def check_gradcheck(case: Case) -> None:
    """The case's gradients in dlbasics against central finite differences, in float64."""
    from dlbasics.autograd import gradcheck

    fn, leaves = gradcheck_function(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if case.nan_ok else "error", RuntimeWarning)
        assert gradcheck(fn, leaves), case.id


def gradcheckable(case: Case) -> bool:
    """Smooth, with a float input to differentiate and a float output to differentiate."""
    if not case.smooth or not _float_inputs(case):
        return False
    fn, leaves = gradcheck_function(case)
    with warnings.catch_warnings():  # at collection: a case's own NaN or inf is its test's business
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*leaves).requires_grad
