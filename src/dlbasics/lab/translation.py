"""Translation: attention lifts the encoder-decoder, and honest baselines say what its BLEU is worth.

Claim: an LSTM encoder-decoder that must pass the whole source through one vector translates worse than the same
network with attention, which reads every source word at every step (Bahdanau, Cho & Bengio 2015); the gap grows
with the length of the source (their Figure 2), and the Transformer, attention alone, does at least as well.

Method: English -> Spanish Bible verses (KJV / Reina-Valera 1909, Debian's SWORD modules via ``diatheke``), the
pairs where both sides have at most 15 words, lowercased word tokens, 250 test and 250 validation verses. Every
system is scored by sacrebleu's corpus BLEU on the 250 test verses (word tokens, ``tokenize="none"``):

- most common verse: the training set's most frequent target verse for every source;
- word by word: each source word replaced by the target word with the highest Dice coefficient over the training
  pairs, 2 c(e, f) / (c(e) + c(f)) with c counting the verses a word occurs in (Och & Ney's simplest alignment);
- retrieval: the target of the training verse whose source is nearest in TF-IDF cosine (scikit-learn);
- the zoo's ``seq2seq`` without and with Bahdanau attention, and ``transformer``, each trained by the one loop
  with its recipe for 15 epochs, the epoch with the best validation BLEU kept; greedy decoding, and beam search
  (5, alpha 0.6) for the attention model.

Figures: BLEU by source length for every system, and the attention weights of one test verse; ``translations.txt``
holds every test verse with each system's translation. ``quick``: verses of
at most 8 words, 100 test and 100 validation ones, 2 epochs, for tests (numbers far from converged).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.lab.base import Finding, command_for, new_figure, save_figure

NAME = "translation"
TITLE = "Translation: attention beats the one-vector encoder-decoder, beside honest baselines"
CLAIM = ("An LSTM encoder-decoder with attention translates better than without, by more as sources get longer; "
         "the Transformer does at least as well.")
DATA = ("bible-en-es",)

# 15 epochs keeps the lab near its 15 minutes: a step of the three models takes 120, 240 and 320 ms here (PyTorch's
# twins: 106, 231 and 373 ms; benchmarks/bench_train_step.py), 75 steps an epoch. quick: short verses, 2 epochs.
SIZES = {False: {"epochs": 15, "data": {}},
         True: {"epochs": 2, "data": {"max_words": 8, "n_test": 100, "n_val": 100}}}
MODELS = {"seq2seq": ("seq2seq", {}), "seq2seq + attention": ("seq2seq", {"attention": "bahdanau"}),
          "transformer": ("transformer", {})}
LENGTH_BINS = ((1, 6), (7, 10), (11, 16))  # source words (without <eos>)


# ---- baselines ------------------------------------------------------------------------------------------
def most_common(train_targets: list[str], n: int) -> list[str]:
    """The most frequent training target, ``n`` times."""
    return [Counter(train_targets).most_common(1)[0][0]] * n


def dice_dictionary(sources: list[str], targets: list[str]) -> dict[str, str]:
    """Each source word's target word of highest Dice coefficient 2 c(e, f) / (c(e) + c(f)), c = verse counts."""
    from sklearn.feature_extraction.text import CountVectorizer

    vec_s = CountVectorizer(binary=True, token_pattern=r"\S+", lowercase=False)
    vec_t = CountVectorizer(binary=True, token_pattern=r"\S+", lowercase=False)
    xs, xt = vec_s.fit_transform(sources), vec_t.fit_transform(targets)  # (N, Ws), (N, Wt) verse occurrence
    both = (xs.T @ xt).toarray()  # (Ws, Wt): verses holding both words
    cs, ct = np.asarray(xs.sum(0)).ravel(), np.asarray(xt.sum(0)).ravel()
    dice = 2 * both / (cs[:, None] + ct[None, :])
    words_t = vec_t.get_feature_names_out()
    return dict(zip(vec_s.get_feature_names_out(), words_t[dice.argmax(1)]))


