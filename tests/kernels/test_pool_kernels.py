"""Max and average pooling: the compiled loops against their NumPy twins, and the ops with and without them.

The loops take the input in its memory layout - channels-last, (N, H, C, W), (N, C, H, W), with gaps between
rows as a conv's output has them - so every case runs in each layout; float32 and float64; odd sizes; stride,
padding, dilation, ceil mode and overlapping windows; NaN and inf, ties. The op tests switch ``kernels.JIT`` off
and on in one process (every size takes the kernels when on), so the suite holds both paths equal whichever
``DLBASICS_NO_JIT`` says.
"""

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import kernels, nn
from dlbasics.kernels.pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from dlbasics.ops._layout import axis_order
from dlbasics.ops.pool import AvgPool2d, MaxPool2d
from tests.kernels.common import TOL, assert_same, both, run_layer

numba = pytest.importorskip("numba", reason="the compiled kernels need numba")

# (N, C, H, W), kernel, stride, padding, dilation, ceil_mode
GEOMETRIES = {
    "k2": ((3, 5, 8, 6), 2, 2, 0, 1, False),
    "k2_odd_sizes": ((2, 3, 7, 9), 2, 2, 0, 1, False),
    "k3_s2_overlap": ((2, 4, 13, 11), 3, 2, 0, 1, False),
    "k3_s1_pad1": ((2, 3, 6, 5), 3, 1, 1, 1, False),
    "k3_s2_pad1_ceil": ((2, 3, 8, 7), 3, 2, 1, 1, True),
    "k2x3_s1x2_ceil": ((1, 4, 7, 8), (2, 3), (1, 2), 0, 1, True),
    "k2x3_dil1x2": ((2, 3, 6, 9), (2, 3), 1, 0, (1, 2), False),
    "k3_s3_pad1_dil2": ((1, 2, 11, 10), 3, 3, 1, 2, False),
    "stride_beyond_kernel": ((2, 3, 9, 10), 2, 3, 0, 1, False),
    "global_1x1_rows": ((2, 5, 4, 1), (4, 1), 1, 0, 1, False),
    "one_column_padded": ((2, 5, 4, 1), 2, 1, 1, 1, False),  # W = 1 gives Wo = 2
    # short rows: each pass covers several output rows, the last group fewer; long rows: one output row a pass
    "lenet_sized": ((2, 3, 28, 28), 2, 2, 0, 1, False),
    "wide_rows": ((2, 40, 7, 15), 3, 2, 1, 1, True),
}
LAYOUTS = ["nchw", "nhcw", "nhwc", "nhwc_gaps", "nchw_gaps", "cnhw_gaps"]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _in_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """``a`` (N, C, H, W) copied into memory laid out as ``layout`` (gaps: 3 unused values after each row)."""
    n, c, h, w = a.shape
    if layout == "nchw":
        return a.copy()
    if layout == "nhcw":
        return np.ascontiguousarray(a.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    if layout == "nhwc":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if layout == "nhwc_gaps":  # the shifted conv's output: image rows with gaps between them
        buf = np.full((n, h, w * c + 3), np.nan, a.dtype)
        buf[:, :, :w * c] = a.transpose(0, 2, 3, 1).reshape(n, h, w * c)
        return buf[:, :, :w * c].reshape(n, h, w, c).transpose(0, 3, 1, 2)
    if layout == "nchw_gaps":
        buf = np.full((n, c, h, w + 3), np.nan, a.dtype)
        buf[..., :w] = a
        return buf[..., :w]
    if layout == "cnhw_gaps":  # the planar conv's output: channels outermost, padded rows
        buf = np.full((c, n, h, w + 3), np.nan, a.dtype)
        buf[..., :w] = a.transpose(1, 0, 2, 3)
        return buf[..., :w].transpose(1, 0, 2, 3)
    raise ValueError(layout)


def _input(shape, dtype, seed=0, special=True, integers=False):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape) if integers else rng.standard_normal(shape)  # integers: ties in most windows
    x = x.astype(dtype)
    if special:
        flat = x.reshape(-1)
        flat[[1, 7, 8, 20]] = [np.nan, np.inf, -np.inf, np.nan]
        flat[-3:] = -np.inf
    return x


