"""CenterNet against its PyTorch twin (``benchmarks/twins/centernet.py``): one state dict, loaded by name, gives the
same three heads, the same loss on the targets of ``encode`` and the same weights after Adam steps; and the parts of
the detector on their own: the Gaussian focal loss (against the twin's, and its gradient), ``encode``'s targets,
``decode`` of perfect outputs, and ``gaussian_radius``."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import models
from dlbasics.autograd import gradcheck
from dlbasics.models.centernet import gaussian_radius, masked_l1
from dlbasics.nn import functional as F

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from twins import centernet as twins  # noqa: E402

from tests.models.torch_twins import follow_adam, randomize_batch_norm  # noqa: E402

N, C_IN, CLASSES, SIZE, WIDTH = 2, 3, 3, 32, 8
OUT = (SIZE // 4, SIZE // 4)
# rows (class 1..C, x0, y0, x1, y1); class 0 pads image 1's second row
OBJECTS = np.array([[[2, 8, 12, 24, 20], [1, 3, 5, 17, 13]],
                    [[3, 20, 20, 30, 30], [0, 0, 0, 0, 0]]], np.float64)


def pair(seed=0):
    """The float64 twin with random batch-norm statistics, and dlbasics' CenterNet loaded from its state dict."""
    torch.manual_seed(seed)
    tm = twins.centernet(C_IN, CLASSES, WIDTH)
    randomize_batch_norm(tm)
    tm = tm.double()
    ours = models.create("centernet", in_channels=C_IN, num_classes=CLASSES, width=WIDTH).to(np.float64)
    state = tm.state_dict()
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict({k: v.detach().numpy() for k, v in state.items()})
    return ours, tm


def images(seed):
    return np.random.default_rng(seed).standard_normal((N, C_IN, SIZE, SIZE))


def test_heatmap_bias_starts_at_minus_2_19_on_both_sides():
    ours = models.create("centernet", in_channels=C_IN, num_classes=CLASSES, width=WIDTH)
    tm = twins.centernet(C_IN, CLASSES, WIDTH)
    np.testing.assert_allclose(ours.state_dict()["heatmap.2.bias"], -2.19, rtol=1e-6)
    np.testing.assert_allclose(tm.state_dict()["heatmap.2.bias"].numpy(), -2.19, rtol=1e-6)
    assert list(ours.state_dict()) == list(tm.state_dict())


def test_forward_matches_the_twin_on_all_three_heads():
    ours, tm = pair()
    x = images(0)
    for mode in ("train", "eval"):
        ours.train(mode == "train")
        tm.train(mode == "train")
        outs = ours(x)
        with torch.no_grad():
            t_outs = tm(torch.from_numpy(x))
        for name, o, t, c in zip(("heatmap", "size", "offset"), outs, t_outs, (CLASSES, 2, 2)):
            assert o.shape == (N, c, *OUT)
            np.testing.assert_allclose(o.data, t.numpy(), rtol=1e-10, atol=1e-10, err_msg=f"{mode} {name}")


def test_loss_and_adam_steps_follow_the_twins_trajectory():
    ours, tm = pair()
    targets = ours.encode(OBJECTS, OUT)

    def losses(step):
        x = images(step + 1)
        loss, parts = ours.loss(ours(x), targets)
        t_loss, t_parts = twins.centernet_loss(tm(torch.from_numpy(x)), targets)
        assert parts == pytest.approx(t_parts, rel=1e-9)
        assert loss.item() == pytest.approx(parts["heatmap"] + 0.1 * parts["size"] + parts["offset"], rel=1e-12)
        return loss, t_loss

    follow_adam(ours, tm, losses)


def heatmap_with_peaks(rng, shape, n_peaks=3):
    y = rng.uniform(0.0, 0.99, shape)
    flat = y.reshape(-1)
    flat[rng.choice(flat.size, n_peaks, replace=False)] = 1.0
    return y


@pytest.mark.parametrize("alpha, beta", [(2.0, 4.0), (1.5, 3.0)])
def test_gaussian_focal_loss_matches_the_twin(alpha, beta):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((2, 3, 6, 6)) * 3
    y = heatmap_with_peaks(rng, logits.shape)
    x = dl.tensor(logits, dtype=dl.float64, requires_grad=True)
    loss = F.gaussian_focal_loss(x, y, alpha=alpha, beta=beta)
    loss.backward()
    t_x = torch.from_numpy(logits).requires_grad_()
    t_loss = twins.gaussian_focal_loss(t_x, torch.from_numpy(y), alpha=alpha, beta=beta)
    t_loss.backward()
    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-12)
    np.testing.assert_allclose(x.grad, t_x.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_gaussian_focal_loss_is_finite_for_extreme_logits():
    y = np.array([[[[1.0, 0.0], [0.5, 1.0]]]])
    logits = np.array([[[[-200.0, 200.0], [150.0, 1e3]]]])
    x = dl.tensor(logits, dtype=dl.float64, requires_grad=True)
    loss = F.gaussian_focal_loss(x, y)
    loss.backward()
    t_loss = twins.gaussian_focal_loss(torch.from_numpy(logits), torch.from_numpy(y))
    assert np.isfinite(loss.item()) and np.all(np.isfinite(x.grad))
    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-12)


