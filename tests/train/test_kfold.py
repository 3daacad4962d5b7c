"""K-fold cross-validation: the folds partition the data, stratification keeps class ratios, parallel folds
give exactly the serial numbers, mean/std arithmetic, regression falls back to KFold, and clear errors."""

import json

import numpy as np
import pytest
from sklearn.model_selection import KFold

from dlbasics import nn, optim
from dlbasics.data import ConcatDataset, Dataset, Subset, TensorDataset, datasets
from dlbasics.tensor import Tensor
from dlbasics.train.config import RunBuilder, RunConfig
from dlbasics.train.kfold import CVResult, cross_validate, fold_indices, targets_of
from dlbasics.train.run import Run


@pytest.fixture(scope="module")
def digits():
    return datasets.digits()


@pytest.fixture(scope="module")
def all_digits(digits):
    return ConcatDataset(list(digits))  # all 1,797 images, stratification reads targets through the concat


def tiny_mlp(seed):
    """A module-level build_run: picklable, so it may go to worker processes."""
    model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    return Run(model=model, loss_fn=nn.CrossEntropyLoss(), optimizer=optim.Adam(model.parameters(), lr=1e-2),
               epochs=1, batch_size=32)


def sorted_labels(n_per_class=40, n_classes=5):
    """Labels in blocks (0,0,...,1,1,...): a split that ignores them gets visibly uneven folds."""
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = np.arange(len(y), dtype=np.float32)[:, None]
    return TensorDataset(x, y)


def class_counts(labels, idx, n_classes):
    return np.bincount(labels[idx], minlength=n_classes)


# ---- the folds ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stratified", [True, False])
@pytest.mark.parametrize("k", [2, 5, 7])
def test_every_sample_is_validated_exactly_once(digits, k, stratified):
    folds = fold_indices(digits.train, k, stratified=stratified, seed=3)
    n = len(digits.train)
    assert len(folds) == k
    val = np.concatenate([va for _, va in folds])
    assert np.array_equal(np.sort(val), np.arange(n))  # each index once: no gaps, no repeats
    for tr, va in folds:
        assert np.intersect1d(tr, va).size == 0
        assert len(tr) + len(va) == n and np.array_equal(np.union1d(tr, va), np.arange(n))
    sizes = [len(va) for _, va in folds]
    assert max(sizes) - min(sizes) <= (1 if not stratified else k)  # folds of (nearly) equal size


def test_stratified_folds_keep_the_class_proportions(all_digits):
    y = targets_of(all_digits)
    whole = np.bincount(y) / len(y)
    for _, va in fold_indices(all_digits, 5, seed=0):
        assert np.abs(np.bincount(y[va], minlength=10) / len(va) - whole).max() < 0.01


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unstratified_folds_on_sorted_labels_do_not_keep_them(seed):
    ds = sorted_labels()  # 5 classes x 40; a val fold of 40 holds 8 of each when stratified
    y = targets_of(ds)
    strat = [class_counts(y, va, 5) for _, va in fold_indices(ds, 5, seed=seed)]
    assert all(np.array_equal(c, [8] * 5) for c in strat)
    plain = fold_indices(ds, 5, stratified=False, seed=seed)
    deviation = max(np.abs(class_counts(y, va, 5) - 8).max() for _, va in plain)
    assert deviation >= 3  # some class is off by 3+ samples, i.e. >= 7.5 points of the fold's proportions
    expected = KFold(5, shuffle=True, random_state=seed).split(np.zeros(len(ds)))  # plain KFold, same seed
    assert all(np.array_equal(va, ve) for (_, va), (_, ve) in zip(plain, expected))


def test_targets_of_reads_each_kind_of_dataset():
    x, y = np.zeros((6, 2), np.float32), np.array([0, 1, 2, 0, 1, 2])
    td = TensorDataset(x, y)
    assert np.array_equal(targets_of(td), y)
    assert np.array_equal(targets_of(Subset(td, [5, 0, 3])), [2, 0, 0])
    concat = ConcatDataset([Subset(td, [1, 2]), TensorDataset(x[:2], np.array([7, 8]))])
    assert np.array_equal(targets_of(Subset(concat, [3, 0])), [8, 1])

    class Pairs(Dataset):  # only __getitem__: targets come from iterating the samples
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.zeros(2, np.float32), Tensor(np.int64(2 - i))

    assert np.array_equal(targets_of(Pairs()), [2, 1, 0])
    with pytest.raises(ValueError, match=r"no targets.*stratified=False"):
        targets_of(TensorDataset(x))


# ---- training the folds ------------------------------------------------------------------------------------
def test_parallel_folds_equal_serial_folds_exactly(digits):
    ds = Subset(digits.train, np.arange(360))
    cfg = RunConfig.from_options({"epochs": 3, "hidden": [32], "batch_size": 32, "lr": 0.01})
    builder = RunBuilder(cfg.resolve(digits))
    serial = cross_validate(builder, ds, k=3, seed=5, workers=1)
    parallel = cross_validate(builder, ds, k=3, seed=5, workers=2)
    assert serial.splitter == parallel.splitter == "StratifiedKFold"
    assert serial.metrics == parallel.metrics  # floats compared with ==: the same to the last bit
    assert all(np.array_equal(a, b) for a, b in zip(serial.val_indices, parallel.val_indices))

    def without_time(h):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in h]

    assert [without_time(h) for h in serial.histories] == [without_time(h) for h in parallel.histories]
    assert list(serial.metrics[0]) == ["loss", "accuracy"] and all(len(h) == 3 for h in serial.histories)
    for fold, h in zip(serial.metrics, serial.histories):  # the final evaluation is the last epoch's val score
        assert fold["loss"] == h[-1]["val_loss"] and fold["accuracy"] == h[-1]["val_accuracy"]
    assert serial.mean["accuracy"] == pytest.approx(np.mean([f["accuracy"] for f in serial.metrics]))
    assert serial.mean["accuracy"] > 0.5  # 3 epochs on 240 images: well above chance (0.1)
    other = cross_validate(builder, ds, k=3, seed=6)
    assert other.metrics != serial.metrics  # the seed reaches the split and the runs


