"""Decoding a sequence-to-sequence model: greedy search and beam search with a length penalty.

A translator (``models/seq2seq.py``, ``models/transformer.py``) offers four methods, so that one search serves
every model:

    encode(src (B, S), src_lengths (B,)) -> memory        what the decoder reads (any structure)
    start(memory) -> state                                the decoder's state before the first token
    step(memory, tokens (B, t), state) -> (log_probs (B, V), state)   p(next token | source, tokens so far)
    select(memory, state, rows (R,)) -> (memory, state)   keep (or repeat) batch rows: beams copy their parents

Every hypothesis starts with ``<bos>`` and ends at ``<eos>`` or after ``max_len`` tokens. Its score is the sum of
its tokens' log-probabilities, log p(y | x) = sum_t log p(y_t | y_<t, x); beam search ranks finished hypotheses
by score / lp(y) with GNMT's length penalty lp = ((5 + |y|) / 6)^alpha (Wu et al. 2016), alpha = 0 being the raw
score.

Beam search keeps the ``beam`` best partial hypotheses of each sentence, extends each by every token, and keeps
the ``beam`` best again; a hypothesis that ends leaves the beam for the finished list. Plain beam search can end
below greedy search: greedy's prefix may fall out of the beam and the hypotheses that pushed it out end worse. So
the search here starts from greedy's result, a finished candidate from the outset: beam search never returns a
hypothesis that the model scores below greedy's (``tests/train/test_decoding.py`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dlbasics.tensor import Tensor
from dlbasics.train.task import evaluating


@dataclass
class Hypothesis:
    """One decoded sentence: its ``tokens`` (without ``<bos>``, ending at ``<eos>`` if it ended) and ``score``,
    the sum of their log-probabilities under the model."""

    tokens: list[int]
    score: float

    def normalized(self, alpha: float) -> float:
        """score / ((5 + |y|) / 6)^alpha: GNMT's length-normalized score (the raw score for alpha 0)."""
        return self.score / ((5 + len(self.tokens)) / 6) ** alpha


def _as_tensor(a: Any) -> Tensor:
    return a if isinstance(a, Tensor) else Tensor._make(np.asarray(a, dtype=np.int64), False, None)


def default_max_len(src_lengths: np.ndarray) -> int:
    """The longest output: twice the longest source plus 10 (a translation is rarely longer)."""
    return int(2 * np.max(src_lengths) + 10)


def greedy(model: Any, src: Any, src_lengths: Any, bos: int, eos: int, max_len: int | None = None) -> list[Hypothesis]:
    """The most likely next token at every step, for all B sentences at once -> B hypotheses."""
    lengths = np.asarray(src_lengths.data if isinstance(src_lengths, Tensor) else src_lengths)
    max_len = default_max_len(lengths) if max_len is None else max_len
    with evaluating(model):
        memory = model.encode(_as_tensor(src), _as_tensor(lengths))
        state = model.start(memory)
        b = len(lengths)
        tokens = np.full((b, 1), bos, np.int64)
        scores = np.zeros(b)
        done = np.zeros(b, bool)
        for _ in range(max_len):
            logp, state = model.step(memory, _as_tensor(tokens), state)
            logp = logp.data
            nxt = logp.argmax(axis=1)
            scores += np.where(done, 0.0, logp[np.arange(b), nxt])
            nxt = np.where(done, eos, nxt)  # an ended sentence only pads with <eos>, which is cut off below
            tokens = np.concatenate([tokens, nxt[:, None]], axis=1)
            done |= nxt == eos
            if done.all():
                break
    return [Hypothesis(_until_eos(row[1:], eos), float(s)) for row, s in zip(tokens, scores)]


def _until_eos(row: np.ndarray, eos: int) -> list[int]:
    ends = np.flatnonzero(row == eos)
    return row[:ends[0] + 1].tolist() if len(ends) else row.tolist()


