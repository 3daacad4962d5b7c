"""The Module contract: registration, traversal, modes, state_dict round trips and their errors."""

import math

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import nn
from dlbasics.errors import StateDictError


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])
        self.scale = nn.Parameter(dl.ones(1))
        self.register_buffer("steps", dl.zeros(1))
        self.register_buffer("cache", dl.zeros(2), persistent=False)
        self.not_a_param = dl.ones(3)  # a plain tensor attribute is not registered

    def forward(self, x):
        x = self.act(self.fc1(x))
        for b in self.blocks:
            x = b(x)
        return x * self.scale


def test_registration_and_traversal():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "blocks.0.weight", "blocks.0.bias",
                     "blocks.1.weight", "blocks.1.bias"]
    assert len(list(net.parameters())) == 7
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "blocks"]
    assert len(list(net.modules())) == 6  # Net, fc1, act, blocks, blocks.0, blocks.1
    assert [n for n, _ in net.named_buffers()] == ["steps", "cache"]
    assert all(p.requires_grad for p in net.parameters())
    assert net.fc1.weight.shape == (8, 4)


def test_shared_parameter_is_yielded_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2


def test_reassign_and_delete():
    net = Net()
    net.fc1 = nn.Linear(4, 8, bias=False)
    assert net.fc1.bias is None
    assert "fc1.bias" not in net.state_dict()
    del net.act
    assert "act" not in dict(net.named_children())
    with pytest.raises(TypeError, match="parameter 'scale'"):
        net.scale = dl.ones(1)  # a plain tensor cannot replace a parameter
    net.steps = dl.ones(1)  # a buffer may be replaced by a tensor
    np.testing.assert_array_equal(net.state_dict()["steps"], [1.0])


def test_assign_before_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Bad()


def test_train_eval_propagates():
    net = Net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_zero_grad_and_requires_grad():
    net = Net()
    net(dl.randn(2, 4, generator=0)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not net(dl.randn(2, 4)).requires_grad


def test_state_dict_round_trip_and_independence():
    dl.manual_seed(0)
    a, b = Net(), Net()
    sd = a.state_dict()
    assert list(sd) == ["scale", "steps", "fc1.weight", "fc1.bias", "blocks.0.weight", "blocks.0.bias",
                        "blocks.1.weight", "blocks.1.bias"]
    assert "cache" not in sd  # non-persistent buffer
    b.load_state_dict({k: v.copy() for k, v in sd.items()})
    x = dl.randn(3, 4, generator=1)
    np.testing.assert_array_equal(a(x).data, b(x).data)
    b.fc1.weight.data += 1  # loading copied the values: the models stay independent
    assert not np.allclose(a.fc1.weight.data, b.fc1.weight.data)


def test_load_state_dict_errors_name_keys_and_shapes():
    net = Net()
    sd = dict(net.state_dict())
    sd.pop("fc1.bias")
    sd["extra.weight"] = np.zeros(2)
    sd["fc1.weight"] = np.zeros((3, 3))
    with pytest.raises(StateDictError) as e:  # a RuntimeError, as in PyTorch
        net.load_state_dict(sd)
    msg = str(e.value)
    assert isinstance(e.value, RuntimeError) and "\n" not in msg
    assert msg.startswith("Error(s) in loading state_dict for Net (is it another model's?): ")
    assert "missing keys: fc1.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "fc1.weight" in msg and "(3, 3)" in msg and "(8, 4)" in msg
    sd["fc1.weight"] = net.fc1.weight.data
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["fc1.bias"] and result.unexpected_keys == ["extra.weight"]


def test_load_state_dict_checks_dtypes_before_copying_anything():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    sd = {k: v.copy() + 1 if v.dtype.kind == "f" else v.copy() for k, v in net.state_dict().items()}
    before = {k: v.copy() for k, v in net.state_dict().items()}
    sd["1.num_batches_tracked"] = np.array(0.5)  # a float into the integer counter cannot be cast
    with pytest.raises(StateDictError, match=r"dtype mismatch for 1\.num_batches_tracked: checkpoint float64 vs "
                       r"model int64"):
        net.load_state_dict(sd)
    for k, v in net.state_dict().items():  # nothing was copied: no half-loaded model
        np.testing.assert_array_equal(v, before[k])


def test_repr_is_readable():
    r = repr(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.1)))
    assert r == ("Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): ReLU()\n"
                 "  (2): Dropout(p=0.1)\n)")


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and isinstance(seq[1:], nn.Sequential)
    assert len(seq[1:]) == 2
    with pytest.raises(IndexError, match="out of range"):
        seq[5]
    ml = nn.ModuleList()
    ml.append(nn.Linear(1, 1)).extend([nn.ReLU()])
    ml.insert(0, nn.Tanh())
    assert [type(m).__name__ for m in ml] == ["Tanh", "Linear", "ReLU"]
    assert len(list(ml.parameters())) == 2
    md = nn.ModuleDict({"a": nn.Linear(1, 2)})
    assert "a" in md and len(list(md.parameters())) == 2