def test_mean_and_std_across_folds():
    r = CVResult(metrics=[{"loss": 1.0, "accuracy": 0.5}, {"loss": 2.0, "accuracy": 0.7},
                          {"loss": 3.0, "accuracy": 0.6}, {"loss": 6.0, "accuracy": 0.6}],
                 val_indices=[np.array([0, 4]), np.array([1, 5]), np.array([2]), np.array([3])])
    assert r.k == 4 and r.n_samples == 6
    assert r.mean == pytest.approx({"loss": 3.0, "accuracy": 0.6})
    assert r.std["loss"] == pytest.approx(np.sqrt(14 / 3))  # ddof=1: (4+1+0+9)/(4-1); ddof=0 would be 14/4
    assert r.std["accuracy"] == pytest.approx(np.sqrt(0.02 / 3))
    assert np.array_equal(r.train_indices(0), [1, 2, 3, 5])
    lines = r.table().splitlines()
    assert lines[0] == "fold 1: loss 1.0000  accuracy 0.5000" and len(lines) == 5
    assert lines[-1] == "mean ± std: loss 3.0000 ± 2.1602  accuracy 0.6000 ± 0.0816"
    assert r.summary() == "4-fold StratifiedKFold (seed 0): loss 3.0000 ± 2.1602  accuracy 0.6000 ± 0.0816"
    d = json.loads(json.dumps(r.to_dict()))
    assert d["mean"]["loss"] == 3.0 and d["std_ddof"] == 1 and d["val_indices"][0] == [0, 4]
    back = CVResult.from_dict(d)
    assert back.metrics == r.metrics and back.std == r.std
    assert all(np.array_equal(a, b) for a, b in zip(back.val_indices, r.val_indices))


def test_regression_falls_back_to_kfold_and_reports_mae(capsys):
    sp = datasets.function_regression("sin", n_samples=200)
    builder = RunBuilder(RunConfig.from_options({"data": "sin", "epochs": 3, "hidden": [16]}).resolve(sp))
    r = cross_validate(builder, sp.train, k=3, stratified=True, seed=1, verbose=1)  # float targets: no classes
    assert r.splitter == "KFold"
    expected = KFold(3, shuffle=True, random_state=1).split(np.zeros(len(sp.train)))
    assert all(np.array_equal(va, ve) for va, (_, ve) in zip(r.val_indices, expected))
    assert list(r.mean) == ["loss", "mae"] and all(np.isfinite(list(r.mean.values())))
    assert 0 < r.mean["mae"] < 1 and r.std["mae"] >= 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[0].startswith("fold 1/3: loss ") and " mae " in out[0]
    json.dumps(r.to_dict())  # histories included


# ---- errors ------------------------------------------------------------------------------------------------
def test_bad_k_is_a_clear_error():
    ds = sorted_labels(n_per_class=2, n_classes=2)  # 4 samples
    with pytest.raises(ValueError, match=r"k must be at least 2 folds, got k=1"):
        fold_indices(ds, 1)
    with pytest.raises(ValueError, match=r"k=5 folds need at least 5 samples; the dataset has 4"):
        fold_indices(ds, 5, stratified=False)
    with pytest.raises(TypeError, match="integer"):
        fold_indices(ds, 2.0)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        cross_validate(tiny_mlp, ds, 2, workers=0)


def test_a_class_smaller_than_k_is_named():
    y = np.array([0] * 10 + [1] * 10 + [3] * 2)
    ds = TensorDataset(np.zeros((22, 1), np.float32), y)
    with pytest.raises(ValueError, match=r"class 3 has 2; pass stratified=False or k <= 2") as e:
        fold_indices(ds, 5)
    assert "\n" not in str(e.value)
    assert len(fold_indices(ds, 5, stratified=False)) == 5 and len(fold_indices(ds, 2)) == 2
    one = TensorDataset(np.zeros((11, 1), np.float32), np.array([0] * 10 + [1]))
    with pytest.raises(ValueError, match=r"class 1 has 1; pass stratified=False$"):  # no k <= 1 to offer
        fold_indices(one, 2)


def test_unpicklable_build_run_with_workers_is_a_clear_error(digits):
    ds = Subset(digits.train, np.arange(90))

    def closure(seed):
        return tiny_mlp(seed)

    for build_run in (lambda seed: tiny_mlp(seed), closure):
        with pytest.raises(TypeError, match=r"must be picklable: a module-level function or a RunBuilder"):
            cross_validate(build_run, ds, k=3, workers=2)
    r = cross_validate(lambda seed: tiny_mlp(seed), ds, k=3)  # serial runs need no pickling
    assert r.k == 3 and r.metrics == cross_validate(tiny_mlp, ds, k=3, workers=2).metrics
