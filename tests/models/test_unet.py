"""U-Net against its PyTorch twin (``benchmarks/twins/unet.py``): one state dict, loaded by name, gives the same
logits (train and eval mode, float64 and float32) and the same weights after Adam steps on the pixel cross-entropy,
alone and plus the soft Dice loss; and ``F.dice_loss`` itself: its gradient, its value against the twin's, and its
shape errors."""

import sys
from pathlib import Path

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import models
from dlbasics.autograd import gradcheck
from dlbasics.nn import functional as F

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from twins import unet as twins  # noqa: E402

from tests.models.torch_twins import follow_adam, randomize_batch_norm  # noqa: E402

WIDTHS = (4, 8, 16)
N, C_IN, CLASSES, SIZE = 2, 3, 3, 16


def pair(dtype=np.float64, seed=0):
    """The twin with random batch-norm affine parameters and running statistics (so eval mode is not the identity
    normalisation), and dlbasics' U-Net loaded from its state dict by name."""
    torch.manual_seed(seed)
    tm = twins.unet(C_IN, CLASSES, WIDTHS)
    randomize_batch_norm(tm)
    tm = tm.to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = models.create("unet", in_channels=C_IN, num_classes=CLASSES, widths=WIDTHS).to(dtype)
    state = tm.state_dict()
    assert list(ours.state_dict()) == list(state)  # the same names, in the same order
    ours.load_state_dict({k: v.detach().numpy() for k, v in state.items()})
    return ours, tm


def batch(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, C_IN, SIZE, SIZE)).astype(dtype), rng.integers(0, CLASSES, (N, SIZE, SIZE))


def test_state_dict_keys_are_the_twins():
    ours = models.create("unet", in_channels=C_IN, num_classes=CLASSES, widths=WIDTHS)
    keys = list(ours.state_dict())
    assert keys == list(twins.unet(C_IN, CLASSES, WIDTHS).state_dict())
    assert {"down.0.0.weight", "down.0.1.running_mean", "down.0.1.num_batches_tracked", "up.0.weight",
            "merge.0.0.weight", "head.weight", "head.bias"} <= set(keys)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_forward_matches_the_twin_in_train_and_eval_mode(dtype, tol):
    ours, tm = pair(dtype)
    x, _ = batch(0, dtype)
    for mode in ("train", "eval"):  # train first: it moves the running statistics, which eval then uses
        ours.train(mode == "train")
        tm.train(mode == "train")
        out = ours(x)
        with torch.no_grad():
            t_out = tm(torch.from_numpy(x)).numpy()
        assert out.shape == (N, CLASSES, SIZE, SIZE) and out.data.dtype == dtype
        np.testing.assert_allclose(out.data, t_out, rtol=tol, atol=tol, err_msg=mode)
        state = ours.state_dict()
        for k, v in tm.state_dict().items():  # the running statistics too
            np.testing.assert_allclose(state[k], v.numpy(), rtol=tol, atol=tol, err_msg=f"{mode} {k}")


@pytest.mark.parametrize("with_dice", [False, True], ids=["ce", "ce+dice"])
def test_adam_steps_follow_the_twins_trajectory(with_dice):
    ours, tm = pair(np.float64)

    def losses(step):
        x, y = batch(step + 1)
        out, t_out, t_y = ours(x), tm(torch.from_numpy(x)), torch.from_numpy(y)
        loss, t_loss = F.cross_entropy(out, y), torch.nn.functional.cross_entropy(t_out, t_y)
        if with_dice:
            loss, t_loss = loss + F.dice_loss(out, y), t_loss + twins.dice_loss(t_out, t_y)
        return loss, t_loss

    follow_adam(ours, tm, losses)


def test_dice_loss_matches_the_twin_and_its_definition():
    rng = np.random.default_rng(3)
    logits, y = rng.standard_normal((2, 4, 3, 5)), rng.integers(0, 4, (2, 3, 5))
    ours = F.dice_loss(dl.tensor(logits, dtype=dl.float64), y, eps=0.5).item()
    theirs = twins.dice_loss(torch.from_numpy(logits), torch.from_numpy(y), eps=0.5).item()
    assert ours == pytest.approx(theirs, rel=1e-12)
    # a confident, correct prediction has Dice 1 per class: loss near 0
    perfect = np.moveaxis(np.eye(4)[y], -1, 1) * 50.0
    assert F.dice_loss(dl.tensor(perfect, dtype=dl.float64), y).item() == pytest.approx(0.0, abs=1e-12)


def test_dice_loss_gradcheck():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, (2, 2, 2))
    x = dl.tensor(rng.standard_normal((2, 3, 2, 2)), dtype=dl.float64, requires_grad=True)
    assert gradcheck(lambda t: F.dice_loss(t, y), [x])
    assert gradcheck(lambda t: F.dice_loss(t, y, eps=1e-3), [x])


@pytest.mark.parametrize("logits_shape, target", [
    ((2, 3, 4, 4), np.zeros((2, 4, 5), np.int64)),     # positions differ
    ((2, 3, 4, 4), np.zeros((2, 3, 4, 4), np.int64)),  # one-hot-shaped target
    ((2, 3, 4, 4), np.zeros((2, 4, 4))),               # float target
    ((3,), np.zeros((3,), np.int64)),                  # no class dimension
])
def test_dice_loss_rejects_bad_shapes_in_one_line(logits_shape, target):
    with pytest.raises(ValueError, match="dice_loss: expected logits") as err:
        F.dice_loss(dl.tensor(np.zeros(logits_shape)), target)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("shape", [(1, 3, 18, 16), (1, 3, 16, 14), (1, 3, 6, 6), (3, 16, 16)])
def test_unet_rejects_sizes_not_divisible_by_4(shape):
    model = models.create("unet", in_channels=3, num_classes=2, widths=WIDTHS)
    with pytest.raises(ValueError, match="divisible by 4") as err:
        model(np.zeros(shape, np.float32))
    assert "\n" not in str(err.value)
