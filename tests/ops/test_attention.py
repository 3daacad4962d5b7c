"""Scaled dot-product attention and MultiheadAttention against PyTorch: forward values and every gradient (the
inputs', a float mask's, every parameter's), float64 to rounding and float32 to a few ulps; masks of both kinds,
broadcast, causal, a custom scale, queries with every key masked - each case from the one table's harness
(``tests/cases.py``), so each also runs the finite-difference check. Dropout cannot match PyTorch draw for draw:
its statistics, its determinism and p = 0 are tested instead, and its backward (a fixed seed draws the same mask on
every evaluation), the packed self-attention input and MultiheadAttention's every parameter by finite differences.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F

import dlbasics as dl
from dlbasics.autograd import gradcheck
from dlbasics.nn.layers.attention import MultiheadAttention
from dlbasics.ops.attention import attend, scaled_dot_product_attention
from tests.cases import Case, _double, _float_inputs, case, check, check_float64, check_gradcheck, gradcheckable

pytestmark = pytest.mark.usefixtures("one_torch_thread")



_rng = np.random.default_rng(1307)


def r(*shape: int, dtype=np.float64) -> np.ndarray:
    return _rng.standard_normal(shape).astype(dtype)


def bool_mask(*shape: int, dead_rows: tuple[int, ...] = ()) -> np.ndarray:
    """True = may attend, with each row of the last two dims attending somewhere unless listed in dead_rows."""
    m = _rng.random(shape) > 0.4
    m[..., 0] = True
    for i in dead_rows:
        m[..., i, :] = False
    return m


def float_mask(*shape: int, dead_rows: tuple[int, ...] = ()) -> np.ndarray:
    m = _rng.standard_normal(shape)
    m[_rng.random(shape) > 0.7] = -np.inf
    m[..., 0] = 0.5
    for i in dead_rows:
        m[..., i, :] = -np.inf
    return m


def sdpa(m, F, q, k, v, mask=None, **kw):
    fn = torch_F.scaled_dot_product_attention if m is torch else scaled_dot_product_attention
    return fn(q, k, v, attn_mask=mask, **kw)


DECLARED = [
    case("4d", lambda m, F, q, k, v: sdpa(m, F, q, k, v), r(2, 3, 4, 5), r(2, 3, 6, 5), r(2, 3, 6, 7)),
    case("2d", lambda m, F, q, k, v: sdpa(m, F, q, k, v), r(4, 5), r(6, 5), r(6, 3)),
    case("batch_broadcast", lambda m, F, q, k, v: sdpa(m, F, q, k, v), r(2, 3, 4, 5), r(1, 3, 6, 5), r(3, 6, 2)),
    case("scale", lambda m, F, q, k, v: sdpa(m, F, q, k, v, scale=0.3), r(2, 4, 5), r(2, 6, 5), r(2, 6, 7)),
    case("causal_square", lambda m, F, q, k, v: sdpa(m, F, q, k, v, is_causal=True), r(2, 2, 5, 4), r(2, 2, 5, 4),
         r(2, 2, 5, 4)),
    case("causal_more_keys", lambda m, F, q, k, v: sdpa(m, F, q, k, v, is_causal=True), r(2, 3, 4), r(2, 6, 4),
         r(2, 6, 3)),
    case("causal_more_queries", lambda m, F, q, k, v: sdpa(m, F, q, k, v, is_causal=True), r(2, 6, 4),
         r(2, 3, 4), r(2, 3, 3)),
    case("bool_mask", lambda m, F, q, k, v, a: sdpa(m, F, q, k, v, a), r(2, 3, 4, 5), r(2, 3, 6, 5),
         r(2, 3, 6, 7), bool_mask(2, 3, 4, 6)),
    case("bool_mask_broadcast", lambda m, F, q, k, v, a: sdpa(m, F, q, k, v, a), r(2, 3, 4, 5), r(2, 3, 6, 5),
         r(2, 3, 6, 7), bool_mask(4, 6)),
    case("bool_mask_per_key", lambda m, F, q, k, v, a: sdpa(m, F, q, k, v, a), r(2, 3, 4, 5), r(2, 3, 6, 5),
         r(2, 3, 6, 7), bool_mask(2, 1, 1, 6)),
    case("float_mask_with_grad", lambda m, F, q, k, v, a: sdpa(m, F, q, k, v, a), r(2, 3, 4, 5), r(2, 3, 6, 5),
         r(2, 3, 6, 7), float_mask(3, 4, 6)),
    case("float_mask_broadcast_with_grad", lambda m, F, q, k, v, a: sdpa(m, F, q, k, v, a, scale=0.7),
         r(2, 3, 4, 5), r(2, 3, 6, 5), r(2, 3, 6, 7), float_mask(3, 1, 6)),
    case("float_mask_constant", lambda m, F, q, k, v, a: sdpa(m, F, q, k, v, a), r(2, 4, 5), r(2, 6, 5),
         r(2, 6, 7), float_mask(4, 6), const=(3,)),
    # a query with every key masked gets zeros and no gradient (PyTorch 2.x), silently (the harness turns
    # NumPy's floating-point warnings into errors)
    case("bool_mask_dead_rows", lambda m, F, q, k, v, a: sdpa(m, F, q, k, v, a), r(2, 3, 4, 5), r(2, 3, 6, 5),
         r(2, 3, 6, 7), bool_mask(4, 6, dead_rows=(1, 3)), finite=True),
    case("float_mask_dead_rows", lambda m, F, q, k, v, a: sdpa(m, F, q, k, v, a), r(2, 3, 4, 5), r(2, 3, 6, 5),
         r(2, 3, 6, 7), float_mask(4, 6, dead_rows=(2,)), finite=True),
    # large enough for the compiled row passes (>= 2^17 scores)
    case("gpt_causal", lambda m, F, q, k, v: sdpa(m, F, q, k, v, is_causal=True), r(12, 4, 64, 32),
         r(12, 4, 64, 32), r(12, 4, 64, 32)),
    case("gpt_bool_mask", lambda m, F, q, k, v, a: sdpa(m, F, q, k, v, a), r(12, 4, 64, 32),
         r(12, 4, 64, 32), r(12, 4, 64, 32), bool_mask(64, 64, dead_rows=(5,))),
    case("float_mask_head_dim_8", lambda m, F, q, k, v, a: sdpa(m, F, q, k, v, a), r(2, 3, 4, 8), r(2, 3, 6, 8),
         r(2, 3, 6, 8), float_mask(4, 6)),
]


def _float32(c: Case) -> Case:
    """The case in float32, at a float32 tolerance: a score row's softmax and the weighted sums of up to 64 values
    round in another order than PyTorch's."""
    return Case(c.id, c.fn, tuple(x.astype(np.float32) if x.dtype.kind == "f" else x for x in c.inputs), rtol=1e-4,
                atol=2e-5, const=c.const, finite=c.finite, nan_ok=c.nan_ok, smooth=c.smooth)


