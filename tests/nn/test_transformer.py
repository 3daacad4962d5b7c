"""Transformer layers, stacks and the whole nn.Transformer against PyTorch: a PyTorch module's state dict loaded
by name into ours, then forward values and every gradient (inputs and all parameters) compared, float64 to
rounding and float32 to a few ulps; post-norm and pre-norm, relu and gelu, both layouts, masks. Dropout is
compared in evaluation (where both are the identity); with gradients enabled PyTorch takes its step-by-step
path, which is the one reproduced."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlbasics as dl
from dlbasics import nn
from dlbasics.nn.layers.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

# PyTorch's notes on its inference fast paths and on mixing bool and float masks (deprecated there)
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.usefixtures("one_torch_thread")]




_rng = np.random.default_rng(2017)
D, H, FF = 8, 2, 16  # d_model, heads, feed-forward width
S, T, N = 6, 5, 3  # source and target lengths, batch


def r(*shape: int, dtype=np.float64) -> np.ndarray:
    return _rng.standard_normal(shape).astype(dtype)


def _torch_dtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def load_from_torch(ours, theirs, dtype=np.float64):
    """Randomize torch's parameters (its biases start at 0, LayerNorm's weights at 1) and load them into ours."""
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.from_numpy(r(*p.shape, dtype=dtype) * 0.3 + (1.0 if p.ndim == 1 and p.shape[0] == D else 0)))
    sd = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert list(sd) == list(ours.state_dict()), "state_dict names differ from PyTorch's"
    ours.load_state_dict(sd)


def compare(ours, theirs, arrays, kw, dtype=np.float64, tol=(1e-10, 1e-12)):
    """Call both on the same inputs (and masks, given as NumPy arrays in ``kw``): outputs, inputs' gradients and
    every parameter's gradient."""
    tx = [torch.tensor(a, requires_grad=True) for a in arrays]
    dx = [dl.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    tkw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    ot, od = theirs(*tx, **tkw), ours(*dx, **kw)
    rtol, atol = tol
    np.testing.assert_allclose(od.data, ot.detach().numpy(), rtol=rtol, atol=atol)
    g = r(*ot.shape, dtype=dtype)
    ot.backward(torch.from_numpy(g))
    od.backward(g)
    for i, (a, b) in enumerate(zip(dx, tx)):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"input {i}")
    tp = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(tp)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, tp[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)


def _layout(length: int, batch_first: bool) -> tuple[int, ...]:
    return (N, length, D) if batch_first else (length, N, D)


def causal(n: int) -> np.ndarray:
    return np.triu(np.full((n, n), -np.inf), 1)


def padding(n: int) -> np.ndarray:
    """(N, n) True at the padded end of each sequence but the first."""
    return np.arange(n) >= np.array([n, n - 2, n - 1])[:, None]


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer(norm_first, activation, batch_first):
    kw = dict(dropout=0.1, activation=activation, batch_first=batch_first, norm_first=norm_first)
    ours, theirs = TransformerEncoderLayer(D, H, FF, dtype=np.float64, **kw), \
        torch.nn.TransformerEncoderLayer(D, H, FF, dtype=torch.float64, **kw)
    load_from_torch(ours, theirs)
    ours.eval(), theirs.eval()
    compare(ours, theirs, [r(*_layout(S, batch_first))], {})
    compare(ours, theirs, [r(*_layout(S, batch_first))], dict(src_key_padding_mask=padding(S)))


@pytest.mark.parametrize("masks", [
    dict(src_mask=causal(S), is_causal=True),
    dict(src_mask=causal(S) > 0),  # bool: True may not attend
    dict(src_mask=causal(S), src_key_padding_mask=padding(S)),
    dict(src_mask=r(S, S), src_key_padding_mask=padding(S).astype(np.float64) * -1e9),
], ids=["causal", "bool_mask", "causal_and_padding", "float_masks"])
def test_encoder_layer_masks(masks):
    ours, theirs = TransformerEncoderLayer(D, H, FF, dropout=0.0, dtype=np.float64), \
        torch.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, dtype=torch.float64)
    load_from_torch(ours, theirs)
    compare(ours, theirs, [r(S, N, D)], masks)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_layer(norm_first, activation, batch_first):
    kw = dict(dropout=0.0, activation=activation, batch_first=batch_first, norm_first=norm_first)
    ours, theirs = TransformerDecoderLayer(D, H, FF, dtype=np.float64, **kw), \
        torch.nn.TransformerDecoderLayer(D, H, FF, dtype=torch.float64, **kw)
    load_from_torch(ours, theirs)
    arrays = [r(*_layout(T, batch_first)), r(*_layout(S, batch_first))]
    compare(ours, theirs, arrays, dict(tgt_mask=causal(T), tgt_is_causal=True, memory_key_padding_mask=padding(S)))
    compare(ours, theirs, arrays, dict(memory_mask=r(T, S), tgt_key_padding_mask=padding(T)))


