"""SimCLR's augmentations: geometry against exact references (np.rot90, shifts, a linear ramp, torch's bilinear
resize), ranges and dtypes, seeding, and batch == one-by-one."""

import numpy as np
import pytest
import torch

from dlbasics import rng
from dlbasics.data.augment import (
    ColorJitter,
    GaussianNoise,
    RandomAffine,
    RandomErasing,
    RandomResizedCrop,
    TwoViews,
    affine,
    erase,
    resized_crop,
    simclr_augment,
)
from dlbasics.data.transforms import Compose, RandomHorizontalFlip


def images(n=8, c=1, h=28, w=28, seed=0, lo=0.0, hi=1.0):
    return np.random.default_rng(seed).uniform(lo, hi, (n, c, h, w)).astype(np.float32)


def shifted(x, dx, dy):
    """np.roll by (dy rows down, dx columns right) with zeros coming in instead of the wrapped pixels."""
    out = np.roll(x, (dy, dx), axis=(-2, -1))
    h, w = x.shape[-2:]
    if dy > 0:
        out[..., :dy, :] = 0
    elif dy < 0:
        out[..., h + dy:, :] = 0
    if dx > 0:
        out[..., :dx] = 0
    elif dx < 0:
        out[..., w + dx:] = 0
    return out


RANDOM = {
    "affine": lambda seed: RandomAffine(seed=seed),
    "resized_crop": lambda seed: RandomResizedCrop(28, seed=seed),
    "erasing": lambda seed: RandomErasing(seed=seed),
    "jitter": lambda seed: ColorJitter(seed=seed),
    "noise": lambda seed: GaussianNoise(seed=seed),
    "flip": lambda seed: RandomHorizontalFlip(seed=seed),
    "simclr": lambda seed: simclr_augment(seed),
    "simclr_crop": lambda seed: simclr_augment(seed, geometry="resized_crop"),
}


# ---- what every transform promises ----------------------------------------------------------------------
@pytest.mark.parametrize("name", RANDOM)
def test_shape_dtype_range(name):
    x = images(16)
    out = RANDOM[name](0)(x)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, x)
    one = RANDOM[name](0)(x[0])
    assert one.shape == x[0].shape and one.dtype == np.float32


@pytest.mark.parametrize("name", [n for n in RANDOM if n != "flip"])
def test_float64_stays_float64(name):
    out = RANDOM[name](0)(images(4).astype(np.float64))
    assert out.dtype == np.float64 and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", RANDOM)
def test_seeded_draws(name):
    x = images(16)
    a, b = RANDOM[name](3)(x), RANDOM[name](3)(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, RANDOM[name](4)(x))
    t = RANDOM[name](3)
    assert not np.array_equal(t(x), t(x))  # the stream moves on
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(RANDOM[name](g1)(x), RANDOM[name](g2)(x))


@pytest.mark.parametrize("name", RANDOM)
def test_batch_equals_one_by_one(name):
    x = images(9, c=2)
    batch = RANDOM[name](11)(x)
    t = RANDOM[name](11)
    np.testing.assert_array_equal(batch, np.stack([t(xi) for xi in x]))


def test_default_generator_when_unseeded():
    x = images(4)
    rng.manual_seed(5)
    a = simclr_augment()(x)
    rng.manual_seed(5)
    np.testing.assert_array_equal(a, simclr_augment()(x))


def test_rejects_other_shapes():
    for t in (RandomAffine(), RandomResizedCrop(), RandomErasing(), ColorJitter(), GaussianNoise()):
        with pytest.raises(ValueError, match=r"\(C, H, W\)"):
            t(np.zeros((28, 28), np.float32))


# ---- affine ------------------------------------------------------------------------------------------------
def test_affine_neutral_parameters_are_the_identity():
    x = images(5, c=3, h=28, w=20)
    np.testing.assert_array_equal(RandomAffine(degrees=0, translate=(0, 0), scale=(1, 1), seed=0)(x), x)
    np.testing.assert_array_equal(RandomAffine(degrees=0, translate=None, scale=None, seed=0)(x), x)
    np.testing.assert_array_equal(affine(x, 0.0, (0, 0), 1.0), x)


