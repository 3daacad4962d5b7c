"""The attention op's backward against central finite differences in float64, where no parity can check it:
dropout with a fixed seed (the same mask on every evaluation), the packed self-attention input, and
MultiheadAttention's every parameter. The plain cases (masks of both kinds, causal, broadcast batch dims, a custom
scale, queries with every key masked) are in tests/oracle/test_attention_parity.py, each with parity and this check.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.autograd import gradcheck
from dlbasics.nn.layers.attention import MultiheadAttention
from dlbasics.ops.attention import attend, scaled_dot_product_attention

_rng = np.random.default_rng(31)


def r(*shape: int) -> np.ndarray:
    return _rng.standard_normal(shape)


BOOL = _rng.random((3, 4)) > 0.4
BOOL[:, 0] = True
DEAD = BOOL.copy()
DEAD[1] = False  # query 1 attends to nothing: zeros, no gradient


def case(name, fn, *arrays):
    return pytest.param(fn, arrays, id=name)


def sdpa(*args, **kw):
    return scaled_dot_product_attention(*args, **kw)


# What parity cannot check: dropout with dlbasics' own generator, and the packed path of the attention layers
# (the plain cases of scaled_dot_product_attention are in tests/oracle/test_attention_parity.py, with parity and this
# finite-difference check each)
CASES = [
    case("dropout_fixed_seed", lambda q, k, v: sdpa(q, k, v, dropout_p=0.4, generator=7), r(2, 3, 3), r(2, 4, 3),
         r(2, 4, 2)),
    case("packed_self_attention", lambda x: attend([x], None, None, True, None, 0.0, None, packed=True),
         r(3, 2, 4, 3)),
    case("packed_with_dropout", lambda x: attend([x], DEAD[:, :3], None, False, 0.6, 0.3, 11, packed=True),
         r(3, 2, 3, 3)),
]


@pytest.mark.parametrize("fn, arrays", CASES)
def test_attention_gradcheck(fn, arrays):
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=True) for a in arrays]
    assert gradcheck(fn, inputs)


@pytest.mark.parametrize("self_attention", [True, False])
@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_gradcheck(self_attention, need_weights):
    mha = MultiheadAttention(4, 2, dtype=np.float64)
    with dl.no_grad():
        mha.in_proj_bias.data[...] = r(12)
        mha.out_proj.bias.data[...] = r(4)
    params = list(mha.parameters())
    kpm = np.array([[False, False, True], [False, False, False]])
    if self_attention:
        x = dl.tensor(r(3, 2, 4), dtype=dl.float64, requires_grad=True)
        fn = lambda x, *ps: mha(x, x, x, key_padding_mask=kpm, need_weights=need_weights)[0]  # noqa: E731
        inputs = [x, *params]
    else:
        q, kv = (dl.tensor(r(*s), dtype=dl.float64, requires_grad=True) for s in ((2, 2, 4), (3, 2, 4)))
        fn = lambda q, kv, *ps: mha(q, kv, kv, key_padding_mask=kpm, need_weights=need_weights)[0]  # noqa: E731
        inputs = [q, kv, *params]
    assert gradcheck(fn, inputs)
