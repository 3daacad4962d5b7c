"""Scores for the samples of a generative model (a GAN) on Fashion-MNIST, without the Inception network.

Papers: "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", M. Heusel,
H. Ramsauer, T. Unterthiner, B. Nessler and S. Hochreiter, NeurIPS 2017 (the Fréchet distance, FID);
"Improved Techniques for Training GANs", T. Salimans, I. Goodfellow, W. Zaremba, V. Cheung, A. Radford and
X. Chen, NeurIPS 2016 (the Inception score); "Improved Precision and Recall Metric for Assessing Generative
Models", T. Kynkäänniemi, T. Karras, S. Laine, J. Lehtinen and T. Aila, NeurIPS 2019 (k-NN precision/recall).
Idea: a trained classifier sees what matters in an image; compare the generated and the real images through its
eyes. The Inception network of the papers is not available offline, so the eyes here are a small Fashion-MNIST
classifier trained with this library (``FashionClassifier``, trained once and cached by ``load_evaluator``);
its numbers are comparable with each other, not with published FIDs.

No single score suffices, so ``evaluate_samples`` returns them all: ten real images repeated (a collapsed
generator) score a high Inception score with every class present, and only the Fréchet distance and the recall
catch the collapse; Gaussian noise scores a higher k-NN precision than real data. Report them beside
``reference_scores``: the same scores for held-out real images (the best a generator can do) and uniform noise.

    scorer = SampleEvaluator(held_out_real)            # real features, statistics and k-NN radii, once
    scores = scorer(generator_samples)                 # {"fd", "is", "classes", "largest_share", "precision", "recall"}
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics import nn
from dlbasics.data.dataloader import DataLoader
from dlbasics.data.text.pairs import cache_root
from dlbasics.io import atomic_write_text, load, save
from dlbasics.tensor import Tensor
from dlbasics.train.task import evaluating

EVALUATOR = "fashion-mnist-classifier"  # the evaluator's name: its cache file is evaluators/<EVALUATOR>.safetensors
IMAGE_SHAPE = (1, 28, 28)
# how the cached evaluator is trained (written beside it in the JSON file)
RECIPE: dict[str, Any] = {"data": "fashion-mnist, all 60,000 training images (fashion_mnist(val_size=0).train)",
                          "seed": 0, "optimizer": "Adam", "lr": 1e-3, "batch_size": 128, "epochs": 3,
                          "loss": "CrossEntropyLoss"}
SCORES = ("fd", "is", "classes", "largest_share", "precision", "recall")
_CHUNK = 2048  # rows of the distance matrix computed at once: 2048 x N float64


# ---- the scores on features and probabilities ----
def _as_features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"{name}: expected features (N, D) with N >= 2, got shape {x.shape}")
    return x


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues,
    rounding errors, are clipped to 0)."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _frechet(mu_r: np.ndarray, sqrt_r: np.ndarray, mu_f: np.ndarray, s_r: np.ndarray, s_f: np.ndarray) -> float:
    """||mu_r - mu_f||^2 + Tr S_r + Tr S_f - 2 Tr (S_r S_f)^{1/2}, with Tr (S_r S_f)^{1/2} = sum_i sqrt(lambda_i)
    over the eigenvalues of the symmetric PSD matrix S_r^{1/2} S_f S_r^{1/2} (similar to S_r S_f)."""
    m = sqrt_r @ s_f @ sqrt_r
    lam = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = np.sqrt(np.clip(lam, 0, None)).sum()
    d = mu_r - mu_f
    return float(max(d @ d + np.trace(s_r) + np.trace(s_f) - 2 * tr_sqrt, 0.0))


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of features, real (N, D) and fake (M, D):

        FD = ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^{1/2})      (Heusel et al. 2017; FID on Inception features)

    Computed in float64. Tr (S_r S_f)^{1/2} is the sum of the square roots of the eigenvalues of S_r S_f, taken
    from the symmetric matrix S_r^{1/2} S_f S_r^{1/2} (same eigenvalues) with ``eigh``: real by construction and
    exact for singular covariances (dead ReLU units), where ``scipy.linalg.sqrtm(S_r @ S_f)`` can return complex
    values or NaN and needs pytorch-fid's eps * I and real-part workarounds. The two agree where sqrtm works.
    """
    real, fake = _as_features(real, "frechet_distance real"), _as_features(fake, "frechet_distance fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"frechet_distance: real features {real.shape} and fake features {fake.shape} differ in D")
    (mu_r, s_r), (mu_f, s_f) = _stats(real), _stats(fake)
    return _frechet(mu_r, _psd_sqrt(s_r), mu_f, s_r, s_f)


def _as_probs(probs: np.ndarray, name: str) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"{name}: expected probabilities (N, K) with N >= 1, got shape {p.shape}")
    return p


