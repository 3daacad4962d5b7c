"""CNN+MLP and the Relation Network of Santoro et al. 2017 (with FiLM as an option): shapes, the mean over pairs
computed by parts equal to the explicit one over all pairs, FiLM starting as the identity, and the VQA task's accuracy
by question type."""

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import models
from dlbasics.data import DataLoader
from dlbasics.data.datasets import load
from dlbasics.models.relation_net import coordinates
from dlbasics.nn import functional as F
from dlbasics.train.vqa import majority_baseline, vqa_eval


def batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    q = np.zeros((n, 11), np.float32)
    q[np.arange(n), rng.integers(0, 6, n)] = 1
    q[np.arange(n), 6 + rng.integers(0, 2, n)] = 1
    q[np.arange(n), 8 + rng.integers(0, 3, n)] = 1
    return dl.tensor(rng.random((n, 3, 32, 32)).astype(np.float32)), dl.tensor(q)


@pytest.mark.parametrize("name", ["vqa_cnn_mlp", "relation_net"])
@pytest.mark.parametrize("film", [False, True])
def test_shapes_and_gradients(name, film):
    opts = {"image_size": 32} if name == "vqa_cnn_mlp" else {}
    m = models.create(name, in_channels=3, num_classes=10, question_size=11, width=8, hidden_size=16, film=film,
                      **opts)
    x, q = batch()
    out = m(x, q)
    assert out.shape == (4, 10)
    F.cross_entropy(out, np.array([0, 1, 2, 3])).backward()
    assert all(p.grad is not None for p in m.parameters())  # FiLM, g's three parts, f: everything learns


def test_film_starts_as_the_identity():
    dl.manual_seed(0)
    plain = models.create("relation_net", in_channels=3, num_classes=10, question_size=11, width=8, hidden_size=16)
    dl.manual_seed(0)
    filmed = models.create("relation_net", in_channels=3, num_classes=10, question_size=11, width=8, hidden_size=16,
                           film=True)
    filmed.load_state_dict(plain.state_dict(), strict=False)
    for layer in filmed.cnn.film:  # gamma = beta = 0: x * (1 + 0) + 0
        layer.weight.data[...] = 0
        layer.bias.data[...] = 0
    x, q = batch()
    plain.eval()
    filmed.eval()
    np.testing.assert_allclose(filmed(x, q).data, plain(x, q).data, rtol=1e-5, atol=1e-6)


def test_the_relation_mean_over_all_pairs():
    """g's first layer on [o_i, o_j, q] computed by parts equals the explicit concatenation over all pairs."""
    dl.manual_seed(1)
    m = models.create("relation_net", in_channels=3, num_classes=10, question_size=11, width=8, hidden_size=16).eval()
    x, q = batch(2)
    feats = m.cnn(x, q).data
    n, c, h, w = feats.shape
    objects = np.concatenate([feats, coordinates(n, h, w, feats.dtype)], 1).reshape(n, c + 2, h * w).transpose(0, 2, 1)
    wi, bi = m.g_i.weight.data, m.g_i.bias.data
    wj, wq = m.g_j.weight.data, m.g_q.weight.data
    pairs = np.concatenate([np.repeat(objects, h * w, 1), np.tile(objects, (1, h * w, 1)),
                            np.repeat(q.data[:, None], (h * w) ** 2, 1)], 2)  # (N, K*K, 2d + Q), explicit
    first = pairs @ np.concatenate([wi, wj, wq], 1).T + bi
    rest = m.g(dl.tensor(first.reshape(-1, first.shape[-1]).astype(np.float32))).data.reshape(n, -1, first.shape[-1])
    expected = m.f(dl.tensor(rest.mean(1))).data
    np.testing.assert_allclose(m(x, q).data, expected, rtol=1e-4, atol=1e-5)


def test_vqa_evaluation_by_question_type_and_the_majority_baseline():
    splits = load("sort-of-clevr", n_train=30, n_val=5, n_test=10)
    m = models.create("vqa_cnn_mlp", in_channels=3, num_classes=10, question_size=11, image_size=64, width=8,
                      hidden_size=16)
    r = vqa_eval(m, DataLoader(splits.test, batch_size=64), lambda out, y: F.cross_entropy(out, y))
    assert {"accuracy", "accuracy_nonrelational", "accuracy_relational", "accuracy_count_same_shape"} <= set(r)
    assert 0 <= r["accuracy"] <= 1
    base = majority_baseline(splits.train.questions, splits.train.answers, splits.test.questions, splits.test.answers)
    assert 0.4 < base["accuracy_nonrelational"] < 0.65 and 0.25 < base["accuracy_relational"] < 0.6
