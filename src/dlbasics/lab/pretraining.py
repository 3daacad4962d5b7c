"""Pre-training: BERT learns the language from unlabelled text, then a classifier fine-tunes it on labelled tweets.

Claim (Devlin et al. 2018): masked-language-model pre-training on unlabelled text gives an encoder that a small
labelled task fine-tunes better than the same network trained on that task alone - if the unlabelled corpus is
large enough (Warstadt et al.'s MiniBERTas: about 10M words before the gains come; this corpus has about 1.9M word
tokens).

Method: BERT-Tiny's shape (2 layers, 128 dimensions, 2 heads, sequences of 64 word tokens) pre-trained with the
zoo's ``bert`` recipe, but ``steps`` steps, on the "pretraining" text (the training tweets, Tiny Shakespeare's
lines, the KJV verses: 86k sentences), 15% of the words masked 80/10/10. Its masked-word validation loss is compared
with the unigram entropy of the words (the loss of a model that knows the word frequencies and nothing else).
Then the sentiment of 37k deduplicated labelled tweets (negative / neutral / positive), each system scored by test
accuracy: the pre-trained encoder fine-tuned (``dlbasics finetune``) and the same classifier from scratch, both
with the zoo's ``bert_classifier`` recipe for ``epochs`` epochs and the same vocabulary, over ``seeds``; and
scikit-learn's TF-IDF (words and word pairs) logistic regression. A gain from pre-training is claimed only if it is
more than two standard deviations of the per-seed differences.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.lab.base import Finding, command_for, new_figure, save_figure

NAME = "pretraining"
TITLE = "Pre-training: a masked language model, then fine-tuning on labelled tweets"
CLAIM = ("Masked-language-model pre-training on unlabelled text learns the language (its loss falls below the "
         "word frequencies' entropy), and fine-tuning it beats training the same classifier from scratch - when the "
         "unlabelled text is large enough.")
DATA = ("pretraining", "tweets")

# A BERT-Tiny step takes 0.22 s here (batch 64, vocabulary 21,903), so 1,500 steps are 5-6 minutes of the lab's 20
SIZES = {False: {"steps": 1500, "epochs": 2, "seeds": (0, 1, 2)},
         True: {"steps": 10, "epochs": None, "finetune_steps": 10, "seeds": (0,)}}
SMALL = {"hidden_size": 16, "intermediate_size": 32}  # quick: a tiny encoder, for tests


def unigram_entropy(dataset: Any, special: int = 5) -> float:
    """H = -sum_w p(w) ln p(w) of the word ids (>= ``special``) of a data set of id sequences, in nats."""
    ids = np.concatenate([np.asarray(dataset[i]).ravel() for i in range(len(dataset))])
    counts = np.bincount(ids[ids >= special])
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def tfidf_accuracy(seed: int = 0) -> float:
    """Test accuracy of logistic regression on TF-IDF of word unigrams and bigrams, trained on the training tweets."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from dlbasics.data.datasets.tweets import tweet_texts

    parts = tweet_texts(seed)
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vec.fit_transform(parts["train"][0])
    clf = LogisticRegression(max_iter=2000, C=4.0).fit(x_train, parts["train"][1])
    return float((clf.predict(vec.transform(parts["test"][0])) == parts["test"][1]).mean())