def inception_score(probs: np.ndarray) -> float:
    """The Inception score of a classifier's softmax probabilities p(y|x_i) (N, K) on the generated images:

        IS = exp( (1/N) sum_i KL(p(y|x_i) || p(y)) ),  p(y) = (1/N) sum_i p(y|x_i)      (Salimans et al. 2016)

    1 when every image gets the same prediction, K when each is classified with certainty and the classes are
    equally frequent. One split over all N samples: the paper's mean over 10 splits of N/10 is not taken (it
    scores slightly lower, the marginal of a small split being less uniform). 0 log 0 = 0.
    """
    p = _as_probs(probs, "inception_score")
    marginal = p.mean(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(marginal)), 0.0)
    return float(np.exp(terms.sum(axis=1).mean()))


def class_coverage(probs: np.ndarray, min_share: float = 0.02) -> tuple[int, float]:
    """(number of classes receiving at least ``min_share`` of the samples by argmax, the largest class's share)
    for probabilities or logits (N, K): a generator covering the 10 balanced classes gives (10, ~0.1), a collapsed
    one (1, ~1.0)."""
    p = _as_probs(probs, "class_coverage")
    shares = np.bincount(p.argmax(axis=1), minlength=p.shape[1]) / len(p)
    return int((shares >= min_share).sum()), float(shares.max())


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _sq_dists(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """||a_i - b_j||^2 (len(a), len(b)) as |a|^2 + |b|^2 - 2 a b^T: one GEMM; clipped at 0 (rounding)."""
    d = _sq_norms(a)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0, out=d)


def knn_radii(x: np.ndarray, k: int = 3) -> np.ndarray:
    """Squared radius of each sample's ball (N,): the squared distance from x_i (N, D) to its k-th nearest
    neighbour among the others (itself excluded; a duplicate counts as a neighbour at distance 0)."""
    x = _as_features(x, "knn_radii")
    if not 1 <= k < len(x):
        raise ValueError(f"knn_radii: k must be in 1..N-1 = {len(x) - 1}, got {k}")
    sq = _sq_norms(x)
    out = np.empty(len(x))
    for s in range(0, len(x), _CHUNK):
        d = _sq_dists(x[s:s + _CHUNK], x, sq)
        d[np.arange(len(d)), np.arange(s, s + len(d))] = np.inf  # not its own neighbour
        out[s:s + _CHUNK] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return out


def _inside(x: np.ndarray, centres: np.ndarray, radii_sq: np.ndarray) -> np.ndarray:
    """Fraction of x (M, D) lying in the union of balls ||x - c_j||^2 <= r_j^2 around centres (N, D)."""
    sq = _sq_norms(centres)
    hits = np.zeros(len(x), dtype=bool)
    for s in range(0, len(x), _CHUNK):
        hits[s:s + _CHUNK] = (_sq_dists(x[s:s + _CHUNK], centres, sq) <= radii_sq[None, :]).any(axis=1)
    return hits