# each declaration runs three ways: parity in float32, parity in float64 (both libraries in double precision, to
# rounding) and, up to 1,000 input values (not the GPT-sized ones), the finite-difference check in float64
SDPA_CASES = [_float32(c) for c in DECLARED]


@pytest.mark.parametrize("c", SDPA_CASES, ids=repr)
def test_sdpa_matches_pytorch(c):
    check(c)


@pytest.mark.parametrize("c", [_double(c) for c in SDPA_CASES], ids=repr)
def test_sdpa_matches_pytorch_float64(c):
    check_float64(c)


SDPA_GRADCHECK_CASES = [c for c in SDPA_CASES if sum(c.inputs[i].size for i in _float_inputs(c)) <= 1000
                        and gradcheckable(c)]


@pytest.mark.parametrize("c", SDPA_GRADCHECK_CASES, ids=repr)
def test_sdpa_gradients_match_finite_differences(c):
    check_gradcheck(c)


def test_sdpa_dropout_zero_is_exact_and_statistics_hold():
    q, k, v = (dl.tensor(r(2, 3, 4, 5), dtype=dl.float64) for _ in range(3))
    np.testing.assert_array_equal(scaled_dot_product_attention(q, k, v, dropout_p=0.0, generator=1).data,
                                  scaled_dot_product_attention(q, k, v).data)
    # uniform weights 1/S (q = 0) on V = I: the output is the dropped weights themselves
    n, s, p = 64, 256, 0.3
    out = scaled_dot_product_attention(dl.zeros(n, 1, 4), dl.zeros(n, s, 4), dl.tensor(np.eye(s)).expand(n, s, s),
                                       dropout_p=p, generator=0).data
    kept = out != 0
    frac = 1 - kept.mean()
    assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / out.size), frac  # 4 sigma of the binomial
    np.testing.assert_allclose(out[kept], 1 / (s * (1 - p)), rtol=1e-6)  # kept weights scaled by 1 / (1 - p)
    # the same generator state gives the same mask, and the gradient goes through that mask
    x = dl.tensor(np.eye(s), requires_grad=True)
    a = scaled_dot_product_attention(dl.zeros(1, 4), dl.zeros(s, 4), x, dropout_p=p, generator=5)
    b = scaled_dot_product_attention(dl.zeros(1, 4), dl.zeros(s, 4), dl.tensor(np.eye(s)), dropout_p=p, generator=5)
    np.testing.assert_array_equal(a.data, b.data)
    a.sum().backward()
    np.testing.assert_array_equal(x.grad[:, 0], a.data[0])  # dV = P^T g with g = 1: row j gets P_0j
    assert (scaled_dot_product_attention(dl.zeros(1, 4), dl.zeros(s, 4), dl.tensor(np.eye(s)), dropout_p=1.0)
            .data == 0).all()