def test_gaussian_focal_loss_gradcheck():
    rng = np.random.default_rng(6)
    y = heatmap_with_peaks(rng, (1, 2, 3, 3), n_peaks=2)
    x = dl.tensor(rng.standard_normal((1, 2, 3, 3)), dtype=dl.float64, requires_grad=True)
    assert gradcheck(lambda t: F.gaussian_focal_loss(t, y), [x])
    assert gradcheck(lambda t: F.gaussian_focal_loss(t, y, alpha=1.5, beta=3.0), [x])


def test_gaussian_focal_loss_rejects_a_target_of_another_shape():
    with pytest.raises(ValueError, match="gaussian_focal_loss"):
        F.gaussian_focal_loss(dl.tensor(np.zeros((1, 2, 3, 3))), np.zeros((1, 2, 3)))


def test_masked_l1_averages_over_the_objects():
    pred = dl.tensor(np.arange(8.0).reshape(1, 2, 2, 2), dtype=dl.float64)
    mask = np.array([[[[1.0, 0.0], [0.0, 1.0]]]])
    # |0 - 1| + |3 - 1| + |4 - 1| + |7 - 1| = 12, over 2 objects
    assert masked_l1(pred, np.ones((1, 2, 2, 2)), mask).item() == pytest.approx(6.0)
    assert masked_l1(pred, np.ones((1, 2, 2, 2)), np.zeros_like(mask)).item() == 0.0


def test_encode_one_box():
    model = models.create("centernet", in_channels=C_IN, num_classes=CLASSES, width=WIDTH)
    t = model.encode(np.array([[[2, 8, 12, 24, 20]]], np.float64), OUT)
    assert t["heatmap"].shape == (1, CLASSES, *OUT) and t["size"].shape == t["offset"].shape == (1, 2, *OUT)
    assert t["mask"].shape == (1, 1, *OUT)
    heat = t["heatmap"][0, 1]
    assert heat[4, 4] == 1.0 and np.unravel_index(np.argmax(heat), heat.shape) == (4, 4)  # centre (16, 16) / 4
    assert np.count_nonzero(heat == 1.0) == 1 and np.all(heat >= 0)
    assert not t["heatmap"][0, [0, 2]].any()  # the other classes' channels stay empty
    assert tuple(t["size"][0, :, 4, 4]) == (16.0, 8.0)
    assert tuple(t["offset"][0, :, 4, 4]) == (0.0, 0.0)
    assert t["mask"].sum() == 1.0 and t["mask"][0, 0, 4, 4] == 1.0
    # the Gaussian falls off from the centre, symmetric on both sides
    assert heat[4, 3] == heat[4, 5] < 1.0 and heat[3, 4] == heat[5, 4] < 1.0


def test_encode_a_second_class_in_its_own_channel():
    model = models.create("centernet", in_channels=C_IN, num_classes=CLASSES, width=WIDTH)
    alone = model.encode(OBJECTS[:1, :1], OUT)
    both = model.encode(OBJECTS[:1], OUT)
    np.testing.assert_array_equal(both["heatmap"][0, 1], alone["heatmap"][0, 1])  # class 2 untouched
    heat0 = both["heatmap"][0, 0]  # class 1: box (3, 5, 17, 13), centre (10, 9) / 4 = (2.5, 2.25)
    assert heat0[2, 2] == 1.0 and np.count_nonzero(heat0 == 1.0) == 1
    assert tuple(both["size"][0, :, 2, 2]) == (14.0, 8.0)
    np.testing.assert_allclose(both["offset"][0, :, 2, 2], (0.5, 0.25))
    assert both["mask"].sum() == 2.0


def test_decode_of_perfect_outputs_gives_back_the_boxes():
    model = models.create("centernet", in_channels=C_IN, num_classes=CLASSES, width=WIDTH)
    t = model.encode(OBJECTS, OUT)
    h = np.clip(t["heatmap"].astype(np.float64), 1e-12, 1 - 1e-12)
    outputs = (dl.tensor(np.log(h / (1 - h))), dl.tensor(t["size"]), dl.tensor(t["offset"]))
    threshold = 0.05
    decoded = model.decode(outputs, threshold=threshold)
    assert len(decoded) == N
    for i, (boxes, scores, classes) in enumerate(decoded):
        real = OBJECTS[i][OBJECTS[i, :, 0] > 0]
        assert boxes.shape == (len(real), 4) and scores.shape == classes.shape == (len(real),)
        assert np.all(scores > threshold)
        order = np.argsort(classes)
        np.testing.assert_array_equal(classes[order], np.sort(real[:, 0]).astype(int) - 1)  # 0-based
        np.testing.assert_allclose(boxes[order], real[np.argsort(real[:, 0]), 1:], atol=1e-5)
    # a higher threshold than the perfect peaks' scores keeps nothing
    assert all(len(b) == 0 for b, _, _ in model.decode(outputs, threshold=1.0))


def test_gaussian_radius_is_positive_and_grows_with_the_box():
    sides = [1.0, 2.0, 4.0, 8.0, 16.0]
    radii = [gaussian_radius(s, s) for s in sides]
    assert all(r > 0 for r in radii)
    assert all(a < b for a, b in itertools.pairwise(radii))
    assert gaussian_radius(4.0, 8.0) > gaussian_radius(4.0, 4.0) < gaussian_radius(8.0, 4.0)