def test_stacks_with_final_norm():
    ours = TransformerEncoder(TransformerEncoderLayer(D, H, FF, dropout=0.0, dtype=np.float64), 2,
                              nn.LayerNorm(D, dtype=np.float64))
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, dtype=torch.float64),
                                         2, torch.nn.LayerNorm(D, dtype=torch.float64), enable_nested_tensor=False)
    load_from_torch(ours, theirs)
    assert ours.layers[0].linear1.weight is not ours.layers[1].linear1.weight  # copies, not one layer twice
    compare(ours, theirs, [r(S, N, D)], dict(mask=causal(S), src_key_padding_mask=padding(S)))
    compare(ours, theirs, [r(S, N, D)], dict(mask=causal(S)))  # detected as causal: the fused path, same values
    ours = TransformerDecoder(TransformerDecoderLayer(D, H, FF, dropout=0.0, norm_first=True, dtype=np.float64), 2)
    theirs = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, norm_first=True,
                                                                          dtype=torch.float64), 2)
    load_from_torch(ours, theirs)
    compare(ours, theirs, [r(T, N, D), r(S, N, D)], dict(tgt_mask=causal(T), memory_key_padding_mask=padding(S)))


@pytest.mark.parametrize("batch_first, norm_first", [(False, False), (True, True)])
def test_transformer(batch_first, norm_first):
    kw = dict(d_model=D, nhead=H, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=FF, dropout=0.1,
              batch_first=batch_first, norm_first=norm_first)
    ours, theirs = Transformer(**kw, dtype=np.float64), torch.nn.Transformer(**kw, dtype=torch.float64)
    load_from_torch(ours, theirs)
    ours.eval(), theirs.eval()
    mask = Transformer.generate_square_subsequent_mask(T, dtype=dl.float64)
    compare(ours, theirs, [r(*_layout(S, batch_first)), r(*_layout(T, batch_first))],
            dict(tgt_mask=mask.data, src_key_padding_mask=padding(S), memory_key_padding_mask=padding(S)))


def test_transformer_float32_and_unbatched():
    kw = dict(d_model=D, nhead=H, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=FF, dropout=0.0,
              activation="gelu")
    ours, theirs = Transformer(**kw), torch.nn.Transformer(**kw)
    load_from_torch(ours, theirs, np.float32)
    arrays = [r(S, N, D, dtype=np.float32), r(T, N, D, dtype=np.float32)]
    compare(ours, theirs, arrays, dict(tgt_mask=causal(T).astype(np.float32)), np.float32, (2e-5, 1e-5))
    compare(ours, theirs, [r(S, D, dtype=np.float32), r(T, D, dtype=np.float32)],
            dict(tgt_mask=causal(T).astype(np.float32), tgt_is_causal=True), np.float32, (2e-5, 1e-5))


def test_square_subsequent_mask():
    m = Transformer.generate_square_subsequent_mask(4)
    np.testing.assert_array_equal(m.data, torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())
    assert m.dtype == np.float32 and Transformer.generate_square_subsequent_mask(3, dl.float64).dtype == np.float64


def test_init_and_submodule_names():
    layer = TransformerDecoderLayer(D, H, FF)
    assert [n for n, _ in layer.named_children()] == [n for n, _ in torch.nn.TransformerDecoderLayer(D, H, FF)
                                                      .named_children()]
    assert layer.activation is dl.nn.functional.relu  # a function, as PyTorch's: not a submodule
    gelu = nn.GELU(approximate="tanh")
    assert TransformerEncoderLayer(D, H, activation=gelu).activation is gelu
    model = Transformer(d_model=12, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=20)
    for name, p in model.named_parameters():  # every matrix xavier_uniform_, as PyTorch's Transformer
        if p.ndim > 1:
            bound = np.sqrt(6 / sum(p.shape))
            assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.7 * bound, name
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        TransformerEncoderLayer(D, H, activation="tanh")
    with pytest.raises(RuntimeError, match=r"batch number of src \(6, 3, 8\) and tgt \(5, 2, 8\)"):
        Transformer(D, H, 1, 1, FF)(dl.zeros(S, N, D), dl.zeros(T, 2, D))
    with pytest.raises(RuntimeError, match="must be equal to d_model=8"):
        Transformer(D, H, 1, 1, FF)(dl.zeros(S, N, 4), dl.zeros(T, N, 4))
