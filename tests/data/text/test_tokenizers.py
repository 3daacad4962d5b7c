"""CharTokenizer and WordTokenizer: round trips, vocabulary order, special ids, unknowns, saving as JSON."""

import json

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.data.text import CharTokenizer, WordTokenizer, load_tokenizer, tokenizer_from_dict
from dlbasics.errors import ConfigError, DataError, DataNotFoundError

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak."


# ---- characters ------------------------------------------------------------------------------------------------
def test_char_vocabulary_is_the_sorted_characters_as_nanogpt():
    tok = CharTokenizer.fit(TEXT)
    chars = sorted(set(TEXT))  # nanoGPT's prepare.py
    assert tok.itos == chars and tok.vocab_size == len(chars) == len(tok)
    assert tok.stoi == {ch: i for i, ch in enumerate(chars)}


def test_char_round_trip_and_dtype():
    tok = CharTokenizer.fit(TEXT)
    ids = tok.encode(TEXT)
    assert ids.dtype == np.int64 and ids.shape == (len(TEXT),)
    assert ids.tolist() == [tok.stoi[c] for c in TEXT]
    assert tok.decode(ids) == TEXT
    assert tok.decode(ids.tolist()) == TEXT
    assert tok.decode(dl.tensor(ids)) == TEXT
    assert tok.encode("").shape == (0,) and tok.decode([]) == ""


def test_char_beyond_ascii():
    text = "¿Qué tal? 你好 🙂"
    tok = CharTokenizer.fit(text)
    assert tok.decode(tok.encode(text)) == text


def test_char_unknown_character_is_a_one_line_error_naming_it():
    tok = CharTokenizer.fit("abc")
    with pytest.raises(DataError, match=r"character 'z' \(U\+007A\) at position 2 .*vocabulary of 3 characters") as e:
        tok.encode("abz")
    assert "\n" not in str(e.value)


def test_char_unk_maps_unknown_characters_and_keeps_the_ids():
    plain = CharTokenizer.fit("abc")
    tok = CharTokenizer.fit("abc", unk="<unk>")
    assert tok.itos[:3] == plain.itos and tok.unk_id == 3 and tok.vocab_size == 4
    assert tok.encode("axc").tolist() == [0, 3, 2]
    assert tok.decode([0, 3, 2]) == "a<unk>c"
    own = CharTokenizer.fit("abc?", unk="?")  # an unk that is a character of the text keeps its place
    assert own.vocab_size == 4 and own.encode("a!").tolist() == [own.stoi["a"], own.stoi["?"]]


def test_char_decode_rejects_ids_outside_the_vocabulary():
    tok = CharTokenizer.fit("abc")
    with pytest.raises(ValueError, match=r"token id 3 \(at position 1\) is outside the vocabulary 0..2"):
        tok.decode([0, 3])
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        tok.decode(np.zeros((2, 2), dtype=np.int64))


def test_char_bad_vocabularies():
    with pytest.raises(ConfigError, match="one character"):
        CharTokenizer(["a", "bc"])
    with pytest.raises(ConfigError, match="'a' appears twice"):
        CharTokenizer(["a", "a"])
    with pytest.raises(DataError, match="empty"):
        CharTokenizer.fit("")


@pytest.mark.parametrize("unk", [None, "<unk>", "?"])
def test_char_save_load_round_trip(tmp_path, unk):
    tok = CharTokenizer.fit(TEXT + "?", unk=unk)
    path = tmp_path / "sub" / "tok.json"
    tok.save(path)
    state = json.loads(path.read_text(encoding="utf-8"))
    assert state["type"] == "char" and state["unk"] == unk
    for again in (CharTokenizer.load(path), load_tokenizer(path), tokenizer_from_dict(tok.to_dict())):
        assert again == tok and again.itos == tok.itos and again.unk_id == tok.unk_id
        assert again.encode(TEXT).tolist() == tok.encode(TEXT).tolist()
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write left no temp file