def _prepared(op_cls, x, geometry, monkeypatch, **extra):
    """The op's node after the geometry setup that picks the compiled loops (which must take x)."""
    monkeypatch.setattr(kernels, "JIT", True)
    monkeypatch.setattr(kernels, "MIN_SIZE", 0)
    _, k, s, p, d, ceil = geometry
    node = op_cls.__new__(op_cls)
    assert node._setup(x, _pair(k), _pair(s), _pair(p), _pair(d), ceil), "the loops should take this layout"
    if op_cls is AvgPool2d:
        node.divisor = node._divisor(x.shape[2:], _pair(p), extra.get("count_include_pad", True)).astype(x.dtype)
    return node


# ---- the loops against their twins --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", list(GEOMETRIES))
@pytest.mark.parametrize("ties, g_layout", [(False, "nchw"), (True, "nhwc")])
def test_max_pool_kernels_match_their_twins(name, layout, dtype, ties, g_layout, monkeypatch):
    geometry = GEOMETRIES[name]
    x = _in_layout(_input(geometry[0], dtype, integers=ties), layout)
    node = _prepared(MaxPool2d, x, geometry, monkeypatch)
    out_shape = (*x.shape[:2], *node.out_hw)

    def fwd_args():  # (x's lines, geo, out's lines, which's buffer): out and which in x's layout
        _, ol = node._new(out_shape, dtype)
        return (*node.xl, node.geo, *ol, node._new(out_shape, np.uint8)[1][0])

    a, b, out_a, out_b = both(max_pool_forward, fwd_args)
    np.testing.assert_array_equal(out_a, out_b)  # exact: a max rounds nothing
    np.testing.assert_array_equal(a[9], b[9])  # which: the same tap for every window
    # an NCHW gradient (a Flatten's) or a channels-last one (a conv's): the loops read it where it lies, or the
    # op copies it into out's layout where a cell's values are not contiguous
    g = np.random.default_rng(1).standard_normal(out_shape).astype(dtype)
    g.reshape(-1)[3] = np.nan  # stays in its own window's cell
    g_lines = node._grad_lines(_in_layout(g, g_layout), dtype)

    def bwd_args():
        _, dl_ = node._new(x.shape, dtype)
        return (*g_lines, a[9], *a[6:9], node.geo, *dl_)

    _, _, dx_a, dx_b = both(max_pool_backward, bwd_args)  # the loops return dx's buffer
    assert_same(dx_a, dx_b, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", list(GEOMETRIES))
@pytest.mark.parametrize("count_include_pad, g_layout", [(True, "nchw"), (False, "nhwc")])
def test_avg_pool_kernels_match_their_twins(name, layout, dtype, count_include_pad, g_layout, monkeypatch):
    geometry = GEOMETRIES[name]
    if _pair(geometry[4]) != (1, 1):
        pytest.skip("average pooling has no dilation")
    x = _in_layout(_input(geometry[0], dtype), layout)
    node = _prepared(AvgPool2d, x, geometry, monkeypatch, count_include_pad=count_include_pad)
    out_shape = (*x.shape[:2], *node.out_hw)

    def fwd_args():
        _, ol = node._new(out_shape, dtype)
        return (*node.xl, node.geo, node.divisor, *ol)

    _, _, out_a, out_b = both(avg_pool_forward, fwd_args)  # the loops return out's buffer
    assert_same(out_a, out_b, dtype)
    g = np.random.default_rng(1).standard_normal(out_shape).astype(dtype)
    g_lines = node._grad_lines(_in_layout(g, g_layout), dtype)

    def bwd_args():
        _, dl_ = node._new(x.shape, dtype)
        return (*g_lines, node.geo, node.divisor, *dl_)

    _, _, dx_a, dx_b = both(avg_pool_backward, bwd_args)
    assert_same(dx_a, dx_b, dtype)


# ---- PyTorch's rules, on the kernels' path and the NumPy path ---------------------------------------------------
def _pool_both_ways(fn, x, monkeypatch, ramp=False):
    """fn(tensor) and the input's gradient (of the sum of the output, or of its product with a ramp), with the
    kernels off and on, x kept in its memory layout."""
    results = []
    for jit in (False, True):
        monkeypatch.setattr(kernels, "JIT", jit)
        monkeypatch.setattr(kernels, "MIN_SIZE", 0)
        xt = dl.tensor(x, dtype=x.dtype, requires_grad=True)
        xt.data = x  # (the constructor copies C-ordered)
        out = fn(xt)
        w = np.linspace(-1, 1, out.data.size).reshape(out.shape) if ramp else np.ones(out.shape)
        (out * dl.tensor(w, dtype=x.dtype)).sum().backward()
        results.append((out.data, xt.grad))
    return results


@pytest.mark.parametrize("layout", ["nchw", "nhcw", "nhwc"])
def test_max_pool_rules_nan_ties_and_minus_inf(layout, monkeypatch):
    """A window's last NaN takes the gradient (PyTorch: a NaN replaces the running max), the first of equal maxima
    does otherwise, and an all -inf window beside padding sends it to its first real cell."""
    x = np.zeros((1, 2, 2, 4), np.float32)  # one 2x4 window per channel (expected values: PyTorch 2.13's)
    x[0, :, 0] = [1.0, np.nan, 2.0, np.nan]
    x[0, :, 1] = [3.0, 3.0, -np.inf, 0.0]
    for out, grad in _pool_both_ways(lambda t: dl.nn.functional.max_pool2d(t, (2, 4)), _in_layout(x, layout),
                                     monkeypatch):
        assert np.isnan(out).all()
        expected = np.zeros_like(x)
        expected[0, :, 0, 3] = 1  # the last NaN of the window
        np.testing.assert_array_equal(grad, expected)
    ties = np.array([[[[1.0, 5.0, 5.0], [5.0, 0.0, 5.0], [2.0, 5.0, 1.0]]]], np.float32).repeat(3, axis=1)
    for out, grad in _pool_both_ways(lambda t: dl.nn.functional.max_pool2d(t, 2, stride=1), _in_layout(ties, layout),
                                     monkeypatch):
        np.testing.assert_array_equal(out[0, 0], [[5, 5], [5, 5]])
        np.testing.assert_array_equal(grad[0, 0], [[0, 2, 0], [1, 0, 1], [0, 0, 0]])  # row-major first max
    neg = np.full((1, 3, 3, 3), -np.inf, np.float32)
    neg[:, :, 2, 2] = 1.0
    for out, grad in _pool_both_ways(lambda t: dl.nn.functional.max_pool2d(t, 2, stride=2, padding=1),
                                     _in_layout(neg, layout), monkeypatch):
        np.testing.assert_array_equal(out[0, 0], [[-np.inf, -np.inf], [-np.inf, 1.0]])
        np.testing.assert_array_equal(grad[0, 0], [[1, 1, 0], [1, 0, 0], [0, 0, 1]])  # never the padding


def test_max_pool_gradient_nan_stays_in_its_cell(monkeypatch):
    """A NaN gradient goes where the window's max is and nowhere else (PyTorch's scatter), on the kernels' path."""
    monkeypatch.setattr(kernels, "JIT", True)
    monkeypatch.setattr(kernels, "MIN_SIZE", 0)
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    xt = dl.tensor(x, requires_grad=True)
    w = np.ones((1, 1, 2, 2), np.float32)
    w[0, 0, 0, 0] = np.nan
    (dl.nn.functional.max_pool2d(xt, 2) * dl.tensor(w)).sum().backward()
    assert np.isnan(xt.grad[0, 0, 1, 1]) and np.isnan(xt.grad).sum() == 1


# ---- the ops, both ways -----------------------------------------------------------------------------------------
POOL_LAYERS = {
    "max_k2": lambda: nn.MaxPool2d(2),
    "max_k3_s2": lambda: nn.MaxPool2d(3, stride=2),
    "max_k3_s2_pad1_ceil": lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
    "max_k2x3_s1_dil1x2": lambda: nn.MaxPool2d((2, 3), stride=1, dilation=(1, 2)),
    "max_k2_s3": lambda: nn.MaxPool2d(2, stride=3),
    "avg_k2": lambda: nn.AvgPool2d(2),
    "avg_k3_s2_pad1_ceil_exclude": lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True,
                                                        count_include_pad=False),
    "avg_k3_s1_pad1": lambda: nn.AvgPool2d(3, 1, 1),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["nchw", "nhcw", "nhwc", "nhwc_gaps"])