@pytest.mark.parametrize(("angle", "k"), [(90, 1), (-90, -1), (180, 2), (270, 3)])
def test_quarter_turns_equal_rot90(angle, k):
    x = images(4, c=2)
    expected = np.rot90(x, k, axes=(-2, -1))
    np.testing.assert_allclose(affine(x, angle, (0, 0), 1.0), expected, atol=1e-6)
    fixed = RandomAffine(degrees=(angle, angle), translate=None, scale=None, seed=0)
    np.testing.assert_allclose(fixed(x), expected, atol=1e-6)


@pytest.mark.parametrize(("dx", "dy"), [(3, 0), (0, -2), (-5, 4), (1, 1), (28, 0)])
def test_whole_pixel_shift_equals_roll_with_zero_fill(dx, dy):
    x = images(3, c=2)
    np.testing.assert_array_equal(affine(x, 0, (dx, dy), 1.0), shifted(x, dx, dy))


def test_random_shift_is_whole_pixels_within_translate():
    x = images(20, lo=0.1)  # no zero pixels: every shift gives a different image
    out = RandomAffine(degrees=0, translate=(0.2, 0.1), scale=(1, 1), seed=1)(x)
    seen = set()
    for xi, oi in zip(x, out):
        matches = [(dx, dy) for dx in range(-6, 7) for dy in range(-3, 4) if np.array_equal(oi, shifted(xi, dx, dy))]
        assert len(matches) == 1  # round(U(-5.6, 5.6)) columns, round(U(-2.8, 2.8)) rows
        seen.add(matches[0])
    assert len(seen) > 5


def test_affine_of_a_linear_ramp_is_exact():
    """Bilinear interpolation reproduces a linear function exactly, so on a ramp every output pixel whose source
    lies inside the image equals the ramp at the inverse-mapped point: this pins the map (angle direction, centre,
    scale, translation) at arbitrary parameters."""
    h, w = 24, 30
    r, c = np.mgrid[0:h, 0:w]

    def ramp(rr, cc):
        return 0.3 + 0.01 * rr + 0.02 * cc

    x = np.broadcast_to(ramp(r, c).astype(np.float64), (3, 1, h, w)).copy()
    angle, t, s = np.array([30.0, -70.0, 200.0]), np.array([[1.5, -2.25], [0.0, 3.0], [-4.0, 0.5]]), [1.3, 0.8, 1.0]
    out = affine(x, angle, t, s)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    for k in range(3):
        th = np.deg2rad(angle[k])
        dx, dy = c - cx - t[k, 0], r - cy - t[k, 1]
        src_c = (np.cos(th) * dx - np.sin(th) * dy) / s[k] + cx  # counter-clockwise as displayed (rows go down)
        src_r = (np.sin(th) * dx + np.cos(th) * dy) / s[k] + cy
        inside = (src_r >= 0) & (src_r <= h - 1) & (src_c >= 0) & (src_c <= w - 1)
        assert inside.sum() > 200
        np.testing.assert_allclose(out[k, 0][inside], ramp(src_r, src_c)[inside], rtol=1e-12, atol=1e-12)
        far = (src_r < -1) | (src_r > h) | (src_c < -1) | (src_c > w)
        assert far.any() and np.all(out[k, 0][far] == 0)  # zeros outside


def test_affine_fill():
    x = images(2)
    out = affine(x, 0, (5, 0), 1.0, fill=0.25)
    np.testing.assert_array_equal(out[..., :5], 0.25)
    np.testing.assert_array_equal(out[..., 5:], x[..., :-5])


def test_affine_scale_zooms_about_the_centre():
    x = np.zeros((1, 1, 29, 29), np.float32)
    x[0, 0, 14, 14], x[0, 0, 14, 17] = 1.0, 0.5
    out = affine(x, 0, (0, 0), 2.0)
    assert out[0, 0, 14, 14] == 1.0 and out[0, 0, 14, 20] == 0.5  # 3 pixels right of the centre -> 6


