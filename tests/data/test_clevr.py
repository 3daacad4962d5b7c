"""Sort-of-CLEVR: every answer is recomputed from the image's pixels alone (each colour's object: its shape from its
area, its position from its pixels' mean) and agrees with the generator's."""

import numpy as np
import pytest

from dlbasics.data import DataLoader
from dlbasics.data.datasets import load
from dlbasics.data.datasets.clevr import ANSWERS, COLOURS, QUESTIONS, describe, question_type, scenes


def objects_from_pixels(image):
    """(centres (6, 2) as (x, y), square (6,) bool) of the 6 coloured objects, read from the image."""
    centres, square = [], []
    for rgb in COLOURS.values():
        m = np.all(np.abs(image - np.array(rgb, np.float32)[:, None, None]) < 1e-6, axis=0)
        ys, xs = np.nonzero(m)
        centres.append((xs.mean() + 0.5, ys.mean() + 0.5))
        square.append(m.sum() >= 95)  # a 10 x 10 square has 100 pixels, a disc of radius 5 about 81
    return np.array(centres), np.array(square)


def answer(centres, square, q):
    colour, relational, sub = int(q[:6].argmax()), bool(q[7]), int(q[8:].argmax())
    shape = lambda k: "square" if square[k] else "circle"  # noqa: E731
    if not relational:
        if sub == 0:
            return shape(colour)
        position = centres[colour, sub - 1]
        if abs(position - 32) < 1:  # the pixels' mean is within a pixel of the true centre: too close to the middle
            return None
        return "yes" if position < 32 else "no"
    d = np.linalg.norm(centres - centres[colour], axis=1)
    others = np.sort(np.delete(d, colour))
    if sub in (0, 1) and (others[1] - others[0] < 1 if sub == 0 else others[-1] - others[-2] < 1):
        return None  # two objects at nearly the same distance: the pixels' centres cannot tell which is nearer
    if sub == 0:
        d[colour] = np.inf
        return shape(int(d.argmin()))
    if sub == 1:
        return shape(int(d.argmax()))
    return str(int((square == square[colour]).sum()))


def test_every_answer_follows_from_the_pixels():
    images, questions, answers = scenes(40, seed=7, questions=10)
    assert images[:, :, 0, 0].max() == 0 and scenes(1, seed=7, background="white")[0][0, :, 0, 0].min() == 1
    assert images.shape == (40, 3, 64, 64) and questions.shape == (40, 20, 11) and answers.shape == (40, 20)
    for img, qs, ans in zip(images, questions, answers):
        centres, square = objects_from_pixels(img)
        for q, a in zip(qs, ans):
            expected = answer(centres, square, q)
            assert expected is None or ANSWERS[a] == expected
    kinds = question_type(questions)
    assert (kinds[:, :10] < 3).all() and (kinds[:, 10:] >= 3).all()  # 10 non-relational, then 10 relational
    assert len(QUESTIONS) == 6 and set(np.unique(kinds)) == set(range(6))


def test_the_data_set_batches_images_with_their_questions():
    splits = load("sort-of-clevr", n_train=5, n_val=2, n_test=2, questions=3)
    assert splits.info.task == "vqa" and len(splits.train) == 5 * 6 and splits.info.model_options["question_size"] == 11
    (images, questions), answers = next(iter(DataLoader(splits.train, batch_size=8, shuffle=True, seed=0)))
    assert images.shape == (8, 3, 64, 64) and questions.shape == (8, 11) and answers.shape == (8,)
    (one_image, one_question), one_answer = splits.train[4]
    assert one_answer == splits.train.answers[4]
    assert np.array_equal(one_image, splits.train.images[0]) and one_question.shape == (11,)  # image 0's 5th question
    with pytest.raises(ValueError, match="n_test must be >= 1"):
        load("sort-of-clevr", n_test=0)


def test_questions_in_words():
    _, questions, _ = scenes(3, seed=1, questions=10)
    for q in questions.reshape(-1, 11):
        text, colour = describe(q), list(COLOURS)[int(q[:6].argmax())]
        assert f"the {colour} o" in text and text.endswith("?")
        assert ("closest" in text) == (question_type(q) == 3) and ("How many" in text) == (question_type(q) == 5)
