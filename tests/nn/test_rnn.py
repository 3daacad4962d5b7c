"""Recurrent layers, cells, Embedding and packed sequences against PyTorch: a torch module's state_dict loads into
ours by name, and the same inputs give the same outputs and the same gradients (input, initial state, every
parameter). float64 with tight tolerances; one float32 case; the kernel path (forced on tiny sizes) and the NumPy
path both."""

import numpy as np
import pytest
import torch

import dlbasics as dl
from dlbasics import kernels
from dlbasics.nn.layers.embedding import Embedding
from dlbasics.nn.layers.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from dlbasics.nn.utils.rnn import pack_padded_sequence, pack_sequence, pad_packed_sequence

TOL64 = dict(rtol=1e-9, atol=1e-11)
TOL32 = dict(rtol=2e-5, atol=2e-6)

KINDS = {  # name -> (ours, torch's), same arguments
    "rnn-tanh": (RNN, torch.nn.RNN, {}),
    "rnn-relu": (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, torch.nn.LSTM, {}),
    "gru": (GRU, torch.nn.GRU, {}),
}
CELLS = {
    "rnn-tanh": (RNNCell, torch.nn.RNNCell, {}),
    "rnn-relu": (RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (LSTMCell, torch.nn.LSTMCell, {}),
    "gru": (GRUCell, torch.nn.GRUCell, {}),
}
I, H = 4, 5


def use_path(path, monkeypatch):
    """Run the recurrent ops on their NumPy twins, or on the compiled kernels even at these tiny sizes."""
    if path == "kernel":
        pytest.importorskip("numba", reason="the compiled kernels need numba")
        monkeypatch.setattr(kernels, "JIT", True)
        monkeypatch.setattr(kernels, "MIN_SIZE", 0)
    else:
        monkeypatch.setattr(kernels, "JIT", False)


@pytest.fixture(params=["numpy", "kernel"])
def path(request, monkeypatch):
    """Both paths (for the tests that are cheap)."""
    use_path(request.param, monkeypatch)
    return request.param


@pytest.fixture
def numpy_path(monkeypatch):
    use_path("numpy", monkeypatch)


def _pair(kind, table, dtype, *args, **kwargs):
    ours, theirs, extra = table[kind]
    torch.manual_seed(0)
    tm = theirs(*args, **extra, **kwargs).to(torch.float64 if dtype == np.float64 else torch.float32)
    dm = ours(*args, **extra, **kwargs, dtype=dtype)
    sd = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    assert list(sd) == list(dm.state_dict()), "state_dict names differ from torch's"
    dm.load_state_dict(sd)
    return dm, tm


def _leaf(a):
    return dl.tensor(a, dtype=a.dtype, requires_grad=True), torch.tensor(a, requires_grad=True)


def _flat(out):
    """The tensors of a (nested) result: (output, h_n) or (output, (h_n, c_n)), a PackedSequence by its data."""
    if isinstance(out, tuple | list):
        if hasattr(out, "batch_sizes"):
            return [out.data]
        return [t for o in out for t in _flat(o)]
    return [out]


def _compare(dm, tm, dl_out, torch_out, dl_leaves, torch_leaves, tol, seed=1):
    """Forward values, then one random upstream gradient through every output: leaves' and parameters' grads."""
    d_outs, t_outs = _flat(dl_out), _flat(torch_out)
    assert len(d_outs) == len(t_outs)
    rng = np.random.default_rng(seed)
    total_d, total_t = None, None
    for d, t in zip(d_outs, t_outs):
        assert d.shape == tuple(t.shape)
        np.testing.assert_allclose(d.data, t.detach().numpy(), **tol)
        g = rng.standard_normal(d.shape).astype(d.dtype)
        td, tt = (d * dl.tensor(g, dtype=g.dtype)).sum(), (t * torch.from_numpy(g)).sum()
        total_d, total_t = (td, tt) if total_d is None else (total_d + td, total_t + tt)
    total_d.backward()
    total_t.backward()
    for k, (a, b) in enumerate(zip(dl_leaves, torch_leaves)):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), err_msg=f"input {k}", **tol)
    tparams = dict(tm.named_parameters())
    for name, p in dm.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), err_msg=name, **tol)


