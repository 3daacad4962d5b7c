"""Visual question answering as a task of the one loop: the supervised step on ((images, questions), answers), the
model called as ``model(images, questions)``; validation splits the accuracy into non-relational and relational
questions and by question type (Sort-of-CLEVR's six), beside the majority answer of each type - the score of a model
that ignores the image.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from dlbasics.train.task import TASKS, SupervisedTask, batch_size, evaluating, forward, split_batch


@TASKS.register("vqa", help="answer a question about an image: cross-entropy; accuracy by question type")
class VQATask(SupervisedTask):
    """The supervised step; ``evaluate`` gives the loss, the accuracy, and the accuracy on non-relational and on
    relational questions and per question type."""

    curves = ("loss", "accuracy", "accuracy_relational")
    best = ("accuracy", "max")

    @classmethod
    def build(cls, cfg: Any) -> VQATask:
        from dlbasics.train.config import build_loss, build_model, build_optimizer

        cls.require_problem(cfg, "vqa", "vqa", "answers questions about images")
        model = build_model(cfg)
        return cls(model, build_loss(cfg), build_optimizer(cfg, model), metrics=())

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        return vqa_eval(self.model, loader, self.loss_fn)

    @classmethod
    def evaluate_model(cls, cfg: Any, model: Any, loader: Iterable) -> dict[str, float]:
        from dlbasics.train.config import build_loss

        return vqa_eval(model, loader, build_loss(cfg))


def vqa_eval(model: Any, loader: Iterable, loss_fn: Any) -> dict[str, float]:
    """Loss and accuracies over ``loader`` (batches ((images, questions), answers))."""
    from dlbasics.data.datasets.clevr import QUESTIONS, question_type

    kinds, right, loss_sum, n = [], [], 0.0, 0
    with evaluating(model):
        for batch in loader:
            x, y = split_batch(batch)
            out = forward(model, x)
            answers = y.data if hasattr(y, "data") else np.asarray(y)
            loss_sum += float(loss_fn(out, y).item()) * batch_size(y)
            n += batch_size(y)
            right.append(out.data.argmax(1) == answers)
            kinds.append(question_type(x[1].data if hasattr(x[1], "data") else x[1]))
    right_all, kind = np.concatenate(right), np.concatenate(kinds)
    out = {"loss": loss_sum / max(n, 1), "accuracy": float(right_all.mean()),
           "accuracy_nonrelational": float(right_all[kind < 3].mean()) if (kind < 3).any() else float("nan"),
           "accuracy_relational": float(right_all[kind >= 3].mean()) if (kind >= 3).any() else float("nan")}
    for k, name in enumerate(QUESTIONS):
        if (kind == k).any():
            out[f"accuracy_{name.replace(' ', '_')}"] = float(right_all[kind == k].mean())
    return out


def majority_baseline(train_questions: np.ndarray, train_answers: np.ndarray, questions: np.ndarray,
                      answers: np.ndarray) -> dict[str, float]:
    """The accuracy of answering each question type with its most common training answer (no image, no colour)."""
    from dlbasics.data.datasets.clevr import question_type

    kt, k = question_type(train_questions), question_type(questions)
    guess = np.array([np.bincount(train_answers[kt == t], minlength=10).argmax() for t in range(6)])
    right = guess[k] == answers
    return {"accuracy": float(right.mean()), "accuracy_nonrelational": float(right[k < 3].mean()),
            "accuracy_relational": float(right[k >= 3].mean())}


__all__ = ["VQATask", "majority_baseline", "vqa_eval"]
