"""The IDX format of MNIST and Fashion-MNIST, and loaders for both from a folder the user names.

An IDX file is a 4-byte magic number ``00 00 TT DD`` (TT: element type, DD: number of dimensions), DD
big-endian uint32 sizes, then the elements in C order, big-endian. Files may be gzipped. The reader
checks the payload length against the header, so a truncated download fails loudly, and reads with
``np.frombuffer`` (no pickling).

Fashion-MNIST without the internet: Debian's package ``dataset-fashion-mnist``
(``apt-get install dataset-fashion-mnist``) installs the four files under
``/usr/share/datasets/fashion-mnist/``, which is ``fashion_mnist()``'s default folder.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from dlbasics.data.checks import labels_out_of_range
from dlbasics.data.dataset import DatasetInfo, Splits, TensorDataset
from dlbasics.data.datasets.bundled import split_indices
from dlbasics.errors import DataError, DataNotFoundError

# element type byte -> big-endian dtype (the IDX specification)
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
FASHION_MNIST_HINT = ("Debian's package dataset-fashion-mnist installs the files under "
                      f"{FASHION_MNIST_ROOT}/ (apt-get install dataset-fashion-mnist), or pass root= a folder holding "
                      "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]")
MNIST_HINT = "put the four files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in that folder"


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in IDX file ``path`` (gzipped or raw), in native byte order.

    Raises DataError (a ValueError) naming the file if it cannot be read, the magic number is wrong or the
    payload does not match the header (truncated or with extra bytes); DataNotFoundError (a
    FileNotFoundError) if there is no such file. The header is checked against the file's size before the
    payload is read, and gzipped data is decompressed a chunk at a time up to the size the header implies,
    so a header that lies about the size fails at once instead of allocating what it claims.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"IDX file not found: {path}")
    try:
        with path.open("rb") as f:
            if f.read(2) != b"\x1f\x8b":  # the gzip magic number, whatever the file is called
                f.seek(0)
                return _read_idx_stream(path, f, os.fstat(f.fileno()).st_size)
            f.seek(0)
            with gzip.GzipFile(fileobj=f, mode="rb") as stream:
                return _read_idx_stream(path, stream, None)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from None
    except OSError as e:  # e.g. no permission: the user's to fix, so one line, not a traceback
        raise DataError(f"{path}: cannot be read: {e.strerror or e}") from None


def _read_idx_stream(path: Path, stream: BinaryIO, size: int | None) -> np.ndarray:
    """The array of the IDX bytes in ``stream``: ``size`` is the raw file's size, None for gzipped data (its
    decompressed size is known only by reading it, which stops one byte past what the header implies)."""
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES or magic[3] == 0:
        raise DataError(f"{path}: not an IDX file: magic number {magic.hex(' ')} is not 00 00 <type> <ndim> "
                        f"with type in {', '.join(f'{k:02x}' for k in IDX_DTYPES)}")
    dtype, ndim = IDX_DTYPES[magic[2]], magic[3]
    header = 4 + 4 * ndim
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, file has "
                        f"{4 + len(sizes)}")
    shape = struct.unpack(f">{ndim}I", sizes)
    # no array holds more than 32 dimensions (NumPy 1; 64 in NumPy 2), nor more than 2^63 bytes even when a zero
    # dimension makes it empty (NumPy multiplies the others first): real IDX files have 1 to 4 dimensions
    if ndim > 32 or math.prod(d for d in shape if d) * dtype.itemsize >= 2 ** 63:
        claim = f"shape {shape}" if ndim <= 8 else f"{ndim} dimensions"
        raise DataError(f"{path}: impossible IDX header: {claim}, which no array can hold")
    count = math.prod(shape)
    expected = count * dtype.itemsize
    if size is not None and size - header != expected:  # before reading: a lying header allocates nothing
        got = size - header
    else:
        data = _read_at_most(stream, expected + 1)
        got = len(data)
    if got != expected:
        what = "the file holds" if size is not None else "the decompressed file holds"
        problem = "truncated" if got < expected else "has extra bytes"
        more = f"{got:,} bytes of data" if size is not None or got < expected else "more"
        raise DataError(f"{path}: {problem}: IDX header says shape {shape} of {dtype.name} ({expected:,} bytes of "
                        f"data) but {what} {more}")
    # astype copies into a writable array in native byte order
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape).astype(dtype.newbyteorder("="))


def _read_at_most(stream: BinaryIO, n: int) -> bytearray:
    """Up to ``n`` bytes of ``stream``, read 1 MB at a time, so memory follows the bytes there, not ``n``."""
    data = bytearray()
    while len(data) < n:
        chunk = stream.read(min(n - len(data), 1 << 20))
        if not chunk:
            break
        data += chunk
    return data


def _find(root: Path, stem: str, hint: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise DataNotFoundError(f"{root / stem}[.gz] not found; {hint}")


def find_idx_files(root: str | Path, name: str, hint: str = MNIST_HINT) -> dict[str, Path]:
    """The four files of an MNIST-layout folder, by part and kind (``"train-images"``, ``"t10k-labels"``, ...).

    Only looks whether they exist (``datasets.availability`` relies on it being cheap); raises
    DataNotFoundError naming the folder or the first missing file, and ``hint``: where the data comes from.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(f"{name} folder not found: {root}; {hint}")
    return {f"{part}-{kind}": _find(root, f"{part}-{kind}-idx{dims}-ubyte", hint)
            for part in ("train", "t10k") for kind, dims in (("images", 3), ("labels", 1))}


