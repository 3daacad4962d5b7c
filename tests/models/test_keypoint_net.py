"""keypoint_net against its PyTorch twin (``benchmarks/twins/keypoint_net.py``): one state dict, loaded by name,
gives the same heatmaps (train and eval mode, float64 and float32) and the same weights after Adam steps on the MSE
of ``encode``'s targets; and the model's own NumPy parts: ``encode`` puts each joint's peak on the right heatmap
pixel, ``decode(encode(kp))`` gives the keypoints back to half a pixel, and sizes that are not multiples of 8 are
refused in one line."""

import sys
from pathlib import Path

import numpy as np
import pytest

from dlbasics import models
from dlbasics.models.keypoint_net import STRIDE
from dlbasics.nn import functional as F

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from twins import keypoint_net as twins  # noqa: E402

from tests.models.torch_twins import follow_adam, randomize_batch_norm  # noqa: E402

N, C_IN, JOINTS, SIZE, WIDTH = 2, 3, 7, 32, 8
OUT = (SIZE // STRIDE, SIZE // STRIDE)


def create(**options):
    return models.create("keypoint_net", in_channels=C_IN, num_classes=JOINTS, width=WIDTH, **options)


def pair(dtype=np.float64, seed=0):
    """The twin with random batch-norm affine parameters and running statistics (so eval mode is not the identity
    normalisation), and dlbasics' keypoint_net loaded from its state dict by name."""
    torch.manual_seed(seed)
    tm = twins.keypoint_net(C_IN, JOINTS, WIDTH)
    randomize_batch_norm(tm)
    tm = tm.to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = create().to(dtype)
    state = tm.state_dict()
    assert list(ours.state_dict()) == list(state)  # the same names, in the same order
    ours.load_state_dict({k: v.detach().numpy() for k, v in state.items()})
    return ours, tm


def images(seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal((N, C_IN, SIZE, SIZE)).astype(dtype)


def keypoints(seed, n=N):
    """Random joints (n, J, 2) anywhere in the image, in input pixels."""
    return np.random.default_rng(seed).uniform(0, SIZE, (n, JOINTS, 2))


def test_state_dict_keys_are_the_twins():
    keys = list(create().state_dict())
    assert keys == list(twins.keypoint_net(C_IN, JOINTS, WIDTH).state_dict())
    assert {"backbone.0.weight", "backbone.1.running_var", "backbone.16.num_batches_tracked", "deconv.0.weight",
            "deconv.4.bias", "head.weight", "head.bias"} <= set(keys)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_forward_matches_the_twin_in_train_and_eval_mode(dtype, tol):
    ours, tm = pair(dtype)
    x = images(0, dtype)
    for mode in ("train", "eval"):  # train first: it moves the running statistics, which eval then uses
        ours.train(mode == "train")
        tm.train(mode == "train")
        out = ours(x)
        with torch.no_grad():
            t_out = tm(torch.from_numpy(x)).numpy()
        assert out.shape == (N, JOINTS, *OUT) and out.data.dtype == dtype
        np.testing.assert_allclose(out.data, t_out, rtol=tol, atol=tol, err_msg=mode)
        state = ours.state_dict()
        for k, v in tm.state_dict().items():  # the running statistics too
            np.testing.assert_allclose(state[k], v.numpy(), rtol=tol, atol=tol, err_msg=f"{mode} {k}")


def test_adam_steps_on_the_heatmap_mse_follow_the_twins_trajectory():
    ours, tm = pair(np.float64)

    def losses(step):
        x, target = images(step + 1), ours.encode(keypoints(step + 10), OUT)
        t_loss = twins.pose_loss(tm(torch.from_numpy(x)), target)
        assert t_loss.dtype == torch.float64
        return F.mse_loss(ours(x), target), t_loss

    follow_adam(ours, tm, losses)


def test_encode_puts_each_peak_on_its_joints_pixel():
    model = create()
    # joint j of image i on the centre of heatmap pixel (row py, column px): input pixel STRIDE * (p + 0.5)
    rng = np.random.default_rng(1)
    px, py = rng.integers(0, OUT[1], (N, JOINTS)), rng.integers(0, OUT[0], (N, JOINTS))
    kp = np.stack([STRIDE * (px + 0.5), STRIDE * (py + 0.5)], -1)
    heat = model.encode(kp, OUT)
    assert heat.shape == (N, JOINTS, *OUT) and heat.dtype == np.float32
    assert np.all((heat > 0) & (heat <= 1))
    for i in range(N):
        for j in range(JOINTS):
            h = heat[i, j]
            assert h[py[i, j], px[i, j]] == 1.0 and np.count_nonzero(h == 1.0) == 1
            assert np.unravel_index(np.argmax(h), h.shape) == (py[i, j], px[i, j])
    # a Gaussian of sigma 2 heatmap pixels: one pixel away, exp(-1 / 8)
    i, j = np.argwhere((px > 0) & (px < OUT[1] - 1))[0]
    row = heat[i, j, py[i, j]]
    np.testing.assert_allclose(row[px[i, j] - 1], np.exp(-1 / 8), rtol=1e-6)
    assert row[px[i, j] - 1] == pytest.approx(row[px[i, j] + 1], rel=1e-6)


def test_encode_off_centre_peaks_at_the_pixel_that_holds_the_joint():
    kp = keypoints(2, n=20)
    heat = create().encode(kp, OUT)
    flat = heat.reshape(20, JOINTS, -1).argmax(-1)
    py, px = np.divmod(flat, OUT[1])
    # the nearest pixel centre to kp / STRIDE is the pixel floor(kp / STRIDE) (ties aside: none in random floats)
    np.testing.assert_array_equal(px, np.floor(kp[..., 0] / STRIDE))
    np.testing.assert_array_equal(py, np.floor(kp[..., 1] / STRIDE))


def test_decode_of_encode_gives_the_keypoints_back_within_half_a_pixel():
    model = create()
    # joints away from the border pixels of the heatmap (see the next test for those)
    kp = np.random.default_rng(3).uniform(STRIDE, SIZE - STRIDE, (50, JOINTS, 2))
    back = model.decode(model.encode(kp, OUT))
    assert back.shape == kp.shape and back.dtype == np.float32
    err = np.abs(back - kp)
    # the argmax and a quarter heatmap pixel towards the higher neighbour land within 1/4 heatmap pixel = 1/2 input
    # pixel; 1e-5 of slack for float32 ties between neighbours (a joint almost exactly on a pixel edge)
    assert err.max() <= STRIDE / 2 + 1e-5, err.max()
    assert err.mean() < 0.3  # the argmax alone would give a mean of 0.5: the quarter step does refine
    # joints exactly on pixel centres come back exactly (both neighbours equal: no step)
    centres = STRIDE * (np.floor(kp / STRIDE) + 0.5)
    np.testing.assert_allclose(model.decode(model.encode(centres, OUT)), centres, atol=1e-6)


def test_decode_takes_no_quarter_step_on_the_border_pixels():
    """A border pixel has one neighbour: no step there, so the error stays within half a heatmap pixel (it was up
    to 1.5 input pixels when the missing neighbour counted as the peak itself)."""
    model = create()
    # joints in the first and last heatmap pixel along x, on the inner half (1 to 2 and 30 to 31 input pixels)
    rng = np.random.default_rng(4)
    x = np.where(rng.random((20, JOINTS)) < 0.5, rng.uniform(1, 2, (20, JOINTS)),
                 rng.uniform(SIZE - 2, SIZE - 1, (20, JOINTS)))
    kp = np.stack([x, rng.uniform(STRIDE, SIZE - STRIDE, (20, JOINTS))], -1)
    err = np.abs(model.decode(model.encode(kp, OUT)) - kp)
    assert err.max() <= STRIDE / 2 + 1e-5, err.max()


@pytest.mark.parametrize("shape", [(1, 3, 36, 32), (1, 3, 32, 20), (1, 3, 4, 4), (3, 32, 32)])
def test_keypoint_net_rejects_sizes_not_multiples_of_8_in_one_line(shape):
    with pytest.raises(ValueError, match=r"keypoint_net: expected images .* multiples of 8") as err:
        create()(np.zeros(shape, np.float32))
    assert "\n" not in str(err.value)