def _state(kind, shape, rng, dtype):
    hs = [rng.standard_normal(shape).astype(dtype) for _ in range(2 if kind == "lstm" else 1)]
    pairs = [_leaf(h) for h in hs]
    d = tuple(p[0] for p in pairs) if kind == "lstm" else pairs[0][0]
    t = tuple(p[1] for p in pairs) if kind == "lstm" else pairs[0][1]
    return d, t, [p[0] for p in pairs], [p[1] for p in pairs]


# ---- RNN, LSTM, GRU: every option -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_hx", [False, True])
def test_layers_match_torch(kind, batch_first, bidirectional, with_hx, numpy_path):
    _layers_match_torch(kind, batch_first, bidirectional, with_hx)


@pytest.mark.parametrize("kind", list(KINDS))
def test_layers_match_torch_on_kernels(kind, monkeypatch):
    """The whole grid runs on the NumPy twins above; the kernels (held equal to the twins in
    tests/kernels/test_recurrent_kernels.py) on the case that exercises every part."""
    use_path("kernel", monkeypatch)
    _layers_match_torch(kind, batch_first=True, bidirectional=True, with_hx=True)


def _layers_match_torch(kind, batch_first, bidirectional, with_hx):
    dm, tm = _pair(kind, KINDS, np.float64, I, H, num_layers=2, batch_first=batch_first, bidirectional=bidirectional)
    rng = np.random.default_rng(0)
    t_len, batch = 6, 3
    x = rng.standard_normal((batch, t_len, I) if batch_first else (t_len, batch, I))
    xd, xt = _leaf(x)
    leaves_d, leaves_t = [xd], [xt]
    args_d, args_t = (xd,), (xt,)
    if with_hx:
        hd, ht, ld, lt = _state(kind, (2 * (1 + bidirectional), batch, H), rng, np.float64)
        args_d, args_t = (xd, hd), (xt, ht)
        leaves_d += ld
        leaves_t += lt
    _compare(dm, tm, dm(*args_d), tm(*args_t), leaves_d, leaves_t, TOL64)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("with_hx", [False, True])
def test_unbatched_input(kind, with_hx, numpy_path):
    dm, tm = _pair(kind, KINDS, np.float64, I, H, num_layers=2, bidirectional=True)
    rng = np.random.default_rng(2)
    xd, xt = _leaf(rng.standard_normal((7, I)))
    if with_hx:
        hd, ht, ld, lt = _state(kind, (4, H), rng, np.float64)
        _compare(dm, tm, dm(xd, hd), tm(xt, ht), [xd, *ld], [xt, *lt], TOL64)
    else:
        _compare(dm, tm, dm(xd), tm(xt), [xd], [xt], TOL64)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn-tanh"])
def test_float32(kind, path):
    dm, tm = _pair(kind, KINDS, np.float32, I, H, num_layers=2, bidirectional=True, batch_first=True)
    rng = np.random.default_rng(3)
    xd, xt = _leaf(rng.standard_normal((3, 6, I)).astype(np.float32))
    hd, ht, ld, lt = _state(kind, (4, 3, H), rng, np.float32)
    _compare(dm, tm, dm(xd, hd), tm(xt, ht), [xd, *ld], [xt, *lt], TOL32)


def test_float32_long_sequence_on_kernels(monkeypatch):
    """64 steps in float32 through the kernels' rational tanh: the rounding does not build up."""
    use_path("kernel", monkeypatch)
    dm, tm = _pair("lstm", KINDS, np.float32, 8, 16, num_layers=2)
    xd, xt = _leaf(np.random.default_rng(10).standard_normal((64, 4, 8)).astype(np.float32))
    _compare(dm, tm, dm(xd), tm(xt), [xd], [xt], dict(rtol=1e-4, atol=1e-5))


def test_no_bias_and_dropout_in_eval():
    dm, tm = _pair("lstm", KINDS, np.float64, I, H, num_layers=2, bias=False, dropout=0.5)
    dm.eval()
    tm.eval()
    xd, xt = _leaf(np.random.default_rng(4).standard_normal((5, 2, I)))
    _compare(dm, tm, dm(xd), tm(xt), [xd], [xt], TOL64)


