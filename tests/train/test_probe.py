"""The linear probe: accuracy on good and on meaningless features, the few-label subset, and frozen encoding."""

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.autograd import is_grad_enabled
from dlbasics.data import TensorDataset
from dlbasics.data.datasets import digits
from dlbasics.train.probe import encode, labels_per_class_subset, linear_probe


@pytest.fixture(scope="module")
def digit_arrays():
    train, _, test = digits()
    return train.arrays[0], train.arrays[1], test.arrays[0], test.arrays[1]


def test_probe_on_raw_digit_pixels(digit_arrays):
    x_train, y_train, x_test, y_test = digit_arrays
    acc = linear_probe(x_train, y_train, x_test, y_test)
    assert acc > 0.9
    # Tensors and image-shaped features (flattened) give the same answer
    images = x_train.reshape(-1, 1, 8, 8)
    assert linear_probe(dl.tensor(images), dl.tensor(y_train), x_test, y_test) == acc


def test_probe_with_few_labels(digit_arrays):
    x_train, y_train, x_test, y_test = digit_arrays
    few = labels_per_class_subset(y_train, 10, seed=0)
    assert 0.75 < linear_probe(x_train[few], y_train[few], x_test, y_test) <= linear_probe(
        x_train, y_train, x_test, y_test) + 0.02


def test_random_features_are_near_chance(digit_arrays):
    _, y_train, _, y_test = digit_arrays
    g = np.random.default_rng(0)
    acc = linear_probe(g.standard_normal((len(y_train), 64)), y_train, g.standard_normal((len(y_test), 64)), y_test)
    assert acc < 0.2  # 10 classes: chance is 0.1


def test_probe_checks_its_inputs(digit_arrays):
    x_train, y_train, x_test, y_test = digit_arrays
    with pytest.raises(ValueError, match="dimensions"):
        linear_probe(x_train, y_train, x_test[:, :10], y_test)
    with pytest.raises(ValueError, match="class indices"):
        linear_probe(x_train, y_train[:-1], x_test, y_test)
    with pytest.raises(ValueError, match="single class"):
        linear_probe(x_train[:5], np.zeros(5, np.int64), x_test, y_test)


def test_subset_takes_n_of_each_class():
    y = np.random.default_rng(0).integers(0, 7, 1000)
    idx = labels_per_class_subset(y, 12, seed=3)
    assert idx.dtype == np.int64 and len(idx) == 7 * 12
    assert np.all(np.diff(idx) > 0)  # distinct, in the data set's order
    np.testing.assert_array_equal(np.bincount(y[idx]), np.full(7, 12))
    np.testing.assert_array_equal(idx, labels_per_class_subset(y, 12, seed=3))
    assert not np.array_equal(idx, labels_per_class_subset(y, 12, seed=4))
    np.testing.assert_array_equal(labels_per_class_subset(dl.tensor(y), 12, seed=3), idx)


def test_subset_is_uniform_within_a_class():
    y = np.repeat([0, 1], 10)
    hits = np.zeros(20)
    for seed in range(400):
        hits[labels_per_class_subset(y, 3, seed=seed)] += 1
    np.testing.assert_allclose(hits / 400, 0.3, atol=0.08)


def test_subset_errors():
    y = np.array([0, 0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match="class 2 has 1 examples"):
        labels_per_class_subset(y, 2, seed=0)
    with pytest.raises(ValueError, match="positive integer"):
        labels_per_class_subset(y, 0, seed=0)
    with pytest.raises(ValueError, match="class indices"):
        labels_per_class_subset(y.astype(np.float32), 1, seed=0)


class Encoder(dl.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = dl.nn.Linear(6, 4)
        self.drop = dl.nn.Dropout(0.5)

    def forward(self, x):
        assert not is_grad_enabled() and not self.training
        return self.drop(self.linear(x))

    def features(self, x):
        return self.forward(x)


def test_encode_is_frozen_and_batched():
    model = Encoder()
    x = np.random.default_rng(0).standard_normal((1030, 6)).astype(np.float32)
    model.eval()
    expected = model.linear(dl.tensor(x)).data
    model.train()
    out = encode(model, x, batch_size=512)  # 512 + 512 + 6
    assert isinstance(out, np.ndarray) and out.shape == (1030, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert model.training  # the mode comes back
    np.testing.assert_array_equal(encode(model.features, dl.tensor(x), batch_size=100), out)
    np.testing.assert_array_equal(encode(model, TensorDataset(x, np.zeros(1030, np.int64)), batch_size=300), out)
    np.testing.assert_array_equal(encode(model, TensorDataset(x), batch_size=1030), out)


def test_encode_a_plain_function_without_graph():
    seen = []

    def fn(batch):
        seen.append(is_grad_enabled())
        return batch * 2.0

    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(encode(fn, x, batch_size=2), x * 2)
    assert seen == [False, False, False]
    with pytest.raises(ValueError, match="batch_size"):
        encode(fn, x, batch_size=0)
