"""check_splits and check_batch_size: data that cannot be trained on fails before training, in one line that
names the split, how many values are bad and where the first one is."""

import time

import numpy as np
import pytest

from dlbasics.data import DatasetInfo, Splits, Subset, TensorDataset, check_batch_size, check_splits
from dlbasics.errors import ConfigError, DataError

CLASSES = DatasetInfo("toy", "classification", (3,), num_classes=4)
REGRESSION = DatasetInfo("fn", "regression", (2,), target_shape=(1,))


def toy(n=12, seed=0):
    """A classification split: inputs (n, 3) float32, labels (n,) in 0..3."""
    rng = np.random.default_rng(seed)
    return TensorDataset(rng.standard_normal((n, 3)).astype(np.float32), np.arange(n) % 4)


def splits(train=None, val=None, test=None, info=CLASSES):
    return Splits(toy() if train is None else train, toy(6, 1) if val is None else val,
                  toy(6, 2) if test is None else test, info)


def test_clean_splits_pass():
    check_splits(splits())
    check_splits(Splits(toy(), None, None, CLASSES))  # no val and no test split is allowed
    x = np.zeros((5, 2), np.float32)
    check_splits(Splits(TensorDataset(x, np.ones((5, 1), np.float32)), None, None, REGRESSION))


def test_nan_in_train_inputs():
    ds = toy()
    ds.arrays[0][7, 1] = np.nan
    ds.arrays[0][9] = np.nan
    with pytest.raises(DataError) as e:
        check_splits(splits(train=ds))
    assert str(e.value) == "toy: the train split has 4 NaN or inf values in its inputs (first in sample 7)"
    assert isinstance(e.value, ValueError)


def test_inf_in_val_inputs_of_images():
    x = np.zeros((4, 1, 5, 5), np.float32)
    x[2, 0, 4, 4] = -np.inf
    ds = TensorDataset(x, np.zeros(4, np.int64))
    with pytest.raises(DataError, match=r"^toy: the val split has 1 NaN or inf values in its inputs \(first in "
                       r"sample 2\)$"):
        check_splits(splits(val=ds))


def test_nan_in_regression_targets():
    y = np.ones((5, 1), np.float32)
    y[3, 0] = np.nan
    ds = TensorDataset(np.zeros((5, 2), np.float32), y)
    with pytest.raises(DataError, match=r"^fn: the test split has 1 NaN or inf values in its targets \(first in "
                       r"sample 3\)$"):
        check_splits(Splits(TensorDataset(np.zeros((5, 2)), np.ones((5, 1))), None, ds, REGRESSION))


def test_nan_found_across_blocks(monkeypatch):
    # the scan goes a block of samples at a time: a NaN in a later block is still found, and counted once
    from dlbasics.data import checks

    monkeypatch.setattr(checks, "_BLOCK_VALUES", 6)  # two samples of 3 values per block
    ds = toy()
    ds.arrays[0][[5, 10, 11], 0] = np.inf
    with pytest.raises(DataError, match=r"has 3 NaN or inf values in its inputs \(first in sample 5\)"):
        check_splits(splits(train=ds))


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_empty_split(split):
    empty = TensorDataset(np.zeros((0, 3), np.float32), np.zeros(0, np.int64))
    with pytest.raises(DataError, match=rf"^toy: the {split} split is empty \(0 samples\)$"):
        check_splits(splits(**{split: empty}))


def test_labels_out_of_range():
    ds = toy(6, 2)
    ds.arrays[1][[2, 4]] = [4, -1]
    with pytest.raises(DataError) as e:
        check_splits(splits(test=ds))
    assert str(e.value) == "toy: the test split: 2 of 6 labels lie outside 0..3 (first: 4 at index 2)"


def test_other_datasets_are_only_checked_for_emptiness():
    ds = toy()
    ds.arrays[0][0, 0] = np.nan
    check_splits(splits(train=Subset(ds, [0, 1, 2])))  # a Subset's arrays are not at hand: skipped
    with pytest.raises(DataError, match="the train split is empty"):
        check_splits(splits(train=Subset(ds, [])))


def test_a_large_split_is_checked_fast():
    x = np.random.default_rng(0).random((60_000, 784), dtype=np.float32)
    big = Splits(TensorDataset(x, np.arange(60_000) % 4), None, None, CLASSES)
    check_splits(big)  # warm up
    start = time.perf_counter()
    check_splits(big)
    assert time.perf_counter() - start < 0.5  # ~15 ms alone; generous for a busy machine


def test_check_batch_size():
    check_batch_size(1, 10)
    check_batch_size(10, 10)
    check_batch_size(np.int64(4), 10)
    with pytest.raises(ConfigError) as e:
        check_batch_size(5000, 1077)
    assert str(e.value) == "--batch-size 5000 is larger than the training split (1077 samples); use at most 1077"
    assert isinstance(e.value, ValueError)
    with pytest.raises(ConfigError, match=r"^--batch-size 0 must be at least 1$"):
        check_batch_size(0, 1077)
    with pytest.raises(ConfigError, match=r"^batch_size -3 must be at least 1$"):
        check_batch_size(-3, 1077, option="batch_size")
    for bad in (2.5, True, "64"):
        with pytest.raises(ConfigError, match=r"^--batch-size must be a whole number of samples, got "):
            check_batch_size(bad, 1077)
