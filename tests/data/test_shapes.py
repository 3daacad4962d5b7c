"""The shapes world: seeded scenes whose labels agree with their pixels - masks with the drawn shapes, boxes with the
masks, keypoints with the drawn figure - and the knobs that make it harder."""

import numpy as np
import pytest

from dlbasics.data.datasets import load
from dlbasics.data.datasets.shapes import Knobs, object_scenes, pose_scenes, shape_mask


def test_shapes_have_their_size_and_kind():
    circle, square, triangle = (shape_mask(k, 32, 32, 10) for k in (1, 2, 3))
    assert square.sum() == 400 and abs(circle.sum() - np.pi * 100) < 12
    assert abs(triangle.sum() - np.sqrt(3) / 4 * 20 ** 2) < 15  # side 20
    rows = np.nonzero(triangle.any(1))[0]
    assert triangle[rows[-1]].sum() > 4 * triangle[rows[0]].sum()  # upright: wide at the base, narrow at the top


def test_scenes_are_seeded_and_labels_agree_with_pixels():
    images, masks, classes, boxes = object_scenes(50, seed=3)
    again = object_scenes(50, seed=3)
    assert np.array_equal(images, again[0]) and np.array_equal(masks, again[1])
    assert images.shape == (50, 3, 64, 64) and images.dtype == np.float32 and images.min() >= 0 and images.max() <= 1
    assert set(np.unique(masks)) <= {0, 1, 2, 3}
    n_objects = (classes >= 0).sum(1)
    assert n_objects.min() >= 1 and n_objects.max() <= 4
    for i in range(50):
        foreground = masks[i] > 0
        assert np.array_equal(foreground, images[i].max(0) > 0)  # no overlap: the shapes are exactly the non-black
        for c, (x0, y0, x1, y1) in zip(classes[i][classes[i] >= 0], boxes[i][classes[i] >= 0]):
            inside = masks[i, int(y0):int(y1), int(x0):int(x1)]
            assert (inside == c).any() and 10 <= x1 - x0 <= 29  # a box holds its shape; size 6-14 half-width
    # colour says nothing of the class: each class appears in many hues
    hue = [images[i][:, masks[i] == 1].mean(1).argmax() for i in range(50) if (masks[i] == 1).any()]
    assert len(set(hue)) == 3


def test_knobs_make_the_world_harder():
    plain, plain_masks, _, _ = object_scenes(20, seed=0)
    assert plain.transpose(1, 0, 2, 3)[:, plain_masks == 0].max() == 0  # the easy world: a black background
    hard, masks, _, _ = object_scenes(20, seed=0, knobs=Knobs(occlusion=True, clutter=3, texture=0.5))
    background = hard.transpose(1, 0, 2, 3)[:, masks == 0]
    assert background.max() > 0.3  # texture and strokes on the background, which stays class 0


def test_pose_scenes_draw_the_figure_at_its_keypoints():
    images, keypoints = pose_scenes(30, seed=1)
    assert keypoints.shape == (30, 7, 2) and (keypoints >= 0).all() and (keypoints <= 64).all()
    for img, kp in zip(images, keypoints):
        for x, y in kp:  # every joint lies on a drawn pixel (or right next to one)
            patch = img[:, max(int(y) - 1, 0):int(y) + 2, max(int(x) - 1, 0):int(x) + 2]
            assert patch.max() > 0
        assert kp[0, 1] < kp[1, 1] < kp[2, 1]  # head above the neck above the hips (lean at most 20 degrees)


@pytest.mark.parametrize("name, target_shape, problem", [("shapes-seg", (64, 64), "segmentation"),
                                                          ("shapes-det", (4, 5), "detection"),
                                                          ("shapes-pose", (7, 2), "pose")])
def test_the_data_sets(name, target_shape, problem):
    splits = load(name, n_train=20, n_val=5, n_test=5)
    assert splits.info.task == problem and [len(s) for s in splits] == [20, 5, 5]
    x, y = splits.train[0]
    assert x.shape == (3, 64, 64) and y.shape == target_shape
    assert not np.array_equal(splits.train[0][0], splits.test[0][0])  # the splits are different scenes
    with pytest.raises(ValueError, match="n_train must be >= 1"):
        load(name, n_train=0)