def test_dropout_between_layers_in_training():
    """Masks differ from torch's (another generator); what must hold: the last layer gets none, the first layer's
    output is masked and scaled, and a seeded generator repeats its masks."""
    x = dl.tensor(np.random.default_rng(5).standard_normal((6, 2, I)))
    runs = []
    for _ in range(2):
        m = GRU(I, H, num_layers=2, dropout=0.5, generator=7)
        dl.manual_seed(0)
        m.reset_parameters(generator=1)
        runs.append(m(x)[0].data)
    np.testing.assert_array_equal(runs[0], runs[1])
    m.eval()
    assert not np.allclose(m(x)[0].data, runs[0])
    one = GRU(I, H, num_layers=1)
    with pytest.warns(UserWarning, match="num_layers=1"):
        GRU(I, H, num_layers=1, dropout=0.3)
    one.train()
    np.testing.assert_array_equal(one(x)[0].data, one(x)[0].data)  # no dropout after the last layer


# ---- cells -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_hx", [False, True])
def test_cells_match_torch(kind, batched, with_hx, path):
    dm, tm = _pair(kind, CELLS, np.float64, I, H)
    rng = np.random.default_rng(6)
    xd, xt = _leaf(rng.standard_normal((3, I) if batched else (I,)))
    if with_hx:
        hd, ht, ld, lt = _state(kind, (3, H) if batched else (H,), rng, np.float64)
        _compare(dm, tm, dm(xd, hd), tm(xt, ht), [xd, *ld], [xt, *lt], TOL64)
    else:
        _compare(dm, tm, dm(xd), tm(xt), [xd], [xt], TOL64)


def test_cell_unrolled_equals_layer():
    """An LSTMCell stepped by hand gives the LSTM layer's outputs (same weights, names without the layer suffix)."""
    layer = LSTM(I, H, dtype=np.float64)
    cell = LSTMCell(I, H, dtype=np.float64)
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = dl.tensor(np.random.default_rng(7).standard_normal((4, 2, I)), dtype=dl.float64)
    out, (_, c_n) = layer(x)
    h = c = None
    for t in range(4):
        h, c = cell(x[t], None if h is None else (h, c))
        np.testing.assert_allclose(h.data, out.data[t], **TOL64)
    np.testing.assert_allclose(c.data, c_n.data[0], **TOL64)


# ---- packed sequences ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("batch_first", [False, True])
def test_packed_sequences_match_torch(kind, batch_first, monkeypatch):
    use_path("kernel" if batch_first else "numpy", monkeypatch)
    dm, tm = _pair(kind, KINDS, np.float64, I, H, num_layers=2, bidirectional=True, batch_first=batch_first)
    rng = np.random.default_rng(8)
    lengths = [3, 6, 1, 4]  # unsorted: sorted_indices / unsorted_indices at work
    x = rng.standard_normal((4, 6, I) if batch_first else (6, 4, I))
    xd, xt = _leaf(x)
    hd, ht, ld, lt = _state(kind, (4, 4, H), rng, np.float64)
    pd = pack_padded_sequence(xd, lengths, batch_first=batch_first, enforce_sorted=False)
    pt = torch.nn.utils.rnn.pack_padded_sequence(xt, lengths, batch_first=batch_first, enforce_sorted=False)
    np.testing.assert_array_equal(pd.batch_sizes.data, pt.batch_sizes.numpy())
    np.testing.assert_array_equal(pd.sorted_indices.data, pt.sorted_indices.numpy())
    out_d, out_t = dm(pd, hd), tm(pt, ht)
    yd, len_d = pad_packed_sequence(out_d[0], batch_first=batch_first, total_length=7)
    yt, len_t = torch.nn.utils.rnn.pad_packed_sequence(out_t[0], batch_first=batch_first, total_length=7)
    np.testing.assert_array_equal(len_d.data, len_t.numpy())
    _compare(dm, tm, (yd, out_d[1]), (yt, out_t[1]), [xd, *ld], [xt, *lt], TOL64)


def test_packed_sorted_and_pack_sequence():
    dm, tm = _pair("lstm", KINDS, np.float64, I, H)
    rng = np.random.default_rng(9)
    seqs = [rng.standard_normal((n, I)) for n in (5, 3, 3, 1)]
    leaves = [_leaf(s) for s in seqs]
    pd = pack_sequence([a for a, _ in leaves])
    pt = torch.nn.utils.rnn.pack_sequence([b for _, b in leaves])
    assert pd.sorted_indices is None and pt.sorted_indices is None
    np.testing.assert_array_equal(pd.data.data, pt.data.detach().numpy())
    out_d, out_t = dm(pd), tm(pt)
    assert out_d[0].sorted_indices is None
    _compare(dm, tm, out_d, out_t, [a for a, _ in leaves], [b for _, b in leaves], TOL64)