def knn_precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of features real (N, D) and fake (M, D).

    The real manifold is the union of balls B(r_i, ||r_i - NN_k(r_i)||) around each real feature, NN_k its k-th
    nearest real neighbour (itself excluded); the fake manifold likewise.

        precision = (1/M) sum_j [f_j in real manifold],   recall = (1/N) sum_i [r_i in fake manifold]

    Precision is the share of samples that look real, recall the share of the real data the samples cover: a
    collapsed generator has precision ~1 and recall ~0. Distances are float64 GEMMs in chunks of rows.
    """
    real, fake = _as_features(real, "knn_precision_recall real"), _as_features(fake, "knn_precision_recall fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"knn_precision_recall: real features {real.shape} and fake features {fake.shape} "
                         "differ in D")
    return _precision_recall(real, knn_radii(real, k), fake, k)


def _precision_recall(real: np.ndarray, real_radii: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    precision = _inside(fake, real, real_radii).mean()
    recall = _inside(real, fake, knn_radii(fake, k)).mean()
    return float(precision), float(recall)


# ---- the evaluator: a small Fashion-MNIST classifier ----
class FashionClassifier(nn.Module):
    """x (N, 1, 28, 28) in [0, 1] -> logits (N, 10); ``features(x)`` -> the penultimate ReLU layer (N, 128).

    conv 3x3 1->32, ReLU, maxpool 2 -> conv 3x3 32->64, ReLU, maxpool 2 -> flatten -> Linear 3136->128, ReLU
    (the features) -> Linear 128->10. 89.1% test accuracy after 3 epochs of Adam (``RECIPE``; PyTorch 89.9%).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (N, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 64, 7, 7)
        )
        self.hidden = nn.Sequential(nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.hidden(self.conv(x).flatten(1))  # (N, 128)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (N, num_classes)


def evaluator_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache root>/evaluators/fashion-mnist-classifier.safetensors``; the cache root is ``cache_dir``, else
    ``$DLBASICS_CACHE``, else ``~/.cache/dlbasics``."""
    return cache_root(cache_dir) / "evaluators" / f"{EVALUATOR}.safetensors"


def load_evaluator(cache_dir: str | os.PathLike | None = None, verbose: int = 0) -> FashionClassifier:
    """The Fashion-MNIST evaluator, read from ``evaluator_path(cache_dir)``; trained there first if absent.

    Training follows ``RECIPE`` with ``dlbasics.train.fit`` (under 2 minutes on two cores), then writes the
    weights (safetensors, atomically: two processes training at once each write a whole file, the last one
    wins, and a reader never sees a torn one) and a JSON beside them with the recipe, the test accuracy and the
    training time; an evaluator whose JSON names another recipe is retrained. Raises DataNotFoundError when
    Fashion-MNIST is not installed and the cache is empty.
    """
    path = evaluator_path(cache_dir)
    if path.is_file() and _recipe_of(path) in (None, RECIPE):
        model = FashionClassifier()
        model.load_state_dict(load(path))
        return model.eval()
    return _train_evaluator(path, verbose)


def _recipe_of(path: Path) -> Any:
    """The recipe in the JSON beside the weights (None without one): an evaluator trained by another recipe, an
    older version of this module's, is retrained rather than silently used."""
    try:
        return json.loads(path.with_suffix(".json").read_text()).get("recipe")
    except (OSError, ValueError, AttributeError):
        return None


def _train_evaluator(path: Path, verbose: int) -> FashionClassifier:
    from dlbasics import optim
    from dlbasics.data.datasets import fashion_mnist
    from dlbasics.rng import manual_seed
    from dlbasics.train.loop import evaluate, fit

    # the whole training file, as torchvision's train split: 89.1% test accuracy, against 88.4% with the 50,000
    # left by the default validation cut (the GAN's held-out real images come from the test set)
    splits = fashion_mnist(val_size=0)  # DataNotFoundError (with how to install it) before anything is built
    manual_seed(RECIPE["seed"])  # the initial weights and the shuffling order
    model = FashionClassifier()
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    fit(model, loss_fn, optim.Adam(model.parameters(), lr=RECIPE["lr"]),
        DataLoader(splits.train, batch_size=RECIPE["batch_size"], shuffle=True), epochs=RECIPE["epochs"],
        verbose=verbose)
    seconds = time.perf_counter() - start
    test = evaluate(model, DataLoader(splits.test, batch_size=1000), loss_fn)
    info = {"name": EVALUATOR, "recipe": RECIPE, "train_samples": len(splits.train), "train_seconds": round(seconds, 1),
            "test_accuracy": test["accuracy"], "test_loss": test["loss"]}
    atomic_write_text(path.with_suffix(".json"), json.dumps(info, indent=2) + "\n")
    save(model, path)  # last: its presence means the evaluator is complete
    return model.eval()


def _check_images(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE or len(x) < 2:
        raise ValueError(f"{name}: expected images (N, 1, 28, 28) in [0, 1] with N >= 2, got shape {x.shape}")
    return x


def embed(images: np.ndarray, evaluator: FashionClassifier, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """The evaluator's features (N, 128) and softmax probabilities (N, 10) of images (N, 1, 28, 28), float64;
    in eval mode without a graph, ``batch_size`` images at a time."""
    images = _check_images(images, "embed")
    feats, logits = [], []
    with evaluating(evaluator):
        for s in range(0, len(images), batch_size):
            f = evaluator.features(Tensor(images[s:s + batch_size]))
            feats.append(f.data.astype(np.float64))
            logits.append(evaluator.head(f).data.astype(np.float64))
    z = np.concatenate(logits)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return np.concatenate(feats), z / z.sum(axis=1, keepdims=True)


class SampleEvaluator:
    """Scores generated images against a fixed set of real ones: the real features, their mean, covariance and
    k-NN radii are computed once here, so that evaluating a GAN every N steps costs only the samples' share.

    ``SampleEvaluator(real)(samples)`` with images (N, 1, 28, 28) in [0, 1] (rescale a tanh generator's
    [-1, 1] output first) returns {"fd", "is", "classes", "largest_share", "precision", "recall"}: the Fréchet
    distance of the features, the Inception score, the classes holding >= 2% of the samples and the largest
    class's share, and the k-NN precision and recall.
    """

    def __init__(self, real: np.ndarray, evaluator: FashionClassifier | None = None, k: int = 3,
                 batch_size: int = 500) -> None:
        self.evaluator = load_evaluator() if evaluator is None else evaluator
        self.k, self.batch_size = k, batch_size
        self.features, _ = embed(_check_images(real, "SampleEvaluator real"), self.evaluator, batch_size)
        self.mean, self.cov = _stats(self.features)
        self._sqrt_cov = _psd_sqrt(self.cov)
        self.radii = knn_radii(self.features, k)

    def __call__(self, samples: np.ndarray) -> dict[str, float]:
        feats, probs = embed(_check_images(samples, "SampleEvaluator samples"), self.evaluator, self.batch_size)
        mean, cov = _stats(feats)
        classes, largest = class_coverage(probs)
        precision, recall = _precision_recall(self.features, self.radii, feats, self.k)
        return {"fd": _frechet(self.mean, self._sqrt_cov, mean, self.cov, cov), "is": inception_score(probs),
                "classes": float(classes), "largest_share": largest, "precision": precision, "recall": recall}


def evaluate_samples(samples: np.ndarray, real: np.ndarray, evaluator: FashionClassifier | None = None, k: int = 3,
                     batch_size: int = 500) -> dict[str, float]:
    """{"fd", "is", "classes", "largest_share", "precision", "recall"} of generated images (N, 1, 28, 28) against
    real images (M, 1, 28, 28), both in [0, 1], through ``evaluator`` (default ``load_evaluator()``). Scoring
    several sets against the same real images: build one ``SampleEvaluator(real)`` and call it."""
    return SampleEvaluator(real, evaluator, k, batch_size)(samples)


def reference_scores(real_a: np.ndarray, real_b: np.ndarray, seed: int = 0, evaluator: FashionClassifier | None = None,
                     k: int = 3) -> dict[str, dict[str, float]]:
    """The references to report beside a generator's scores against ``real_b``: {"real": the scores of other
    real images ``real_a`` (what a perfect generator would get), "noise": those of uniform noise of the same
    shape (seeded; what an untrained one gets)}."""
    real_a = _check_images(real_a, "reference_scores real_a")
    scorer = SampleEvaluator(real_b, evaluator, k)
    noise = np.random.default_rng(seed).random(real_a.shape, dtype=np.float32)
    return {"real": scorer(real_a), "noise": scorer(noise)}


__all__ = ["EVALUATOR", "SCORES", "FashionClassifier", "SampleEvaluator", "class_coverage", "embed",
           "evaluate_samples", "evaluator_path", "frechet_distance", "inception_score", "knn_precision_recall",
           "knn_radii", "load_evaluator", "reference_scores"]
