"""BatchNorm and LayerNorm against torch.nn: forward, gradients (input, weight, bias) and BatchNorm's running
statistics in train and eval mode; LayerNorm over the last 1 and 2 dims with and without the affine parameters;
and the errors that name the shapes. Their values and gradients as functions (F.layer_norm, F.batch_norm) against
PyTorch in float32 and float64, and by finite differences, are cases of the one table, tests/cases.py.
"""

import numpy as np
import pytest
import torch

import dlbasics as dl
from dlbasics import nn
from dlbasics.ops.norm import layer_norm


@pytest.mark.parametrize(
    "layer, shape, kwargs",
    [
        ("BatchNorm1d", (8, 5), {}),
        ("BatchNorm1d", (4, 5, 3), {}),
        ("BatchNorm2d", (4, 3, 5, 6), {}),
        ("BatchNorm2d", (4, 3, 5, 6), {"affine": False}),
        ("BatchNorm1d", (8, 5), {"momentum": None}),
        ("BatchNorm1d", (8, 5), {"track_running_stats": False}),
    ],
)
def test_batchnorm_matches_pytorch_train_then_eval(layer, shape, kwargs):
    rng = np.random.default_rng(0)
    c = shape[1]
    d, t = getattr(nn, layer)(c, **kwargs), getattr(torch.nn, layer)(c, **kwargs)
    if d.affine:
        w, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
        d.weight.data[...] = w
        d.bias.data[...] = b
        t.weight.data = torch.tensor(w)
        t.bias.data = torch.tensor(b)
    for step in range(3):  # several batches: running stats accumulate
        x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        xd, xt = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yd, yt = d(xd), t(xt)
        np.testing.assert_allclose(yd.data, yt.detach().numpy(), rtol=1e-5, atol=2e-5, err_msg=f"step {step}")
        yd.backward(g)
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-4, atol=2e-5)
        if d.affine:
            np.testing.assert_allclose(d.weight.grad, t.weight.grad.numpy(), rtol=1e-4, atol=2e-5)
            np.testing.assert_allclose(d.bias.grad, t.bias.grad.numpy(), rtol=1e-4, atol=2e-5)
            d.zero_grad()
            t.zero_grad()
    sd_t = {k: v.numpy() for k, v in t.state_dict().items()}
    assert list(d.state_dict()) == list(sd_t)
    for k, v in d.state_dict().items():
        np.testing.assert_allclose(v, sd_t[k], rtol=1e-5, atol=1e-6, err_msg=k)
    d.eval()
    t.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    xd, xt = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = d(xd), t(xt)
    np.testing.assert_allclose(yd.data, yt.detach().numpy(), rtol=1e-5, atol=2e-5)
    yd.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-4, atol=2e-5)


