"""The convolutional zoo: LeNet-5, AlexNet (scaled down), the CIFAR ResNets and their plain twins."""

import time

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import models, nn, optim
from dlbasics.data import DataLoader, TensorDataset
from dlbasics.data.datasets.idx import FASHION_MNIST_ROOT
from dlbasics.models.resnet import PadShortcut
from dlbasics.train import evaluate, fit

CNNS = ["lenet5", "alexnet", "resnet", "resnet20", "resnet32", "resnet44", "resnet56", "plain20", "plain32",
        "plain44", "plain56"]
SHAPES = [(1, 28), (3, 32)]  # (in_channels, image_size): Fashion-MNIST, CIFAR-10


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def batch(n, c, s, seed=0):
    g = np.random.default_rng(seed)
    return dl.tensor(g.standard_normal((n, c, s, s)).astype(np.float32)), dl.tensor(g.integers(0, 10, n))


# ---- registry and shapes -------------------------------------------------------------------------------
def test_registered_with_paper_and_default_data():
    assert set(CNNS) <= set(models.available())
    assert "LeCun" in models.info("lenet5").paper and models.info("lenet5").default_data == "fashion-mnist"
    assert "Krizhevsky" in models.info("alexnet").paper and models.info("alexnet").default_data == "fashion-mnist"
    for name in CNNS[2:]:
        assert "He, Zhang, Ren & Sun" in models.info(name).paper and models.info(name).default_data == "cifar10"
    for name in CNNS:  # the run config feeds the data's shape by these names
        assert {"num_classes", "in_channels", "image_size"} <= set(models.info(name).options())
    assert {"dropout", "batch_norm"} <= set(models.info("alexnet").options())
    assert {"depth", "plain", "block", "width", "shortcut"} <= set(models.info("resnet").options())


@pytest.mark.parametrize("c,s", SHAPES)
@pytest.mark.parametrize("name", CNNS)
def test_builds_and_maps_images_to_logits(name, c, s):
    dl.manual_seed(0)
    model = models.create(name, num_classes=10, in_channels=c, image_size=s)
    x, _ = batch(2, c, s)
    assert model(x).shape == (2, 10)
    model.eval()
    with dl.no_grad():
        assert model(x[:1]).shape == (1, 10)


@pytest.mark.parametrize("name,options", [
    ("lenet5", {}), ("lenet5", {"activation": "relu"}), ("alexnet", {}), ("alexnet", {"batch_norm": True}),
    ("resnet20", {}), ("resnet20", {"shortcut": "B"}), ("plain20", {}),
    ("resnet", {"depth": 29, "block": "bottleneck"}),
    ("resnet", {"depth": 11, "block": "bottleneck", "shortcut": "B", "width": 8}),
])
def test_forward_backward_gives_finite_grads_for_every_parameter(name, options):
    dl.manual_seed(0)
    model = models.create(name, in_channels=3, image_size=32, **options)
    x, y = batch(4, 3, 32)
    loss = nn.CrossEntropyLoss()(model(x), y)
    loss.backward()
    assert np.isfinite(loss.item())
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert p.grad.shape == p.shape and np.all(np.isfinite(p.grad.data)), f"{name}: bad gradient for {pname}"


# ---- parameter counts ----------------------------------------------------------------------------------
def test_resnet_parameter_counts_match_the_paper():
    # resnet20, 3 -> 10 classes, option A (no shortcut parameters), convs without bias (BN follows):
    # stem 3*16*9 + BN 2*16; stage 1: 6 convs 16*16*9; stage 2: 16*32*9 + 5 * 32*32*9; stage 3: 32*64*9 + 5 * 64*64*9;
    # 18 BNs of 2 * width each; fc 64*10 + 10.
    expected = (3 * 16 * 9 + 32 + 6 * 16 * 16 * 9 + 16 * 32 * 9 + 5 * 32 * 32 * 9 + 32 * 64 * 9 + 5 * 64 * 64 * 9
                + 6 * (2 * 16 + 2 * 32 + 2 * 64) + 64 * 10 + 10)
    assert expected == 269_722
    r20 = models.create("resnet20", in_channels=3, image_size=32)
    assert n_params(r20) == expected
    assert abs(n_params(r20) - 270_000) / 270_000 < 0.02  # "0.27M" in the paper's table 6
    for name, paper in (("resnet32", 0.46e6), ("resnet44", 0.66e6), ("resnet56", 0.85e6)):
        assert abs(n_params(models.create(name)) - paper) / paper < 0.02, name
    # the plain twin has the same layers: option A shortcuts have no parameters
    assert n_params(models.create("plain20")) == expected
    assert n_params(models.create("resnet", depth=20, plain=True, shortcut="B")) == expected
    # option B adds two 1x1 projections + BN (stage 2: 16 -> 32, stage 3: 32 -> 64)
    assert n_params(models.create("resnet20", shortcut="B")) == expected + (16 * 32 + 64) + (32 * 64 + 128)
    assert n_params(models.create("resnet20", in_channels=1, image_size=28)) == expected - 2 * 16 * 9


