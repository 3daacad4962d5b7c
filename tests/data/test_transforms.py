"""Array transforms: the math, crop windows, flips, seeding, and batch == one-by-one."""

import numpy as np
import pytest

from dlbasics.data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToFloat


def images(n=6, c=3, h=5, w=7, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)


# ---- Normalize, ToFloat, Compose ---------------------------------------------------------------------
def test_normalize_per_channel():
    x = images()
    mean, std = [0.1, -0.2, 0.3], [0.5, 2.0, 4.0]
    out = Normalize(mean, std)(x)
    for c in range(3):
        np.testing.assert_allclose(out[:, c], (x[:, c] - mean[c]) / std[c], rtol=1e-6, atol=1e-7)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(Normalize(mean, std)(x[2]), out[2])  # one sample == its row of the batch
    assert np.shares_memory(out, x) is False


def test_normalize_flat_data():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_allclose(Normalize(2.0, 4.0)(x), (x - 2) / 4)
    np.testing.assert_allclose(Normalize([0, 1, 2], [1, 1, 2])(x), (x - [0, 1, 2]) / [1, 1, 2])
    np.testing.assert_allclose(Normalize(1.0, 2.0)(x.astype(np.float64)), (x - 1) / 2)
    assert Normalize(1.0, 2.0)(x.astype(np.float64)).dtype == np.float64  # no downcast of explicit float64


def test_normalize_errors():
    with pytest.raises(ValueError, match="3 channels"):
        Normalize([0.5, 0.5], [1, 1])(images())
    with pytest.raises(TypeError, match="ToFloat"):
        Normalize(0.5, 0.5)(np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="non-zero"):
        Normalize(0.0, [1.0, 0.0])
    with pytest.raises(ValueError, match="one length"):
        Normalize([0.0, 1.0], [1.0, 2.0, 3.0])


def test_to_float_and_compose():
    x = np.array([[[0, 51, 255]]], dtype=np.uint8)
    out = ToFloat()(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[[0, 0.2, 1]]], dtype=np.float32))
    assert ToFloat(scale=0.5)(np.array([4])).tolist() == [2.0]
    pipeline = Compose([ToFloat(), Normalize(0.5, 0.5)])
    np.testing.assert_allclose(pipeline(x), [[[-1, -0.6, 1]]], atol=1e-6)
    order = Compose([lambda a: a + 1, lambda a: a * 10])
    assert order(np.array([1.0])).tolist() == [20.0]


# ---- RandomCrop ---------------------------------------------------------------------------------------
def padded(x, p):
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)])


def offsets_of(crop, pad_img, h, w):
    """All (top, left) where ``crop`` equals a window of ``pad_img``."""
    return [(i, j) for i in range(pad_img.shape[-2] - h + 1) for j in range(pad_img.shape[-1] - w + 1)
            if np.array_equal(pad_img[..., i:i + h, j:j + w], crop)]


def test_crop_is_a_window_of_the_padded_image():
    x = images(n=20, h=6, w=6) + 10  # no zeros inside, so padding is recognisable
    out = RandomCrop(6, padding=2, seed=0)(x)
    assert out.shape == (20, 3, 6, 6) and out.dtype == np.float32
    found = []
    for k in range(20):
        where = offsets_of(out[k], padded(x[k], 2), 6, 6)
        assert len(where) == 1, k
        found.append(where[0])
    assert len(set(found)) > 5  # offsets differ between images of a batch
    assert any((out[k] == 0).any() for k in range(20))  # some crops show the zero border


def test_crop_offsets_cover_the_whole_range():
    x = images(n=600, c=1, h=4, w=4)
    out = RandomCrop(4, padding=1, seed=1)(x)
    offsets = {offsets_of(out[k], padded(x[k], 1), 4, 4)[0] for k in range(600)}
    assert offsets == {(i, j) for i in range(3) for j in range(3)}


def test_crop_shapes_and_rectangles():
    x = images(h=5, w=7)
    assert RandomCrop((3, 4), seed=0)(x).shape == (6, 3, 3, 4)
    assert RandomCrop((3, 4), seed=0)(x[0]).shape == (3, 3, 4)
    np.testing.assert_array_equal(RandomCrop((5, 7), seed=0)(x), x)  # full size, no padding: identity
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop(8, padding=0)(x)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        RandomCrop(2)(np.zeros((4, 4)))


def test_crop_is_reproducible_and_batch_equals_one_by_one():
    x = images(n=8)
    a = RandomCrop(4, padding=2, seed=3)(x)
    np.testing.assert_array_equal(a, RandomCrop(4, padding=2, seed=np.random.default_rng(3))(x))
    assert not np.array_equal(a, RandomCrop(4, padding=2, seed=4)(x))
    one = RandomCrop(4, padding=2, seed=3)
    np.testing.assert_array_equal(a, np.stack([one(sample) for sample in x]))
    crop = RandomCrop(4, padding=2, seed=3)
    assert not np.array_equal(crop(x), crop(x))  # a stream, not a fixed crop


# ---- RandomHorizontalFlip --------------------------------------------------------------------------------
def test_flip_reverses_width():
    x = images(n=200, c=2, h=2, w=3)
    out = RandomHorizontalFlip(seed=0)(x)
    flipped = np.array([np.array_equal(out[k], x[k, :, :, ::-1]) for k in range(200)])
    kept = np.array([np.array_equal(out[k], x[k]) for k in range(200)])
    assert (flipped | kept).all()
    assert 70 < flipped.sum() < 130  # p = 0.5
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x), x[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(x), x)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x[0]), x[0, :, :, ::-1])
    assert x.flags.writeable and not np.shares_memory(out, x)


def test_flip_is_reproducible_and_batch_equals_one_by_one():
    x = images(n=16)
    a = RandomHorizontalFlip(seed=5)(x)
    np.testing.assert_array_equal(a, RandomHorizontalFlip(seed=5)(x))
    one = RandomHorizontalFlip(seed=5)
    np.testing.assert_array_equal(a, np.stack([one(sample) for sample in x]))
    with pytest.raises(ValueError):
        RandomHorizontalFlip(p=1.5)


def test_composed_augmentation_batch_equals_one_by_one_with_separate_seeds():
    def pipeline():
        return Compose([RandomCrop(5, padding=1, seed=0), RandomHorizontalFlip(seed=1), Normalize(0.5, 2.0)])

    x = images(n=10, h=5, w=5)
    batch = pipeline()(x)
    one = pipeline()
    np.testing.assert_array_equal(batch, np.stack([one(sample) for sample in x]))
