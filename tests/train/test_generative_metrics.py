"""The scores of generated images (train/generative_metrics.py): each score on features or probabilities whose
answer is known by hand or in closed form (fast), and the whole evaluation through the trained Fashion-MNIST
evaluator against the references measured with PyTorch (slow; skipped when Fashion-MNIST is not installed).

Measured with PyTorch (2,000 samples vs 2,000 held-out test images, k=3): real FD 2.0, IS 7.9, 10 classes,
largest share 0.12, recall 0.88; uniform noise FD 717, IS 1.07, 1 class, largest share 0.99, recall 0.
With dlbasics' evaluator (89.1% test accuracy; real = test images 0..1999 against 2000..3999): real FD 1.3,
IS 7.4, 10 classes, largest share 0.11, precision 0.90, recall 0.87; uniform noise FD 755, IS 1.18, 3 classes
(bag 0.92, shirt 0.05, sandal 0.04), recall 0; Gaussian noise FD 690, precision 0.98 (above real's), recall 0;
ten real prototypes repeated FD 122, IS 8.7, 10 classes, precision 0.8, recall 0. The thresholds sit well
inside these.
"""

import json

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist

import dlbasics as dl
from dlbasics.data.datasets import availability
from dlbasics.errors import DataNotFoundError
from dlbasics.train import generative_metrics as gm

MISSING = availability("fashion-mnist")  # None, or why not and the command that installs it
needs_data = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


