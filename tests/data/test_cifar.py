"""The CIFAR-10 binary reader and loader, on tiny files written here byte by byte in the exact format."""

import struct

import numpy as np
import pytest

from dlbasics.data import DataLoader
from dlbasics.data import datasets as D
from dlbasics.data.datasets.cifar import CIFAR10_FOLDER, RECORD_BYTES
from dlbasics.errors import ConfigError, DataError, DataNotFoundError

N = 30  # records per file: 3 of each class, so 5 training files hold 15 of each
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]


def pixel(f, i, c, r, col):
    """The byte written for file ``f``, record ``i``, channel ``c``, row ``r``, column ``col``: rows and columns
    have different weights, so a transposed or channel-last read gives other values."""
    return (c * 64 + r * 7 + col * 3 + i + 11 * f) % 256


def record(label, f, i):
    """One record as the format describes it, built without NumPy's reshape: the label byte, then the red
    plane row by row, then green, then blue."""
    planes = bytes(pixel(f, i, c, r, col) for c in range(3) for r in range(32) for col in range(32))
    return bytes([label]) + planes


def write_batch(path, f, n=N):
    path.write_bytes(b"".join(record((i + f) % 10, f, i) for i in range(n)))
    return path


def expected(f, n=N):
    """What reading file ``f`` must give: images (n, 3, 32, 32) and labels (n,)."""
    i, c, r, col = np.ix_(np.arange(n), np.arange(3), np.arange(32), np.arange(32))
    return pixel(f, i, c, r, col).astype(np.uint8), (np.arange(n) + f) % 10


def write_cifar_folder(folder, meta=None):
    folder.mkdir(parents=True, exist_ok=True)
    for f, name in enumerate(TRAIN_FILES, start=1):
        write_batch(folder / name, f)
    write_batch(folder / "test_batch.bin", 0)
    if meta is not None:
        (folder / "batches.meta.txt").write_text(meta)
    return folder


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    """An extracted archive, read-only for the tests that use it: <tmp>/cifar-10-batches-bin/*.bin."""
    return write_cifar_folder(tmp_path_factory.mktemp("cifar") / CIFAR10_FOLDER)


def rows(x):
    return sorted(r.tobytes() for r in x)


# ---- reader -------------------------------------------------------------------------------------------
def test_read_batch_pixels_land_in_channel_row_column(tmp_path):
    images, labels = D.read_cifar_batch(write_batch(tmp_path / "data_batch_2.bin", 2))
    assert images.shape == (N, 3, 32, 32) and images.dtype == np.uint8
    assert labels.shape == (N,) and labels.dtype == np.int64
    want_x, want_y = expected(2)
    np.testing.assert_array_equal(images, want_x)
    np.testing.assert_array_equal(labels, want_y)
    images[0] = 0  # a writable copy, not a view of the file's bytes


def test_read_batch_known_bytes(tmp_path):
    # one record by offsets: red (row 0, col 1) = 255, green all 200, blue (row 31, col 31) = 77
    rec = bytearray(RECORD_BYTES)
    rec[0] = 6
    rec[1 + 1] = 255
    rec[1 + 1024:1 + 2048] = bytes([200]) * 1024
    rec[1 + 2048 + 31 * 32 + 31] = 77
    path = tmp_path / "one.bin"
    path.write_bytes(bytes(rec) * 2)
    images, labels = D.read_cifar_batch(path)
    assert labels.tolist() == [6, 6]
    red, green, blue = images[0]
    assert red[0, 1] == 255 and red.sum() == 255
    assert (green == 200).all()
    assert blue[31, 31] == 77 and blue.sum() == 77


def one_line_error(excinfo):
    assert "\n" not in str(excinfo.value)


def test_read_batch_truncated_or_wrong_size(tmp_path):
    path = write_batch(tmp_path / "data_batch_1.bin", 1, n=3)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"data_batch_1\.bin: 9214 bytes .* 3073-byte .* 2 records and 3068 bytes "
                       "over") as e:
        D.read_cifar_batch(path)
    one_line_error(e)
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"data_batch_1\.bin: 0 bytes"):
        D.read_cifar_batch(path)
    path.write_bytes(bytes(3074 * 3))  # CIFAR-100's records: a coarse and a fine label byte
    with pytest.raises(DataError, match="CIFAR-100"):
        D.read_cifar_batch(path)


def test_read_batch_bad_label(tmp_path):
    path = write_batch(tmp_path / "test_batch.bin", 0, n=10)
    raw = bytearray(path.read_bytes())
    raw[7 * RECORD_BYTES] = 10
    raw[9 * RECORD_BYTES] = 255
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"test_batch\.bin: record 7 has label 10, outside 0\.\.9 \(2 of 10") as e:
        D.read_cifar_batch(path)
    one_line_error(e)
    with pytest.raises(DataNotFoundError, match=r"nothing\.bin"):
        D.read_cifar_batch(tmp_path / "nothing.bin")