def _load_part(files: dict[str, Path], part: str) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = files[f"{part}-images"], files[f"{part}-labels"]
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{images_path} holds {images.shape} and {labels_path} holds {labels.shape}: "
                        "expected images (N, H, W) and labels (N,)")
    if len(labels) == 0:
        raise DataError(f"{images_path} and {labels_path} hold no samples")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{labels_path}: labels are {labels.dtype.name}, not integers")
    return images, labels.astype(np.int64)


def load_idx_splits(root: str | Path, name: str, classes: tuple[str, ...] | None = None, flatten: bool = False,
                    val_size: int | float = 10_000, seed: int = 0, hint: str = MNIST_HINT,
                    train_size: int | None = None) -> Splits:
    """Read an MNIST-layout folder: train from ``train-*``, minus a stratified ``val_size`` (count or
    fraction) for validation, and test from ``t10k-*``. Images scaled to [0, 1] float32, (N, 1, H, W) or
    flattened (N, H * W); labels (N,) int64. ``train_size`` keeps only the first that many training images
    (of the shuffled split; the validation and test images stay the same): a smaller run on the same data.

    The number of classes is ``len(classes)`` when given, else the largest training label + 1; a label
    outside 0..num_classes - 1 in either labels file raises DataError naming the file (otherwise a corrupt
    label would silently train a model with more outputs, or fail only when the test set is scored).
    """
    files = find_idx_files(root, name, hint)
    train_x, train_y = _load_part(files, "train")
    test_x, test_y = _load_part(files, "t10k")
    num_classes = len(classes) if classes else int(train_y.max()) + 1
    for part, labels in (("train", train_y), ("t10k", test_y)):
        if problem := labels_out_of_range(labels, num_classes):
            raise DataError(f"{files[f'{part}-labels']}: {problem}")

    def scaled(images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32)
        x /= np.float32(255)  # as torchvision's ToTensor
        return x.reshape(len(x), -1) if flatten else x[:, None]  # (N, H*W) or (N, 1, H, W)

    train_idx, val_idx, _ = split_indices(len(train_y), train_y, val=val_size, test=0, seed=seed)
    if train_size is not None:
        if isinstance(train_size, bool) or not isinstance(train_size, int) or not 1 <= train_size <= len(train_idx):
            raise ValueError(f"train_size must be an integer from 1 to {len(train_idx)} (the training split), "
                             f"got {train_size!r}")
        train_idx = train_idx[:train_size]
    # index the uint8 images before scaling: one float32 copy of each split, not two
    train = TensorDataset(scaled(train_x[train_idx]), train_y[train_idx])
    info = DatasetInfo(name, "classification", tuple(train.arrays[0].shape[1:]), num_classes=num_classes,
                       classes=classes)
    return Splits(train, TensorDataset(scaled(train_x[val_idx]), train_y[val_idx]),
                  TensorDataset(scaled(test_x), test_y), info)


def mnist(root: str | Path, flatten: bool = False, val_size: int | float = 10_000, seed: int = 0,
          train_size: int | None = None) -> Splits:
    """MNIST from the folder ``root`` holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``.

    Splits of 50,000 / 10,000 / 10,000 by default (validation carved, stratified, from the 60,000 training
    images); images (N, 1, 28, 28) or flattened (N, 784) float32 in [0, 1], labels (N,) int64.
    """
    return load_idx_splits(root, "mnist", tuple(str(i) for i in range(10)), flatten, val_size, seed, MNIST_HINT,
                           train_size)


def fashion_mnist(root: str | Path | None = None, flatten: bool = False, val_size: int | float = 10_000,
                  seed: int = 0, train_size: int | None = None) -> Splits:
    """Fashion-MNIST (Zalando's 28x28 clothing images, 10 classes), laid out and split as ``mnist``.

    ``root`` defaults to /usr/share/datasets/fashion-mnist, where Debian's package ``dataset-fashion-mnist``
    installs it.
    """
    root = FASHION_MNIST_ROOT if root is None else root
    return load_idx_splits(root, "fashion-mnist", FASHION_MNIST_CLASSES, flatten, val_size, seed, FASHION_MNIST_HINT,
                           train_size)
