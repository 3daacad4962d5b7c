"""BatchNorm and LayerNorm against torch.nn: forward, gradients (input, weight, bias) and BatchNorm's running
statistics in train and eval mode; LayerNorm over the last 1 and 2 dims with and without the affine parameters;
float64 gradient checks of both fused backwards, and the errors that name the shapes.
"""

import numpy as np
import pytest
import torch

import dlbasics as dl
from dlbasics import nn
from dlbasics.autograd import gradcheck
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


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradcheck_float64(training):
    bn = nn.BatchNorm2d(2).double()
    rng = np.random.default_rng(0)
    with dl.no_grad():
        bn.weight.data[...] = rng.standard_normal(2)
        bn.running_var.data[...] = [0.5, 2.0]
    bn.train(training)
    x = dl.tensor(rng.standard_normal((3, 2, 2, 2)), dtype=dl.float64, requires_grad=True)
    assert gradcheck(lambda x, w, b: bn(x), [x, bn.weight, bn.bias])


def test_batchnorm_errors_name_the_shape():
    with pytest.raises(RuntimeError, match=r"BatchNorm1d\(5\).*\(8, 4\)"):
        nn.BatchNorm1d(5)(dl.zeros(8, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(4)(dl.zeros(1, 4))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_functional_batch_norm_matches_torch(training, affine):
    """F.batch_norm: output, gradients and the in-place update of the running statistics, as torch's."""
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
        y = F_.batch_norm(xt, rmt, rvt, wt, bt, training=training, momentum=0.3, eps=1e-4)
        (y * y).sum().backward()
        grads = [xt.grad] + ([wt.grad, bt.grad] if affine else [])
        outs[lib] = ([np.asarray(a.detach() if lib == "torch" else a.data) for a in (y, rmt, rvt)]
                     + [np.asarray(gr) for gr in grads])
    for a, b_ in zip(outs["dl"], outs["torch"]):
        np.testing.assert_allclose(a, b_, rtol=1e-4, atol=1e-4)


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
def test_layernorm_matches_pytorch(shape, normalized_shape, kwargs):
    rng = np.random.default_rng(0)
    d, t = nn.LayerNorm(normalized_shape, **kwargs), torch.nn.LayerNorm(normalized_shape, **kwargs)
    d_params = [p for p in (d.weight, d.bias) if p is not None]
    t_params = [p for p in (t.weight, t.bias) if p is not None]
    assert [n for n, _ in d.named_parameters()] == [n for n, _ in t.named_parameters()]
    for pd, pt in zip(d_params, t_params):
        v = rng.standard_normal(pd.shape).astype(np.float32)
        pd.data[...] = v
        pt.data = torch.tensor(v)
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    xd, xt = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = d(xd), t(xt)
    np.testing.assert_allclose(yd.data, yt.detach().numpy(), rtol=1e-5, atol=2e-5)
    assert yd.data.dtype == np.float32
    yd.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-4, atol=3e-5)
    for pd, pt in zip(d_params, t_params):
        np.testing.assert_allclose(pd.grad, pt.grad.numpy(), rtol=1e-4, atol=3e-5)
    sd_t = {k: v.numpy() for k, v in t.state_dict().items()}
    assert list(d.state_dict()) == list(sd_t)


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


@pytest.mark.parametrize("normalized_shape, kwargs", [((4,), {}), ((3, 4), {}), ((3, 4), {"bias": False}),
                                                      ((4,), {"elementwise_affine": False})])
def test_layernorm_gradcheck_float64(normalized_shape, kwargs):
    ln = nn.LayerNorm(normalized_shape, **kwargs).double()
    rng = np.random.default_rng(0)
    params = [p for p in (ln.weight, ln.bias) if p is not None]
    with dl.no_grad():
        for p in params:
            p.data[...] = rng.standard_normal(p.shape)
    x = dl.tensor(rng.standard_normal((2, 3, 4)), dtype=dl.float64, requires_grad=True)
    assert gradcheck(lambda x, *ps: ln(x), [x, *params])


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
