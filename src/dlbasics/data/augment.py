"""Random augmentations for contrastive learning (SimCLR) on small greyscale images, batched and seeded.

Paper: "A Simple Framework for Contrastive Learning of Visual Representations", T. Chen, S. Kornblith,
M. Norouzi and G. Hinton, ICML 2020.
Idea: two random views of one image are a positive pair; the augmentations decide what the encoder must
learn to ignore (position, size, orientation, brightness, occlusion, noise).

As in ``data.transforms``, each transform takes one image (C, H, W) or a batch (N, C, H, W) of float images
in [0, 1], draws from its own generator (``seed``: int or ``numpy.random.Generator``; None uses dl's default
generator at call time) and handles the batch in whole-array NumPy calls, with no loop over the images: the
geometric ones build all N sampling grids at once and gather their bilinear neighbours with one fancy index
each. Each image draws the same count of random numbers whatever happens to it, row by row, so transforming a
batch gives the same result as transforming its images one after another with the same seed.

    augment = simclr_augment(seed=0)  # affine, flip, jitter, erasing, noise
    view1, view2 = TwoViews(augment)(x)  # x (512, 1, 28, 28) float32

Speed: ``simclr_augment`` on a batch of 512 28x28 images takes about 30 ms on one CPU core (the affine
resampling about 18 ms of it, the noise 6), so a pair of views costs about 60 ms per 512 images; with
``geometry="resized_crop"`` a little less.

The functional forms (``affine``, ``resized_crop``, ``erase``) take the parameters per image, as
``torchvision.transforms.functional`` takes them for one image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dlbasics.data.transforms import Compose, RandomHorizontalFlip, _as_batch, _Random
from dlbasics.rng import Seed, get_generator

__all__ = [
    "ColorJitter",
    "GaussianNoise",
    "RandomAffine",
    "RandomErasing",
    "RandomResizedCrop",
    "TwoViews",
    "affine",
    "erase",
    "resized_crop",
    "simclr_augment",
]

_ATTEMPTS = 10  # torchvision's tries at a box of the drawn area and aspect ratio (RandomResizedCrop, RandomErasing)


def _per_image(v: Any, n: int, who: str, name: str) -> np.ndarray:
    """A scalar or one value per image as a float64 array (N,)."""
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        return np.full(n, float(a))
    if a.shape != (n,):
        raise ValueError(f"{who}: {name} must be a scalar or one value per image ({n},), got shape {a.shape}")
    return a


def _range(v: float | Sequence[float], who: str, name: str, center: float = 0.0) -> tuple[float, float]:
    """``v`` -> (center - v, center + v), or a (min, max) pair as given."""
    if isinstance(v, int | float | np.number):
        if v < 0:
            raise ValueError(f"{who}: {name} must be >= 0 when a single number, got {v}")
        return float(center - v), float(center + v)
    lo, hi = (float(b) for b in v)
    if lo > hi:
        raise ValueError(f"{who}: {name} must be (min, max) with min <= max, got {tuple(v)}")
    return lo, hi


def _unit_pair(v: Sequence[float], who: str, name: str, low: float = 0.0) -> tuple[float, float]:
    lo, hi = (float(b) for b in v)
    if not low <= lo <= hi:
        raise ValueError(f"{who}: {name} must be (min, max) with {low} <= min <= max, got {tuple(v)}")
    return lo, hi


# ---- bilinear resampling -------------------------------------------------------------------------------
def _bilinear(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """``x`` (N, C, H, W) read at fractional positions ``rows``, ``cols`` (broadcasting to (N, h, w)), pixel
    centres at integers: bilinear between the 4 neighbours, ``fill`` beyond the border -> (N, C, h, w).

    The image gets a one-pixel frame of ``fill`` and every index is clipped into the framed image, so a
    neighbour outside reads the frame; each neighbour is one fancy index over the whole batch."""
    n, c, h_in, w_in = x.shape
    h, w = np.broadcast_shapes(rows.shape, cols.shape)[1:]
    framed = np.full((n, c, h_in + 2, w_in + 2), fill, dtype=x.dtype)
    framed[:, :, 1:-1, 1:-1] = x
    y0, x0 = np.floor(rows), np.floor(cols)
    wy, wx = (rows - y0).astype(x.dtype), (cols - x0).astype(x.dtype)
    # row r of x is row r + 1 of the frame; anything beyond the border is clipped onto the frame
    r0 = np.clip(y0 + 1, 0, h_in + 1).astype(np.intp) * (w_in + 2)
    r1 = np.clip(y0 + 2, 0, h_in + 1).astype(np.intp) * (w_in + 2)
    c0 = np.clip(x0 + 1, 0, w_in + 1).astype(np.intp)
    c1 = np.clip(x0 + 2, 0, w_in + 1).astype(np.intp)
    flat = framed.reshape(n, c, -1)
    img, chan = np.arange(n)[:, None, None], np.arange(c)[None, :, None]

    def at(r: np.ndarray, col: np.ndarray) -> np.ndarray:  # (N, C, h*w)
        return flat[img, chan, np.broadcast_to(r + col, (n, h, w)).reshape(n, 1, h * w)]

    wx, wy = np.broadcast_to(wx, (n, h, w)).reshape(n, 1, -1), np.broadcast_to(wy, (n, h, w)).reshape(n, 1, -1)
    a, b = at(r0, c0), at(r0, c1)
    top = a + (b - a) * wx
    a, b = at(r1, c0), at(r1, c1)
    bottom = a + (b - a) * wx
    out = top + (bottom - top) * wy
    # a convex combination, but lerp in float32 can overshoot by an ulp: keep to the range of the inputs
    lo, hi = min(float(x.min(initial=fill)), fill), max(float(x.max(initial=fill)), fill)
    np.clip(out, lo, hi, out=out)
    return out.reshape(n, c, h, w)


# ---- functional forms ---------------------------------------------------------------------------------------
def affine(x: np.ndarray, angle: Any, translate: Any, scale: Any, fill: float = 0.0) -> np.ndarray:
    """Rotate by ``angle`` degrees (counter-clockwise as displayed, about the image centre), scale by ``scale``
    and shift by ``translate`` = (dx, dy) pixels (right, down), as ``torchvision.transforms.functional.affine``
    without shear; bilinear, ``fill`` outside the image.

    x: (C, H, W) or (N, C, H, W); angle and scale: scalars or (N,); translate: a pair or (N, 2). The output
    grid is mapped back to the input: p = R(-angle) (p' - centre - t) / scale + centre, centre = ((W-1)/2,
    (H-1)/2), so a quarter turn of a square image or a whole-pixel shift moves pixel centres onto pixel centres.
    """
    xb, batched = _as_batch(x, "affine")
    n, _, h, w = xb.shape
    theta = np.deg2rad(_per_image(angle, n, "affine", "angle"))
    s = _per_image(scale, n, "affine", "scale")
    if np.any(s <= 0):
        raise ValueError(f"affine: scale must be > 0, got {s.min()}")
    t = np.asarray(translate, dtype=np.float64)
    if t.shape == (2,):
        t = np.broadcast_to(t, (n, 2))
    if t.shape != (n, 2):
        raise ValueError(f"affine: translate must be (dx, dy) or one pair per image ({n}, 2), got shape {t.shape}")
    cy, cx = (h - 1) / 2, (w - 1) / 2
    cos, sin = (np.cos(theta) / s)[:, None, None], (np.sin(theta) / s)[:, None, None]
    dx = np.arange(w)[None, None, :] - cx - t[:, 0, None, None]  # (N, 1, W)
    dy = np.arange(h)[None, :, None] - cy - t[:, 1, None, None]  # (N, H, 1)
    out = _bilinear(xb, sin * dx + cos * dy + cy, cos * dx - sin * dy + cx, fill)
    return out if batched else out[0]


def resized_crop(x: np.ndarray, top: Any, left: Any, height: Any, width: Any,
                 size: int | tuple[int, int]) -> np.ndarray:
    """Cut the box (top, left, height, width) out of each image and resize it to ``size`` with bilinear
    interpolation, as ``torchvision.transforms.functional.resized_crop`` (and ``F.interpolate(...,
    mode="bilinear", align_corners=False)`` of the crop): output pixel i reads the crop at (i + 0.5) height /
    size_h - 0.5, clamped to the crop's edge pixels. The box values are scalars or (N,) whole numbers inside
    the image."""
    xb, batched = _as_batch(x, "resized_crop")
    n, _, h_in, w_in = xb.shape
    out_h, out_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    i, j = (_per_image(v, n, "resized_crop", k) for v, k in ((top, "top"), (left, "left")))
    bh, bw = (_per_image(v, n, "resized_crop", k) for v, k in ((height, "height"), (width, "width")))
    if np.any(bh < 1) or np.any(bw < 1) or np.any(i < 0) or np.any(j < 0) or np.any(i + bh > h_in) \
            or np.any(j + bw > w_in):
        raise ValueError(f"resized_crop: every box must lie inside the {h_in}x{w_in} image and be at least 1x1")
    rows = np.clip((np.arange(out_h)[None, :] + 0.5) * (bh / out_h)[:, None] - 0.5, 0, (bh - 1)[:, None])
    cols = np.clip((np.arange(out_w)[None, :] + 0.5) * (bw / out_w)[:, None] - 0.5, 0, (bw - 1)[:, None])
    out = _bilinear(xb, (rows + i[:, None])[:, :, None], (cols + j[:, None])[:, None, :])
    return out if batched else out[0]


def erase(x: np.ndarray, top: Any, left: Any, height: Any, width: Any, value: Any = 0.0,
          mask: Any = None) -> np.ndarray:
    """Set the box (top, left, height, width) of each image to ``value`` (a scalar or one per channel), as
    ``torchvision.transforms.functional.erase``; ``mask`` (N,) bool limits it to some images. The box values
    are scalars or (N,) whole numbers; the boxes are one mask built by broadcasting."""
    xb, batched = _as_batch(x, "erase")
    n, c, h, w = xb.shape
    i, j, bh, bw = (_per_image(v, n, "erase", k).astype(np.int64)[:, None, None]
                    for v, k in ((top, "top"), (left, "left"), (height, "height"), (width, "width")))
    r, col = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    inside = (r >= i) & (r < i + bh) & (col >= j) & (col < j + bw)  # (N, H, W)
    if mask is not None:
        inside &= np.asarray(mask, dtype=bool).reshape(n, 1, 1)
    v = np.asarray(value, dtype=xb.dtype)
    if v.ndim == 1:
        if v.size != c:
            raise ValueError(f"erase: value has {v.size} entries for {c} channels")
        v = v.reshape(1, c, 1, 1)
    out = np.where(inside[:, None], v, xb).astype(xb.dtype, copy=False)
    return out if batched else out[0]


def _first_box(area: np.ndarray, log_ratio: np.ndarray, fits: Callable[[np.ndarray, np.ndarray], np.ndarray],
               wide: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """torchvision's search for a box: per attempt (N, 10) an area and a log aspect ratio (width / height) give
    h, w; the first attempt that ``fits`` wins. Returns h, w of that attempt and whether any fitted (N,).
    ``wide``: the ratio multiplies the width (RandomResizedCrop) rather than the height (RandomErasing)."""
    aspect = np.exp(log_ratio)
    long_, short = np.round(np.sqrt(area * aspect)), np.round(np.sqrt(area / aspect))
    w, h = (long_, short) if wide else (short, long_)
    ok = fits(h, w)
    first = np.argmax(ok, axis=1)
    rows = np.arange(len(area))
    return h[rows, first].astype(np.int64), w[rows, first].astype(np.int64), ok.any(axis=1)


# ---- random transforms ------------------------------------------------------------------------------------
class RandomAffine(_Random):
    """A random rotation, shift and scale per image (``torchvision.transforms.RandomAffine`` without shear,
    bilinear): angle ~ U(degrees), shift (dx, dy) = round(U(-a W, a W)), round(U(-b H, b H)) pixels for
    ``translate`` = (a, b), scale ~ U(scale); ``fill`` outside. ``degrees`` d means (-d, d). See ``affine``.

    Draws 4 uniforms per image."""

    def __init__(self, degrees: float | Sequence[float] = 15.0, translate: Sequence[float] | None = (0.2, 0.2),
                 scale: Sequence[float] | None = (0.75, 1.25), fill: float = 0.0, seed: Seed = None) -> None:
        super().__init__(seed)
        self.degrees = _range(degrees, "RandomAffine", "degrees")
        if translate is not None:
            translate = tuple(float(t) for t in translate)
            if len(translate) != 2 or not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError(f"RandomAffine: translate must be (a, b) with 0 <= a, b <= 1, got {translate}")
        self.translate = translate
        self.scale = None if scale is None else _unit_pair(scale, "RandomAffine", "scale", low=1e-12)
        self.fill = float(fill)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        xb, batched = _as_batch(x, "RandomAffine")
        n, _, h, w = xb.shape
        u = self._rng().random((n, 4))
        lo, hi = self.degrees
        angle = lo + (hi - lo) * u[:, 0]
        if self.translate is None:
            shift = np.zeros((n, 2))
        else:
            most = np.array([self.translate[0] * w, self.translate[1] * h])
            shift = np.round((2 * u[:, 1:3] - 1) * most)
        scale = 1.0 if self.scale is None else self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 3]
        out = affine(xb, angle, shift, scale, self.fill)
        return out if batched else out[0]

    def __repr__(self) -> str:
        return f"RandomAffine(degrees={self.degrees}, translate={self.translate}, scale={self.scale}, fill={self.fill})"


class RandomResizedCrop(_Random):
    """A random box of ``scale`` times the image's area and aspect ratio (width / height) in ``ratio``, resized
    to ``size`` (``torchvision.transforms.RandomResizedCrop``, bilinear): 10 attempts at a box that fits, else the
    whole image cut to the nearest allowed ratio, centred. See ``resized_crop``.

    Draws 22 uniforms per image (10 areas and ratios, then the position)."""

    def __init__(self, size: int | tuple[int, int] = 28, scale: Sequence[float] = (0.5, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3), seed: Seed = None) -> None:
        super().__init__(seed)
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if min(self.size) < 1:
            raise ValueError(f"RandomResizedCrop: size must be positive, got {size}")
        self.scale = _unit_pair(scale, "RandomResizedCrop", "scale", low=1e-12)
        self.ratio = _unit_pair(ratio, "RandomResizedCrop", "ratio", low=1e-12)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        xb, batched = _as_batch(x, "RandomResizedCrop")
        n, _, h_in, w_in = xb.shape
        u = self._rng().random((n, 2 * _ATTEMPTS + 2))
        area = h_in * w_in * (self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 0:2 * _ATTEMPTS:2])
        lr = np.log(self.ratio)
        log_ratio = lr[0] + (lr[1] - lr[0]) * u[:, 1:2 * _ATTEMPTS:2]
        h, w, found = _first_box(area, log_ratio, lambda h, w: (w > 0) & (w <= w_in) & (h > 0) & (h <= h_in),
                                 wide=True)
        # the fallback: the whole image, cut to the nearest ratio allowed
        in_ratio = w_in / h_in
        if in_ratio < self.ratio[0]:
            fh, fw = round(w_in / self.ratio[0]), w_in
        elif in_ratio > self.ratio[1]:
            fh, fw = h_in, round(h_in * self.ratio[1])
        else:
            fh, fw = h_in, w_in
        top = np.where(found, np.floor(u[:, -2] * (h_in - h + 1)), (h_in - fh) // 2)
        left = np.where(found, np.floor(u[:, -1] * (w_in - w + 1)), (w_in - fw) // 2)
        h, w = np.where(found, h, fh), np.where(found, w, fw)
        out = resized_crop(xb, top, left, h, w, self.size)
        return out if batched else out[0]

    def __repr__(self) -> str:
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomErasing(_Random):
    """With probability ``p``, set a random rectangle of each image to ``value`` (``torchvision.transforms.
    RandomErasing``): its area is ``scale`` times the image's, its aspect ratio (height / width) in ``ratio``
    (drawn log-uniformly); of 10 attempts the first that fits inside the image is erased, else the image is
    left as it is. ``value``: a scalar or one per channel. See ``erase``.

    Draws 23 uniforms per image (the coin, 10 areas and ratios, then the position)."""

    def __init__(self, p: float = 0.5, scale: Sequence[float] = (0.02, 0.2), ratio: Sequence[float] = (0.3, 3.3),
                 value: float | Sequence[float] = 0.0, seed: Seed = None) -> None:
        super().__init__(seed)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomErasing: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.scale = _unit_pair(scale, "RandomErasing", "scale")
        if self.scale[1] > 1.0:
            raise ValueError(f"RandomErasing: scale must lie in [0, 1], got {tuple(scale)}")
        self.ratio = _unit_pair(ratio, "RandomErasing", "ratio", low=1e-12)
        self.value = value

    def __call__(self, x: np.ndarray) -> np.ndarray:
        xb, batched = _as_batch(x, "RandomErasing")
        n, _, h_in, w_in = xb.shape
        u = self._rng().random((n, 2 * _ATTEMPTS + 3))
        area = h_in * w_in * (self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 1:2 * _ATTEMPTS + 1:2])
        lr = np.log(self.ratio)
        log_ratio = lr[0] + (lr[1] - lr[0]) * u[:, 2:2 * _ATTEMPTS + 1:2]
        h, w, found = _first_box(area, log_ratio, lambda h, w: (h < h_in) & (w < w_in), wide=False)
        top = np.floor(u[:, -2] * (h_in - h + 1))
        left = np.floor(u[:, -1] * (w_in - w + 1))
        out = erase(xb, top, left, h, w, self.value, mask=(u[:, 0] < self.p) & found)
        return out if batched else out[0]

    def __repr__(self) -> str:
        return f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value})"


class ColorJitter(_Random):
    """Random brightness and contrast for greyscale images, clipped to [0, 1] after each step (as
    ``torchvision.transforms.ColorJitter`` does, in a fixed order here): x <- clip(b x), then
    x <- clip((x - m) c + m) with m the image's mean; b ~ U(brightness), c ~ U(contrast).

    ``brightness`` v means (max(0, 1 - v), 1 + v); 0 leaves it alone. Draws 2 uniforms per image."""

    def __init__(self, brightness: float | Sequence[float] = 0.4, contrast: float | Sequence[float] = 0.4,
                 seed: Seed = None) -> None:
        super().__init__(seed)
        self.brightness = self._factor(brightness, "brightness")
        self.contrast = self._factor(contrast, "contrast")

    @staticmethod
    def _factor(v: float | Sequence[float], name: str) -> tuple[float, float]:
        lo, hi = _range(v, "ColorJitter", name, center=1.0)
        if isinstance(v, int | float | np.number):
            return max(lo, 0.0), hi
        if lo < 0:
            raise ValueError(f"ColorJitter: {name} factors must be >= 0, got {(lo, hi)}")
        return lo, hi

    def __call__(self, x: np.ndarray) -> np.ndarray:
        xb, batched = _as_batch(x, "ColorJitter")
        n = len(xb)
        u = self._rng().random((n, 2))
        dt = xb.dtype
        (b0, b1), (c0, c1) = self.brightness, self.contrast
        b = (b0 + (b1 - b0) * u[:, 0]).astype(dt).reshape(n, 1, 1, 1)
        c = (c0 + (c1 - c0) * u[:, 1]).astype(dt).reshape(n, 1, 1, 1)
        out = np.clip(xb * b, 0, 1)
        m = out.mean(axis=(1, 2, 3), keepdims=True, dtype=dt)
        out -= m
        out *= c
        out += m
        np.clip(out, 0, 1, out=out)
        return out if batched else out[0]

    def __repr__(self) -> str:
        return f"ColorJitter(brightness={self.brightness}, contrast={self.contrast})"


class GaussianNoise(_Random):
    """Add N(0, std^2) noise to every pixel, then clip to [0, 1] (``clip=False`` keeps the sum as it is);
    ``torchvision.transforms.v2.GaussianNoise`` calls ``std`` sigma. Draws C*H*W normals per image."""

    def __init__(self, std: float = 0.05, clip: bool = True, seed: Seed = None) -> None:
        super().__init__(seed)
        if not std >= 0:
            raise ValueError(f"GaussianNoise: std must be >= 0, got {std}")
        self.std, self.clip = float(std), bool(clip)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        xb, batched = _as_batch(x, "GaussianNoise")
        dt = xb.dtype if xb.dtype.kind == "f" else np.dtype(np.float32)
        noise = self._rng().standard_normal(xb.shape, dtype=np.float64 if dt == np.float64 else np.float32)
        out = xb + (noise * dt.type(self.std)).astype(dt, copy=False)
        if self.clip:
            np.clip(out, 0, 1, out=out)
        return out if batched else out[0]

    def __repr__(self) -> str:
        return f"GaussianNoise(std={self.std}, clip={self.clip})"


class TwoViews:
    """``TwoViews(t)(x) = (t(x), t(x))``: two independent augmentations of the same images, SimCLR's positive
    pairs (the second call draws fresh parameters). For a batch the first view of every image is drawn before
    any second view, so a batch does not equal its images one by one here."""

    def __init__(self, transform: Callable[[np.ndarray], np.ndarray]) -> None:
        self.transform = transform

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.transform(x), self.transform(x)

    def __repr__(self) -> str:
        return f"TwoViews({self.transform!r})"


def simclr_augment(seed: Seed = None, *, geometry: str = "affine", size: int = 28) -> Compose:
    """SimCLR's augmentation for 28x28 greyscale images (Fashion-MNIST): a random affine map (or, with
    ``geometry="resized_crop"``, a random resized crop to ``size``), a horizontal flip, brightness and contrast
    jitter, random erasing and Gaussian noise. No colour distortion beyond that (one channel) and no blur (at
    28x28 a blur erases most of the detail).

    Each transform gets its own generator spawned from ``seed`` (an int or a Generator), so the pipeline keeps
    the batch == one-by-one property; None draws everything from dl's default generator."""
    if geometry not in ("affine", "resized_crop"):
        raise ValueError(f"simclr_augment: geometry must be 'affine' or 'resized_crop', got {geometry!r}")
    seeds: list[Any] = [None] * 5 if seed is None else list(get_generator(seed).spawn(5))
    if geometry == "affine":
        first: Callable[[np.ndarray], np.ndarray] = RandomAffine(15.0, (0.2, 0.2), (0.75, 1.25), seed=seeds[0])
    else:
        first = RandomResizedCrop(size, (0.5, 1.0), (3 / 4, 4 / 3), seed=seeds[0])
    return Compose([
        first,
        RandomHorizontalFlip(0.5, seed=seeds[1]),
        ColorJitter(0.4, 0.4, seed=seeds[2]),
        RandomErasing(0.5, (0.02, 0.2), (0.3, 3.3), 0.0, seed=seeds[3]),
        GaussianNoise(0.05, seed=seeds[4]),
    ])

