"""WordTokenizer's extra special tokens (BERT's <mask>): ids, what encode and decode do with them, saving as JSON."""

import json

import numpy as np
import pytest

from dlbasics.data.text import MASK_TOKEN, WordTokenizer, load_tokenizer, tokenizer_from_dict
from dlbasics.errors import ConfigError, DataError

TEXT = "the cat sat on the mat . the dog sat too"


def test_extra_specials_follow_the_four_and_words_follow_them():
    tok = WordTokenizer.fit(TEXT, extra_specials=(MASK_TOKEN, "<sep>"))
    assert tok.itos[:6] == ["<pad>", "<unk>", "<bos>", "<eos>", "<mask>", "<sep>"]
    assert tok.itos[6:] == WordTokenizer.fit(TEXT).itos[4:]  # the same words in the same order, shifted by two
    assert tok.specials == ("<pad>", "<unk>", "<bos>", "<eos>", "<mask>", "<sep>")
    assert tok.extra_specials == ("<mask>", "<sep>")
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert tok.special_ids == (0, 2, 3, 4, 5)  # every special but <unk>
    assert tok.encode("the", add_bos=True, add_eos=True).tolist() == [2, 6, 3]


def test_max_size_does_not_count_specials():
    assert len(WordTokenizer.fit(TEXT, max_size=3, extra_specials=(MASK_TOKEN,)).itos) == 5 + 3


def test_without_mask_mask_id_is_an_error_naming_the_specials():
    tok = WordTokenizer.fit(TEXT)
    assert tok.special_ids == (0, 2, 3) and tok.extra_specials == ()
    with pytest.raises(ConfigError, match=r"no <mask> token \(its special tokens are <pad>, <unk>, <bos>, <eos>\); "
                                          r"fit it with extra_specials=\('<mask>',\)") as e:
        _ = tok.mask_id
    assert "\n" not in str(e.value)


def test_text_never_encodes_as_a_special_token():
    tok = WordTokenizer.fit(TEXT + " <mask> [cls] cls", extra_specials=(MASK_TOKEN, "cls"))
    assert "<mask>" not in tok.itos[6:] and "cls" not in tok.itos[6:]  # never counted as words
    ids = tok.encode("the <mask> cls")
    assert tok.mask_id not in ids.tolist() and tok.stoi["cls"] not in ids.tolist()
    assert ids.tolist() == [tok.stoi["the"], tok.stoi["<"], tok.stoi["mask"], tok.stoi[">"], tok.unk_id]


def test_decode_skips_every_special_but_unk():
    tok = WordTokenizer.fit(TEXT, extra_specials=(MASK_TOKEN,))
    ids = np.array([tok.bos_id, tok.stoi["the"], tok.mask_id, tok.unk_id, tok.eos_id, tok.pad_id])
    assert tok.decode(ids) == "the <unk>"
    assert tok.decode(ids, skip_special=False) == "<bos> the <mask> <unk> <eos> <pad>"


@pytest.mark.parametrize(("extras", "message"), [
    ("<mask>", r"extra_specials takes a sequence of tokens, e.g. \('<mask>',\)"),
    (("<unk>",), "'<unk>' is one of the fixed special tokens"),
    (("<mask>", "<mask>"), "'<mask>' appears twice in extra_specials"),
    (("",), "non-empty strings"),
])
def test_bad_extra_specials(extras, message):
    with pytest.raises(ConfigError, match=message):
        WordTokenizer(["a"], extra_specials=extras)


def test_a_word_may_not_be_an_extra_special():
    with pytest.raises(ConfigError, match=r"'<mask>' is a special token \(ids 0..4 are <pad>, <unk>, <bos>, <eos>, "
                                          "<mask>\\)"):
        WordTokenizer(["<mask>"], extra_specials=(MASK_TOKEN,))


def test_json_round_trip_keeps_the_specials(tmp_path):
    tok = WordTokenizer.fit(TEXT, extra_specials=(MASK_TOKEN,))
    path = tmp_path / "tok.json"
    tok.save(path)
    state = json.loads(path.read_text(encoding="utf-8"))
    assert state["specials"] == ["<pad>", "<unk>", "<bos>", "<eos>", "<mask>"] and "<mask>" not in state["vocab"]
    for again in (WordTokenizer.load(path), load_tokenizer(path), tokenizer_from_dict(tok.to_dict())):
        assert again == tok and again.mask_id == 4 and again.special_ids == (0, 2, 3, 4)
        assert again.encode(TEXT).tolist() == tok.encode(TEXT).tolist()
    assert tok != WordTokenizer.fit(TEXT)


def test_files_without_extra_specials_still_load_and_others_fail():
    old = {"type": "word", "format": 1, "lower": True, "specials": ["<pad>", "<unk>", "<bos>", "<eos>"],
           "vocab": ["a", "b"]}
    assert tokenizer_from_dict(old).itos == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b"]
    assert tokenizer_from_dict({k: v for k, v in old.items() if k != "specials"}).vocab_size == 6
    with pytest.raises(DataError, match=r"special tokens \['<unk>', '<pad>', '<bos>', '<eos>'\] do not begin with"):
        tokenizer_from_dict(old | {"specials": ["<unk>", "<pad>", "<bos>", "<eos>"]})
    with pytest.raises(DataError, match="do not begin with"):
        tokenizer_from_dict(old | {"specials": ["<pad>", "<unk>"]})