def test_to_double_casts_parameters_and_buffers():
    net = Net().double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.steps.dtype == np.float64
    out = net(dl.randn(2, 4, dtype=dl.float64))
    assert out.dtype == np.float64


def test_linear_default_init_bounds_match_pytorch_formula():
    dl.manual_seed(0)
    lin = nn.Linear(100, 50)
    bound = 1 / math.sqrt(100)
    assert np.abs(lin.weight.data).max() <= bound and np.abs(lin.bias.data).max() <= bound
    assert np.abs(lin.weight.data).max() > 0.9 * bound  # uniform over the whole range
    assert lin.weight.dtype == np.float32


@pytest.mark.parametrize(
    "fn, expected_std",
    [
        (lambda t: nn.init.xavier_uniform_(t, generator=0), math.sqrt(2 / (300 + 200))),
        (lambda t: nn.init.xavier_normal_(t, generator=0), math.sqrt(2 / (300 + 200))),
        (lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu", generator=0), math.sqrt(2 / 300)),
        (lambda t: nn.init.kaiming_normal_(t, nonlinearity="relu", mode="fan_out", generator=0), math.sqrt(2 / 200)),
        (lambda t: nn.init.normal_(t, 0.0, 0.02, generator=0), 0.02),
        (lambda t: nn.init.trunc_normal_(t, std=0.02, a=-0.04, b=0.04, generator=0), 0.02 * 0.8796),
    ],
)
def test_init_standard_deviations(fn, expected_std):
    w = dl.empty(200, 300)
    fn(w)
    assert abs(w.data.std() - expected_std) < 0.03 * expected_std
    assert abs(w.data.mean()) < 0.05 * expected_std + 1e-4


def test_init_is_seeded_and_constant_inits():
    a, b = dl.empty(5, 5), dl.empty(5, 5)
    nn.init.xavier_uniform_(a, generator=3)
    nn.init.xavier_uniform_(b, generator=3)
    np.testing.assert_array_equal(a.data, b.data)
    nn.init.zeros_(a)
    nn.init.ones_(b)
    assert a.data.sum() == 0 and b.data.sum() == 25
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="relu"):
        nn.init.calculate_gain("swish")


def test_dropout_train_eval_and_seed():
    x = dl.ones(1000, 100)
    drop = nn.Dropout(0.3, generator=0)
    y = drop(x)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y.data[kept], 1 / 0.7, rtol=1e-6)  # inverted: the mean is preserved
    assert abs(y.data.mean() - 1.0) < 0.02
    drop.eval()
    assert drop(x) is x
    dl.manual_seed(7)
    m1 = nn.functional.dropout(x, 0.5).data
    dl.manual_seed(7)
    np.testing.assert_array_equal(m1, nn.functional.dropout(x, 0.5).data)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.Dropout(1.5)


def test_loss_modules_validate_reduction():
    with pytest.raises(ValueError, match="'mean', 'sum', 'none'"):
        nn.MSELoss(reduction="avg")
    assert "weight" in nn.CrossEntropyLoss(weight=[1.0, 2.0]).state_dict()


def test_layers_honour_dtype():
    lin, bn = nn.Linear(3, 2, dtype=dl.float64), nn.BatchNorm1d(2, dtype=dl.float64)
    assert {p.dtype for p in (*lin.parameters(), *bn.parameters(), *bn.buffers()) if p.dtype.kind == "f"} == {
        np.dtype(np.float64)}
    assert nn.Parameter(np.zeros(2)).dtype == np.float64  # an explicit array keeps its dtype
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32  # other data follows the policy


def test_replacing_a_child_keeps_its_place():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    setattr(seq, "0", nn.Linear(2, 3, bias=False))
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert seq[0].bias is None
    assert seq(dl.zeros(4, 2)).shape == (4, 1)
