"""Greedy and beam search on models whose probabilities are known exactly: a Markov chain over the tokens (the next
token's distribution depends on the last token and the sentence), where every hypothesis can be scored by hand."""

import itertools

import numpy as np
import pytest

from dlbasics.tensor import Tensor
from dlbasics.train.decoding import Hypothesis, beam_search, greedy, translate

BOS, EOS = 0, 1


class Chain:
    """log p(next | last, sentence b) = table[b, last]: a translator with the four decoding methods."""

    training = False

    def __init__(self, table):
        self.table = table  # (B, V, V) log-probabilities, rows normalized

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def encode(self, src, src_lengths):
        return {"sentence": np.arange(src.shape[0])}

    def start(self, memory):
        return None

    def step(self, memory, tokens, state):
        last = tokens.data[:, -1]
        return Tensor(self.table[memory["sentence"], last]), None

    def select(self, memory, state, rows):
        return {"sentence": memory["sentence"][rows]}, None


def chain(seed, b=3, v=5, sharpness=2.0):
    logits = np.random.default_rng(seed).normal(0, sharpness, (b, v, v))
    return Chain(logits - np.log(np.exp(logits).sum(-1, keepdims=True)))


def score(model, sentence, tokens):
    path = [BOS, *tokens]
    return sum(model.table[sentence, a, c] for a, c in itertools.pairwise(path))


def exhaustive_best(model, sentence, v, max_len, alpha):
    """Every hypothesis: ended at <eos> within max_len tokens, or max_len tokens without it."""
    best = None
    for n in range(1, max_len + 1):
        for body in itertools.product([t for t in range(v) if t != EOS], repeat=n - 1):
            for last in range(v):
                if n < max_len and last != EOS:
                    continue
                hyp = Hypothesis([*body, last], score(model, sentence, [*body, last]))
                if best is None or hyp.normalized(alpha) > best.normalized(alpha):
                    best = hyp
    return best


SRC, LENGTHS = np.zeros((3, 2), np.int64), np.array([2, 2, 1])


@pytest.mark.parametrize("seed", range(20))
def test_greedy_takes_the_most_likely_token_and_scores_its_hypothesis(seed):
    model = chain(seed)
    for b, hyp in enumerate(greedy(model, SRC, LENGTHS, BOS, EOS, max_len=6)):
        path = [BOS, *hyp.tokens]
        assert all(model.table[b, a].argmax() == c for a, c in itertools.pairwise(path))
        assert hyp.score == pytest.approx(score(model, b, hyp.tokens))
        assert len(hyp.tokens) == 6 or hyp.tokens[-1] == EOS


@pytest.mark.parametrize("alpha", [0.0, 0.6])
@pytest.mark.parametrize("seed", range(20))
def test_beam_search_never_scores_below_greedy(seed, alpha):
    model = chain(seed, sharpness=1.0)
    g = greedy(model, SRC, LENGTHS, BOS, EOS, max_len=6)
    for k in (2, 3, 5):
        for b, hyp in enumerate(beam_search(model, SRC, LENGTHS, BOS, EOS, beam=k, alpha=alpha, max_len=6)):
            assert hyp.score == pytest.approx(score(model, b, hyp.tokens))  # the score is the model's own
            assert hyp.normalized(alpha) >= g[b].normalized(alpha) - 1e-12


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("seed", range(5))
def test_a_beam_as_wide_as_every_hypothesis_finds_the_best_one(seed, alpha):
    v, max_len = 4, 4
    model = chain(seed, v=v, sharpness=1.0)
    found = beam_search(model, SRC, LENGTHS, BOS, EOS, beam=v ** max_len, alpha=alpha, max_len=max_len)
    for b, hyp in enumerate(found):
        best = exhaustive_best(model, b, v, max_len, alpha)
        assert hyp.normalized(alpha) == pytest.approx(best.normalized(alpha))


def test_beam_one_is_greedy_and_translate_drops_eos():
    model = chain(3)
    g = greedy(model, SRC, LENGTHS, BOS, EOS, max_len=6)
    assert [h.tokens for h in beam_search(model, SRC, LENGTHS, BOS, EOS, beam=1, max_len=6)] == [h.tokens for h in g]
    assert translate(model, SRC, LENGTHS, BOS, EOS, max_len=6) == [h.tokens[:-1] if h.tokens[-1] == EOS else h.tokens
                                                                    for h in g]


def test_beam_search_rejects_a_bad_beam_or_alpha():
    with pytest.raises(ValueError, match="beam must be a positive integer"):
        beam_search(chain(0), SRC, LENGTHS, BOS, EOS, beam=0)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        beam_search(chain(0), SRC, LENGTHS, BOS, EOS, beam=2, alpha=-1)