@pytest.mark.parametrize("make", list(POOL_LAYERS))
def test_pool_layers_give_the_same_with_and_without_kernels(make, layout, dtype, monkeypatch):
    x = _in_layout(_input((3, 5, 9, 8), dtype, seed=2, special=False), layout)
    (plain_out, plain_grad), (fast_out, fast_grad) = _pool_both_ways(POOL_LAYERS[make](), x, monkeypatch, ramp=True)
    assert_same(fast_out, plain_out, dtype)
    assert_same(fast_grad, plain_grad, dtype)
    assert axis_order(fast_out) == axis_order(plain_out)  # the output keeps the input's layout
    assert axis_order(fast_grad) == axis_order(plain_grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lowering", [None, "planar", "toeplitz", "shifted", "channels_last"])
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_conv_output_feeds_the_pool_in_its_layout(pool, lowering, dtype, monkeypatch, force_lowering):
    """conv -> ReLU -> pool -> Flatten -> Linear, each conv lowering's output layout (channels-last, with gaps,
    (N, H, C, W), (C, N, H, W)) feeding the pool, and the Flatten's NCHW gradient coming back."""
    force_lowering(lowering)
    dl.manual_seed(4)
    make_pool = nn.MaxPool2d(3, stride=2) if pool == "max" else nn.AvgPool2d(2)
    side = 4 if pool == "max" else 5
    layer = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), make_pool, nn.Flatten(),
                          nn.Linear(8 * side * side, 5)).to(dtype)
    x = np.random.default_rng(6).standard_normal((4, 3, 10, 10)).astype(dtype)
    plain = run_layer(layer, x, monkeypatch, False)
    fast = run_layer(layer, x, monkeypatch, True)
    for a, b in zip((fast[0], fast[1], *fast[2]), (plain[0], plain[1], *plain[2])):
        np.testing.assert_allclose(a, b, **{k: v * 10 for k, v in TOL[dtype].items()})  # through two GEMMs


@pytest.mark.parametrize("pool", [MaxPool2d, AvgPool2d])
def test_odd_layouts_and_small_arrays_keep_the_numpy_path(pool, monkeypatch):
    monkeypatch.setattr(kernels, "JIT", True)
    monkeypatch.setattr(kernels, "MIN_SIZE", 0)
    geometry = (2, 2), (2, 2), (0, 0), (1, 1), False
    x = np.zeros((2, 3, 4, 6), np.float32)
    assert pool.__new__(pool)._setup(x, *geometry)
    assert not pool.__new__(pool)._setup(np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2),
                                         *geometry)  # H innermost
    assert not pool.__new__(pool)._setup(x[:, :, :, ::-1], *geometry)  # a negative stride
    assert not pool.__new__(pool)._setup(np.broadcast_to(x[:1], x.shape), *geometry)  # read-only
    assert not pool.__new__(pool)._setup(x.astype(np.int64), *geometry)
    monkeypatch.setattr(kernels, "MIN_SIZE", x.size + 1)
    assert not pool.__new__(pool)._setup(x, *geometry)
