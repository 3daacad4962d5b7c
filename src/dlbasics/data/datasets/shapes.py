"""The shapes world: one seeded synthetic world that gives every kind of label the lecture names, from the same
kind of scene, with no download. "Data depends on the problem you want to solve":

- **segmentation** (``shapes-seg``): each pixel's class, 0 for the background;
- **detection** (``shapes-det``): each object's class and box;
- **pose** (``shapes-pose``): the 7 joints of a stick figure.

A scene is a 64 x 64 RGB image in [0, 1] holding 1-4 shapes - circles, squares and triangles of size (half-width)
6-14 px, placed at random, each in a colour drawn independently of its class (so only the shape tells the class).
Difficulty knobs: ``occlusion`` (shapes may overlap: the later one covers the earlier, in the mask too),
``clutter`` (thin random strokes that belong to no class) and ``texture`` (the amplitude of a smooth random
background pattern). The easy world (the defaults: no overlap, no clutter, plain black background) is learned in an
epoch or two.

Every split is generated from its own stream of ``seed`` (train, val and test never share a scene); generating
2,000 scenes takes a fraction of a second, so nothing is cached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dlbasics.data.dataset import DatasetInfo, Splits, TensorDataset

SIZE = 64
CLASSES = ("background", "circle", "square", "triangle")
JOINTS = ("head", "neck", "hips", "left_hand", "right_hand", "left_foot", "right_foot")
# the stick figure's limbs (joint pairs) and which side each belongs to: the two sides have different colours, so
# that left and right can be told apart
LIMBS = ((0, 1, "centre"), (1, 2, "centre"), (1, 3, "left"), (1, 4, "right"), (2, 5, "left"), (2, 6, "right"))
MAX_OBJECTS = 4


@dataclass(frozen=True)
class Knobs:
    """How hard the world is: ``occlusion`` lets shapes overlap; ``clutter`` thin strokes per image that are not
    objects; ``texture`` the amplitude (0..1) of a smooth background pattern."""

    occlusion: bool = False
    clutter: int = 0
    texture: float = 0.0


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates: ys (size, 1), xs (1, size)."""
    c = np.arange(size, dtype=np.float32) + 0.5
    return c[:, None], c[None, :]


