"""Translation data: PairTokenizer, TranslationPairs batches, the seeded split with its dedupe and filters, the
registered "pairs" and "bible-en-es" sets."""

import json

import numpy as np
import pytest

from dlbasics.data import DataLoader, Subset
from dlbasics.data import datasets as D
from dlbasics.data.datasets.translation import TranslationPairs, prepare_pairs, translation_splits
from dlbasics.data.text import (
    PairTokenizer,
    WordTokenizer,
    bible_availability,
    load_tokenizer,
    tokenizer_from_dict,
    write_pairs,
)
from dlbasics.errors import ConfigError, DataError

NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
NUMEROS = ["uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez"]


def toy_pairs() -> list[tuple[str, str]]:
    """100 distinct pairs, then two exact repeats and one that repeats after lowercasing."""
    pairs = [(f"I see {a} {b} cats.", f"Veo {x} {y} gatos.") for a, x in zip(NUMBERS, NUMEROS)
             for b, y in zip(NUMBERS, NUMEROS)]
    return [*pairs, pairs[0], pairs[5], (pairs[7][0].upper(), pairs[7][1])]


# ---- PairTokenizer ---------------------------------------------------------------------------------------------------
def pair_tokenizer() -> PairTokenizer:
    return PairTokenizer(WordTokenizer.fit("i see cats ."), WordTokenizer.fit("veo gatos ."))


def test_pair_tokenizer_encodes_source_and_target():
    tok = pair_tokenizer()
    src = tok.encode_src("I see dogs.")
    assert src.dtype == np.int64 and src.tolist() == [*tok.src.encode("i see dogs ."), 3]  # ends in <eos>
    tgt = tok.encode_tgt("Veo gatos.")
    assert tgt.tolist() == [2, tok.tgt.stoi["veo"], tok.tgt.stoi["gatos"], tok.tgt.stoi["."], 3]
    assert tok.decode_tgt(tgt) == "veo gatos ." and tok.decode_tgt([2, 1, 3, 0]) == "<unk>"
    assert (tok.src_vocab_size, tok.tgt_vocab_size, tok.vocab_size) == (8, 7, 7)


def test_pair_tokenizer_json_round_trip(tmp_path):
    tok = pair_tokenizer()
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    state = json.loads(path.read_text(encoding="utf-8"))
    assert state["type"] == "pair" and state["src"]["type"] == state["tgt"]["type"] == "word"
    for again in (PairTokenizer.load(path), load_tokenizer(path), tokenizer_from_dict(tok.to_dict())):
        assert isinstance(again, PairTokenizer) and again == tok
        assert again.encode_src("I see cats.").tolist() == tok.encode_src("I see cats.").tolist()
    with pytest.raises(DataError, match="holds a 'pair' tokenizer, not a 'word' one"):
        WordTokenizer.load(path)
    with pytest.raises(DataError, match="its 'tgt' entry is not a word tokenizer description"):
        tokenizer_from_dict({**tok.to_dict(), "tgt": {"type": "char", "format": 1, "vocab": ["a"]}})
    with pytest.raises(ConfigError, match="src must be a WordTokenizer"):
        PairTokenizer("i see", tok.tgt)


# ---- TranslationPairs and the split ----------------------------------------------------------------------------------
def test_prepare_lowercases_splits_punctuation_filters_and_dedupes():
    pairs = toy_pairs()
    prepared = prepare_pairs(pairs)
    assert len(prepared) == 100 and prepared[0] == ("i see one one cats .", "veo uno uno gatos .")
    assert len(prepare_pairs([*pairs, ("A b c d e f.", "G.")], max_words=5)) == 100  # 6 words: out
    assert len(prepare_pairs([*pairs, ("A b c d e.", "G.")], max_words=5)) == 101
    with pytest.raises(ConfigError, match="max_words must be None or a whole number >= 1"):
        prepare_pairs(pairs, max_words=0)


