"""The translation and pre-training experiments: their baselines on small inputs (fast), and each whole experiment
at its quick size on the real data where it is installed (slow)."""

import numpy as np
import pytest

from dlbasics import lab
from dlbasics.data.datasets import availability
from dlbasics.lab import pretraining, translation


@pytest.mark.parametrize("module", [translation, pretraining])
def test_module_contract(module):
    assert module.NAME in lab.available() and lab.get(module.NAME) is module
    assert module.TITLE and module.CLAIM.endswith(".")
    assert "Claim" in module.__doc__ and "Method" in module.__doc__


def test_translation_baselines_on_a_toy_corpus():
    src = ["the dog runs", "the cat runs", "a dog sleeps", "the dog sleeps"]
    tgt = ["el perro corre", "el gato corre", "un perro duerme", "el perro duerme"]
    assert translation.most_common(tgt, 2) == ["el perro corre"] * 2  # ties: the first seen
    d = translation.dice_dictionary(src, tgt)
    assert d["dog"] == "perro" and d["cat"] == "gato" and d["sleeps"] == "duerme"
    assert translation.word_by_word(d, ["the cat sleeps", "unknown"]) == ["el gato duerme", ""]
    assert translation.retrieval(src, tgt, ["a dog sleeps now"]) == ["un perro duerme"]


def test_bleu_by_length_bins_the_sources():
    refs = ["a b c d", "a b c d e f g h"]
    out = translation.bleu_by_length(refs, refs, ["x y", "x y z w v u t s"])
    assert out[0] == pytest.approx(100.0) and out[1] == pytest.approx(100.0) and np.isnan(out[2])


def test_unigram_entropy_of_a_uniform_and_a_certain_corpus():
    assert pretraining.unigram_entropy([np.array([2, 5, 6, 7, 8])]) == pytest.approx(np.log(4))
    assert pretraining.unigram_entropy([np.array([2, 9, 9]), np.array([9])]) == pytest.approx(0.0)


@pytest.mark.slow
@pytest.mark.skipif(availability("bible-en-es") is not None, reason=availability("bible-en-es") or "")
def test_translation_lab_quick(tmp_path):
    f = lab.run("translation", tmp_path, quick=True)
    n = f.numbers
    assert n["bleu_word_by_word_dice"] > n["bleu_most_common_verse"]
    assert {"attention.png", "bleu_by_length.png"} <= set(f.figures)
    assert "| system | test BLEU |" in f.summary


@pytest.mark.slow
@pytest.mark.skipif(availability("pretraining") is not None or availability("tweets") is not None,
                    reason=(availability("pretraining") or availability("tweets") or ""))
def test_pretraining_lab_quick(tmp_path):
    f = lab.run("pretraining", tmp_path, quick=True)
    n = f.numbers
    assert n["unigram_entropy"] > 5 and 0.3 < n["acc_tfidf_logreg"] < 1
    assert f.figures == ["pretraining.png"]
