"""LayerNorm against torch.nn.LayerNorm: forward and gradients (input, weight, bias) over the last 1 and 2
dims, with and without the affine parameters; a float64 gradient check of the fused backward."""

import numpy as np
import pytest
import torch

import dlbasics as dl
from dlbasics import nn
from dlbasics.autograd import gradcheck
from dlbasics.ops.norm import layer_norm


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