def test_lenet5_and_alexnet_parameter_counts():
    # LeNet-5 with full C3: conv 1->6 5x5, conv 6->16 5x5, fc 400-120-84-10; the same for 28x28 and 32x32
    lenet = 6 * 25 + 6 + 16 * 6 * 25 + 16 + 400 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10
    assert lenet == 61_706
    assert n_params(models.create("lenet5", image_size=28)) == lenet
    assert n_params(models.create("lenet5", image_size=32)) == lenet
    convs = 32 * 25 + 32 + 64 * 32 * 25 + 64 + 96 * 64 * 9 + 96 + 96 * 96 * 9 + 96 + 64 * 96 * 9 + 64
    fcs = 512 * 512 + 512 + 512 * 10 + 10
    assert n_params(models.create("alexnet", in_channels=1, image_size=28)) == convs + 64 * 2 * 2 * 512 + 512 + fcs
    assert n_params(models.create("alexnet", in_channels=1, image_size=32)) == convs + 64 * 3 * 3 * 512 + 512 + fcs


# ---- structure and options -----------------------------------------------------------------------------
def test_lenet5_layers_as_the_paper():
    m = models.create("lenet5")
    kinds = [type(x).__name__ for x in m.features] + [type(x).__name__ for x in m.classifier]
    assert kinds == ["Conv2d", "Tanh", "AvgPool2d", "Conv2d", "Tanh", "AvgPool2d",
                     "Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert m.features[0].padding == (2, 2) and models.create("lenet5", image_size=32).features[0].padding == (0, 0)
    x, _ = batch(2, 1, 28)
    assert m.features[:2](x).shape == (2, 6, 28, 28)  # C1 gives the paper's 28x28 maps
    assert m.features(x).shape == (2, 16, 5, 5)
    assert isinstance(models.create("lenet5", activation="relu").features[1], nn.ReLU)
    with pytest.raises(ValueError, match="unknown activation 'swish'; choose from tanh, relu"):
        models.create("lenet5", activation="swish")
    with pytest.raises(ValueError, match="image_size 8 is too small"):
        models.create("lenet5", image_size=8)


def test_alexnet_lrn_overlapping_pools_dropout_and_batch_norm():
    m = models.create("alexnet")
    lrn = [x for x in m.features if isinstance(x, nn.LocalResponseNorm)]
    assert len(lrn) == 2 and all((n.size, n.beta, n.k) == (5, 0.75, 2.0) for n in lrn)
    assert all(np.isclose(n.alpha / n.size, 1e-4) for n in lrn)  # the paper's alpha, in PyTorch's convention
    pools = [x for x in m.features if isinstance(x, nn.MaxPool2d)]
    assert len(pools) == 3 and all((p.kernel_size, p.stride) == (3, 2) for p in pools)  # overlapping
    assert sum(isinstance(x, nn.Conv2d) for x in m.features) == 5
    assert [d.p for d in m.classifier if isinstance(d, nn.Dropout)] == [0.5, 0.5]
    assert [d.p for d in models.create("alexnet", dropout=0.2).classifier if isinstance(d, nn.Dropout)] == [0.2, 0.2]
    bn = models.create("alexnet", batch_norm=True)
    assert not any(isinstance(x, nn.LocalResponseNorm) for x in bn.features)
    assert [x.num_features for x in bn.features if isinstance(x, nn.BatchNorm2d)] == [32, 64]
    x, _ = batch(2, 1, 28)
    assert m.features(x).shape == (2, 64, 2, 2)
    m.eval()
    with dl.no_grad():  # no dropout in eval: the same output twice
        np.testing.assert_array_equal(m(x).data, m(x).data)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        models.create("alexnet", dropout=1.0)
    with pytest.raises(ValueError, match="image_size 14 is too small"):
        models.create("alexnet", image_size=14)


def test_resnet_depth_must_be_6n_plus_2():
    with pytest.raises(ValueError, match=r"depth must be 6n \+ 2 with basic blocks \(8, 14, 20, 26, \.\.\.\), got 21"):
        models.create("resnet", depth=21)
    with pytest.raises(ValueError, match=r"depth must be 6n \+ 2"):
        models.create("resnet", depth=2)
    with pytest.raises(ValueError, match=r"9n \+ 2 with bottleneck blocks \(11, 20, 29, 38, \.\.\.\), got 26"):
        models.create("resnet", depth=26, block="bottleneck")
    with pytest.raises(ValueError, match="unknown block 'wide'; choose from basic, bottleneck"):
        models.create("resnet", block="wide")
    with pytest.raises(ValueError, match="unknown shortcut 'C'; choose from A, B"):
        models.create("resnet", shortcut="C")
    m = models.create("resnet", depth=110)
    assert [len(s) for s in (m.layer1, m.layer2, m.layer3)] == [18, 18, 18]
    weighted = [x for x in m.modules() if isinstance(x, nn.Conv2d | nn.Linear)]
    assert len(weighted) == 110  # option A: every weighted layer is on the main path


def test_resnet_stages_shortcuts_and_init():
    m = models.create("resnet20")
    x, _ = batch(2, 3, 32)
    h = m.bn1(m.conv1(x)).relu()
    for stage, shape in zip((m.layer1, m.layer2, m.layer3), ((16, 32, 32), (32, 16, 16), (64, 8, 8))):
        h = stage(h)
        assert h.shape == (2, *shape)
    assert isinstance(m.layer1[0].shortcut, nn.Identity) and isinstance(m.layer2[0].shortcut, PadShortcut)
    assert isinstance(models.create("resnet20", shortcut="B").layer2[0].shortcut[0], nn.Conv2d)
    plain = models.create("plain20")
    assert all(b.shortcut is None for stage in (plain.layer1, plain.layer2, plain.layer3) for b in stage)
    fm = models.create("resnet20", in_channels=1, image_size=28)
    assert fm.layer3(fm.layer2(fm.layer1(fm.bn1(fm.conv1(batch(2, 1, 28)[0])).relu()))).shape == (2, 64, 7, 7)
    # kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = sqrt(2 / (64 * 3 * 3)); BN weight 1, bias 0
    w = m.layer3[2].conv2.weight.data
    assert abs(w.mean()) < 2e-3 and abs(w.std() / np.sqrt(2 / (64 * 9)) - 1) < 0.03
    assert np.all(m.layer3[2].bn2.weight.data == 1) and np.all(m.layer3[2].bn2.bias.data == 0)


def test_option_a_shortcut_subsamples_and_pads_channels_with_zeros():
    x = dl.tensor(np.arange(2 * 4 * 6 * 6, dtype=np.float32).reshape(2, 4, 6, 6), requires_grad=True)
    out = PadShortcut(4, 8, stride=2)(x)
    assert out.shape == (2, 8, 3, 3)
    np.testing.assert_array_equal(out.data[:, 2:6], x.data[:, :, ::2, ::2])
    assert np.all(out.data[:, :2] == 0) and np.all(out.data[:, 6:] == 0)
    out.sum().backward()
    expected = np.zeros((2, 4, 6, 6), np.float32)
    expected[:, :, ::2, ::2] = 1
    np.testing.assert_array_equal(x.grad.data, expected)
    assert PadShortcut(4, 8, stride=2)(dl.zeros(1, 4, 7, 7)).shape == (1, 8, 4, 4)  # as a 3x3 stride-2 conv
    with pytest.raises(ValueError, match="cannot go from 8 to 4 channels"):
        PadShortcut(8, 4, 1)


# ---- residual vs plain ---------------------------------------------------------------------------------
def input_grad_norm(name, seed):
    """|dL/dx| for a random batch at initialization, in training mode (BN on batch statistics)."""
    dl.manual_seed(seed)
    model = models.create(name)
    x, y = batch(8, 3, 32, seed)
    x.requires_grad_()
    nn.CrossEntropyLoss()(model(x), y).backward()
    return float(np.linalg.norm(x.grad.data))


@pytest.mark.parametrize("seed", [0, 1])
def test_shortcuts_keep_the_gradient_on_scale_through_depth(seed):
    """With the shortcuts, going from 20 to 56 layers changes the input gradient by a small factor (~4x
    measured); without them it changes by orders of magnitude (~500x measured, growing by ~1.4x per block
    towards the input). With batch norm on batch statistics the plain net's gradient *explodes* rather
    than vanishes (Yang et al., "A Mean Field Theory of Batch Normalization", 2019; PyTorch gives the same
    numbers): the plain 56-layer input gradient is ~300x the residual one, not smaller."""
    g = {name: input_grad_norm(name, seed) for name in ("resnet20", "resnet56", "plain20", "plain56")}
    resnet_growth, plain_growth = g["resnet56"] / g["resnet20"], g["plain56"] / g["plain20"]
    assert resnet_growth < 10, g
    assert plain_growth > 100, g
    assert plain_growth / resnet_growth > 30, g


# ---- it learns -----------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not FASHION_MNIST_ROOT.is_dir(), reason=f"real Fashion-MNIST not installed at "
                    f"{FASHION_MNIST_ROOT} (Debian package dataset-fashion-mnist)")
