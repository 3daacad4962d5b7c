"""CIFAR-10 in its *binary version*, read from a folder the user names (this library never downloads).

The binary version (``cifar-10-binary.tar.gz`` from https://www.cs.toronto.edu/~kriz/cifar.html, extracted
to ``cifar-10-batches-bin/``) holds ``data_batch_1.bin`` ... ``data_batch_5.bin`` (10,000 images each),
``test_batch.bin`` (10,000) and ``batches.meta.txt`` (the class names, one a line). Each file is a run of
3,073-byte records: one label byte 0..9, then 3,072 pixel bytes - the 1,024 red values of the 32x32 image
in row-major order, then the 1,024 green, then the 1,024 blue. So a file reshapes to (N, 3073), and the
pixels of that to (N, 3, 32, 32) - channel, row, column - with no per-record work. The reader checks the
record size and the labels, so a truncated download or a different file fails loudly, and it reads with
``np.frombuffer`` (no pickling: the Python version of CIFAR-10 is pickles and is not read here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlbasics.data.dataset import DatasetInfo, Splits, TensorDataset
from dlbasics.data.datasets.bundled import split_indices
from dlbasics.data.transforms import Compose, RandomCrop, RandomHorizontalFlip
from dlbasics.errors import DataError, DataNotFoundError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"
CIFAR10_META_FILE = "batches.meta.txt"
CIFAR10_FOLDER = "cifar-10-batches-bin"  # the folder cifar-10-binary.tar.gz extracts to
IMAGE_SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32  # label byte + R, G, B planes
_HINT = (f"expected {', '.join(CIFAR10_TRAIN_FILES)} and {CIFAR10_TEST_FILE} (CIFAR-10's binary version, "
         f"cifar-10-binary.tar.gz, extracted to {CIFAR10_FOLDER}/); pass root= that folder or its parent. "
         "Download it yourself elsewhere: this library never downloads, and reads only the binary version,"
         " not the Python one")


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of one CIFAR-10 binary file such as ``data_batch_1.bin`` or ``test_batch.bin``.

    Returns images (N, 3, 32, 32) uint8 - channels R, G, B; rows top to bottom; columns left to right - and
    labels (N,) int64 in 0..9, both writable copies. Raises DataError (a ValueError) naming the file if it
    cannot be read, its size is not a positive multiple of 3,073 bytes or a label is outside 0..9;
    DataNotFoundError (a FileNotFoundError) if there is no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"CIFAR-10 batch file not found: {path}")
    try:
        raw = path.read_bytes()
    except OSError as e:  # e.g. no permission: the user's to fix, so one line, not a traceback
        raise DataError(f"{path}: cannot be read: {e.strerror or e}") from None
    if len(raw) == 0 or len(raw) % RECORD_BYTES:
        n, extra = divmod(len(raw), RECORD_BYTES)
        # CIFAR-100's binary records carry two label bytes: say so rather than a bare size mismatch
        also = " (its size fits CIFAR-100's 3074-byte records, not read here)" if len(raw) % 3074 == 0 else ""
        raise DataError(f"{path}: {len(raw)} bytes is not a positive multiple of the {RECORD_BYTES}-byte CIFAR-10 "
                        f"record (1 label + 3072 pixels): {n} records and {extra} bytes over - truncated or not a "
                        f"CIFAR-10 binary file{also}")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)  # (N, 3073), a read-only view
    labels = records[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels > 9)  # uint8 labels cannot be negative
    if bad.size:
        raise DataError(f"{path}: record {bad[0]} has label {labels[bad[0]]}, outside 0..9 ({bad.size} of "
                        f"{len(labels)} records bad) - not a CIFAR-10 binary file")
    # splitting the 3072 pixel bytes into (3, 32, 32) needs no copy; .copy() then makes it contiguous and writable
    images = records[:, 1:].reshape(-1, *IMAGE_SHAPE).copy()
    return images, labels


def read_cifar_classes(path: str | Path) -> tuple[str, ...]:
    """The 10 class names of ``batches.meta.txt`` (one a line; blank lines ignored, as the file ends with some)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"CIFAR-10 class names file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read as UTF-8 text: {e}") from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 10:
        shown = repr(list(names))  # one line: repr escapes what is left of line breaks; cut, as a binary file is long
        raise DataError(f"{path}: expected 10 class names, one a line, found {len(names)}: "
                        f"{shown if len(shown) <= 200 else shown[:200] + ' ...'}")
    return names


