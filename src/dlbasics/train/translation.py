"""Translation as a task of the one loop: teacher-forced training, BLEU of decoded translations in evaluation.

A batch is ``((src (B, S), src_lengths (B,)), (tgt (B, T), tgt_lengths (B,)))``, right-padded with id 0, each
target ``<bos> y_1 .. y_n <eos>``. The model reads the source and the target shifted right and predicts the
target: logits = model(src, src_lengths, tgt[:, :-1]), loss = cross-entropy against tgt[:, 1:] over the real
(non-padding) words - the negative log-likelihood of the reference translation, per word.

Evaluation reports that loss and the corpus BLEU (Papineni et al. 2002) of greedy translations, computed by
sacrebleu - the field's reference implementation, so the numbers compare with papers' - on space-joined word
tokens (``tokenize="none"``), against the references as they were before the vocabulary mapped rare words to
``<unk>`` (the data set's ``references``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.data.text.tokenizers import SPECIAL_TOKENS
from dlbasics.errors import ConfigError, DataError
from dlbasics.nn.losses import CrossEntropyLoss
from dlbasics.nn.module import Module
from dlbasics.tensor import Tensor
from dlbasics.train.decoding import translate
from dlbasics.train.task import TASKS, Averages, Task, evaluating

PAD, BOS, EOS = (SPECIAL_TOKENS.index(t) for t in ("<pad>", "<bos>", "<eos>"))  # the word tokenizers' ids 0, 2, 3


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of ``hypotheses`` against one reference each, both space-joined word tokens."""
    try:
        import sacrebleu
    except ImportError:  # pragma: no cover - sacrebleu comes with the [text] and [test] extras
        raise ConfigError("BLEU needs sacrebleu: pip install 'dlbasics[text]'") from None
    if len(hypotheses) != len(references):
        raise ValueError(f"bleu: {len(hypotheses)} hypotheses for {len(references)} references")
    # force: the texts are word tokens on purpose (tokenize="none"), so no "forgot to detokenize" warning
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize="none", force=True).score)


def split_pairs(batch: Any) -> tuple[Tensor, Tensor, Tensor]:
    """(src, src_lengths, tgt) of a translation batch; DataError naming what came instead."""
    try:
        (src, src_lengths), (tgt, _) = batch
    except (TypeError, ValueError):
        raise DataError("a translation step expects batches ((src, src_lengths), (tgt, tgt_lengths)), as "
                        "pad_collate makes of (source ids, target ids) pairs") from None
    return src, src_lengths, tgt


def teacher_forced_loss(model: Module, loss_fn: Any, batch: Any) -> tuple[Tensor, int]:
    """The loss of predicting tgt[:, 1:] from the source and tgt[:, :-1], and the number of target words. The
    model scores the real words only (``positions``): padding has no loss, so its logits need not be made."""
    src, src_lengths, tgt = split_pairs(batch)
    tgt = np.asarray(tgt.data if isinstance(tgt, Tensor) else tgt)
    words = tgt[:, 1:] != PAD  # (B, T - 1)
    logits = model(src, src_lengths, tgt[:, :-1], positions=words)  # (N, V), N = words.sum()
    return loss_fn(logits, tgt[:, 1:][words]), int(words.sum())