def test_lenet5_learns_real_fashion_mnist():
    """10,000 training images, 2 epochs of Adam: >= 80% on 2,000 test images (measured 83.5%, ~4 s)."""
    from dlbasics.data.datasets import fashion_mnist

    splits = fashion_mnist()
    x, y = splits.train.arrays
    keep = np.random.default_rng(0).permutation(len(y))[:10_000]
    x, y = x[keep], y[keep]
    test_x, test_y = splits.test.arrays[0][:2000], splits.test.arrays[1][:2000]
    # as the paper: inputs scaled to mean ~0 and variance ~1, which speeds up learning with tanh units
    mean, std = x.mean(), x.std()
    x, test_x = (x - mean) / std, (test_x - mean) / std
    dl.manual_seed(0)
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=28)
    start = time.perf_counter()
    history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=2e-3),
                  DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, seed=0), epochs=2, verbose=0)
    seconds = time.perf_counter() - start
    accuracy = evaluate(model, DataLoader(TensorDataset(test_x, test_y), batch_size=500))["accuracy"]
    print(f"lenet5 fashion-mnist: test accuracy {accuracy:.4f} after {seconds:.1f}s of training")
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert accuracy >= 0.80, f"test accuracy {accuracy:.3f} after {seconds:.1f}s"


