"""``dlbasics.nn.functional`` backward against central finite differences in float64.

Same table style as ``test_ops_gradcheck``: ``case(id, fn, *arrays)``, each array a float64 leaf that
requires grad. Targets, class weights and masks are constants inside ``fn`` unless the case checks the
gradient with respect to them (mse and BCE targets).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics.autograd import gradcheck

_rng = np.random.default_rng(4321)
REDUCTIONS = ("mean", "sum", "none")


def r(*shape: int) -> np.ndarray:
    """Normal samples kept at least 0.1 away from 0 (no relu/leaky_relu kinks)."""
    x = _rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.copysign(0.1, x) + x, x)


def probs(*shape: int) -> np.ndarray:
    """Rows of class probabilities along dim 1 (or dim 0 for a 1-D shape)."""
    p = _rng.uniform(0.1, 1.0, shape)
    axis = 1 if len(shape) > 1 else 0
    return p / p.sum(axis=axis, keepdims=True)


def unit(*shape: int) -> np.ndarray:
    """Targets strictly inside (0, 1)."""
    return _rng.uniform(0.1, 0.9, shape)


def case(name: str, fn, *arrays: np.ndarray):
    return pytest.param(fn, arrays, id=name)


T3 = dl.tensor([1, 0, 3])                      # class indices for (3, 4) logits
T3_IGN = dl.tensor([1, -100, 3])               # with the default ignore_index
T3_IGN2 = np.array([2, 0, 2])                  # with ignore_index=2 (rows 0 and 2 ignored)
T_ND = dl.tensor([[2, 0], [1, 1]])             # (N, d) = (2, 2) targets for (2, 3, 2) logits
T_ND_IGN = dl.tensor([[2, -100], [1, 0]])
W4 = dl.tensor([0.2, 1.0, 2.5, 0.7], dtype=dl.float64)
W3 = np.array([1.5, 0.5, 2.0])
Q34 = probs(3, 4)
Q_ND = probs(2, 3, 2)
Q4 = probs(4)
BCE_W = dl.tensor(_rng.uniform(0.5, 2.0, (3, 2)), dtype=dl.float64)
BCE_W_ROW = np.array([0.3, 1.7])
POS_W = dl.tensor([2.0, 0.5], dtype=dl.float64)
BCE_Y = unit(3, 2)
LIN_X, LIN_W = r(4, 3), r(2, 3)

ACTIVATIONS = [
    case("relu", F.relu, r(2, 3)),
    case("relu-method", lambda x: x.relu(), r(2, 3)),
    case("leaky_relu-default", F.leaky_relu, r(2, 3)),
    case("leaky_relu-0.2", lambda x: F.leaky_relu(x, 0.2), r(2, 3)),
    case("leaky_relu-kw", lambda x: F.leaky_relu(x, negative_slope=1.5), r(2, 3)),
    case("sigmoid", F.sigmoid, r(2, 3)),
    case("sigmoid-large", F.sigmoid, np.array([-8.0, -3.0, 3.0, 8.0])),
    case("dl.sigmoid", lambda x: dl.sigmoid(x) * x.sigmoid(), r(2, 3)),
    case("tanh", F.tanh, r(2, 3)),
    case("dl.tanh", lambda x: x.tanh() + dl.tanh(x), r(2, 3)),
    case("gelu-none", F.gelu, r(2, 3)),
    case("gelu-none-explicit", lambda x: F.gelu(x, approximate="none"), r(2, 3) * 3),
    case("gelu-tanh", lambda x: F.gelu(x, approximate="tanh"), r(2, 3) * 3),
    case("dropout", lambda x: F.dropout(x, 0.3, generator=0), r(3, 4)),
    case("dropout-p0.5-3d", lambda x: F.dropout(x, 0.5, training=True, generator=7), r(2, 3, 2)),
    case("dropout-eval-is-identity", lambda x: F.dropout(x, 0.5, training=False) * 2, r(2, 3)),
    case("dropout-p1", lambda x: F.dropout(x, 1.0) + x, r(2, 3)),
]

SOFTMAX = [
    case(f"{name}-dim{d}", partial(f, dim=d), r(2, 3, 2))
    for name, f in (("softmax", F.softmax), ("log_softmax", F.log_softmax))
    for d in (0, 1, 2, -1, -2, -3)
] + [
    case("softmax-method", lambda x: x.softmax(-1), r(2, 3)),
    case("log_softmax-method", lambda x: x.log_softmax(0), r(2, 3)),
    case("dl.softmax-1d", lambda x: dl.softmax(x, 0), r(4)),
    case("dl.log_softmax-1d", lambda x: dl.log_softmax(x, -1), r(4)),
]

LINEAR = [
    case("linear-bias", F.linear, r(4, 3), r(2, 3), r(2)),
    case("linear-no-bias", F.linear, r(4, 3), r(2, 3)),
    case("linear-bias-kw-none", lambda x, w: F.linear(x, w, bias=None), r(2, 3), r(2, 3)),
    case("linear-3d-input", F.linear, r(2, 3, 3), r(2, 3), r(2)),
    case("linear-1d-input", F.linear, r(3), r(2, 3), r(2)),
    case("linear-3d-no-bias", F.linear, r(2, 2, 3), r(4, 3)),
    case("linear-constant-input", lambda w, b: F.linear(dl.tensor(LIN_X, dtype=dl.float64), w, b), r(2, 3), r(2)),
    case("linear-constant-weight", lambda x: F.linear(x, dl.tensor(LIN_W, dtype=dl.float64)), r(4, 3)),
]

MSE = [
    case(f"mse-{red}", partial(F.mse_loss, reduction=red), r(2, 3), r(2, 3))
    for red in REDUCTIONS
] + [
    case("mse-default-constant-target", lambda x: F.mse_loss(x, np.ones((2, 3))), r(2, 3)),
    case("mse-3d", lambda x: F.mse_loss(x, dl.tensor(BCE_Y.reshape(3, 2, 1), dtype=dl.float64)), r(3, 2, 1)),
    # d = 3x - y spans both sides of delta; the loss is C1 at |d| = delta, so finite differences hold there too
    *[case(f"huber-{red}", lambda x, y, red=red: F.huber_loss(3 * x, y, reduction=red), r(2, 3), r(2, 3))
      for red in REDUCTIONS],
    case("huber-delta", lambda x, y: F.huber_loss(3 * x, y, delta=0.3), r(2, 3), r(2, 3)),
    case("smooth-l1-beta", lambda x, y: F.smooth_l1_loss(3 * x, y, beta=0.5), r(2, 3), r(2, 3)),
]

# (name, call(logits, reduction), logits array): every cross-entropy layout, crossed with every reduction.
CE_VARIANTS = [
    ("indices", lambda x, red: F.cross_entropy(x, T3, reduction=red), (3, 4)),
    ("indices-numpy-target", lambda x, red: F.cross_entropy(x, np.array([3, 3, 0]), reduction=red), (3, 4)),
    ("weight", lambda x, red: F.cross_entropy(x, T3, weight=W4, reduction=red), (3, 4)),
    ("ignore_index-default", lambda x, red: F.cross_entropy(x, T3_IGN, reduction=red), (3, 4)),
    ("ignore_index-2", lambda x, red: F.cross_entropy(x, T3_IGN2, ignore_index=2, reduction=red), (3, 4)),
    ("weight-ignore_index", lambda x, red: F.cross_entropy(x, T3_IGN, weight=W4, reduction=red), (3, 4)),
    ("label_smoothing", lambda x, red: F.cross_entropy(x, T3, label_smoothing=0.1, reduction=red), (3, 4)),
    ("label_smoothing-weight",
     lambda x, red: F.cross_entropy(x, T3, weight=W4, label_smoothing=0.2, reduction=red), (3, 4)),
    ("label_smoothing-ignore",
     lambda x, red: F.cross_entropy(x, T3_IGN, label_smoothing=0.3, reduction=red), (3, 4)),
    ("label_smoothing-weight-ignore",
     lambda x, red: F.cross_entropy(x, T3_IGN, weight=W4, label_smoothing=0.25, reduction=red), (3, 4)),
    ("probs", lambda x, red: F.cross_entropy(x, Q34, reduction=red), (3, 4)),
    ("probs-tensor-target", lambda x, red: F.cross_entropy(x, dl.tensor(Q34, dtype=dl.float64), reduction=red),
     (3, 4)),
    ("probs-weight", lambda x, red: F.cross_entropy(x, Q34, weight=W4, reduction=red), (3, 4)),
    ("probs-label_smoothing", lambda x, red: F.cross_entropy(x, Q34, label_smoothing=0.15, reduction=red), (3, 4)),
    ("NCd-indices", lambda x, red: F.cross_entropy(x, T_ND, reduction=red), (2, 3, 2)),
    ("NCd-weight-ignore", lambda x, red: F.cross_entropy(x, T_ND_IGN, weight=W3, reduction=red), (2, 3, 2)),
    ("NCd-label_smoothing", lambda x, red: F.cross_entropy(x, T_ND, label_smoothing=0.1, reduction=red), (2, 3, 2)),
    ("NCd-probs", lambda x, red: F.cross_entropy(x, Q_ND, reduction=red), (2, 3, 2)),
    ("unbatched-index", lambda x, red: F.cross_entropy(x, dl.tensor(2), reduction=red), (4,)),
    ("unbatched-weight", lambda x, red: F.cross_entropy(x, np.array(1), weight=W4, reduction=red), (4,)),
    ("unbatched-probs", lambda x, red: F.cross_entropy(x, Q4, reduction=red), (4,)),
]

# Probability targets that require grad: the gradient reaches the target too.
CE_SOFT_TARGET = [
    ("probs", lambda x, q, red: F.cross_entropy(x, q, reduction=red), (3, 4)),
    ("probs-weight-smoothing",
     lambda x, q, red: F.cross_entropy(x, q, weight=W4, label_smoothing=0.1, reduction=red), (3, 4)),
    ("NCd-probs", lambda x, q, red: F.cross_entropy(x, q, weight=W3, reduction=red), (2, 3, 2)),
    ("unbatched-probs", lambda x, q, red: F.cross_entropy(x, q, reduction=red), (4,)),
]

NLL_VARIANTS = [
    ("indices", lambda x, red: F.nll_loss(x, T3, reduction=red), (3, 4)),
    ("weight", lambda x, red: F.nll_loss(x, T3, weight=W4, reduction=red), (3, 4)),
    ("ignore_index-default", lambda x, red: F.nll_loss(x, T3_IGN, reduction=red), (3, 4)),
    ("ignore_index-2", lambda x, red: F.nll_loss(x, T3_IGN2, ignore_index=2, reduction=red), (3, 4)),
    ("weight-ignore_index", lambda x, red: F.nll_loss(x, T3_IGN, weight=W4, reduction=red), (3, 4)),
    ("log_softmax-input", lambda x, red: F.nll_loss(F.log_softmax(x, 1), T3, weight=W4, reduction=red), (3, 4)),
    ("NCd-indices", lambda x, red: F.nll_loss(x, T_ND, reduction=red), (2, 3, 2)),
    ("NCd-weight-ignore", lambda x, red: F.nll_loss(x, T_ND_IGN, weight=W3, reduction=red), (2, 3, 2)),
    ("unbatched", lambda x, red: F.nll_loss(x, dl.tensor(3), reduction=red), (4,)),
    ("unbatched-weight", lambda x, red: F.nll_loss(x, np.array(0), weight=W4, reduction=red), (4,)),
]

# (name, call(logits, target, reduction)): the target is a leaf too, so its gradient is checked.
BCE_VARIANTS = [
    ("plain", lambda x, y, red: F.binary_cross_entropy_with_logits(x, y, reduction=red)),
    ("weight", lambda x, y, red: F.binary_cross_entropy_with_logits(x, y, weight=BCE_W, reduction=red)),
    ("weight-broadcast-row",
     lambda x, y, red: F.binary_cross_entropy_with_logits(x, y, weight=BCE_W_ROW, reduction=red)),
    ("pos_weight", lambda x, y, red: F.binary_cross_entropy_with_logits(x, y, pos_weight=POS_W, reduction=red)),
    ("weight-pos_weight",
     lambda x, y, red: F.binary_cross_entropy_with_logits(x, y, weight=BCE_W, pos_weight=[3.0, 0.25], reduction=red)),
]


def _bind(call, red):
    return lambda *args: call(*args, red)


LOSSES = (
    [case(f"cross_entropy-{name}-{red}", _bind(call, red), r(*shape) * 2)
     for name, call, shape in CE_VARIANTS for red in REDUCTIONS]
    + [case(f"cross_entropy-target-grad-{name}-{red}", _bind(call, red), r(*shape), probs(*shape))
       for name, call, shape in CE_SOFT_TARGET for red in REDUCTIONS]
    + [case(f"nll_loss-{name}-{red}", _bind(call, red), r(*shape)) for name, call, shape in NLL_VARIANTS
       for red in REDUCTIONS]
    + [case(f"bce_with_logits-{name}-{red}", _bind(call, red), r(3, 2) * 2, unit(3, 2))
       for name, call in BCE_VARIANTS for red in REDUCTIONS]
    + [
        case("bce_with_logits-constant-target-default-mean",
             lambda x: F.binary_cross_entropy_with_logits(x, BCE_Y), r(3, 2)),
        case("bce_with_logits-large-logits", lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="sum"),
             np.array([-30.0, -5.0, 5.0, 30.0]), unit(4)),
        case("cross_entropy-large-logits", lambda x: F.cross_entropy(x, T3),
             np.array([[1000.0, -1000.0, 3.0, 0.5], [-500.0, 2.0, 1.0, 0.0], [0.3, 0.1, 0.2, 700.0]])),
    ]
)


@pytest.mark.parametrize(("fn", "arrays"), ACTIVATIONS + SOFTMAX + LINEAR + MSE + LOSSES)
def test_gradcheck(fn, arrays):
    inputs = [dl.tensor(a, dtype=dl.float64, requires_grad=True) for a in arrays]
    assert gradcheck(fn, inputs)
    for t in inputs:
        assert t.grad is not None and t.grad.shape == t.shape and t.grad.dtype == np.float64


def test_dropout_mask_is_reproducible_and_scaled():
    x = dl.tensor(np.ones((20, 20)), dtype=dl.float64)
    a, b = F.dropout(x, 0.3, generator=0), F.dropout(x, 0.3, generator=0)
    np.testing.assert_array_equal(a.data, b.data)
    assert set(np.unique(a.data)) <= {0.0, 1.0 / 0.7}
    assert 0.2 < np.mean(a.data == 0) < 0.4
    assert not np.array_equal(a.data, F.dropout(x, 0.3, generator=1).data)


def test_cross_entropy_matches_numpy_by_hand():
    z = _rng.standard_normal((3, 4))
    t = np.array([1, 0, 3])
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    w = W4.data
    x = dl.tensor(z, dtype=dl.float64)
    np.testing.assert_allclose(F.cross_entropy(x, t).item(), -logp[np.arange(3), t].mean())
    np.testing.assert_allclose(F.cross_entropy(x, t, weight=w).item(),
                               -(w[t] * logp[np.arange(3), t]).sum() / w[t].sum())
    np.testing.assert_allclose(F.nll_loss(x, t, reduction="none").data, -z[np.arange(3), t])
    np.testing.assert_allclose(F.cross_entropy(x, Q34, reduction="sum").item(), -(Q34 * logp).sum())


def test_bce_with_logits_matches_numpy_by_hand():
    x, y = _rng.standard_normal((3, 2)), unit(3, 2)
    pw = np.array([2.0, 0.5])
    s = 1 / (1 + np.exp(-x))
    expected = -(pw * y * np.log(s) + (1 - y) * np.log(1 - s))
    got = F.binary_cross_entropy_with_logits(dl.tensor(x, dl.float64), y, pos_weight=pw, reduction="none")
    np.testing.assert_allclose(got.data, expected)