def word_by_word(dictionary: dict[str, str], sources: list[str]) -> list[str]:
    """Each source word replaced by its dictionary word (unknown words dropped)."""
    return [" ".join(dictionary[w] for w in s.split() if w in dictionary) for s in sources]


def retrieval(train_sources: list[str], train_targets: list[str], sources: list[str]) -> list[str]:
    """The target of the training pair whose source is nearest in TF-IDF cosine similarity."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(token_pattern=r"\S+", lowercase=False)
    train = vec.fit_transform(train_sources)
    nearest = np.asarray((vec.transform(sources) @ train.T).argmax(axis=1)).ravel()
    return [train_targets[i] for i in nearest]


# ---- the neural systems -----------------------------------------------------------------------------------
def train_model(model: str, options: dict[str, Any], epochs: int, seed: int, data: dict[str, Any] | None = None
                ) -> tuple[Any, float]:
    """A zoo translator trained by the one loop for ``epochs`` epochs, put back to its epoch of best validation
    BLEU; returns (the model, seconds)."""
    from dlbasics.train import EarlyStopping
    from dlbasics.train.commands import _prepare
    from dlbasics.train.config import RunConfig
    from dlbasics.train.run import train_run

    _, splits, builder = _prepare(RunConfig.from_options(model=model, data="bible-en-es", epochs=epochs, seed=seed,
                                                         **options, **(data or {})))
    best = EarlyStopping(monitor="val_bleu", mode="max", patience=epochs, restore_best=True)  # never stops early
    start = time.perf_counter()
    run, _ = train_run(builder, splits.train, splits.val, seed=seed, callbacks=[best])
    return run.model, time.perf_counter() - start


def bleu_by_length(hyps: list[str], refs: list[str], sources: list[str]) -> list[float]:
    """Corpus BLEU of the test verses in each source-length bin."""
    from dlbasics.train.translation import bleu

    lengths = np.array([len(s.split()) for s in sources])
    out = []
    for lo, hi in LENGTH_BINS:
        idx = np.flatnonzero((lengths >= lo) & (lengths <= hi))
        out.append(bleu([hyps[i] for i in idx], [refs[i] for i in idx]) if len(idx) else float("nan"))
    return out


def run(out_dir: str | Path, quick: bool = False, seed: int = 0) -> Finding:
    from dlbasics.data import DataLoader
    from dlbasics.data.datasets import load
    from dlbasics.train.translation import bleu, decode_dataset

    out_dir = Path(out_dir)
    size = SIZES[quick]
    splits = load("bible-en-es", **size["data"])
    test = splits.test
    train_src, train_tgt = list(splits.train.sources), list(splits.train.references)
    src, refs = list(test.sources), list(test.references)
    systems: dict[str, list[str]] = {
        "most common verse": most_common(train_tgt, len(src)),
        "word by word (Dice)": word_by_word(dice_dictionary(train_src, train_tgt), src),
        "TF-IDF retrieval": retrieval(train_src, train_tgt, src),
    }
    seconds: dict[str, float] = {}
    example = None
    for label, (model_name, options) in MODELS.items():
        model, secs = train_model(model_name, options, size["epochs"], seed, size["data"])
        seconds[label] = secs
        loader = DataLoader(test, batch_size=256)
        systems[label] = decode_dataset(model, loader)
        if options.get("attention"):
            systems[f"{label}, beam 5"] = decode_dataset(model, loader, beam=5, alpha=0.6)
            example = attention_example(model, test, out_dir)
    _write_examples(out_dir / "translations.txt", src, refs, systems)
    scores = {name: bleu(h, refs) for name, h in systems.items()}
    by_len = {name: bleu_by_length(h, refs, src) for name, h in systems.items()}

    fig, ax = new_figure(figsize=(7, 4))
    width = 0.8 / len(by_len)
    for i, (name, vals) in enumerate(by_len.items()):
        ax.bar(np.arange(len(LENGTH_BINS)) + i * width, vals, width, label=name)
    ax.set_xticks(np.arange(len(LENGTH_BINS)) + 0.4 - width / 2, [f"{lo}-{hi} words" for lo, hi in LENGTH_BINS])
    ax.set_ylabel("test BLEU")
    ax.set_title("BLEU by source length, English -> Spanish verses")
    ax.legend(fontsize=7)
    figures = [save_figure(fig, out_dir, "bleu_by_length")]
    if example is not None:
        figures.append(example)

    numbers: dict[str, float | int | str] = {f"bleu_{_key(k)}": round(v, 2) for k, v in scores.items()}
    numbers |= {f"seconds_{_key(k)}": round(v, 1) for k, v in seconds.items()}
    numbers["attention_gain"] = round(scores["seq2seq + attention"] - scores["seq2seq"], 2)
    rows = "\n".join(f"| {name} | {scores[name]:.1f} | " + " | ".join(f"{v:.1f}" for v in by_len[name]) + " |"
                     for name in systems)
    header = "| system | test BLEU | " + " | ".join(f"{lo}-{hi} words" for lo, hi in LENGTH_BINS) + " |"
    summary = (f"{header}\n|---|---:|" + "---:|" * len(LENGTH_BINS) + f"\n{rows}\n\n"
               f"Attention adds {numbers['attention_gain']:+.1f} BLEU over the one-vector encoder-decoder "
               f"({size['epochs']} epochs each; training took " +
               ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ").")
    return Finding(NAME, TITLE, CLAIM, numbers, figures, summary, command_for(NAME, out_dir, quick, seed))


def _write_examples(path: Path, sources: list[str], refs: list[str], systems: dict[str, list[str]]) -> None:
    """Every test verse with its reference and each system's translation, for reading them side by side."""
    from dlbasics.io import atomic_write_text

    width = max(len(name) for name in systems) + 1
    blocks = ["\n".join([f"{'source:':<{width}} {s}", f"{'reference:':<{width}} {r}",
                          *(f"{name + ':':<{width}} {hyps[i]}" for name, hyps in systems.items())])
              for i, (s, r) in enumerate(zip(sources, refs))]
    atomic_write_text(path, "\n\n".join(blocks) + "\n")