def direct_fd(a: np.ndarray, b: np.ndarray) -> float:
    """FD as pytorch-fid computes it: scipy's sqrtm of S_a S_b, its real part."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s_a @ s_b).real
    return float((mu_a - mu_b) @ (mu_a - mu_b) + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean))


# ---- Fréchet distance ----
def test_frechet_distance_is_zero_for_identical_sets():
    x = np.random.default_rng(0).standard_normal((300, 20))
    assert gm.frechet_distance(x, x) == pytest.approx(0, abs=1e-9)
    assert gm.frechet_distance(x, x[::-1]) == pytest.approx(0, abs=1e-9)  # the order of samples does not matter


def test_frechet_distance_of_two_gaussians_matches_the_closed_form():
    # N(mu1, Q diag(a) Q^T) and N(mu2, Q diag(b) Q^T) commute: FD = ||mu1 - mu2||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2
    rng = np.random.default_rng(1)
    d, n = 4, 200_000
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    a, b = np.array([1.0, 4.0, 0.25, 2.0]), np.array([9.0, 1.0, 0.25, 0.5])
    mu1, mu2 = np.array([0.0, 1.0, -1.0, 2.0]), np.array([1.0, 1.0, 1.0, 0.0])
    x = mu1 + (rng.standard_normal((n, d)) * np.sqrt(a)) @ q.T
    y = mu2 + (rng.standard_normal((n, d)) * np.sqrt(b)) @ q.T
    exact = (mu1 - mu2) @ (mu1 - mu2) + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()  # 9 + 4 + 1 + 0 + 0.1716
    assert gm.frechet_distance(x, y) == pytest.approx(exact, rel=0.01)


def test_frechet_distance_is_symmetric_and_matches_scipy_sqrtm():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((500, 16)) @ rng.standard_normal((16, 16))
    b = 0.5 + rng.standard_normal((400, 16)) @ rng.standard_normal((16, 16)) * 0.7
    fd = gm.frechet_distance(a, b)
    assert fd > 1 and isinstance(fd, float)
    assert gm.frechet_distance(b, a) == pytest.approx(fd, rel=1e-9)
    assert fd == pytest.approx(direct_fd(a, b), rel=1e-8)
    # float32 features are computed in float64 all the same
    assert gm.frechet_distance(a.astype(np.float32), b.astype(np.float32)) == pytest.approx(fd, rel=1e-5)


def test_frechet_distance_with_singular_covariances():
    # dead ReLU units (a constant feature) and fewer samples than dimensions: S_r S_f is singular, where sqrtm
    # warns and pytorch-fid adds eps * I; the constant column contributes nothing
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((10, 30)), rng.standard_normal((12, 30)) + 0.3
    a[:, 5] = b[:, 5] = 0.0
    fd = gm.frechet_distance(a, b)
    assert np.isfinite(fd) and fd == pytest.approx(gm.frechet_distance(np.delete(a, 5, 1), np.delete(b, 5, 1)))
    eps = 1e-6 * np.eye(30)
    s_a, s_b = np.cov(a, rowvar=False) + eps, np.cov(b, rowvar=False) + eps
    d = a.mean(0) - b.mean(0)
    offset = d @ d + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(scipy.linalg.sqrtm(s_a @ s_b).real)
    assert fd == pytest.approx(offset, rel=1e-3)


def test_frechet_distance_checks_shapes():
    with pytest.raises(ValueError, match=r"differ in D"):
        gm.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"expected features \(N, D\)"):
        gm.frechet_distance(np.zeros(5), np.zeros((5, 1)))


# ---- Inception score and class coverage ----
def test_inception_score_bounds():
    p = np.random.default_rng(4).dirichlet(np.ones(10), size=1)
    assert gm.inception_score(np.repeat(p, 50, axis=0)) == pytest.approx(1.0)  # the same prediction for all
    assert gm.inception_score(np.tile(np.eye(10), (7, 1))) == pytest.approx(10.0)  # certain, classes balanced
    assert gm.inception_score(np.tile(np.eye(10)[:4], (3, 1))) == pytest.approx(4.0)  # 4 of 10 classes used


def test_inception_score_by_hand():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])  # marginal (0.75, 0.25)
    kl = [np.log(1 / 0.75), 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)]
    assert gm.inception_score(p) == pytest.approx(np.exp(np.mean(kl)))


def test_class_coverage():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 19 + [3])  # shares 0.5, 0.3, 0.19, 0.01
    probs = np.eye(5)[labels] * 0.6 + 0.1  # argmax = the label
    assert gm.class_coverage(probs) == (3, pytest.approx(0.5))
    assert gm.class_coverage(probs, min_share=0.01) == (4, pytest.approx(0.5))
    assert gm.class_coverage(np.eye(10)) == (10, pytest.approx(0.1))
    assert gm.class_coverage(np.tile([[0.1, 0.9]], (8, 1))) == (1, 1.0)


# ---- k-NN precision and recall ----
def test_knn_radii_by_hand():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(gm.knn_radii(x, k=1), [1, 1, 4, 16])
    np.testing.assert_allclose(gm.knn_radii(x, k=2), [9, 4, 9, 36])
    np.testing.assert_allclose(gm.knn_radii(np.array([[2.0], [2.0], [5.0]]), k=1), [0, 0, 9])  # duplicates
    with pytest.raises(ValueError, match=r"k must be in 1\.\.N-1 = 3"):
        gm.knn_radii(x, k=4)


def test_knn_precision_recall_by_hand():
    real = np.arange(10.0)[:, None]  # k=1: every real ball has radius 1
    fake = np.array([[0.5], [10.5], [20.0]])  # k=1 radii 10, 9.5, 9.5: the three fake balls cover 0..9
    assert gm.knn_precision_recall(real, fake, k=1) == (pytest.approx(1 / 3), 1.0)


def test_knn_precision_recall_extremes():
    rng = np.random.default_rng(5)
    real = rng.standard_normal((400, 8))
    assert gm.knn_precision_recall(real, real) == (1.0, 1.0)
    assert gm.knn_precision_recall(real, real + 100.0) == (0.0, 0.0)
    collapsed = np.repeat(real[:1], 300, axis=0)  # every sample is one real point
    precision, recall = gm.knn_precision_recall(real, collapsed)
    assert precision == 1.0 and recall <= 1 / 400
    # a fresh sample of the same distribution: both high, neither perfect
    precision, recall = gm.knn_precision_recall(real, rng.standard_normal((400, 8)))
    assert 0.6 < precision < 1 and 0.6 < recall < 1


def test_knn_precision_recall_in_chunks_matches_brute_force(monkeypatch):
    rng = np.random.default_rng(6)
    real, fake = rng.standard_normal((300, 5)), rng.standard_normal((250, 5)) * 1.3 + 0.2

    def brute(real, fake, k):
        r = np.sort(cdist(real, real), axis=1)[:, k]  # column 0 is the sample itself
        f = np.sort(cdist(fake, fake), axis=1)[:, k]
        return ((cdist(fake, real) <= r[None]).any(1).mean(), (cdist(real, fake) <= f[None]).any(1).mean())

    expected = brute(real, fake, 3)
    assert gm.knn_precision_recall(real, fake, k=3) == pytest.approx(expected)
    np.testing.assert_allclose(gm.knn_radii(real, 3), np.sort(cdist(real, real), axis=1)[:, 3] ** 2)
    monkeypatch.setattr(gm, "_CHUNK", 64)  # several chunks, the last one partial
    assert gm.knn_precision_recall(real, fake, k=3) == pytest.approx(expected)
    assert gm.knn_precision_recall(real, fake, k=1) == pytest.approx(brute(real, fake, 1))


# ---- the evaluator and the pipeline (an untrained classifier: fast, no data) ----
@pytest.fixture(scope="module")
def untrained():
    dl.manual_seed(0)
    return gm.FashionClassifier()


def test_fashion_classifier_shapes(untrained):
    x = dl.rand(3, 1, 28, 28)
    assert untrained(x).shape == (3, 10) and untrained.features(x).shape == (3, 128)
    assert (untrained.features(x).data >= 0).all()  # the ReLU layer's output
    # conv 32*9+32, conv 64*32*9+64, linear 3136*128+128, linear 128*10+10
    assert sum(p.data.size for p in untrained.parameters()) == 320 + 18_496 + 401_536 + 1_290


def test_embed_gives_probabilities_independent_of_the_batch_size(untrained):
    x = np.random.default_rng(7).random((23, 1, 28, 28), dtype=np.float32)
    untrained.train()
    feats, probs = gm.embed(x, untrained, batch_size=5)
    assert untrained.training  # the mode is restored
    assert feats.shape == (23, 128) and probs.shape == (23, 10) and feats.dtype == probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(1), 1)
    f2, p2 = gm.embed(x, untrained, batch_size=100)
    np.testing.assert_allclose(f2, feats, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p2, probs, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"expected images \(N, 1, 28, 28\).*got shape \(23, 784\)"):
        gm.embed(x.reshape(23, -1), untrained)


def test_sample_evaluator_and_evaluate_samples(untrained):
    rng = np.random.default_rng(8)
    real = rng.random((60, 1, 28, 28), dtype=np.float32) * 0.5
    scorer = gm.SampleEvaluator(real, untrained, k=3)
    assert scorer.features.shape == (60, 128) and scorer.radii.shape == (60,)
    same = scorer(real)
    assert tuple(same) == gm.SCORES and all(isinstance(v, float) for v in same.values())
    assert same["fd"] == pytest.approx(0, abs=1e-6) and same["precision"] == same["recall"] == 1.0
    other = rng.random((40, 1, 28, 28), dtype=np.float32)
    scores = scorer(other)
    assert scores["fd"] > 0 and 1 <= scores["is"] <= 10 and 1 <= scores["classes"] <= 10
    assert gm.evaluate_samples(other, real, untrained) == pytest.approx(scores)
    feats_r, _ = gm.embed(real, untrained)
    feats_o, probs_o = gm.embed(other, untrained)
    assert scores["fd"] == pytest.approx(gm.frechet_distance(feats_r, feats_o), rel=1e-9)
    assert scores["is"] == pytest.approx(gm.inception_score(probs_o))
    assert (scores["precision"], scores["recall"]) == pytest.approx(gm.knn_precision_recall(feats_r, feats_o))
    refs = gm.reference_scores(other, real, evaluator=untrained)
    assert refs["real"] == pytest.approx(scores) and tuple(refs["noise"]) == gm.SCORES


def test_load_evaluator_reads_the_cache_without_training(untrained, tmp_path, monkeypatch):
    path = gm.evaluator_path(tmp_path)
    assert path == tmp_path / "evaluators" / "fashion-mnist-classifier.safetensors"
    path.parent.mkdir()
    dl.save(untrained, path)
    monkeypatch.setattr(gm, "_train_evaluator", lambda *a: pytest.fail("trained although the cache exists"))
    loaded = gm.load_evaluator(tmp_path)
    x = dl.rand(4, 1, 28, 28)
    assert not loaded.training
    with dl.no_grad():
        np.testing.assert_array_equal(loaded(x).data, untrained(x).data)
    monkeypatch.setenv("DLBASICS_CACHE", str(tmp_path))
    assert gm.evaluator_path() == path


def test_load_evaluator_retrains_one_trained_by_another_recipe(untrained, tmp_path, monkeypatch):
    path = gm.evaluator_path(tmp_path)
    path.parent.mkdir()
    dl.save(untrained, path)
    path.with_suffix(".json").write_text(json.dumps({"recipe": {**gm.RECIPE, "epochs": 1}}))
    monkeypatch.setattr(gm, "_train_evaluator", lambda p, verbose: ("retrained", p))
    assert gm.load_evaluator(tmp_path) == ("retrained", path)
    path.with_suffix(".json").write_text(json.dumps({"recipe": gm.RECIPE}))
    assert isinstance(gm.load_evaluator(tmp_path), gm.FashionClassifier)


def test_load_evaluator_without_the_data_raises(tmp_path, monkeypatch):
    from dlbasics.data.datasets import idx

    monkeypatch.setattr(idx, "FASHION_MNIST_ROOT", tmp_path / "no-fashion-mnist")
    with pytest.raises(DataNotFoundError, match="fashion-mnist folder not found"):
        gm.load_evaluator(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


# ---- the trained evaluator on Fashion-MNIST (slow: the first run trains it, minutes, then it is cached) ----
@pytest.fixture(scope="module")
def evaluator():
    return gm.load_evaluator()


@pytest.fixture(scope="module")
def test_images():
    x, y = dl.data.datasets.fashion_mnist().test.arrays
    return np.asarray(x), np.asarray(y)


@pytest.fixture(scope="module")
def scorer(evaluator, test_images):
    return gm.SampleEvaluator(test_images[0][2000:4000], evaluator)  # 2,000 held-out real images


@pytest.mark.slow
@needs_data
def test_evaluator_is_cached_and_accurate(evaluator, test_images, monkeypatch):
    info = json.loads(gm.evaluator_path().with_suffix(".json").read_text())
    assert info["recipe"] == gm.RECIPE and info["test_accuracy"] > 0.87
    monkeypatch.setattr(gm, "_train_evaluator", lambda *a: pytest.fail("retrained although the cache exists"))
    again = gm.load_evaluator()
    x, y = test_images
    f1, p1 = gm.embed(x[:1000], evaluator)
    f2, p2 = gm.embed(x[:1000], again)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(p1, p2)
    assert (p1.argmax(1) == y[:1000]).mean() > 0.85


@pytest.mark.slow
@needs_data
def test_references_real_and_noise(scorer, test_images):
    real = scorer(test_images[0][:2000])
    assert real["fd"] < 10 and real["is"] > 6 and real["classes"] == 10 and real["largest_share"] < 0.2
    assert real["precision"] > 0.7 and real["recall"] > 0.7
    noise = scorer(np.random.default_rng(0).random((2000, 1, 28, 28), dtype=np.float32))
    assert noise["fd"] > 200 and noise["is"] < 1.5 and noise["classes"] <= 3 and noise["largest_share"] > 0.8
    assert noise["recall"] < 0.05


@pytest.mark.slow
@needs_data
def test_gaussian_noise_fools_the_precision_not_fd_and_recall(scorer):
    noise = np.clip(0.5 + 0.25 * np.random.default_rng(0).standard_normal((2000, 1, 28, 28)), 0, 1)
    scores = scorer(noise.astype(np.float32))
    assert scores["precision"] > 0.8  # as high as real images' (0.90 measured; 0.98 here)
    assert scores["fd"] > 200 and scores["recall"] < 0.05


@pytest.mark.slow
@needs_data
def test_ten_prototypes_fool_the_inception_score_not_fd_and_recall(scorer, test_images):
    x, y = test_images
    prototypes = np.stack([x[np.flatnonzero(y[:2000] == c)[0]] for c in range(10)])  # one real image per class
    collapsed = scorer(np.repeat(prototypes, 200, axis=0))
    real = scorer(x[:2000])
    assert collapsed["is"] > 6 and collapsed["classes"] == 10  # looks as good as real data here
    assert collapsed["fd"] > 20 * real["fd"] and collapsed["fd"] > 50  # but not here
    assert collapsed["recall"] < 0.05