def test_split_sizes_vocabulary_from_training_pairs_and_info():
    splits = translation_splits(toy_pairs(), "toy", n_test=10, n_val=20, seed=0, min_freq=1)
    train, val, test = splits
    assert (len(train), len(val), len(test)) == (70, 20, 10)  # 103 pairs, 100 distinct
    everything = train.sources + val.sources + test.sources
    assert len(set(everything)) == 100  # no pair in two splits
    tok = splits.tokenizer
    assert isinstance(tok, PairTokenizer) and all(ds.tokenizer is tok for ds in splits)
    train_words = {w for s in train.references for w in s.split()}
    assert set(tok.tgt.itos[4:]) == train_words  # fitted on the training targets only
    info = splits.info
    assert (info.name, info.task, info.input_shape, info.target_shape) == ("toy", "translation", (7,), (7,))
    assert info.num_classes == tok.tgt_vocab_size == info.out_features
    assert info.model_options == {"src_vocab_size": tok.src_vocab_size, "tgt_vocab_size": tok.tgt_vocab_size}
    again = translation_splits(toy_pairs(), "toy", n_test=10, n_val=20, seed=0, min_freq=1)
    assert again.test.sources == test.sources and again.tokenizer == tok
    assert translation_splits(toy_pairs(), "toy", n_test=10, n_val=20, seed=1).test.sources != test.sources


def test_samples_and_rare_words_keep_their_text_in_references():
    splits = translation_splits(toy_pairs(), "toy", n_test=10, n_val=20, seed=0, min_freq=30)
    test = splits.test
    src, tgt = test[0]
    assert src.dtype == tgt.dtype == np.int64 and src.ndim == tgt.ndim == 1
    assert src[-1] == 3 and tgt[0] == 2 and tgt[-1] == 3
    assert (tgt == 1).any()  # every number is seen fewer than 30 times: <unk> in the ids ...
    assert test.references[0].split()[1] in {"uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho",
                                              "nueve", "diez"}  # ... but not in the reference
    assert splits.tokenizer.decode_tgt(tgt) == "veo <unk> <unk> gatos ."
    assert test[-1][0].tolist() == test[len(test) - 1][0].tolist()
    with pytest.raises(IndexError):
        test[len(test)]


def test_batches_pad_with_zero_through_the_loader_and_a_subset():
    train = translation_splits([*toy_pairs(), ("See.", "Mira.")], "toy", n_test=5, n_val=5).train
    for data in (train, Subset(train, np.arange(len(train)))):
        (src, src_lengths), (tgt, tgt_lengths) = next(iter(DataLoader(data, batch_size=len(train))))
        assert src.shape == (len(train), 7) and tgt.shape == (len(train), 7)
        assert str(src.dtype) == str(tgt.dtype) == str(src_lengths.dtype) == "int64"
        lengths = src_lengths.numpy()
        assert lengths.min() == 3  # "see ." + <eos>
        short = int(np.argmin(lengths))
        assert (src.numpy()[short, 3:] == 0).all() and tgt_lengths.numpy()[short] == 4
    assert TranslationPairs.collate_fn is not None and train.collate_fn.__name__ == "pad_collate"


def test_split_errors():
    with pytest.raises(ConfigError, match=r"val \(50\) and test \(60\) leave no training samples out of 100"):
        translation_splits(toy_pairs(), "toy", n_test=60, n_val=50)
    with pytest.raises(ConfigError, match="n_test must be a whole number of pairs >= 0"):
        translation_splits(toy_pairs(), "toy", n_test=-1)
    with pytest.raises(DataError, match="toy: no sentence pairs of at most 2 words"):
        translation_splits(toy_pairs(), "toy", max_words=2)


# ---- registered sets -------------------------------------------------------------------------------------------------
def test_pairs_file_by_name(tmp_path):
    path = tmp_path / "spa.txt"
    write_pairs(path, [(en, es, "CC-BY 2.0 (France)") for en, es in toy_pairs()])
    splits = D.load("pairs", path=str(path), n_test=10, n_val=10, min_freq=1)
    assert [len(ds) for ds in splits] == [80, 10, 10] and splits.info.name == "spa.txt"
    assert D.DATASETS.get("pairs").meta["argument"] == "path" and D.availability("pairs") is None


def test_bible_en_es_is_described_without_loading():
    info = D.describe("bible-en-es")
    assert info.task == "translation" and set(info.model_options) == {"src_vocab_size", "tgt_vocab_size"}
    reason = D.availability("bible-en-es")
    assert reason is None or reason.endswith("apt-get install diatheke sword-text-kjv sword-text-sparv")


@pytest.mark.slow
@pytest.mark.skipif(bible_availability() is not None,
                    reason="needs apt-get install diatheke sword-text-kjv sword-text-sparv")
def test_bible_en_es_matches_its_description():
    splits = D.load("bible-en-es")  # the export, about 5 s, unless cached
    assert [len(ds) for ds in splits] == [4792, 250, 250]
    assert splits.info == D.describe("bible-en-es")
    assert (splits.tokenizer.src_vocab_size, splits.tokenizer.tgt_vocab_size) == (2956, 3308)