def test_random_affine_parameter_checks():
    assert RandomAffine(10).degrees == (-10.0, 10.0)
    with pytest.raises(ValueError, match="translate"):
        RandomAffine(translate=(0.2, 1.5))
    with pytest.raises(ValueError, match="scale"):
        RandomAffine(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="degrees"):
        RandomAffine(degrees=-5)
    with pytest.raises(ValueError, match="one value per image"):
        affine(images(3), np.zeros(2), (0, 0), 1.0)


# ---- resized crop ------------------------------------------------------------------------------------------
def test_resized_crop_matches_torch_bilinear_resize():
    x = images(4, c=2)
    top, left, height, width = [0, 3, 5, 10], [0, 2, 7, 1], [28, 10, 20, 7], [28, 15, 9, 20]
    out = resized_crop(x, top, left, height, width, (28, 24))
    for k in range(4):
        crop = torch.from_numpy(x[k:k + 1, :, top[k]:top[k] + height[k], left[k]:left[k] + width[k]].copy())
        expected = torch.nn.functional.interpolate(crop, size=(28, 24), mode="bilinear", align_corners=False)
        np.testing.assert_allclose(out[k], expected[0].numpy(), rtol=1e-6, atol=1e-6)


def test_resized_crop_whole_image_is_the_identity():
    x = images(3, c=2)
    np.testing.assert_array_equal(RandomResizedCrop(28, scale=(1, 1), ratio=(1, 1), seed=0)(x), x)


def test_resized_crop_size_and_fallback():
    x = images(3)
    out = RandomResizedCrop(16, seed=0)(x)
    assert out.shape == (3, 1, 16, 16)
    # a box 4 times the image never fits: torchvision falls back to the whole image, cut to the nearest ratio
    np.testing.assert_array_equal(RandomResizedCrop(28, scale=(4, 4), seed=0)(x), x)
    wide = RandomResizedCrop(28, scale=(4, 4), ratio=(2, 2), seed=0)(x)
    np.testing.assert_array_equal(wide, resized_crop(x, 7, 0, 14, 28, 28))


def test_resized_crop_box_checks():
    with pytest.raises(ValueError, match="inside"):
        resized_crop(images(2), 20, 0, 10, 10, 28)


