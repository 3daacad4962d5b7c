"""Bundled and generated datasets, the name registry, and the IDX reader on files written here."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from dlbasics.data import DataLoader, TensorDataset
from dlbasics.data import datasets as D
from dlbasics.data.datasets.idx import load_idx_splits
from dlbasics.errors import ConfigError, DataError, DataNotFoundError

FASHION = Path("/usr/share/datasets/fashion-mnist")


def labels(ds):
    return ds.arrays[1]


def class_shares(y, k):
    return np.bincount(y, minlength=k) / len(y)


# ---- digits ----------------------------------------------------------------------------------------
def test_digits_sizes_dtypes_and_range():
    splits = D.digits()
    train, val, test = splits
    assert len(train) + len(val) + len(test) == 1797
    assert (len(train), len(val), len(test)) == (1079, 359, 359)  # 60 / 20 / 20
    for ds in splits:
        x, y = ds.arrays
        assert x.dtype == np.float32 and x.shape[1:] == (64,)
        assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert max(float(ds.arrays[0].max()) for ds in splits) == 1.0  # 16 / 16
    info = splits.info
    assert (info.num_classes, info.in_features, info.out_features, info.task) == (10, 64, 10, "classification")
    images = D.digits(flatten=False)
    assert images.train.arrays[0].shape == (1079, 1, 8, 8) and images.info.input_shape == (1, 8, 8)
    np.testing.assert_array_equal(images.train.arrays[0].reshape(-1, 64), train.arrays[0])


def test_digits_split_is_stratified_within_two_percent():
    train, val, test = D.digits()
    everything = np.concatenate([labels(train), labels(val), labels(test)])
    overall = class_shares(everything, 10)
    for ds in (train, val, test):
        assert np.abs(class_shares(labels(ds), 10) - overall).max() < 0.02


def test_digits_split_is_fixed_and_disjoint():
    a, b, c = D.digits(), D.digits(), D.digits(seed=1)
    for sa, sb in zip(a, b):
        np.testing.assert_array_equal(sa.arrays[0], sb.arrays[0])
        np.testing.assert_array_equal(sa.arrays[1], sb.arrays[1])
    assert not np.array_equal(a.train.arrays[0], c.train.arrays[0])
    parts = D.split_indices(1797, np.zeros(1797, dtype=int), seed=0)
    together = np.concatenate(parts)
    assert len(together) == 1797 and len(np.unique(together)) == 1797


def test_digits_through_a_loader():
    train = D.digits().train
    x, y = next(iter(DataLoader(train, batch_size=32, shuffle=True, seed=0)))
    assert x.shape == (32, 64) and str(x.dtype) == "float32" and str(y.dtype) == "int64"


# ---- generated --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("loader", "kwargs", "k"), [
    (D.moons, {}, 2), (D.circles, {}, 2), (D.spirals, {}, 3), (D.spirals, {"n_classes": 5, "n_samples": 500}, 5),
])
def test_generated_classification(loader, kwargs, k):
    splits = loader(**kwargs)
    n = kwargs.get("n_samples", 1000)
    assert sum(len(ds) for ds in splits) == n
    for ds in splits:
        x, y = ds.arrays
        assert x.shape[1:] == (2,) and x.dtype == np.float32 and y.dtype == np.int64
        assert set(np.unique(y)) == set(range(k))
        assert np.abs(class_shares(y, k) - 1 / k).max() < 0.02
    assert splits.info.num_classes == k and splits.info.input_shape == (2,)
    again = loader(**kwargs)
    np.testing.assert_array_equal(splits.test.arrays[0], again.test.arrays[0])


def test_spirals_are_not_linearly_separable_but_are_learnable():
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    train, _, test = D.spirals(noise=0.1)
    linear = LogisticRegression().fit(*train.arrays).score(*test.arrays)
    knn = KNeighborsClassifier(5).fit(*train.arrays).score(*test.arrays)
    assert linear < 0.7 and knn > 0.9, (linear, knn)


@pytest.mark.parametrize("fn", ["sin", "step", "abs", "sawtooth", "2d"])
def test_function_regression_shapes(fn):
    splits = D.function_regression(fn, n_samples=200)
    assert [len(ds) for ds in splits] == [120, 40, 40]
    d = 2 if fn == "2d" else 1
    for ds in splits:
        x, y = ds.arrays
        assert x.shape[1:] == (d,) and y.shape[1:] == (1,)
        assert x.dtype == np.float32 and y.dtype == np.float32
        assert np.abs(x).max() <= np.pi + 1e-6
    assert splits.info.task == "regression" and splits.info.out_features == 1 and splits.info.in_features == d


def test_function_regression_values():
    x, y = D.function_regression("sin", n_samples=100).train.arrays
    np.testing.assert_allclose(y[:, 0], np.sin(x[:, 0]), atol=1e-6)
    x, y = D.function_regression("2d", n_samples=100).train.arrays
    np.testing.assert_allclose(y[:, 0], np.sin(x[:, 0]) * np.cos(x[:, 1]), atol=1e-6)
    x, y = D.function_regression("step", n_samples=100).train.arrays
    np.testing.assert_array_equal(y[:, 0], x[:, 0] > 0)
    x, y = D.function_regression("sawtooth", n_samples=400).train.arrays
    assert y.min() >= -1 and y.max() < 1
    _, noisy = D.function_regression("abs", n_samples=100, noise=0.5).train.arrays
    _, clean = D.function_regression("abs", n_samples=100).train.arrays
    assert 0.3 < np.std(noisy - clean) < 0.7
    with pytest.raises(ConfigError, match="sawtooth"):
        D.function_regression("cos")


# ---- registry ----------------------------------------------------------------------------------------
def test_load_by_name():
    names = D.available()
    for name in ("digits", "moons", "circles", "spirals", "sin", "step", "abs", "sawtooth", "2d", "mnist",
                 "fashion-mnist"):
        assert name in names
    assert len(D.load("moons", n_samples=100).train) == 60
    assert D.load("SIN").info.name == "sin"
    with pytest.raises(ConfigError, match="available: digits, moons"):
        D.load("cifar100")


# ---- IDX ----------------------------------------------------------------------------------------------
CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def write_idx(path, array, gz=False):
    """The IDX format, written by hand: 00 00 <type> <ndim>, big-endian uint32 sizes, big-endian data."""
    array = np.asarray(array)
    header = bytes([0, 0, CODES[array.dtype.type], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    Path(path).write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((5, 4, 3)) * 100).astype(dtype)
    out = D.read_idx(write_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"), array, gz))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.shape == (5, 4, 3)
    np.testing.assert_array_equal(out, array)
    out[0] = 0  # writable, not a view of the file's bytes


def test_idx_known_bytes(tmp_path):
    # 2 labels, 7 and 1: the exact bytes of an MNIST labels file
    path = tmp_path / "labels"
    path.write_bytes(bytes.fromhex("00000801 00000002 07 01"))
    np.testing.assert_array_equal(D.read_idx(path), [7, 1])
    path.write_bytes(bytes.fromhex("00000D01 00000001 3FC00000"))  # one big-endian float32: 1.5
    assert D.read_idx(path).tolist() == [1.5]


def test_idx_truncated_file(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.zeros((4, 3, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"x\.idx: truncated.*\(4, 3, 3\)"):
        D.read_idx(path)
    path.write_bytes(path.read_bytes()[:10])  # not even the whole header
    with pytest.raises(DataError, match="truncated IDX header"):
        D.read_idx(path)
    gz = write_idx(tmp_path / "y.gz", np.zeros((400, 3), np.float32), gz=True)
    gz.write_bytes(gz.read_bytes()[:-12])
    with pytest.raises(DataError, match=r"y\.gz"):
        D.read_idx(gz)


def test_idx_extra_bytes_and_bad_magic(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.zeros((2, 2), np.uint8))
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(DataError, match="extra bytes"):
        D.read_idx(path)
    for magic in ("01000801", "00000701", "00000800", "0000"):
        path.write_bytes(bytes.fromhex(magic + "00000001 05"))
        with pytest.raises(DataError, match=r"x\.idx: not an IDX file"):
            D.read_idx(path)
    with pytest.raises(DataNotFoundError, match=r"nothing\.idx"):
        D.read_idx(tmp_path / "nothing.idx")


def write_mnist_folder(root, n_train=200, n_test=30, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    data = {}
    for part, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 255, 0
        y = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(root / f"{part}-images-idx3-ubyte{suffix}", images, gz)
        write_idx(root / f"{part}-labels-idx1-ubyte{suffix}", y, gz)
        data[part] = images, y
    return data


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_a_folder(tmp_path, gz):
    data = write_mnist_folder(tmp_path / "mnist", gz=gz)
    splits = D.mnist(tmp_path / "mnist", val_size=50)
    assert [len(ds) for ds in splits] == [150, 50, 30]
    x, y = splits.test.arrays
    assert x.shape == (30, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0], data["t10k"][0] / np.float32(255))  # test = t10k, in order
    assert x[0, 0, 0, 0] == 1.0 and x[0, 0, 0, 1] == 0.0
    np.testing.assert_array_equal(y, data["t10k"][1])
    np.testing.assert_array_equal(np.bincount(labels(splits.val)), [5] * 10)  # stratified validation
    train_rows = {r.tobytes() for r in splits.train.arrays[0]} | {r.tobytes() for r in splits.val.arrays[0]}
    assert len(train_rows) == 200  # train and val partition the training file
    flat = D.mnist(tmp_path / "mnist", flatten=True, val_size=0.25)
    assert flat.train.arrays[0].shape == (150, 784) and flat.info.in_features == 784
    assert splits.info.num_classes == 10 and splits.info.input_shape == (1, 28, 28)


def test_mnist_missing_files(tmp_path):
    with pytest.raises(DataNotFoundError, match="nowhere"):
        D.mnist(tmp_path / "nowhere")
    write_mnist_folder(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError, match=r"t10k-labels-idx1-ubyte\[\.gz\] not found"):
        D.mnist(tmp_path / "m")
    with pytest.raises(DataNotFoundError, match="dataset-fashion-mnist"):
        D.fashion_mnist(tmp_path / "nowhere")


def test_mnist_mismatched_files(tmp_path):
    write_mnist_folder(tmp_path / "m")
    write_idx(tmp_path / "m" / "train-labels-idx1-ubyte.gz", np.zeros(7, np.uint8), gz=True)
    with pytest.raises(DataError, match=r"\(200, 28, 28\).*\(7,\)"):
        D.mnist(tmp_path / "m")


def test_idx_labels_out_of_range_name_the_file(tmp_path):
    # 40 labels of a 60000-sample file set to 200 used to train a 201-class model without a word
    data = write_mnist_folder(tmp_path / "m", n_train=600)
    y = data["train"][1].copy()
    y[[17, *range(100, 139)]] = 200
    write_idx(tmp_path / "m" / "train-labels-idx1-ubyte.gz", y, gz=True)
    with pytest.raises(DataError) as e:
        D.mnist(tmp_path / "m")
    assert str(e.value) == (f"{tmp_path / 'm' / 'train-labels-idx1-ubyte.gz'}: 40 of 600 labels lie outside 0..9 "
                            "(first: 200 at index 17)")
    write_mnist_folder(tmp_path / "f", n_train=200)
    y = np.zeros(30, np.int8)
    y[5] = -1  # int8 labels can be negative
    write_idx(tmp_path / "f" / "t10k-labels-idx1-ubyte.gz", y, gz=True)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: 1 of 30 labels lie outside 0\.\.9 "
                       r"\(first: -1 at index 5\)"):
        D.fashion_mnist(tmp_path / "f", val_size=50)
    write_idx(tmp_path / "f" / "t10k-labels-idx1-ubyte.gz", np.zeros(30, np.float32), gz=True)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: labels are float32, not integers"):
        D.fashion_mnist(tmp_path / "f", val_size=50)


def test_idx_classes_come_from_the_class_names(tmp_path):
    # a folder whose labels use only 0..4 is still 10-class MNIST: the model needs 10 outputs
    data = write_mnist_folder(tmp_path / "m")
    for part in ("train", "t10k"):
        write_idx(tmp_path / "m" / f"{part}-labels-idx1-ubyte.gz", data[part][1] % 5, gz=True)
    assert D.mnist(tmp_path / "m", val_size=50).info.num_classes == 10
    assert load_idx_splits(tmp_path / "m", "five", val_size=50).info.num_classes == 5  # no names: from labels


def test_idx_empty_file(tmp_path):
    write_mnist_folder(tmp_path / "m")
    write_idx(tmp_path / "m" / "train-images-idx3-ubyte.gz", np.zeros((0, 28, 28), np.uint8), gz=True)
    write_idx(tmp_path / "m" / "train-labels-idx1-ubyte.gz", np.zeros(0, np.uint8), gz=True)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz and .*train-labels-idx1-ubyte\.gz hold no "
                       "samples"):
        D.mnist(tmp_path / "m")


# ---- availability ----------------------------------------------------------------------------------
def test_availability_of_bundled_and_unknown():
    for name in ("digits", "moons", "sin", "2d"):
        assert D.availability(name) is None
    with pytest.raises(ConfigError, match="unknown data set 'nope'; available: digits"):
        D.availability("nope")


def test_availability_of_file_based_sets(tmp_path):
    reason = D.availability("fashion-mnist", tmp_path / "nowhere")
    assert reason.startswith(f"fashion-mnist folder not found: {tmp_path / 'nowhere'}; ")
    assert "apt-get install dataset-fashion-mnist" in reason and "\n" not in reason
    for name in ("mnist", "cifar10"):
        reason = D.availability(name)
        assert reason.startswith(f"{name} is read from files this library does not download: pass root= ")
        assert "--data-dir" in reason
    reason = D.availability("mnist", tmp_path)  # the folder is there, the files are not
    assert reason.startswith(f"{tmp_path / 'train-images-idx3-ubyte'}[.gz] not found; ")
    assert reason.endswith("in that folder")
    # cheap: the files are looked for, not read - empty files count as there
    for part in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            (tmp_path / f"{part}-{kind}-ubyte").touch()
    assert D.availability("mnist", tmp_path) is None and D.availability("MNIST", str(tmp_path)) is None
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    assert D.availability("fashion-mnist", tmp_path).startswith(f"{tmp_path / 't10k-labels-idx1-ubyte'}[.gz] not "
                                                                "found; Debian's package dataset-fashion-mnist")
    assert "test_batch.bin not found in" in D.availability("cifar10", tmp_path)
    for name in ("data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
                 "test_batch.bin"):
        (tmp_path / name).touch()
    assert D.availability("cifar10", tmp_path) is None


def test_availability_matches_what_load_raises(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        D.fashion_mnist(tmp_path / "nowhere")
    assert str(e.value) == D.availability("fashion-mnist", tmp_path / "nowhere")
    assert (D.availability("fashion-mnist") is None) == FASHION.is_dir()


@pytest.mark.skipif(not FASHION.is_dir(), reason=f"real Fashion-MNIST not installed at {FASHION} "
                    "(Debian package dataset-fashion-mnist)")
def test_real_fashion_mnist():
    splits = D.fashion_mnist()
    assert [len(ds) for ds in splits] == [50_000, 10_000, 10_000]
    x, y = splits.test.arrays
    assert x.shape == (10_000, 1, 28, 28) and x.dtype == np.float32 and x.min() >= 0 and x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), [1000] * 10)
    np.testing.assert_array_equal(np.bincount(labels(splits.val)), [1000] * 10)
    assert splits.info.classes[9] == "Ankle boot"
    assert isinstance(splits.train, TensorDataset)