# ---- words -----------------------------------------------------------------------------------------------------
def test_word_punctuation_split_and_lowercasing():
    tok = WordTokenizer([])
    assert tok.tokenize("Hello, world!") == ["hello", ",", "world", "!"]
    assert tok.tokenize("Don't stop...  now") == ["don", "'", "t", "stop", ".", ".", ".", "now"]
    assert tok.tokenize("¿Qué tal?") == ["¿", "qué", "tal", "?"]
    assert WordTokenizer([], lower=False).tokenize("Hello, World") == ["Hello", ",", "World"]


def test_word_special_tokens_come_first():
    tok = WordTokenizer.fit("a b")
    assert tok.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert tok.encode("a", add_bos=True, add_eos=True).tolist() == [2, tok.stoi["a"], 3]


def test_word_vocabulary_order_min_freq_and_max_size():
    text = "b a c b a b d ."
    tok = WordTokenizer.fit(text)
    assert tok.itos[4:] == ["b", "a", ".", "c", "d"]  # by count (3, 2, 1, 1, 1), ties in token order
    assert WordTokenizer.fit(text, min_freq=2).itos[4:] == ["b", "a"]
    assert WordTokenizer.fit(text, max_size=3).itos[4:] == ["b", "a", "."]  # specials not counted
    assert WordTokenizer.fit([text, "d d d"]).itos[4:6] == ["d", "b"]  # counts over many texts
    with pytest.raises(ConfigError, match="min_freq"):
        WordTokenizer.fit(text, min_freq=0)
    with pytest.raises(ConfigError, match="max_size"):
        WordTokenizer.fit(text, max_size=-1)


def test_word_unknown_words_and_round_trip():
    tok = WordTokenizer.fit("the cat sat on the mat.")
    ids = tok.encode("The dog sat.")
    assert ids.dtype == np.int64
    assert ids.tolist() == [tok.stoi["the"], tok.unk_id, tok.stoi["sat"], tok.stoi["."]]
    assert tok.decode(ids) == "the <unk> sat ."
    text = "The cat sat on the mat."
    assert tok.decode(tok.encode(text)) == " ".join(tok.tokenize(text)) == "the cat sat on the mat ."


def test_word_decode_skips_special_tokens_on_request():
    tok = WordTokenizer.fit("hello world")
    ids = [tok.bos_id, tok.stoi["hello"], tok.unk_id, tok.eos_id, tok.pad_id, tok.pad_id]
    assert tok.decode(ids) == "hello <unk>"
    assert tok.decode(ids, skip_special=False) == "<bos> hello <unk> <eos> <pad> <pad>"


def test_word_literal_special_token_in_text_is_not_a_word():
    tok = WordTokenizer.fit("<unk> <pad> x")
    assert "<unk>" not in tok.itos[4:] and tok.encode("<pad>").tolist() == [tok.stoi["<"], tok.stoi["pad"],
                                                                           tok.stoi[">"]]


def test_word_bad_vocabularies():
    with pytest.raises(ConfigError, match="special token"):
        WordTokenizer(["<pad>"])
    with pytest.raises(ConfigError, match="'x' appears twice"):
        WordTokenizer(["x", "x"])
    with pytest.raises(ConfigError, match="capitals"):
        WordTokenizer(["Hello"])
    assert WordTokenizer(["Hello"], lower=False).encode("Hello").tolist() == [4]


@pytest.mark.parametrize("lower", [True, False])
def test_word_save_load_round_trip(tmp_path, lower):
    tok = WordTokenizer.fit([TEXT, "Ünïcode wörds"], lower=lower, min_freq=1)
    path = tmp_path / "words.json"
    tok.save(path)
    for again in (WordTokenizer.load(path), load_tokenizer(path)):
        assert again == tok and again.lower == lower
        assert again.encode(TEXT, add_bos=True).tolist() == tok.encode(TEXT, add_bos=True).tolist()
    with pytest.raises(DataError, match="holds a 'word' tokenizer, not a 'char' one"):
        CharTokenizer.load(path)


def test_load_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="no tokenizer file"):
        load_tokenizer(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not a tokenizer file"):
        load_tokenizer(bad)
    bad.write_text('{"type": "bpe"}', encoding="utf-8")
    with pytest.raises(DataError, match="no 'type' among char, word"):
        load_tokenizer(bad)