def bundled_digits(scale: int) -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's 8x8 digits (bundled: this never skips), each pixel repeated scale x scale times."""
    from dlbasics.data import datasets

    train, _, test = datasets.digits()

    def images(split):
        x, y = next(iter(DataLoader(split, batch_size=len(split))))
        x = np.kron(x.numpy().reshape(-1, 1, 8, 8), np.ones((1, 1, scale, scale), np.float32))
        return TensorDataset(x, y.numpy())

    return images(train), images(test)


@pytest.mark.slow
@pytest.mark.parametrize("name, scale, epochs, lr, bar", [
    # ResNet-20 (CIFAR variant, 0.27M parameters) on the 8x8 digits themselves: measured 0.87 / 0.92 / 0.93 with
    # seeds 0 / 1 / 2, about 1.5 s
    ("resnet20", 1, 2, 3e-3, 0.75),
    # AlexNet as registered (LRN, overlapping 3x3 stride-2 pools, dropout 0.5): its three pools need at least
    # 15 x 15 pixels, so the digits at 24 x 24; measured 0.67 / 0.78 / 0.79 with seeds 0 / 1 / 2, about 8 s
    ("alexnet", 3, 6, 1e-3, 0.60),
])
def test_the_classic_cnns_learn_the_bundled_digits(name, scale, epochs, lr, bar):
    """Far above chance (0.1) on the 360 test digits after a short Adam run from a fixed seed."""
    train, test = bundled_digits(scale)
    dl.manual_seed(0)
    model = models.create(name, num_classes=10, in_channels=1, image_size=8 * scale)
    history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=lr),
                  DataLoader(train, batch_size=64, shuffle=True, seed=0), epochs=epochs, verbose=0)
    accuracy = evaluate(model, DataLoader(test, batch_size=256))["accuracy"]
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert accuracy >= bar, f"{name}: test accuracy {accuracy:.3f}"