def test_batchnorm_errors_name_the_shape():
    with pytest.raises(RuntimeError, match=r"BatchNorm1d\(5\).*\(8, 4\)"):
        nn.BatchNorm1d(5)(dl.zeros(8, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(4)(dl.zeros(1, 4))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_functional_batch_norm_updates_the_running_statistics_as_torch(training, affine):
    """F.batch_norm's in-place update of the running statistics, as torch's (its values and gradients against
    PyTorch are the case table's, tests/cases.py)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5, 2)).astype(np.float32) * 2 + 1
    rm, rv = rng.standard_normal(3).astype(np.float32), rng.random(3).astype(np.float32) + 0.5
    w, b = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    outs = {}
    for lib, F_ in (("dl", dl.nn.functional), ("torch", torch.nn.functional)):
        t = (lambda a, g=False: dl.tensor(a.copy(), requires_grad=g)) if lib == "dl" else \
            (lambda a, g=False: torch.tensor(a.copy(), requires_grad=g))
        xt, rmt, rvt = t(x, True), t(rm), t(rv)
        wt, bt = (t(w, True), t(b, True)) if affine else (None, None)
        F_.batch_norm(xt, rmt, rvt, wt, bt, training=training, momentum=0.3, eps=1e-4)
        outs[lib] = [np.asarray(a.detach() if lib == "torch" else a.data) for a in (rmt, rvt)]
    for a, b_ in zip(outs["dl"], outs["torch"]):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-6)
    if not training:
        np.testing.assert_array_equal(outs["dl"], [rm, rv])  # evaluation reads them, never writes


def test_functional_batch_norm_errors_name_the_problem():
    x = dl.randn(4, 3)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        dl.nn.functional.batch_norm(x, None, None)
    with pytest.raises(RuntimeError, match="running_mean of shape"):
        dl.nn.functional.batch_norm(x, dl.zeros(2), dl.ones(3), training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        dl.nn.functional.batch_norm(dl.randn(1, 3), None, None, training=True)


# ---- LayerNorm -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, normalized_shape, kwargs",
    [
        ((8, 5), 5, {}),
        ((4, 6, 7), (7,), {}),
        ((4, 6, 7), (6, 7), {}),
        ((2, 3, 4, 5), [4, 5], {}),
        ((3, 4, 5), (5,), {"elementwise_affine": False}),
        ((3, 4, 5), (4, 5), {"bias": False}),
        ((16, 2), 2, {}),
        ((5, 9), 9, {"eps": 1e-3}),
    ],
)
def test_layernorm_module_is_torch_s_with_the_function_inside(shape, normalized_shape, kwargs):
    """The module's parts: torch's parameter names, shapes and initial values, and its forward is ``F.layer_norm``
    with its parameters (whose values and gradients against PyTorch are the case table's, tests/cases.py)."""
    d, t = nn.LayerNorm(normalized_shape, **kwargs), torch.nn.LayerNorm(normalized_shape, **kwargs)
    sd_t = {k: v.numpy() for k, v in t.state_dict().items()}
    assert list(d.state_dict()) == list(sd_t)
    for k, v in d.state_dict().items():
        np.testing.assert_array_equal(v, sd_t[k], err_msg=k)
    x = dl.tensor((np.random.default_rng(0).standard_normal(shape) * 3 + 2).astype(np.float32))
    y = d(x)
    assert y.dtype == dl.float32
    np.testing.assert_array_equal(y.data, layer_norm(x, normalized_shape, d.weight, d.bias, d.eps).data)


def test_layernorm_is_the_same_in_train_and_eval():
    ln = nn.LayerNorm(6)
    x = dl.tensor(np.random.default_rng(1).standard_normal((4, 6)))
    np.testing.assert_array_equal(ln(x).data, ln.eval()(x).data)
    assert not list(ln.buffers())  # no running statistics


def test_layernorm_of_one_feature_is_the_bias():
    # (torch is no oracle here: its xhat is rounding noise times 1/sqrt(eps); ours is exactly 0)
    ln = nn.LayerNorm(1)
    with dl.no_grad():
        ln.bias.data[...] = 0.5
    np.testing.assert_array_equal(ln(dl.tensor([[3.0], [-7.0]])).data, [[0.5], [0.5]])


def test_layer_norm_function_matches_module():
    rng = np.random.default_rng(2)
    ln = nn.LayerNorm((3, 4))
    with dl.no_grad():
        ln.weight.data[...] = rng.standard_normal((3, 4))
        ln.bias.data[...] = rng.standard_normal((3, 4))
    x = dl.tensor(rng.standard_normal((5, 3, 4)).astype(np.float32))
    np.testing.assert_array_equal(layer_norm(x, (3, 4), ln.weight, ln.bias, 1e-5).data, ln(x).data)
    np.testing.assert_allclose(layer_norm(x, 4).data.mean(-1), 0, atol=1e-6)


def test_layernorm_errors_name_the_shapes():
    with pytest.raises(RuntimeError, match=r"LayerNorm\(\[5\]\).*\(8, 4\)"):
        nn.LayerNorm(5)(dl.zeros(8, 4))
    with pytest.raises(RuntimeError, match=r"layer_norm: weight must have shape \(4,\)"):
        layer_norm(dl.zeros(2, 4), 4, dl.ones(3))
    with pytest.raises(ValueError, match="positive sizes"):
        nn.LayerNorm(())