def run(out_dir: str | Path, quick: bool = False, seed: int = 0) -> Finding:
    from dlbasics.train import commands
    from dlbasics.train.config import RunConfig

    out_dir = Path(out_dir)
    size = SIZES[quick]
    extra = SMALL if quick else {}
    start = time.perf_counter()
    steps = size["steps"]
    every = steps if quick else steps // 6  # quick: one evaluation (a pass over the 4,322 validation sentences)
    cfg = RunConfig.from_options(model="bert", steps=steps, eval_every=every, seed=seed, **extra)
    pre = commands.train(cfg, out=out_dir / "runs" / "pretrained", verbose=0)
    pre_seconds = time.perf_counter() - start
    curve = [(int(r["step"]), float(r["val_loss"])) for r in pre.history.rows if "val_loss" in r]

    from dlbasics.data.datasets import load

    entropy = unigram_entropy(load("pretraining").train)
    budget = ({"epochs": size["epochs"]} if size["epochs"] else
              {"steps": size["finetune_steps"], "eval_every": size["finetune_steps"]})
    acc: dict[str, list[float]] = {"pre-trained, fine-tuned": [], "from scratch": []}
    for s in size["seeds"]:
        options = commands.finetune_options(pre.run_dir, {**budget, "seed": s})
        for label, given in (("pre-trained, fine-tuned", options),
                             ("from scratch", {k: v for k, v in options.items() if k != "init_from"})):
            result = commands.train(RunConfig.from_options(given), out=out_dir / "runs" / f"{_key(label)}-{s}",
                                    verbose=0)
            acc[label].append(float(result.summary["test_accuracy"]))
    tfidf = tfidf_accuracy()
    seconds = time.perf_counter() - start

    diffs = np.subtract(acc["pre-trained, fine-tuned"], acc["from scratch"])
    gain = float(diffs.mean())
    spread = float(diffs.std(ddof=1)) if len(diffs) > 1 else math.nan
    significant = bool(len(diffs) > 1 and gain > 2 * spread)

    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10, 3.8))
    ax1.plot(*zip(*curve), marker="o", label="BERT-Tiny, masked words")
    ax1.axhline(entropy, color="gray", linestyle=":", label=f"unigram entropy ({entropy:.2f})")
    ax1.set_xlabel("pre-training step")
    ax1.set_ylabel("validation loss (nats / masked word)")
    ax1.legend()
    names = [*acc, "TF-IDF + logistic regression"]
    means = [float(np.mean(acc[k])) for k in acc] + [tfidf]
    stds = [float(np.std(acc[k])) for k in acc] + [0.0]
    ax2.bar(range(3), means, yerr=stds, color=["tab:blue", "tab:orange", "tab:gray"])
    ax2.set_xticks(range(3), names, fontsize=8)
    ax2.set_ylim(0.3, max(means) + 0.05)
    ax2.set_ylabel("test accuracy, tweet sentiment (3 classes)")
    figures = [save_figure(fig, out_dir, "pretraining")]

    numbers: dict[str, float | int | str] = {
        "mlm_val_loss": round(curve[-1][1], 3), "unigram_entropy": round(entropy, 3),
        "acc_pretrained_mean": round(means[0], 4), "acc_pretrained_std": round(stds[0], 4),
        "acc_scratch_mean": round(means[1], 4), "acc_scratch_std": round(stds[1], 4),
        "acc_tfidf_logreg": round(tfidf, 4), "gain": round(gain, 4), "gain_is_significant": str(significant),
        "seeds": len(size["seeds"]), "seconds_pretraining": round(pre_seconds, 1), "seconds": round(seconds, 1)}
    verdict = (f"Pre-training adds {gain:+.3f} accuracy, more than two standard deviations of the per-seed "
               f"differences ({spread:.3f}): a gain." if significant else
               f"Pre-training changes the accuracy by {gain:+.3f} (per-seed differences' standard deviation "
               f"{spread:.3f}): not a gain this experiment can claim. This corpus (about 1.9M word tokens) is too "
               "small, as the MiniBERTa study found: about 10M words are needed before pre-training pays.")
    summary = (f"After {steps} steps the masked-word validation loss is {curve[-1][1]:.2f} nats against the "
               f"unigram entropy's {entropy:.2f}. Test accuracy over {len(size['seeds'])} seeds: fine-tuned "
               f"{means[0]:.3f} ± {stds[0]:.3f}, from scratch {means[1]:.3f} ± {stds[1]:.3f}; TF-IDF + logistic "
               f"regression {tfidf:.3f}. {verdict}")
    return Finding(NAME, TITLE, CLAIM, numbers, figures, summary, command_for(NAME, out_dir, quick, seed))


def _key(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-").replace("--", "-")