# ---- loader -------------------------------------------------------------------------------------------
def test_cifar10_splits_sizes_and_stratification(cifar_dir):
    splits = D.cifar10(cifar_dir, val_size=50, normalize=False)
    assert [len(ds) for ds in splits] == [100, 50, 30]
    for ds in splits:
        x, y = ds.arrays
        assert x.shape[1:] == (3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(np.bincount(splits.train.arrays[1]), [10] * 10)
    np.testing.assert_array_equal(np.bincount(splits.val.arrays[1]), [5] * 10)
    # train and val partition the five training files; every image keeps its label
    everything = [expected(f) for f in range(1, 6)]
    raw = np.concatenate([x for x, _ in everything])
    got = np.concatenate([splits.train.arrays[0], splits.val.arrays[0]])
    assert rows(np.round(got * 255).astype(np.uint8)) == rows(raw)
    label_of = {img.tobytes(): y for x, ys in everything for img, y in zip(x, ys)}
    for ds in (splits.train, splits.val):
        for img, y in zip(np.round(ds.arrays[0] * 255).astype(np.uint8), ds.arrays[1]):
            assert label_of[img.tobytes()] == y
    # test = test_batch.bin, in file order, scaled as x / 255
    x0, y0 = expected(0)
    np.testing.assert_array_equal(splits.test.arrays[0], x0 / np.float32(255))
    np.testing.assert_array_equal(splits.test.arrays[1], y0)
    info = splits.info
    assert (info.name, info.task, info.input_shape, info.num_classes) == ("cifar10", "classification", (3, 32, 32), 10)
    assert info.classes == D.CIFAR10_CLASSES and info.classes[0] == "airplane" and info.classes[9] == "truck"
    # the split is fixed by the seed; the default keeps 5,000 images for validation (all of these: too many)
    again, other = D.cifar10(cifar_dir, val_size=50, normalize=False), D.cifar10(cifar_dir, val_size=50, seed=1,
                                                                                 normalize=False)
    np.testing.assert_array_equal(again.val.arrays[0], splits.val.arrays[0])
    assert rows(other.val.arrays[0]) != rows(splits.val.arrays[0])
    assert [len(ds) for ds in D.cifar10(cifar_dir, val_size=0.2)] == [120, 30, 30]
    with pytest.raises(ConfigError, match="no training samples"):
        D.cifar10(cifar_dir)


def test_cifar10_normalizes_with_train_statistics(cifar_dir):
    raw = D.cifar10(cifar_dir, val_size=50, normalize=False)
    norm = D.cifar10(cifar_dir, val_size=50)
    train_raw = raw.train.arrays[0].astype(np.float64)
    mean, std = train_raw.mean(axis=(0, 2, 3)), train_raw.std(axis=(0, 2, 3))
    all_raw = np.concatenate([train_raw, raw.val.arrays[0]])
    assert np.abs(all_raw.mean(axis=(0, 2, 3)) - mean).max() > 1e-3  # so the check below tells the two apart
    for a, b in zip(raw, norm):
        np.testing.assert_allclose(b.arrays[0], (a.arrays[0] - mean[:, None, None]) / std[:, None, None], atol=2e-6)
        np.testing.assert_array_equal(a.arrays[1], b.arrays[1])
        assert b.arrays[0].dtype == np.float32
    x = norm.train.arrays[0].astype(np.float64)
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1, atol=1e-5)
    assert np.abs(norm.val.arrays[0].mean(axis=(0, 2, 3))).max() > 1e-3  # val keeps train's stats, not its own
    # channel_stats: exact, from uint8 histograms
    u8 = np.random.default_rng(0).integers(0, 256, (7, 3, 5, 4), dtype=np.uint8)
    m, s = D.channel_stats(u8)
    np.testing.assert_allclose(m, (u8 / 255).mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(s, (u8 / 255).std(axis=(0, 2, 3)), rtol=1e-12)
    with pytest.raises(ValueError, match="uint8"):
        D.channel_stats(u8.astype(np.float32))


def crops_of(image, pad=4):
    """Every image the augmentation may make of ``image`` (3, 32, 32), with (row shift, column shift, flipped):
    81 zero-padded crops, each maybe flipped."""
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)))
    for top in range(2 * pad + 1):
        for left in range(2 * pad + 1):
            window = padded[:, top:top + 32, left:left + 32]
            yield (top - pad, left - pad, 0), window
            yield (top - pad, left - pad, 1), window[:, :, ::-1]


def shift_of(augmented, image):
    """(row shift, column shift, flipped) of the crop that made ``augmented`` of ``image``; None if none did."""
    return next((shift for shift, c in crops_of(image) if np.array_equal(augmented, c)), None)