def test_sdpa_errors_name_the_problem():
    q = dl.zeros(2, 4, 5)
    with pytest.raises(RuntimeError, match="attn_mask must not be given with is_causal"):
        scaled_dot_product_attention(q, q, q, attn_mask=np.ones((4, 4), bool), is_causal=True)
    with pytest.raises(RuntimeError, match=r"attn_mask \(4, 3\) does not broadcast to .*\(2, 4, 4\)"):
        scaled_dot_product_attention(q, q, q, attn_mask=np.ones((4, 3), bool))
    with pytest.raises(RuntimeError, match=r"attn_mask \(3, 4, 4\) does not broadcast"):  # it may not add dims
        scaled_dot_product_attention(q, q, q, attn_mask=np.ones((3, 4, 4), bool))
    with pytest.raises(RuntimeError, match="bool or of the query's dtype float32, got float64"):
        scaled_dot_product_attention(q, q, q, attn_mask=np.zeros((4, 4)))
    with pytest.raises(RuntimeError, match="one floating dtype"):
        scaled_dot_product_attention(q, q, q.double())
    with pytest.raises(RuntimeError, match=r"must be \(\.\.\., L, E\)"):
        scaled_dot_product_attention(q, dl.zeros(2, 4, 3), q)
    with pytest.raises(RuntimeError, match="at least 2-D"):
        scaled_dot_product_attention(dl.zeros(5), dl.zeros(5), dl.zeros(5))
    with pytest.raises(ValueError, match=r"dropout_p must be in \[0, 1\]"):
        scaled_dot_product_attention(q, q, q, dropout_p=1.5)