# ---- erasing -----------------------------------------------------------------------------------------------
def test_erasing_changes_exactly_one_rectangle():
    x = images(200, lo=0.5, hi=1.0)
    out = RandomErasing(p=1.0, value=0.0, seed=0)(x)
    fractions = []
    for xi, oi in zip(x, out):
        changed = oi[0] != xi[0]
        rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
        assert len(rows) > 0  # with scale <= 0.2 some attempt always fits
        box = np.zeros_like(changed)
        box[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = True
        np.testing.assert_array_equal(changed, box)  # the changed pixels fill their bounding box
        assert np.all(oi[0][changed] == 0.0)
        h, w = len(rows), len(cols)
        assert h < 28 and w < 28
        fractions.append(h * w / 784)
        assert 0.3 * 0.8 <= h / w <= 3.3 / 0.8  # the ratio, up to the rounding of h and w
    assert min(fractions) >= 0.015 and max(fractions) <= 0.26  # scale (0.02, 0.2), up to rounding
    assert np.median(fractions) == pytest.approx(0.11, abs=0.03)


def test_erasing_probability_and_value():
    x = images(1000, lo=0.5)
    out = RandomErasing(p=0.5, value=0.25, seed=0)(x)
    erased = (out != x).any(axis=(1, 2, 3))
    assert 0.44 < erased.mean() < 0.56
    assert set(np.unique(out[out != x])) == {np.float32(0.25)}
    np.testing.assert_array_equal(RandomErasing(p=0.0, seed=0)(x), x)
    rgb = RandomErasing(p=1.0, value=(0.1, 0.2, 0.3), seed=0)(images(4, c=3, lo=0.5))
    for ch, v in enumerate((0.1, 0.2, 0.3)):
        assert np.isclose(rgb[:, ch], v).any()


def test_erase_functional_masks_images():
    x = images(3)
    out = erase(x, [0, 5, 10], [1, 2, 3], [4, 5, 6], [7, 8, 9], 0.0, mask=[True, False, True])
    np.testing.assert_array_equal(out[1], x[1])
    expected = x[2].copy()
    expected[:, 10:16, 3:12] = 0
    np.testing.assert_array_equal(out[2], expected)


# ---- colour jitter, noise ----------------------------------------------------------------------------------
def test_jitter_neutral_is_the_identity():
    x = images(4)
    np.testing.assert_allclose(ColorJitter(0, 0, seed=0)(x), x, atol=1e-6)


def test_brightness_scales_each_image_by_one_factor():
    x = images(50, lo=0.1, hi=0.7)  # 0.7 * 1.4 < 1: no clipping
    out = ColorJitter(brightness=0.4, contrast=0, seed=0)(x)
    b = (out / x).reshape(50, -1)
    np.testing.assert_allclose(b, np.broadcast_to(b[:, :1], b.shape), rtol=1e-5)
    assert b.min() >= 0.6 and b.max() <= 1.4 and b[:, 0].std() > 0.1


def test_contrast_keeps_the_mean_and_scales_deviations():
    x = images(50, lo=0.35, hi=0.65)  # deviations <= 0.15, times 1.4: no clipping
    out = ColorJitter(brightness=0, contrast=0.4, seed=0)(x)
    m = x.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3), keepdims=True), m, atol=1e-6)
    c = ((out - m) * (x - m)).sum(axis=(1, 2, 3)) / ((x - m) ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(out - m, c[:, None, None, None] * (x - m), atol=1e-6)
    assert c.min() >= 0.6 and c.max() <= 1.4


def test_jitter_clips_and_checks():
    out = ColorJitter(brightness=(2.0, 2.0), contrast=0, seed=0)(images(4))
    assert out.max() == 1.0
    assert ColorJitter(brightness=1.5).brightness == (0.0, 2.5)
    with pytest.raises(ValueError, match="brightness"):
        ColorJitter(brightness=(-0.5, 1.0))


def test_noise_std_and_clip():
    x = np.full((64, 1, 28, 28), 0.5, np.float32)
    d = GaussianNoise(std=0.05, seed=0)(x) - x
    assert abs(d.mean()) < 2e-3 and d.std() == pytest.approx(0.05, rel=0.02)
    np.testing.assert_array_equal(GaussianNoise(std=0.0, seed=0)(x), x)
    edge = GaussianNoise(std=0.05, seed=0)(np.zeros((4, 1, 28, 28), np.float32))
    assert edge.min() == 0.0 and 0.4 < np.mean(edge == 0.0) < 0.6
    assert GaussianNoise(std=0.05, clip=False, seed=0)(np.zeros((4, 1, 28, 28), np.float32)).min() < 0


# ---- the SimCLR pipeline ------------------------------------------------------------------------------------
def test_two_views_differ_and_are_seeded():
    x = images(16)
    v1, v2 = TwoViews(simclr_augment(0))(x)
    assert v1.shape == v2.shape == x.shape and v1.dtype == v2.dtype == np.float32
    assert not np.array_equal(v1, v2)
    w1, w2 = TwoViews(simclr_augment(0))(x)
    np.testing.assert_array_equal(v1, w1)
    np.testing.assert_array_equal(v2, w2)


def test_simclr_augment_pipeline():
    aug = simclr_augment(0)
    assert isinstance(aug, Compose)
    kinds = [type(t) for t in aug.transforms]
    assert kinds == [RandomAffine, RandomHorizontalFlip, ColorJitter, RandomErasing, GaussianNoise]
    assert type(simclr_augment(0, geometry="resized_crop").transforms[0]) is RandomResizedCrop
    with pytest.raises(ValueError, match="geometry"):
        simclr_augment(0, geometry="blur")
    # each transform has its own generator, so a checkpoint can save and restore every one of them
    found = rng.find_generators(aug=aug)
    assert len(found) == 1 + 5
    assert not np.array_equal(aug(images(4)), simclr_augment(1)(images(4)))