def test_pack_padded_sequence_errors():
    x = dl.zeros(4, 3, I)
    with pytest.raises(RuntimeError, match="decreasing"):
        pack_padded_sequence(x, [2, 4, 1])
    with pytest.raises(ValueError, match="3 lengths for a batch of 4"):
        pack_padded_sequence(x, [4, 2, 1], batch_first=True)
    with pytest.raises(RuntimeError, match="at least 1"):
        pack_padded_sequence(x, [4, 2, 0])
    with pytest.raises(ValueError, match="total_length 2"):
        pad_packed_sequence(pack_padded_sequence(x, [4, 2, 1]), total_length=2)


# ---- Embedding ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_loads_torch_s_state_dict_and_is_the_function(padding_idx):
    """The module's parts: torch's state_dict loads by name, and its forward is ``F.embedding`` of its weight (whose
    values and gradients against PyTorch, padding rows included, are the case table's, tests/cases.py; the
    compiled scatter-add against its twin is tests/kernels/test_recurrent_kernels.py's)."""
    torch.manual_seed(0)
    tm = torch.nn.Embedding(10, 6, padding_idx=padding_idx)
    dm = Embedding(10, 6, padding_idx=padding_idx)
    dm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    ids = np.array([[1, 2, 9, 1], [9, 9, 0, 2], [1, 1, 1, 3]])
    np.testing.assert_array_equal(dm(dl.tensor(ids)).data, tm(torch.tensor(ids)).detach().numpy())
    np.testing.assert_array_equal(dm(dl.tensor(ids)).data,
                                  dl.nn.functional.embedding(ids, dm.weight, padding_idx=padding_idx).data)


def test_embedding_functional_and_init():
    from dlbasics.ops.embedding import embedding

    w = dl.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    out = embedding(dl.tensor([3, 0, 3]), w, padding_idx=-4)  # -4 is row 0
    np.testing.assert_array_equal(out.data, w.data[[3, 0, 3]])
    out.sum().backward()
    np.testing.assert_array_equal(w.grad, [[0, 0, 0], [0, 0, 0], [0, 0, 0], [2, 2, 2]])
    e = Embedding(1000, 64, padding_idx=-2)
    assert e.padding_idx == 998 and not e.weight.data[998].any()
    assert abs(e.weight.data.std() - 1) < 0.02 and abs(e.weight.data.mean()) < 0.02  # N(0, 1)
    frozen = Embedding.from_pretrained(np.eye(3))
    assert not frozen.weight.requires_grad and frozen.weight.dtype == np.float64


def test_embedding_errors_name_the_range_and_layer():
    e = Embedding(5, 2)
    with pytest.raises(IndexError, match=r"Embedding\(5, 2\).*index 5 .*\[0, 5\)"):
        e(dl.tensor([0, 5]))
    with pytest.raises(IndexError, match=r"index -1 .*\[0, 5\)"):
        e(dl.tensor([-1]))
    with pytest.raises(TypeError, match="integer ids"):
        e(dl.tensor([0.5]))
    with pytest.raises(ValueError, match=r"padding_idx must be within \[-5, 5\)"):
        Embedding(5, 2, padding_idx=5)


# ---- errors ---------------------------------------------------------------------------------------------------
def test_recurrent_errors_name_shapes_and_layer():
    m = LSTM(I, H, num_layers=2)
    with pytest.raises(RuntimeError, match=r"LSTM\(4, 5\).*input \(3, 2, 7\) has 7 features, expected input_size=4"):
        m(dl.zeros(3, 2, 7))
    with pytest.raises(RuntimeError, match=r"expected h_0 of shape \(2, 2, 5\), got \(1, 2, 5\)"):
        m(dl.zeros(3, 2, I), (dl.zeros(1, 2, H), dl.zeros(2, 2, H)))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        m(dl.zeros(3, 2, I), dl.zeros(2, 2, H))
    with pytest.raises(ValueError, match="3-D"):
        m(dl.zeros(2, 3, 2, I))
    with pytest.raises(RuntimeError, match="dtype float64"):
        m(dl.zeros(3, 2, I, dtype=dl.float64))
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'"):
        RNN(I, H, 1, "gelu")
    with pytest.raises(RuntimeError, match=r"GRUCell\(4, 5\).*expected a state of shape \(2, 5\)"):
        GRUCell(I, H)(dl.zeros(2, I), dl.zeros(3, H))