# ---- MultiheadAttention ---------------------------------------------------------------------------------------
def _pair(e: int, h: int, dtype=np.float64, **kw):
    """A torch MultiheadAttention with random weights (biases too, which it initializes at zero) and ours with its
    state dict loaded by name."""
    t = torch.nn.MultiheadAttention(e, h, dtype=torch.float64 if dtype == np.float64 else torch.float32, **kw)
    with torch.no_grad():
        for p in t.parameters():
            p.copy_(torch.from_numpy(r(*p.shape, dtype=dtype) * 0.5))
    d = MultiheadAttention(e, h, dtype=dtype, **kw)
    sd = {k: v.detach().numpy() for k, v in t.state_dict().items()}
    assert list(sd) == list(d.state_dict())
    d.load_state_dict(sd)
    return d, t


def _run_mha(shapes, self_attention=True, dtype=np.float64, tol=(1e-10, 1e-12), module_kw=None, **kw):
    """Forward and backward of both modules (through the output and, when returned, the weights): compare the
    values, the inputs' gradients and every parameter's."""
    d, t = _pair(8, 2, dtype, **(module_kw or {}))
    arrays = [r(*s, dtype=dtype) for s in shapes[:1 if self_attention else 3]]
    tx = [torch.tensor(a, requires_grad=True) for a in arrays]
    dx = [dl.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    masks = {k: v for k, v in kw.items() if k.endswith("mask")}
    flags = {k: v for k, v in kw.items() if not k.endswith("mask")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: mixed mask types are deprecated
        ot, wt = t(*(tx * 3 if self_attention else tx), **flags,
                   **{k: None if v is None else torch.from_numpy(v) for k, v in masks.items()})
    od, wd = d(*(dx * 3 if self_attention else dx), **flags, **masks)
    rtol, atol = tol
    np.testing.assert_allclose(od.data, ot.detach().numpy(), rtol=rtol, atol=atol)
    g = r(*ot.shape, dtype=dtype)
    lt, ld = (ot * torch.from_numpy(g)).sum(), (od * dl.tensor(g, dtype=dtype)).sum()
    assert (wd is None) == (wt is None)
    if wt is not None:
        assert wd.shape == tuple(wt.shape)
        np.testing.assert_allclose(wd.data, wt.detach().numpy(), rtol=rtol, atol=atol)
        gw = r(*wt.shape, dtype=dtype)
        lt, ld = lt + (wt * torch.from_numpy(gw)).sum(), ld + (wd * dl.tensor(gw, dtype=dtype)).sum()
    lt.backward()
    ld.backward()
    for a, b in zip(dx, tx):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=rtol, atol=atol)
    tp = dict(t.named_parameters())
    for name, p in d.named_parameters():
        np.testing.assert_allclose(p.grad, tp[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)


L, S, N = 4, 5, 3
CAUSAL = np.triu(np.full((L, L), -np.inf), 1)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights, average", [(True, True), (True, False), (False, True)])
def test_mha_self_attention(batch_first, need_weights, average):
    shape = (N, L, 8) if batch_first else (L, N, 8)
    _run_mha([shape], module_kw=dict(batch_first=batch_first), need_weights=need_weights,
             average_attn_weights=average)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_cross_attention(batch_first, need_weights):
    q, kv = ((N, L, 8), (N, S, 8)) if batch_first else ((L, N, 8), (S, N, 8))
    _run_mha([q, kv, kv], self_attention=False, module_kw=dict(batch_first=batch_first), need_weights=need_weights)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("masks", [
    dict(key_padding_mask=np.array([[False, True, False, False], [False] * 4, [True, False, True, False]])),
    dict(key_padding_mask=float_mask(N, L)),
    dict(attn_mask=~bool_mask(L, L)),
    dict(attn_mask=float_mask(L, L)),
    dict(attn_mask=float_mask(N * 2, L, L)),
    dict(attn_mask=~bool_mask(N * 2, L, L), key_padding_mask=np.array([[False, True, False, False]] * N)),
    dict(attn_mask=float_mask(L, L), key_padding_mask=np.array([[False, False, True, True]] * N)),
], ids=["kpm_bool", "kpm_float", "attn_bool", "attn_float", "attn_3d", "both_bool", "float_and_bool"])
def test_mha_masks(need_weights, masks):
    _run_mha([(L, N, 8)], need_weights=need_weights, **masks)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_causal_hint(need_weights):
    _run_mha([(L, N, 8)], attn_mask=CAUSAL, is_causal=True, need_weights=need_weights)
    kpm = np.array([[False, False, False, True]] * N)
    _run_mha([(L, N, 8)], attn_mask=CAUSAL, is_causal=True, key_padding_mask=kpm, need_weights=need_weights)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_unbatched(need_weights):
    _run_mha([(L, 8)], need_weights=need_weights, key_padding_mask=np.array([False, True, False, False]),
             module_kw=dict(batch_first=True))
    _run_mha([(L, 8), (S, 8), (S, 8)], self_attention=False, need_weights=need_weights,
             attn_mask=float_mask(2, L, S), average_attn_weights=False)


def test_mha_float32_and_no_bias():
    _run_mha([(L, N, 8)], dtype=np.float32, tol=(1e-5, 1e-5), need_weights=True)
    _run_mha([(N, L, 8), (N, S, 8), (N, S, 8)], self_attention=False, dtype=np.float32, tol=(1e-5, 1e-5),
             module_kw=dict(batch_first=True, bias=False), need_weights=False)


def test_mha_query_with_every_key_masked():
    """PyTorch's two paths differ: the fused one gives zeros (then the output projection), the step-by-step one
    with need_weights NaN; ours follows each."""
    kpm = np.array([[True] * L, [False] * L, [False, True, False, False]])
    _run_mha([(L, N, 8)], need_weights=False, key_padding_mask=kpm)
    d, t = _pair(8, 2)
    x = r(L, N, 8)
    with np.errstate(invalid="ignore"):
        od, wd = d(*[dl.tensor(x, dtype=dl.float64)] * 3, key_padding_mask=kpm)
    ot, wt = t(*[torch.from_numpy(x)] * 3, key_padding_mask=torch.from_numpy(kpm))
    np.testing.assert_allclose(od.data, ot.detach().numpy(), rtol=1e-10, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(wd.data, wt.detach().numpy(), rtol=1e-10, atol=1e-12, equal_nan=True)
    assert np.isnan(wd.data[0]).all() and not np.isnan(wd.data[1:]).any()


def test_mha_dropout_only_in_training():
    mha = MultiheadAttention(8, 2, dropout=0.5, dtype=np.float64)
    x = dl.tensor(r(L, N, 8), dtype=dl.float64)
    mha.eval()
    ref = MultiheadAttention(8, 2, dtype=np.float64)
    ref.load_state_dict(mha.state_dict())
    for need in (True, False):
        np.testing.assert_array_equal(mha(x, x, x, need_weights=need)[0].data, ref(x, x, x, need_weights=need)[0].data)
    mha.train()
    dl.manual_seed(0)
    a = mha(x, x, x, need_weights=False)[0].data
    dl.manual_seed(0)
    np.testing.assert_array_equal(mha(x, x, x, need_weights=False)[0].data, a)
    assert not np.allclose(a, ref(x, x, x, need_weights=False)[0].data)
    w = MultiheadAttention(8, 2, dropout=0.5, generator=3)(x.float(), x.float(), x.float())[1]
    assert (w.data == 0).any()  # the returned weights are the dropped ones, as PyTorch's


def test_mha_init_and_names():
    mha = MultiheadAttention(12, 3)
    assert [n for n, _ in mha.named_parameters()] == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                                      "out_proj.bias"]
    bound = np.sqrt(6 / (12 + 36))  # xavier_uniform_ of (3E, E)
    w = mha.in_proj_weight.data
    assert w.shape == (36, 12) and np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert not mha.in_proj_bias.data.any() and not mha.out_proj.bias.data.any()
    assert MultiheadAttention(12, 3, bias=False).in_proj_bias is None


def test_mha_errors_name_the_problem():
    with pytest.raises(AssertionError, match="embed_dim 10 must be divisible by num_heads 3"):
        MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="kdim=6 differs from embed_dim=8"):
        MultiheadAttention(8, 2, kdim=6)
    mha = MultiheadAttention(8, 2)
    x = dl.zeros(L, N, 8)
    with pytest.raises(RuntimeError, match="is_causal=True needs attn_mask"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(AssertionError, match=r"expected embedding dimension 8, got query \(4, 3, 6\)"):
        mha(dl.zeros(L, N, 6), x, x)
    with pytest.raises(RuntimeError, match=r"2D attn_mask is \(4, 5\), but should be \(4, 4\)"):
        mha(x, x, x, attn_mask=np.zeros((4, 5), bool))
    with pytest.raises(AssertionError, match=r"key_padding_mask of shape \(3, 4\)"):
        mha(x, x, x, key_padding_mask=np.zeros((3, 5), bool))
    with pytest.raises(AssertionError, match="only bool and floating types of key_padding_mask"):
        mha(x, x, x, key_padding_mask=np.zeros((3, 4), np.int64))


# ---- what no parity can check: finite differences in float64 ---------------------------------------------------------
_dl_only_rng = np.random.default_rng(31)


def r_dl_only(*shape: int) -> np.ndarray:
    return _dl_only_rng.standard_normal(shape)


BOOL = _dl_only_rng.random((3, 4)) > 0.4
BOOL[:, 0] = True
DEAD = BOOL.copy()
DEAD[1] = False  # query 1 attends to nothing: zeros, no gradient


def dl_only(name, fn, *arrays):
    return pytest.param(fn, arrays, id=name)


# What parity cannot check: dropout with dlbasics' own generator, and the packed path of the attention layers (the
# plain cases of scaled_dot_product_attention are in the table above, with parity and this finite-difference check)
DL_ONLY_CASES = [
    dl_only("dropout_fixed_seed", lambda q, k, v: scaled_dot_product_attention(q, k, v, dropout_p=0.4, generator=7),
            r_dl_only(2, 3, 3), r_dl_only(2, 4, 3), r_dl_only(2, 4, 2)),
    dl_only("packed_self_attention", lambda x: attend([x], None, None, True, None, 0.0, None, packed=True),
            r_dl_only(3, 2, 4, 3)),
    dl_only("packed_with_dropout", lambda x: attend([x], DEAD[:, :3], None, False, 0.6, 0.3, 11, packed=True),
            r_dl_only(3, 2, 3, 3)),
]


@pytest.mark.parametrize("fn, arrays", DL_ONLY_CASES)
def test_attention_gradcheck(fn, arrays):
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=True) for a in arrays]
    assert gradcheck(fn, inputs)


@pytest.mark.parametrize("self_attention", [True, False])
@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_gradcheck(self_attention, need_weights):
    mha = MultiheadAttention(4, 2, dtype=np.float64)
    with dl.no_grad():
        mha.in_proj_bias.data[...] = r_dl_only(12)
        mha.out_proj.bias.data[...] = r_dl_only(4)
    params = list(mha.parameters())
    kpm = np.array([[False, False, True], [False, False, False]])
    if self_attention:
        x = dl.tensor(r_dl_only(3, 2, 4), dtype=dl.float64, requires_grad=True)
        fn = lambda x, *ps: mha(x, x, x, key_padding_mask=kpm, need_weights=need_weights)[0]  # noqa: E731
        inputs = [x, *params]
    else:
        q, kv = (dl.tensor(r_dl_only(*s), dtype=dl.float64, requires_grad=True) for s in ((2, 2, 4), (3, 2, 4)))
        fn = lambda q, kv, *ps: mha(q, kv, kv, key_padding_mask=kpm, need_weights=need_weights)[0]  # noqa: E731
        inputs = [q, kv, *params]
    assert gradcheck(fn, inputs)
