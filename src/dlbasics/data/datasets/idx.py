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
import struct
import zlib
from pathlib import Path

import numpy as np

from dlbasics.data.dataset import DatasetInfo, Splits, TensorDataset
from dlbasics.data.datasets.bundled import split_indices

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
_FASHION_HINT = ("Debian's package dataset-fashion-mnist installs the files under "
                 f"{FASHION_MNIST_ROOT}/ (apt-get install dataset-fashion-mnist), or pass root= a folder holding "
                 "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]")
_MNIST_HINT = "put the four files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in that folder"


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in IDX file ``path`` (gzipped or raw), in native byte order.

    Raises ValueError naming the file if the magic number is wrong or the payload does not match the
    header (truncated or with extra bytes); FileNotFoundError if there is no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # the gzip magic number, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES or raw[3] == 0:
        raise ValueError(f"{path}: not an IDX file: magic number {raw[:4].hex(' ')} is not 00 00 <type> <ndim> "
                         f"with type in {', '.join(f'{k:02x}' for k in IDX_DTYPES)}")
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, file has {len(raw)}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected, got = math.prod(shape) * dtype.itemsize, len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "has extra bytes"
        raise ValueError(f"{path}: {what}: header says shape {shape} of {dtype.name} = {expected} bytes of data, "
                         f"file has {got}")
    # astype copies into a writable array in native byte order
    return np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=header).reshape(shape).astype(
        dtype.newbyteorder("="))


def _find(root: Path, stem: str, hint: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"{root / stem}[.gz] not found; {hint}")


def _load_part(root: Path, part: str, hint: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = _find(root, f"{part}-images-idx3-ubyte", hint)
    labels_path = _find(root, f"{part}-labels-idx1-ubyte", hint)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{images_path} holds {images.shape} and {labels_path} holds {labels.shape}: "
                         "expected images (N, H, W) and labels (N,)")
    return images, labels.astype(np.int64)


def load_idx_splits(root: str | Path, name: str, classes: tuple[str, ...] | None = None, flatten: bool = False,
                    val_size: int | float = 10_000, seed: int = 0, hint: str = _MNIST_HINT) -> Splits:
    """Read an MNIST-layout folder: train from ``train-*``, minus a stratified ``val_size`` (count or
    fraction) for validation, and test from ``t10k-*``. Images scaled to [0, 1] float32, (N, 1, H, W) or
    flattened (N, H * W); labels (N,) int64."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{name} folder not found: {root}; {hint}")
    train_x, train_y = _load_part(root, "train", hint)
    test_x, test_y = _load_part(root, "t10k", hint)

    def scaled(images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32)
        x /= np.float32(255)  # as torchvision's ToTensor
        return x.reshape(len(x), -1) if flatten else x[:, None]  # (N, H*W) or (N, 1, H, W)

    train_idx, val_idx, _ = split_indices(len(train_y), train_y, val=val_size, test=0, seed=seed)
    # index the uint8 images before scaling: one float32 copy of each split, not two
    train = TensorDataset(scaled(train_x[train_idx]), train_y[train_idx])
    info = DatasetInfo(name, "classification", tuple(train.arrays[0].shape[1:]),
                       num_classes=int(train_y.max()) + 1, classes=classes)
    return Splits(train, TensorDataset(scaled(train_x[val_idx]), train_y[val_idx]),
                  TensorDataset(scaled(test_x), test_y), info)


def mnist(root: str | Path, flatten: bool = False, val_size: int | float = 10_000, seed: int = 0) -> Splits:
    """MNIST from the folder ``root`` holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``.

    Splits of 50,000 / 10,000 / 10,000 by default (validation carved, stratified, from the 60,000 training
    images); images (N, 1, 28, 28) or flattened (N, 784) float32 in [0, 1], labels (N,) int64.
    """
    return load_idx_splits(root, "mnist", tuple(str(i) for i in range(10)), flatten, val_size, seed, _MNIST_HINT)


def fashion_mnist(root: str | Path | None = None, flatten: bool = False, val_size: int | float = 10_000,
                  seed: int = 0) -> Splits:
    """Fashion-MNIST (Zalando's 28x28 clothing images, 10 classes), laid out and split as ``mnist``.

    ``root`` defaults to /usr/share/datasets/fashion-mnist, where Debian's package ``dataset-fashion-mnist``
    installs it.
    """
    root = FASHION_MNIST_ROOT if root is None else root
    return load_idx_splits(root, "fashion-mnist", FASHION_MNIST_CLASSES, flatten, val_size, seed, _FASHION_HINT)
