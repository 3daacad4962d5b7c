"""Visual question answering as a task of the one loop: the supervised step on ((images, questions), answers), the
model called as ``model(images, questions)``; validation splits the accuracy into non-relational and relational
questions and by question type (Sort-of-CLEVR's six), beside the majority answer of each type - the score of a model
that ignores the image. A run folder gets ``predictions.png``: test images with questions in words and the model's
answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.tensor import Tensor
from dlbasics.train.task import TASKS, SupervisedTask, batch_size, evaluating, forward, split_batch


@TASKS.register("vqa", help="answer a question about an image: cross-entropy; accuracy by question type")
class VQATask(SupervisedTask):
    """The supervised step; ``evaluate`` gives the loss, the accuracy, and the accuracy on non-relational and on
    relational questions and per question type."""

    # its evaluation gives accuracies by question type, not one mean over samples
    data_parallel = False

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

    def write_outputs(self, out_dir: Any, cfg: Any, splits: Any) -> None:
        test = splits.test
        if not hasattr(test, "image_index"):  # a VQA data set of another shape: no figure
            return
        n_images = min(4, int(test.image_index.max()) + 1)
        per = len(test) // (int(test.image_index.max()) + 1)
        # two non-relational and two relational questions of each image (Sort-of-CLEVR asks the relational last)
        picks = np.concatenate([i * per + np.array([0, 1, per - 2, per - 1]) for i in range(n_images)])
        images, questions, answers = test.__getitems__(picks).columns
        with evaluating(self.model):
            predicted = forward(self.model, (Tensor._make(images, False, None), Tensor._make(questions, False, None)))
        draw_answers(images[::4], questions.reshape(n_images, 4, -1), answers.reshape(n_images, 4),
                     predicted.data.argmax(1).reshape(n_images, 4), Path(out_dir) / "predictions.png")


def draw_answers(images: np.ndarray, questions: np.ndarray, answers: np.ndarray, predicted: np.ndarray,
                 path: Path) -> None:
    """Each image (N, 3, H, W) above its questions (N, Q, 11) in words with the predicted answer, green where it is
    the true one (answers and predicted (N, Q) class indices) and red with the truth beside it where not."""
    from matplotlib.figure import Figure

    from dlbasics.data.datasets.clevr import ANSWERS, describe
    from dlbasics.io import write_png
    from dlbasics.train.segmentation import rgb_pixels

    n, q = answers.shape
    fig = Figure(figsize=(3.6 * n, 3.2 + 0.3 * q), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n))
    for i, ax in enumerate(axes):
        ax.imshow(rgb_pixels(images[i:i + 1])[0], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for j in range(q):
            right = predicted[i, j] == answers[i, j]
            truth = "" if right else f" (true: {ANSWERS[answers[i, j]]})"
            ax.text(0.0, -0.04 - 0.2 * j, f"{describe(questions[i, j])}\n→ {ANSWERS[predicted[i, j]]}{truth}",
                    transform=ax.transAxes, va="top", fontsize=7, color="tab:green" if right else "tab:red")
    write_png(fig, path)


def vqa_eval(model: Any, loader: Iterable, loss_fn: Any) -> dict[str, float]:
    """Loss and accuracies over ``loader`` (batches ((images, questions), answers))."""
    from dlbasics.data.datasets.clevr import question_type

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
    return {"loss": loss_sum / max(n, 1)} | vqa_accuracies(np.concatenate(right), np.concatenate(kinds))


def vqa_accuracies(right: np.ndarray, kind: np.ndarray) -> dict[str, float]:
    """The accuracy overall, on non-relational and relational questions and per question type, from whether each
    answer was right (M,) and its question type (M,) (``question_type``; 0-2 non-relational)."""
    from dlbasics.data.datasets.clevr import QUESTIONS

    out = {"accuracy": float(right.mean()),
           "accuracy_nonrelational": float(right[kind < 3].mean()) if (kind < 3).any() else float("nan"),
           "accuracy_relational": float(right[kind >= 3].mean()) if (kind >= 3).any() else float("nan")}
    for k, name in enumerate(QUESTIONS):
        if (kind == k).any():
            out[f"accuracy_{name.replace(' ', '_')}"] = float(right[kind == k].mean())
    return out


def majority_baseline(train_questions: np.ndarray, train_answers: np.ndarray, questions: np.ndarray,
                      answers: np.ndarray) -> dict[str, float]:
    """The accuracy of answering each question type with its most common training answer (no image, no colour)."""
    from dlbasics.data.datasets.clevr import question_type

    kt, k = question_type(train_questions), question_type(questions)
    guess = np.array([np.bincount(train_answers[kt == t], minlength=10).argmax() for t in range(6)])
    return vqa_accuracies(guess[k] == answers, k)


__all__ = ["VQATask", "draw_answers", "majority_baseline", "vqa_accuracies", "vqa_eval"]