def shape_mask(kind: int, cx: float, cy: float, r: float, size: int = SIZE) -> np.ndarray:
    """The pixels (size, size) bool covered by shape ``kind`` (1 circle, 2 square, 3 triangle) of half-width ``r``
    centred at (cx, cy): a disc of radius r, an axis-aligned square of side 2r, an upright equilateral triangle of
    side 2r (centred on its centroid)."""
    ys, xs = _grid(size)
    d = 2 * r
    if kind == 1:
        return (xs - cx) ** 2 + (ys - cy) ** 2 <= (d / 2) ** 2
    if kind == 2:
        return (np.abs(xs - cx) <= d / 2) & (np.abs(ys - cy) <= d / 2)
    if kind == 3:  # the centroid at (cx, cy); inside the three edges' half-planes
        h = d * math.sqrt(3) / 2
        top, base = cy - 2 * h / 3, cy + h / 3
        inside_base = ys <= base
        half_width = (ys - top) / h * (d / 2)  # the triangle's half-width at each row
        return inside_base & (ys >= top) & (np.abs(xs - cx) <= half_width)
    raise ValueError(f"shape_mask: kind must be 1 (circle), 2 (square) or 3 (triangle), got {kind}")


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated, bright colour (far from the black background), any hue."""
    hue = rng.uniform(0, 6)
    c = np.clip(np.abs(((hue + np.array([0.0, 4.0, 2.0])) % 6) - 3) - 1, 0, 1)  # HSV with S = V = 1
    return (0.35 + 0.65 * c).astype(np.float32)


def _background(rng: np.random.Generator, texture: float, size: int) -> np.ndarray:
    """(3, size, size): black, plus ``texture`` times a smooth random pattern (a few low-frequency sinusoids)."""
    img = np.zeros((3, size, size), np.float32)
    if texture > 0:
        ys, xs = _grid(size)
        pattern = np.zeros((size, size), np.float32)
        for _ in range(3):
            fx, fy, phase = rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(0, 2 * np.pi)
            pattern += np.sin(fx * xs + fy * ys + phase)
        pattern = (pattern - pattern.min()) / max(float(np.ptp(pattern)), 1e-6)
        img += texture * pattern[None] * rng.uniform(0.3, 1.0, (3, 1, 1)).astype(np.float32)
    return img


def segment_mask(x0: float, y0: float, x1: float, y1: float, width: float, size: int = SIZE) -> np.ndarray:
    """The pixels (size, size) bool within ``width / 2`` of the segment (x0, y0)-(x1, y1): a thick line."""
    ys, xs = _grid(size)
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    return (xs - x0 - t * dx) ** 2 + (ys - y0 - t * dy) ** 2 <= (width / 2) ** 2


def _clutter(img: np.ndarray, rng: np.random.Generator, n: int, size: int) -> None:
    for _ in range(n):
        x0, y0, x1, y1 = rng.uniform(0, size, 4)
        img[:, segment_mask(x0, y0, x1, y1, 1.0, size)] = _colour(rng)[:, None] * 0.8


def object_scenes(n: int, seed: int | list[int] = 0, knobs: Knobs = Knobs(), min_objects: int = 1,
                  max_objects: int = MAX_OBJECTS, min_size: float = 6, max_size: float = 14,
                  size: int = SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` scenes of shapes of half-width ``min_size``..``max_size``: images (n, 3, size, size) float32 in [0, 1];
    masks (n, size, size) int64 (0 background, else the class of the shape on top); classes (n, max_objects) int64
    (-1 where there is no object); boxes (n, max_objects, 4) float32 (x0, y0, x1, y1: the tight pixel box of the
    whole shape, covered parts included)."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, size, size), np.float32)
    masks = np.zeros((n, size, size), np.int64)
    classes = np.full((n, max_objects), -1, np.int64)
    boxes = np.zeros((n, max_objects, 4), np.float32)
    for i in range(n):
        img = _background(rng, knobs.texture, size)
        _clutter(img, rng, knobs.clutter, size)
        taken = np.zeros((size, size), bool)
        k = 0
        for _ in range(int(rng.integers(min_objects, max_objects + 1))):
            for _attempt in range(20):  # without occlusion: a free spot, one pixel apart from the others
                kind, r = int(rng.integers(1, 4)), float(rng.uniform(min_size, max_size))
                cx = rng.uniform(r + 1, size - r - 1)
                cy = rng.uniform(1.2 * r + 1, size - r - 1)  # a triangle reaches 1.15 r above its centroid
                m = shape_mask(kind, cx, cy, r, size)
                if knobs.occlusion or not (_dilate(m) & taken).any():
                    break
            else:
                continue  # no room left: the scene has fewer objects
            img[:, m] = _colour(rng)[:, None]
            masks[i][m] = kind
            taken |= m
            rows, cols = np.nonzero(m)
            classes[i, k] = kind
            boxes[i, k] = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
            k += 1
        images[i] = img
    return np.clip(images, 0, 1), masks, classes, boxes


def _dilate(m: np.ndarray) -> np.ndarray:
    """``m`` grown by one pixel in the 4 directions."""
    out = m.copy()
    out[1:] |= m[:-1]
    out[:-1] |= m[1:]
    out[:, 1:] |= m[:, :-1]
    out[:, :-1] |= m[:, 1:]
    return out


def pose_scenes(n: int, seed: int | list[int] = 0, knobs: Knobs = Knobs(),
                size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``n`` stick figures: images (n, 3, size, size) float32; keypoints (n, 7, 2) float32 (x, y) in the order of
    ``JOINTS``. The figure's height, position, lean and limb angles are random; left limbs are drawn in one colour,
    right limbs in another, the head and torso in a third, all three different for every image."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, size, size), np.float32)
    keypoints = np.empty((n, 7, 2), np.float32)
    for i in range(n):
        img = _background(rng, knobs.texture, size)
        _clutter(img, rng, knobs.clutter, size)
        height = rng.uniform(0.45, 0.8) * size
        torso, limb, head_r = 0.32 * height, 0.34 * height, 0.09 * height
        lean = rng.uniform(-0.35, 0.35)  # radians from vertical
        up = np.array([math.sin(lean), -math.cos(lean)])
        hips = np.array([rng.uniform(0.3, 0.7) * size, 0.0])
        hips[1] = rng.uniform(0.5 * size + 0.1 * height, size - limb * 0.9 - 2)
        neck = hips + torso * up
        head = neck + (head_r + 1.5) * up
        # hands and feet: a limb's angle from "down", towards image-left (negative x) when positive
        angles = lean + rng.uniform([0.3, -2.2, 0.1, -0.8], [2.2, -0.3, 0.8, -0.1])
        bases = np.stack([neck, neck, hips, hips])
        ends = bases + limb * np.stack([-np.sin(angles), np.cos(angles)], 1)
        joints = np.concatenate([np.stack([head, neck, hips]), ends])
        joints = np.clip(joints, 1, size - 1)
        colours = {side: _colour(rng) for side in ("centre", "left", "right")}
        while np.abs(colours["left"] - colours["right"]).sum() < 0.6:  # sides that can be told apart
            colours["right"] = _colour(rng)
        width = max(1.5, 0.05 * height)
        for a, b, side in LIMBS:
            img[:, segment_mask(*joints[a], *joints[b], width, size)] = colours[side][:, None]
        ys, xs = _grid(size)
        img[:, (xs - joints[0, 0]) ** 2 + (ys - joints[0, 1]) ** 2 <= head_r ** 2] = colours["centre"][:, None]
        images[i], keypoints[i] = img, joints
    return np.clip(images, 0, 1), keypoints


SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}

# what each data set is, known without generating it (``dlbasics zoo``, ``describe``)
INFO = {
    "shapes-seg": DatasetInfo("shapes-seg", "segmentation", (3, SIZE, SIZE), num_classes=len(CLASSES),
                              target_shape=(SIZE, SIZE), classes=CLASSES),
    "shapes-det": DatasetInfo("shapes-det", "detection", (3, SIZE, SIZE), num_classes=len(CLASSES) - 1,
                              target_shape=(MAX_OBJECTS, 5), classes=CLASSES[1:]),
    "shapes-pose": DatasetInfo("shapes-pose", "pose", (3, SIZE, SIZE), num_classes=len(JOINTS),
                               target_shape=(len(JOINTS), 2), classes=JOINTS),
}


def _sizes(n_train: int, n_val: int, n_test: int) -> dict[str, int]:
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    for name, n in sizes.items():
        if n < 1:
            raise ValueError(f"n_{name} must be >= 1, got {n}")
    return sizes


def shapes_seg(n_train: int = 2000, n_val: int = 500, n_test: int = 500, occlusion: bool = False, clutter: int = 0,
               texture: float = 0.0, seed: int = 0) -> Splits:
    """Semantic segmentation of the shapes world: images (3, 64, 64) -> the class of every pixel (64, 64), 0 for the
    background."""
    knobs, parts = Knobs(occlusion, clutter, texture), {}
    for split, n in _sizes(n_train, n_val, n_test).items():
        images, masks, _, _ = object_scenes(n, [seed, SPLIT_STREAMS[split]], knobs)
        parts[split] = TensorDataset(images, masks)
    return Splits(parts["train"], parts["val"], parts["test"], INFO["shapes-seg"])


def shapes_det(n_train: int = 2000, n_val: int = 500, n_test: int = 500, occlusion: bool = False, clutter: int = 0,
               texture: float = 0.0, seed: int = 0) -> Splits:
    """Object detection in the shapes world: images (3, 64, 64) -> objects (4, 5): rows (class, x0, y0, x1, y1), the
    class 1-3 (circle, square, triangle), -1 in the rows of absent objects."""
    knobs, parts = Knobs(occlusion, clutter, texture), {}
    for split, n in _sizes(n_train, n_val, n_test).items():
        images, _, classes, boxes = object_scenes(n, [seed, SPLIT_STREAMS[split]], knobs)
        parts[split] = TensorDataset(images, np.concatenate([classes[..., None].astype(np.float32), boxes], -1))
    return Splits(parts["train"], parts["val"], parts["test"], INFO["shapes-det"])


def shapes_pose(n_train: int = 2000, n_val: int = 500, n_test: int = 500, clutter: int = 0, texture: float = 0.0,
                seed: int = 0) -> Splits:
    """Pose estimation in the shapes world: images (3, 64, 64) of a stick figure -> its 7 joints (7, 2), (x, y) in
    pixels, in the order of ``JOINTS``."""
    knobs, parts = Knobs(False, clutter, texture), {}
    for split, n in _sizes(n_train, n_val, n_test).items():
        images, keypoints = pose_scenes(n, [seed, SPLIT_STREAMS[split]], knobs)
        parts[split] = TensorDataset(images, keypoints)
    return Splits(parts["train"], parts["val"], parts["test"], INFO["shapes-pose"])


__all__ = ["CLASSES", "JOINTS", "LIMBS", "Knobs", "object_scenes", "pose_scenes", "segment_mask", "shape_mask",
           "shapes_det", "shapes_pose", "shapes_seg"]