def test_cifar10_augment_only_train_and_seeded(cifar_dir):
    plain = D.cifar10(cifar_dir, val_size=50)
    aug = D.cifar10(cifar_dir, val_size=50, augment=True)
    assert plain.train.transform is None
    assert aug.train.transform is not None and aug.val.transform is None and aug.test.transform is None
    for a, b in zip(plain, aug):
        np.testing.assert_array_equal(a.arrays[0], b.arrays[0])  # stored arrays are the same; only fetching differs
    idx = np.arange(100)
    batch = aug.train.__getitems__(idx).columns[0]
    stored = aug.train.arrays[0][idx]
    assert batch.shape == (100, 3, 32, 32) and batch.dtype == np.float32
    assert sum(not np.array_equal(b, s) for b, s in zip(batch, stored)) >= 90  # P(unchanged) = 1/162 each
    shifts = np.array([shift_of(b, s) for b, s in zip(batch, stored)])  # (100, 3): every output is some crop
    assert abs(shifts[:, :2]).max() == 4  # padding 4, used in full (P(no shift of 4 in 100 crops) < 1e-21)
    assert 30 <= shifts[:, 2].sum() <= 70  # about half flipped
    one = aug.train[3][0]  # a single sample goes through the transform too
    assert one.shape == (3, 32, 32) and shift_of(one, aug.train.arrays[0][3]) is not None
    for ds in (aug.val, aug.test):
        np.testing.assert_array_equal(ds.__getitems__(idx[:30]).columns[0], ds.arrays[0][:30])
    # seeded: the same seed draws the same crops and flips; another augment_seed others, on the same split
    same = D.cifar10(cifar_dir, val_size=50, augment=True).train.__getitems__(idx).columns[0]
    np.testing.assert_array_equal(same, batch)
    other = D.cifar10(cifar_dir, val_size=50, augment=True, augment_seed=1)
    np.testing.assert_array_equal(other.train.arrays[0], aug.train.arrays[0])
    assert not np.array_equal(other.train.__getitems__(idx).columns[0], batch)
    x, y = next(iter(DataLoader(aug.train, batch_size=16, shuffle=True, seed=0)))
    assert x.shape == (16, 3, 32, 32) and str(x.dtype) == "float32" and str(y.dtype) == "int64"


def test_cifar10_accepts_the_parent_folder_and_reads_class_names(tmp_path, cifar_dir):
    parent = D.cifar10(cifar_dir.parent, val_size=50)
    direct = D.cifar10(cifar_dir, val_size=50)
    for a, b in zip(parent, direct):
        np.testing.assert_array_equal(a.arrays[0], b.arrays[0])
    names = [f"class{k}" for k in range(10)]
    folder = write_cifar_folder(tmp_path / "c", meta="\n".join(names) + "\n\n")  # the real file ends blank
    assert D.cifar10(folder, val_size=50).info.classes == tuple(names)
    (folder / "batches.meta.txt").write_text("a\nb\nc\n")
    with pytest.raises(DataError, match=r"batches\.meta\.txt: expected 10 class names.*found 3"):
        D.cifar10(folder, val_size=50)


def test_cifar10_missing_folder_and_files(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        D.cifar10(tmp_path / "nowhere")
    message = str(e.value)
    assert str(tmp_path / "nowhere") in message
    for part in ("data_batch_1.bin", "data_batch_5.bin", "test_batch.bin", "binary version", "never downloads"):
        assert part in message
    one_line_error(e)
    folder = write_cifar_folder(tmp_path / "c")
    (folder / "data_batch_4.bin").unlink()
    (folder / "test_batch.bin").unlink()
    with pytest.raises(DataNotFoundError, match=r"data_batch_4\.bin, test_batch\.bin not found in .*c;"):
        D.cifar10(folder)
    with pytest.raises(DataNotFoundError, match="not found in"):
        D.cifar10(tmp_path)  # a folder with neither the files nor cifar-10-batches-bin/


def test_cifar10_names_the_bad_file(tmp_path):
    folder = write_cifar_folder(tmp_path / "c")
    path = folder / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match=r"data_batch_3\.bin: .*truncated"):
        D.cifar10(folder, val_size=50)


def test_load_cifar10_by_name(cifar_dir):
    assert "cifar10" in D.available()
    splits = D.load("cifar10", root=cifar_dir, val_size=50, augment=True)
    assert [len(ds) for ds in splits] == [100, 50, 30] and splits.train.transform is not None
    assert D.load("CIFAR10", root=str(cifar_dir), val_size=50).info.input_shape == (3, 32, 32)


# ---- the image loaders give (C, H, W) by name, as the CNNs need --------------------------------------------
def write_idx(path, array):
    """IDX by hand: 00 00 08 <ndim>, big-endian uint32 sizes, uint8 data."""
    path.write_bytes(bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_loaders_by_name_are_image_shaped(tmp_path, name):
    rng = np.random.default_rng(0)
    for part, n in (("train", 40), ("t10k", 10)):
        write_idx(tmp_path / f"{part}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    splits = D.load(name, root=tmp_path, val_size=10)
    assert splits.info.input_shape == (1, 28, 28)
    assert [ds.arrays[0].shape for ds in splits] == [(30, 1, 28, 28), (10, 1, 28, 28), (10, 1, 28, 28)]