def find_cifar10_folder(root: str | Path) -> Path:
    """The folder holding the CIFAR-10 .bin files: ``root`` itself or its ``cifar-10-batches-bin/``.

    Only looks whether the files exist. Raises DataNotFoundError (a FileNotFoundError) naming the folder, the
    missing files and where the data comes from.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(f"cifar10 folder not found: {root}; {_HINT}")
    folder = root
    if not (root / CIFAR10_TEST_FILE).is_file() and (root / CIFAR10_FOLDER).is_dir():
        folder = root / CIFAR10_FOLDER  # the parent of the extracted archive
    missing = [name for name in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE) if not (folder / name).is_file()]
    if missing:
        raise DataNotFoundError(f"cifar10: {', '.join(missing)} not found in {folder}; {_HINT}")
    return folder


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) standard deviation of uint8 images (N, C, H, W), on the [0, 1] scale.

    Returns mean (C,) and std (C,) float64. Computed exactly from each channel's 256-bin histogram, gathered
    a block of images at a time, so no copy of all the images is made (for 45,000 CIFAR images a float64 copy
    would take 1.1 GB, and ``np.bincount`` of a whole channel an intp copy of 370 MB).
    """
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise ValueError(f"channel_stats expects uint8 images (N, C, H, W) with N > 0, got {images.dtype} "
                         f"{images.shape}")
    counts = np.zeros((images.shape[1], 256), dtype=np.int64)  # (C, 256) exact integer counts
    for start in range(0, len(images), 4096):
        block = images[start:start + 4096]
        for c in range(images.shape[1]):
            counts[c] += np.bincount(block[:, c].ravel(), minlength=256)
    values = np.arange(256) / 255.0
    n = counts.sum(axis=1)
    mean = counts @ values / n
    var = (counts * (values - mean[:, None]) ** 2).sum(axis=1) / n
    return mean, np.sqrt(var)


def cifar10_augmentation(seed: int = 0) -> Compose:
    """The standard CIFAR training augmentation: a random 32x32 crop of the image padded by 4 zeros on each
    side, then a horizontal flip with probability 1/2; for one image (3, 32, 32) or a batch (N, 3, 32, 32).

    Crop and flip draw from two independent streams derived from ``seed``, so a run is reproducible.
    """
    crop_seq, flip_seq = np.random.SeedSequence(seed).spawn(2)
    return Compose([RandomCrop(32, padding=4, seed=np.random.default_rng(crop_seq)),
                    RandomHorizontalFlip(0.5, seed=np.random.default_rng(flip_seq))])


def cifar10(root: str | Path, val_size: int | float = 5000, seed: int = 0, augment: bool = False,
            normalize: bool = True, augment_seed: int | None = None) -> Splits:
    """CIFAR-10 (32x32 colour images of 10 classes) from its binary version in the folder ``root``.

    ``root`` is the folder holding ``data_batch_{1..5}.bin`` and ``test_batch.bin``, or its parent holding
    ``cifar-10-batches-bin/``. Nothing is downloaded: get ``cifar-10-binary.tar.gz`` yourself.

    Splits: train = the 50,000 images of ``data_batch_1..5`` minus a validation split of ``val_size`` (a count
    or a fraction; 5,000 by default, so 45,000 / 5,000 / 10,000), stratified by class and fixed by ``seed``;
    test = ``test_batch``, in file order. Images (N, 3, 32, 32) float32, scaled to [0, 1] as x / 255; labels
    (N,) int64. Class names from ``batches.meta.txt`` if present, else the standard ones.

    ``normalize=True`` then standardizes every split per channel, ``(x - mean[c]) / std[c]``, with the mean
    and population std of the TRAIN split only (after the validation images are taken out, so nothing of
    val or test leaks in), computed once here; ``channel_stats`` gives them. With 45,000 training images
    they are close to the usual (0.491, 0.482, 0.447) and (0.247, 0.243, 0.262).

    ``augment=True`` gives the TRAIN dataset ``cifar10_augmentation(augment_seed)`` (random crop 32 with
    padding 4, horizontal flip; ``augment_seed`` defaults to ``seed``) as its ``transform``, applied per batch
    when samples are fetched; val and test are never augmented. The crop pads the stored - standardized -
    images with zeros, i.e. with the training mean colour (as fb.resnet.torch does), not with black.
    """
    folder = find_cifar10_folder(root)
    parts = [read_cifar_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    train_x = np.concatenate([images for images, _ in parts])  # (50000, 3, 32, 32) uint8
    train_y = np.concatenate([labels for _, labels in parts])
    del parts
    test_x, test_y = read_cifar_batch(folder / CIFAR10_TEST_FILE)
    meta = folder / CIFAR10_META_FILE
    classes = read_cifar_classes(meta) if meta.is_file() else CIFAR10_CLASSES

    train_idx, val_idx, _ = split_indices(len(train_y), train_y, val=val_size, test=0, seed=seed)
    fit_x = train_x[train_idx]
    # statistics of the training images that remain, from the uint8 pixels, before any float copy exists
    mean, std = channel_stats(fit_x) if normalize else (None, None)

    def scaled(images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32)
        x /= np.float32(255)  # as torchvision's ToTensor
        if mean is not None:
            # in place (Normalize would allocate another float32 copy of the split): ToTensor then Normalize
            x -= mean.astype(np.float32).reshape(-1, 1, 1)
            x /= std.astype(np.float32).reshape(-1, 1, 1)
        return x

    # index the uint8 images per split, so each split has one float32 copy, not two; val first, so that the
    # 50,000 uint8 images are freed before the largest float32 array (train, 550 MB) is made
    val = TensorDataset(scaled(train_x[val_idx]), train_y[val_idx])
    del train_x
    transform = cifar10_augmentation(seed if augment_seed is None else augment_seed) if augment else None
    train = TensorDataset(scaled(fit_x), train_y[train_idx], transform=transform)
    del fit_x
    test = TensorDataset(scaled(test_x), test_y)
    norm = None if mean is None else (tuple(float(m) for m in mean), tuple(float(s) for s in std))
    info = DatasetInfo("cifar10", "classification", IMAGE_SHAPE, num_classes=10, classes=classes,
                       pixel_normalization=norm)
    return Splits(train, val, test, info)
