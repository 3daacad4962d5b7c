"""Sort-of-CLEVR (Santoro et al. 2017, "A simple neural network module for relational reasoning"): visual question
answering where half of the questions are about relations between objects.

A scene is a 64 x 64 image with 6 objects of 6 distinct colours (red, green, blue, orange, grey, yellow), each a
circle or a square of the same size, not overlapping, on a black background by default - the paper's is white; with
the same recipe the PyTorch twin of CNN+MLP left its chance plateau after about 1,200 steps on black and 1,800 on
white, as ReLU features start from zero where there is nothing. With ``one_per_cell`` (the default), no two centres
fall in the same 16 x 16 cell, so that each of the 16 cells of the models' last feature map - a relation network's
"objects" - is centred on one object at most. A question is an 11-d binary vector:
the colour it asks about (6, one-hot), relational or not (2), and which of 3 questions (3):

    non-relational   0: the shape of the <colour> object?        circle / square
                     1: is the <colour> object on the left?        yes / no
                     2: is the <colour> object on top?             yes / no
    relational       0: the shape of the object closest to <colour>?     circle / square
                     1: the shape of the object furthest from <colour>?  circle / square
                     2: how many objects have the shape of <colour>'s?   1 .. 6

An answer is one of 10 classes: yes, no, square, circle, 1, 2, 3, 4, 5, 6 (the paper's order). Every image gets
``questions`` questions of each kind (the paper: 10 and 10), each about a random colour and subtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics.data.dataset import DatasetInfo, Splits, StackedItems
from dlbasics.data.datasets.shapes import shape_mask
from dlbasics.tensor import Tensor

SIZE = 64
COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 0.6, 0.0), "blue": (0.0, 0.0, 1.0), "orange": (1.0, 0.55, 0.0),
           "grey": (0.5, 0.5, 0.5), "yellow": (0.95, 0.9, 0.0)}
ANSWERS = ("yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6")
QUESTIONS = ("shape", "left", "top", "closest shape", "furthest shape", "count same shape")
YES, NO, SQUARE, CIRCLE = 0, 1, 2, 3
RADIUS = 5  # every object's half-width
CELL = 16  # with one_per_cell, no two centres share a cell of this 4 x 4 grid


def scenes(n: int, seed: Any = 0, questions: int = 10, background: str = "black",
           one_per_cell: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` scenes: images (n, 3, 64, 64) float32 in [0, 1]; questions (n, 2 * questions, 11) float32; answers
    (n, 2 * questions) int64 (the first ``questions`` non-relational, the rest relational)."""
    if background not in ("black", "white"):
        raise ValueError(f"background must be 'black' or 'white', got {background!r}")
    rng = np.random.default_rng(seed)
    images = np.full((n, 3, SIZE, SIZE), 1.0 if background == "white" else 0.0, np.float32)
    qs = np.zeros((n, 2 * questions, 11), np.float32)
    answers = np.zeros((n, 2 * questions), np.int64)
    palette = np.array(list(COLOURS.values()), np.float32)
    for i in range(n):
        centres = []
        while len(centres) < 6:  # 6 non-overlapping objects, a pixel apart at least
            c = rng.uniform(RADIUS + 1, SIZE - RADIUS - 1, 2)
            if all(np.abs(c - o).max() > 2 * RADIUS + 2 for o in centres) and not (
                    one_per_cell and any((c // CELL == o // CELL).all() for o in centres)):
                centres.append(c)
        centres = np.array(centres)
        square = rng.random(6) < 0.5
        for k in range(6):
            m = shape_mask(2 if square[k] else 1, centres[k, 0], centres[k, 1], RADIUS)
            images[i][:, m] = palette[k][:, None]
        dist = np.linalg.norm(centres[:, None] - centres[None], axis=2)
        for q in range(2 * questions):
            colour, relational, sub = int(rng.integers(6)), q >= questions, int(rng.integers(3))
            qs[i, q, colour] = 1.0
            qs[i, q, 6 + int(relational)] = 1.0
            qs[i, q, 8 + sub] = 1.0
            if not relational:
                if sub == 0:
                    a = SQUARE if square[colour] else CIRCLE
                else:  # left: x < half; top: y < half
                    a = YES if centres[colour, 0 if sub == 1 else 1] < SIZE / 2 else NO
            elif sub in (0, 1):
                d = dist[colour].copy()
                d[colour] = np.inf if sub == 0 else -np.inf
                other = int(d.argmin() if sub == 0 else d.argmax())
                a = SQUARE if square[other] else CIRCLE
            else:
                a = 4 + int((square == square[colour]).sum()) - 1  # "1" is class 4
            answers[i, q] = a
    return images, qs, answers


def question_type(questions: np.ndarray) -> np.ndarray:
    """The index into ``QUESTIONS`` of each question (..., 11): 3 * relational + subtype."""
    q = np.asarray(questions)
    return 3 * q[..., 7].astype(np.int64) + q[..., 8:11].argmax(-1)


_TEMPLATES = ("What shape is the {} object?", "Is the {} object on the left?", "Is the {} object on top?",
              "What shape is the object closest to the {} one?", "What shape is the object furthest from the {} one?",
              "How many objects have the shape of the {} one?")


def describe(question: np.ndarray) -> str:
    """A question vector (11,) in words: "Is the red object on the left?"."""
    q = np.asarray(question)
    return _TEMPLATES[int(question_type(q))].format(list(COLOURS)[int(q[:6].argmax())])


class QuestionsAboutImages:
    """(image, question) -> answer samples; each image is stored once for its many questions. A batch collates
    to ((images (B, 3, H, W), questions (B, 11)), answers (B,)), so a model is called ``model(images, questions)``."""

    def __init__(self, images: np.ndarray, questions: np.ndarray, answers: np.ndarray) -> None:
        n, per = answers.shape
        self.images = images
        self.questions = questions.reshape(n * per, -1)
        self.answers = answers.reshape(-1)
        self.image_index = np.repeat(np.arange(n), per)

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, i: int) -> tuple[tuple[np.ndarray, np.ndarray], np.int64]:
        return (self.images[self.image_index[i]], self.questions[i]), self.answers[i]

    def __getitems__(self, indices: np.ndarray) -> StackedItems:
        indices = np.asarray(indices)
        return StackedItems([self.images[self.image_index[indices]], self.questions[indices], self.answers[indices]])

    @staticmethod
    def collate_fn(items: Any) -> tuple[tuple[Tensor, Tensor], Tensor]:
        if isinstance(items, StackedItems):
            images, questions, answers = items.columns
        else:
            images = np.stack([s[0][0] for s in items])
            questions = np.stack([s[0][1] for s in items])
            answers = np.array([s[1] for s in items], np.int64)
        make = lambda a: Tensor._make(a, False, None)  # noqa: E731
        return (make(images), make(questions)), make(answers)


INFO = DatasetInfo("sort-of-clevr", "vqa", (3, SIZE, SIZE), num_classes=len(ANSWERS), classes=ANSWERS,
                   model_options={"question_size": 11})


def sort_of_clevr(n_train: int = 9800, n_val: int = 100, n_test: int = 200, questions: int = 10,
                  background: str = "black", seed: int = 0) -> Splits:
    """The Sort-of-CLEVR splits (the paper: 9,800 training and 200 test images, 10 + 10 questions each)."""
    parts = []
    for stream, n in enumerate((n_train, n_val, n_test)):
        if n < 1:
            raise ValueError(f"{('n_train', 'n_val', 'n_test')[stream]} must be >= 1, got {n}")
        parts.append(QuestionsAboutImages(*scenes(n, [seed, 10 + stream], questions, background)))
    return Splits(*parts, INFO)


__all__ = ["ANSWERS", "COLOURS", "QUESTIONS", "QuestionsAboutImages", "describe", "question_type", "scenes",
           "sort_of_clevr"]