def _key(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_").replace("__", "_")


def attention_example(model: Any, test: Any, out_dir: Path, index: int | None = None) -> str:
    """The attention weights of the greedy translation of one test verse (the longest of the first 50 by
    default), drawn as a heat map: target words down, source words across."""
    from dlbasics.autograd.grad_mode import no_grad
    from dlbasics.train.decoding import translate
    from dlbasics.train.translation import BOS, EOS

    if index is None:
        index = int(np.argmax([len(s.split()) for s in test.sources[:50]]))
    src_ids, _ = test[index]
    out = translate(model, src_ids[None, :], [len(src_ids)], BOS, EOS)[0]
    model.eval()
    with no_grad():
        model(src_ids[None, :], [len(src_ids)], np.array([[BOS, *out]]))  # teacher-forced on its own output
    weights = model.last_attention[0]  # (T, S)
    src_words = [*test.sources[index].split(), "<eos>"]
    tgt_words = [*test.tokenizer.decode_tgt(out).split(), "<eos>"]
    fig, ax = new_figure(figsize=(0.45 * len(src_words) + 2, 0.4 * len(tgt_words) + 1.5))
    ax.imshow(weights[:len(tgt_words), :len(src_words)], cmap="Greys", vmin=0, vmax=1)
    ax.set_xticks(range(len(src_words)), src_words, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(tgt_words)), tgt_words, fontsize=8)
    ax.set_title("Bahdanau attention: each Spanish word's weights over the English verse", fontsize=9)
    return save_figure(fig, out_dir, "attention")