@TASKS.register("translation", help="teacher-forced cross-entropy over (source, target) pairs; BLEU in evaluation")
class TranslationTask(Task):
    """One model, one optimizer, the per-word cross-entropy of the reference; validation adds greedy BLEU."""

    def __init__(self, model: Module, optimizer: Any, label_smoothing: float = 0.0, bos: int = BOS,
                 eos: int = EOS):
        super().__init__(model, optimizer)
        self.loss_fn = CrossEntropyLoss(ignore_index=PAD, label_smoothing=label_smoothing)
        self.bos, self.eos = bos, eos

    @classmethod
    def build(cls, cfg: Any) -> TranslationTask:
        from dlbasics.train.config import build_model, build_optimizer

        cls.require_problem(cfg, "translation", "translation", "trains on sentence pairs")
        model = build_model(cfg)
        return cls(model, build_optimizer(cfg, model), float(cfg.loss.label_smoothing))

    def training_step(self, batch: Any) -> tuple[int, dict[str, float]]:
        loss, _ = teacher_forced_loss(self.model, self.loss_fn, batch)
        return split_pairs(batch)[0].shape[0], {"loss": self.optimize(loss, self.optimizer)}

    def probe(self, batch: Any) -> None:
        teacher_forced_loss(self.model, self.loss_fn, batch)

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        return evaluate_translation(self.model, loader, self.loss_fn, self.bos, self.eos)

    @classmethod
    def evaluate_model(cls, cfg: Any, model: Module, loader: Iterable) -> dict[str, float]:
        return evaluate_translation(model, loader, CrossEntropyLoss(ignore_index=PAD), BOS, EOS)

    def write_outputs(self, out_dir: Path, cfg: Any, splits: Any) -> None:
        """translations.txt: each test sentence, its reference and the model's greedy translation."""
        from dlbasics.data import DataLoader
        from dlbasics.io import atomic_write_text

        data = splits.test if splits.test is not None else splits.val
        if data is None or not hasattr(data, "sources"):
            return
        hyps = decode_dataset(self.model, DataLoader(data, batch_size=256), self.bos, self.eos)
        lines = [f"source:      {s}\nreference:   {r}\ntranslation: {h}\n"
                 for s, r, h in zip(data.sources, data.references, hyps)]
        atomic_write_text(out_dir / "translations.txt", "\n".join(lines))


def decode_dataset(model: Module, loader: Any, bos: int = BOS, eos: int = EOS, beam: int = 1, alpha: float = 0.6
                   ) -> list[str]:
    """The translations of every source sentence of ``loader`` (in its order, unshuffled) as word-token text."""
    tokenizer = getattr(loader.dataset, "tokenizer", None)
    if tokenizer is None:
        raise DataError("decoding needs the data set's tokenizer (a TranslationPairs data set has one)")
    out = []
    for batch in loader:
        src, src_lengths, _ = split_pairs(batch)
        out += [tokenizer.decode_tgt(ids) for ids in translate(model, src, src_lengths, bos, eos, beam, alpha)]
    return out


def translate_text(model: Module, tokenizer: Any, sentences: Sequence[str], beam: int = 1, alpha: float = 0.6,
                   bos: int = BOS, eos: int = EOS) -> list[str]:
    """``sentences`` translated by ``model``: each split into word tokens by the run's ``tokenizer`` (a
    ``PairTokenizer``), decoded greedily (``beam`` 1) or by beam search, returned as word-token text."""
    from dlbasics.data.text import pad_sequence

    if not sentences:
        return []
    ids = [tokenizer.encode_src(s) for s in sentences]  # word tokens + <eos>, as the data set's sources
    lengths = np.array([len(i) for i in ids])
    src = pad_sequence(ids, batch_first=True, padding_value=PAD)
    return [tokenizer.decode_tgt(out) for out in translate(model, src, lengths, bos, eos, beam, alpha)]


def evaluate_translation(model: Module, loader: Any, loss_fn: Any, bos: int, eos: int) -> dict[str, float]:
    """Per-word validation loss and the BLEU of greedy translations over ``loader`` (mode restored)."""
    avg = Averages()
    with evaluating(model):
        for batch in loader:
            loss, words = teacher_forced_loss(model, loss_fn, batch)
            avg.add(words, {"loss": float(loss.item())})
    hyps = decode_dataset(model, loader, bos, eos)
    refs = getattr(loader.dataset, "references", None)
    if refs is None:
        raise DataError("BLEU needs the data set's references (a TranslationPairs data set has them)")
    return {"loss": avg.means()["loss"], "bleu": bleu(hyps, refs)}


__all__ = ["TranslationTask", "bleu", "decode_dataset", "evaluate_translation", "split_pairs", "teacher_forced_loss",
           "translate_text"]
