"""Readers for the real formats of the dense problems, so the models trained on the shapes world train on a user's
own files the same way:

- ``coco(path)``: a COCO-style JSON file (``images``, ``annotations`` with ``bbox`` [x, y, w, h] and optionally
  ``keypoints`` [x, y, v, ...], ``categories``), its images next to it (or in an ``images/`` folder beside it):
  ``--data coco:annotations.json`` gives detection (boxes) or, with ``--labels keypoints``, pose data;
- ``masks(path)``: a folder with ``images/`` and ``masks/`` holding PNG files of the same names, each mask's pixel
  values the class ids (0 the background): ``--data masks:FOLDER`` gives segmentation data.

Images are read with Pillow, converted to RGB and resized to ``image_size`` x ``image_size`` (boxes and keypoints
scaled with them; masks by nearest neighbour), and split into train / val / test with a fixed seed. Every problem
with a file is one line naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.data.dataset import DatasetInfo, Splits, TensorDataset
from dlbasics.errors import DataError, DataNotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _read_image(file: Path, size: int, mode: str = "RGB", nearest: bool = False) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            img = img.convert(mode).resize((size, size), Image.NEAREST if nearest else Image.BILINEAR)
            return np.asarray(img)
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"{file}: not a readable image ({e})") from None


def _split(n: int, val: float | int, test: float | int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from dlbasics.data.datasets.bundled import split_indices

    return split_indices(n, None, val=val, test=test, seed=seed)


def _splits(arrays: tuple[np.ndarray, ...], info: DatasetInfo, val: float | int, test: float | int,
            seed: int) -> Splits:
    parts = _split(len(arrays[0]), val, test, seed)
    return Splits(*(TensorDataset(*(a[idx] for a in arrays)) for idx in parts), info)


def coco(path: str, labels: str = "boxes", image_size: int = 64, val: float | int = 0.2, test: float | int = 0.2,
         seed: int = 0) -> Splits:
    """Detection (``labels`` "boxes": objects (K, 5) rows (class 1..C, x0, y0, x1, y1), K the most objects of an
    image, class -1 in padding rows) or pose (``labels`` "keypoints": the first annotation's keypoints (J, 2) of each
    image that has one) from a COCO-style JSON file."""
    if labels not in ("boxes", "keypoints"):
        raise ValueError(f"labels must be 'boxes' or 'keypoints', got {labels!r}")
    file = Path(path)
    if not file.is_file():
        raise DataNotFoundError(f"{file}: no such COCO annotation file")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
        images, annotations, categories = doc["images"], doc["annotations"], doc["categories"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise DataError(f"{file}: not a COCO annotation file (it needs images, annotations and categories: "
                        f"{type(e).__name__} {e})") from None
    category_index = {c["id"]: i for i, c in enumerate(categories)}
    by_image: dict[Any, list[dict]] = {}
    for a in annotations:
        by_image.setdefault(a.get("image_id"), []).append(a)
    folder = file.parent / "images" if (file.parent / "images").is_dir() else file.parent
    pixels, targets = [], []
    for im in images:
        anns = by_image.get(im.get("id"), [])
        if labels == "keypoints":
            anns = [a for a in anns if a.get("keypoints")]
            if not anns:
                continue
        image_file = folder / str(im.get("file_name"))
        if not image_file.is_file():
            raise DataNotFoundError(f"{file}: image {im.get('file_name')!r} not found in {folder}")
        w, h = float(im.get("width") or 0), float(im.get("height") or 0)
        if w <= 0 or h <= 0:
            from PIL import Image

            with Image.open(image_file) as img:
                w, h = img.size
        sx, sy = image_size / w, image_size / h
        pixels.append(_read_image(image_file, image_size))
        if labels == "boxes":
            rows = []
            for a in anns:
                if a.get("category_id") not in category_index:
                    raise DataError(f"{file}: annotation {a.get('id')} has category {a.get('category_id')!r}, which "
                                    "is not among the categories")
                x, y, bw, bh = (float(v) for v in a["bbox"])
                rows.append((category_index[a["category_id"]] + 1, x * sx, y * sy, (x + bw) * sx, (y + bh) * sy))
            targets.append(rows)
        else:
            kp = np.asarray(anns[0]["keypoints"], np.float32).reshape(-1, 3)[:, :2]
            targets.append(kp * np.array([sx, sy], np.float32))
    if not pixels:
        raise DataError(f"{file}: no image with {'keypoints' if labels == 'keypoints' else 'annotations'}")
    x = np.stack(pixels).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    shape = (3, image_size, image_size)
    if labels == "boxes":
        k = max(1, max(len(r) for r in targets))
        objects = np.full((len(targets), k, 5), -1, np.float32)
        objects[..., 1:] = 0
        for i, rows in enumerate(targets):
            if rows:
                objects[i, :len(rows)] = rows
        names = tuple(str(c.get("name", c["id"])) for c in categories)
        info = DatasetInfo(file.name, "detection", shape, num_classes=len(categories), target_shape=(k, 5),
                           classes=names)
        return _splits((x, objects), info, val, test, seed)
    joints = {len(t) for t in targets}
    if len(joints) != 1:
        raise DataError(f"{file}: the images' keypoints differ in number ({sorted(joints)}); pose data needs one "
                        "skeleton")
    kp = np.stack(targets)
    names = next((tuple(c["keypoints"]) for c in categories if c.get("keypoints")), None)
    info = DatasetInfo(file.name, "pose", shape, num_classes=kp.shape[1], target_shape=kp.shape[1:], classes=names)
    return _splits((x, kp), info, val, test, seed)


def masks(path: str, image_size: int = 64, val: float | int = 0.2, test: float | int = 0.2,
          seed: int = 0) -> Splits:
    """Segmentation from a folder with ``images/`` and ``masks/`` (PNG files of the same names; a mask's pixel values
    are class ids, 0 the background). The classes are 0..the largest id found."""
    root = Path(path)
    image_dir, mask_dir = root / "images", root / "masks"
    if not image_dir.is_dir() or not mask_dir.is_dir():
        raise DataNotFoundError(f"{root}: expected a folder with images/ and masks/ (PNG masks of the same names)")
    files = sorted(f for f in image_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{image_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
    pixels, labels = [], []
    for f in files:
        mask_file = mask_dir / (f.stem + ".png")
        if not mask_file.is_file():
            raise DataNotFoundError(f"{root}: no mask {mask_file.name} for the image {f.name}")
        pixels.append(_read_image(f, image_size))
        labels.append(_read_image(mask_file, image_size, mode="L", nearest=True))
    x = np.stack(pixels).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    y = np.stack(labels).astype(np.int64)
    classes = int(y.max()) + 1
    info = DatasetInfo(root.name, "segmentation", (3, image_size, image_size), num_classes=max(classes, 2),
                       target_shape=(image_size, image_size))
    return _splits((x, y), info, val, test, seed)


__all__ = ["coco", "masks"]
