"""Masked language modelling (BERT's pre-training) as a task of the one loop.

A batch is ``(tokens (B, L), lengths (B,))``, right-padded with id 0. Each step masks it afresh
(``data.text.masking.mask_tokens``: 15% of the words, 80% of those ``<mask>``, 10% a random word, 10% kept) and
trains the model to restore the chosen words from both sides:

    loss = -mean over chosen positions i of log p(x_i | masked x)     (cross-entropy, labels -100 elsewhere)

ln V for a model that knows nothing. Masks are drawn from the task's own generator, seeded from the run's seed
and saved in the task's ``state_dict``, so a resumed run draws the masks the uninterrupted one would have.
Validation uses the same fixed masks at every evaluation (a generator re-seeded each time with ``EVAL_MASK_SEED``),
so its loss and masked-word accuracy compare across evaluations and across runs.

The special ids are the word tokenizer's convention, not read from the data (the task is built from the run
description alone): ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2 (BERT's [CLS]), ``<eos>`` 3, ``<mask>`` 4 - what
``WordTokenizer(extra_specials=("<mask>",))`` gives - and words from 5. They are never chosen nor drawn as
replacements.

The model is called as ``model(inputs, lengths)`` -> logits (B, L, V); a model whose forward takes
``masked_positions`` (as ``BertForMaskedLM``) is called with the chosen positions too and returns their logits
only, (N, V) - the same loss without the vocabulary-wide product at the 85% of positions it ignores.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from dlbasics.data.text.masking import IGNORE_INDEX, mask_tokens
from dlbasics.errors import ConfigError, DataError
from dlbasics.nn.losses import CrossEntropyLoss
from dlbasics.nn.module import Module
from dlbasics.rng import set_generator_states
from dlbasics.tensor import Tensor
from dlbasics.train.task import TASKS, Averages, Task, evaluating

MASK_ID = 4  # "<mask>", the first special token after <pad> <unk> <bos> <eos>
SPECIAL_IDS = (0, 1, 2, 3, 4)  # <pad> <unk> <bos> <eos> <mask>
EVAL_MASK_SEED = 0
# the masking generator's own stream of the run seed: the loader's shuffle and the default generator are seeded
# with the run seed itself, and would otherwise draw the very numbers the masks are made of
MASKING_STREAM = 1


def split_text(batch: Any) -> tuple[np.ndarray, np.ndarray]:
    """(tokens (B, L), lengths (B,)) of a batch, as arrays; DataError naming what came instead."""
    if not (isinstance(batch, tuple | list) and len(batch) == 2):
        raise DataError(f"a masked_lm step expects batches (tokens (B, L), lengths (B,)), as pad_collate makes of "
                        f"token id sequences; got {type(batch).__name__}"
                        + (f" of length {len(batch)}" if isinstance(batch, tuple | list) else ""))
    tokens, lengths = (np.asarray(t.data if isinstance(t, Tensor) else t) for t in batch)
    if tokens.ndim != 2 or lengths.shape != tokens.shape[:1]:
        raise DataError(f"a masked_lm step expects tokens (B, L) and lengths (B,), got shapes {tokens.shape} and "
                        f"{lengths.shape}")
    return tokens, lengths


def _takes_masked_positions(model: Module) -> bool:
    return "masked_positions" in inspect.signature(model.forward).parameters


@TASKS.register("masked_lm", help="BERT's masked-word cross-entropy over (tokens, lengths) batches of text")
class MaskedLMTask(Task):
    """One model, one optimizer, the cross-entropy of the masked words; validation adds their accuracy.

    ``seed`` seeds the training masks; ``mask_id``, ``special_ids`` and ``p`` as ``mask_tokens``."""

    def __init__(self, model: Module, optimizer: Any, vocab_size: int, *, seed: int = 0, mask_id: int = MASK_ID,
                 special_ids: Sequence[int] = SPECIAL_IDS, p: float = 0.15, label_smoothing: float = 0.0) -> None:
        super().__init__(model, optimizer)
        self.vocab_size, self.mask_id, self.special_ids, self.p = vocab_size, mask_id, tuple(special_ids), p
        self.loss_fn = CrossEntropyLoss(ignore_index=IGNORE_INDEX, label_smoothing=label_smoothing)
        self.generator = np.random.default_rng([seed, MASKING_STREAM])

    @classmethod
    def build(cls, cfg: Any) -> MaskedLMTask:
        from dlbasics.train.config import build_model, build_optimizer

        cls.require_problem(cfg, "masked_language_modeling", "masked_lm", "pre-trains on text")
        if cfg.loss.name not in (None, "cross_entropy"):
            raise ConfigError(f"{cfg.spelling('loss')} {cfg.loss.name}: a masked language model is trained by the "
                              "masked words' cross-entropy; use cross_entropy")
        vocab_size = cfg.model.options.get("vocab_size") or cfg.data.num_classes
        if vocab_size is None:
            raise ConfigError(f"{cfg.spelling('task')} masked_lm: the data set {cfg.data.name!r} does not give the "
                              "vocabulary's size (vocab_size)")
        model = build_model(cfg)
        return cls(model, build_optimizer(cfg, model), int(vocab_size), seed=cfg.seed,
                   label_smoothing=float(cfg.loss.label_smoothing))

    def masked_loss(self, model: Module, batch: Any,
                    generator: np.random.Generator) -> tuple[Tensor, Tensor, np.ndarray]:
        """The loss of ``model`` on ``batch`` masked with ``generator``; its logits (N, V) and labels (N,) at the
        N chosen positions."""
        tokens, lengths = split_text(batch)
        inputs, labels = mask_tokens(tokens, lengths, mask_id=self.mask_id, vocab_size=self.vocab_size,
                                     special_ids=self.special_ids, p=self.p, generator=generator)
        chosen = labels != IGNORE_INDEX  # (B, L)
        if _takes_masked_positions(model):
            logits = model(inputs, lengths, masked_positions=chosen)  # (N, V)
        else:
            logits = model(inputs, lengths)[chosen]  # (B, L, V) -> (N, V)
        target = labels[chosen]  # (N,)
        return self.loss_fn(logits, target), logits, target

    def training_step(self, batch: Any) -> tuple[int, dict[str, float]]:
        loss, _, target = self.masked_loss(self.model, batch, self.generator)
        if target.size == 0:  # the mean over no words is NaN, which would pass for a diverged run
            raise DataError("a masked_lm batch without a single word to mask: every token is special or padding")
        return split_text(batch)[0].shape[0], {"loss": self.optimize(loss, self.optimizer)}

    def probe(self, batch: Any) -> None:
        self.masked_loss(self.model, batch, np.random.default_rng(EVAL_MASK_SEED))  # not the training masks' draws

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        return self.evaluate_masked(self.model, loader)

    def evaluate_masked(self, model: Module, loader: Iterable) -> dict[str, float]:
        """The masked words' mean loss and accuracy over ``loader`` with the fixed validation masks (eval mode, no
        graph; the mode is restored). Both are means over the masked words, not over sequences."""
        generator = np.random.default_rng(EVAL_MASK_SEED)
        avg = Averages()
        with evaluating(model):
            for batch in loader:
                loss, logits, target = self.masked_loss(model, batch, generator)
                correct = float((logits.data.argmax(axis=-1) == target).mean()) if target.size else 0.0
                avg.add(int(target.size), {"loss": float(loss.item()) if target.size else 0.0,
                                           "accuracy": correct})
        means = avg.means()
        return {"loss": means.get("loss", 0.0), "accuracy": means.get("accuracy", 0.0)}

    @classmethod
    def evaluate_model(cls, cfg: Any, model: Module, loader: Iterable) -> dict[str, float]:
        vocab_size = cfg.model.options.get("vocab_size") or cfg.data.num_classes
        return cls(model, None, int(vocab_size), seed=cfg.seed).evaluate_masked(model, loader)

    # ---- state: the modules', the optimizer's, and the masks' generator ----
    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"masking": self.generator.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        set_generator_states({"masking": self.generator}, {"masking": state["masking"]})


__all__ = ["EVAL_MASK_SEED", "MASK_ID", "SPECIAL_IDS", "MaskedLMTask", "split_text"]
