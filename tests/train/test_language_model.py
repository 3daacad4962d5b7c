"""Language models through the one loop: text data as windows, the next-token task, the run folder's tokenizer
and sample, ``dlbasics generate``. A one-hot bigram model stands in for the zoo's text models here."""

import json

import numpy as np
import pytest

import dlbasics as dl
import dlbasics.nn.functional as F
from dlbasics import models, nn
from dlbasics.cli import main
from dlbasics.errors import ConfigError
from dlbasics.models.registry import MODELS
from dlbasics.train.config import RunConfig, load_data
from dlbasics.train.language_model import generate

RECIPE = {"steps": 40, "batch_size": 16, "block_size": 16, "optimizer": "adamw", "lr": 2e-2, "scheduler": "cosine",
          "warmup": 5, "clip_grad_norm": 1.0, "eval_every": 20}


class OneHotLM(nn.Module):
    """logits[b, t] = W onehot(x[b, t]) + c: a bigram model, the next token from the last one alone."""

    def __init__(self, vocab_size: int, block_size: int) -> None:
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.head = nn.Linear(vocab_size, vocab_size)

    def forward(self, idx):
        return self.head(F.one_hot(idx, self.vocab_size).float())  # (B, T, V)


@pytest.fixture
def onehot_lm(monkeypatch):
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    models.register("onehot_lm", paper="none", default_data="shakespeare", task="language_model",
                    recipe=RECIPE)(OneHotLM)


def test_a_text_model_trains_from_its_recipe_and_leaves_a_tokenizer_and_a_sample(onehot_lm, tmp_path, capsys):
    assert main(["train", "--model", "onehot_lm", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    run = tmp_path / "r"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["best_val_loss"] <= summary["val_loss"]
    assert summary["val_loss"] < 3.9  # ln 65 = 4.17 knows nothing; 40 steps learn the letters' frequencies
    config = json.loads((run / "config.json").read_text())["run"]
    assert config["task"] == "language_model" and config["model"]["vocab_size"] == 65
    assert config["algorithm"]["optimizer"] == "adamw" and config["data"]["block_size"] == 16
    assert json.loads((run / "tokenizer.json").read_text())  # the vocabulary, as JSON
    sample = (run / "sample.txt").read_text()
    assert sample.startswith("\n") and len(sample) == 301
    capsys.readouterr()
    assert main(["generate", str(run), "--prompt", "ROMEO:", "--tokens", "50", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("ROMEO:") and len(first.rstrip("\n")) >= 50
    main(["generate", str(run), "--prompt", "ROMEO:", "--tokens", "50", "--seed", "3"])
    assert capsys.readouterr().out == first  # seeded
    assert main(["generate", str(run), "--prompt", "ROMEO\u20ac"]) == 2
    assert "U+20AC" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--split", "val"]) == 0
    assert f"val_loss {summary['val_loss']:.4f}" in capsys.readouterr().out


def test_top_k_1_is_the_greedy_continuation():
    dl.manual_seed(0)
    model = OneHotLM(7, 4)
    out = generate(model, [[1, 2]], 6, block_size=4, top_k=1, generator=0)
    idx = [1, 2]
    for _ in range(6):
        logits = model(dl.tensor(np.array([idx[-4:]]))).data[0, -1]
        idx.append(int(np.argmax(logits)))
    assert out.tolist() == [idx]
    with pytest.raises(ValueError, match="temperature"):
        generate(model, [[1]], 2, block_size=4, temperature=0)


def test_any_text_file_trains_as_characters_or_words(onehot_lm, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("the cat sat on the mat. the dog sat on the log.\n" * 40, encoding="utf-8")
    cfg = RunConfig.from_options(model="onehot_lm", data=f"text:{path}", tokenizer="word", block_size=8)
    assert cfg.data.name == "text" and cfg.data.options["path"] == str(path)
    splits = load_data(cfg)
    assert splits.info.task == "language_modeling" and splits.info.num_classes == 4 + 8  # 4 specials, 8 words
    x, y = splits.train[0]
    np.testing.assert_array_equal(x[1:], y[:-1])  # y is x shifted by one token


@pytest.mark.parametrize("options, message", [
    ({"data": "digits:3"}, "the data set 'digits' takes no NAME:VALUE argument"),
    ({"model": "onehot_lm", "mixup": 0.2}, "mixes class labels; the data set 'shakespeare' is a language modeling"),
    ({"model": "onehot_lm", "loss": "mse"}, "use cross_entropy"),
    ({"model": "mlp", "task": "language_model"}, "trains on text; the data set 'digits' is a classification task"),
])
def test_mistakes_with_text_are_one_line_errors(onehot_lm, options, message):
    from dlbasics.train.commands import _prepare

    with pytest.raises(ConfigError, match=message):
        _prepare(RunConfig.from_options(options))