def beam_search(model: Any, src: Any, src_lengths: Any, bos: int, eos: int, beam: int = 5, alpha: float = 0.6,
                max_len: int | None = None) -> list[Hypothesis]:
    """The best hypothesis of each of the B sentences found with ``beam`` hypotheses kept per sentence, ranked
    by score / ((5 + |y|) / 6)^alpha -> B hypotheses. ``beam`` 1 is greedy search."""
    if isinstance(beam, bool) or not isinstance(beam, int | np.integer) or beam < 1:
        raise ValueError(f"beam_search: beam must be a positive integer, got {beam!r}")
    if not alpha >= 0:
        raise ValueError(f"beam_search: alpha must be >= 0, got {alpha!r}")
    lengths = np.asarray(src_lengths.data if isinstance(src_lengths, Tensor) else src_lengths)
    max_len = default_max_len(lengths) if max_len is None else max_len
    best = greedy(model, src, src_lengths, bos, eos, max_len)  # the candidates to beat (see the module docstring)
    if beam == 1:
        return best
    with evaluating(model):
        memory = model.encode(_as_tensor(src), _as_tensor(lengths))
        b = len(lengths)
        rows = np.repeat(np.arange(b), beam)  # row r of the search is a hypothesis of sentence rows[r]
        memory, state = model.select(memory, model.start(memory), rows)
        tokens = np.full((b * beam, 1), bos, np.int64)
        scores = np.full((b, beam), -np.inf)
        scores[:, 0] = 0.0  # one live hypothesis per sentence at first (the others are its copies)
        for t in range(1, max_len + 1):
            logp, state = model.step(memory, _as_tensor(tokens), state)
            v = logp.shape[1]
            total = (scores[:, :, None] + logp.data.reshape(b, beam, v)).reshape(b, beam * v)  # (B, K V)
            # the 2K best extensions: at most K of them end, so K live ones always remain
            m = min(2 * beam, beam * v)
            top = np.argpartition(-total, m - 1, axis=1)[:, :m]
            top = np.take_along_axis(top, np.argsort(-np.take_along_axis(total, top, 1), axis=1), 1)
            parent, token = top // v, top % v
            cand = np.take_along_axis(total, top, 1)  # (B, 2K), best first
            ended = (token == eos) | (t == max_len)
            # finished candidates: the best of each sentence's, against its best so far (lengths are all t)
            fin = np.where(ended & np.isfinite(cand), cand, -np.inf)
            j = fin.argmax(axis=1)
            for i in np.flatnonzero(np.isfinite(fin[np.arange(b), j])):
                seq = [*tokens[i * beam + parent[i, j[i]], 1:].tolist(), int(token[i, j[i]])]
                hyp = Hypothesis(seq, float(fin[i, j[i]]))
                if hyp.normalized(alpha) > best[i].normalized(alpha):
                    best[i] = hyp
            # live candidates: the K best that did not end (a sentence with fewer keeps dead rows at -inf)
            live = ~ended & np.isfinite(cand)
            order = np.argsort(~live, axis=1, kind="stable")[:, :beam]  # live ones first, best first
            keep_parent = np.take_along_axis(parent, order, 1)
            keep_token = np.take_along_axis(token, order, 1)
            new_scores = np.where(np.take_along_axis(live, order, 1), np.take_along_axis(cand, order, 1), -np.inf)
            # a live hypothesis's score only falls, so with alpha 0 one below the best finished can be dropped
            if alpha == 0:
                floor = np.array([h.score for h in best])[:, None]
                new_scores = np.where(new_scores > floor, new_scores, -np.inf)
            if not np.isfinite(new_scores).any():
                break
            src_rows = (np.arange(b)[:, None] * beam + keep_parent).reshape(-1)
            memory, state = model.select(memory, state, src_rows)
            tokens = np.concatenate([tokens[src_rows], keep_token.reshape(-1, 1)], axis=1)
            scores = new_scores
    return best


def translate(model: Any, src: Any, src_lengths: Any, bos: int, eos: int, beam: int = 1, alpha: float = 0.6,
              max_len: int | None = None) -> list[list[int]]:
    """The decoded token ids of each source sentence (``<eos>`` removed): greedy for ``beam`` 1, else beam search."""
    hyps = beam_search(model, src, src_lengths, bos, eos, beam, alpha, max_len)
    return [h.tokens[:-1] if h.tokens and h.tokens[-1] == eos else h.tokens for h in hyps]


__all__ = ["Hypothesis", "beam_search", "default_max_len", "greedy", "translate"]
