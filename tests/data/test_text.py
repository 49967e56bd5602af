"""Tokenisation and the vocabulary (notes §6.2)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from divekit.data.text import Vocab, tokenize
from divekit.errors import DataError


def test_tokenize_words_and_characters():
    assert tokenize(["the time  machine", ""], "word") == [["the", "time", "machine"], []]
    assert tokenize(["ab c"], "char") == [["a", "b", " ", "c"]]
    with pytest.raises(ValueError, match="unknown token type"):
        tokenize(["x"], "byte")


def test_order_unk_reserved_then_frequency_with_ties_by_first_appearance():
    tokens = [["b", "a", "c"], ["a", "d", "c", "a"]]  # a:3, c:2, b:1, d:1 (b seen before d)
    vocab = Vocab(tokens, reserved_tokens=["<pad>", "<bos>"])
    assert vocab.idx_to_token == ["<unk>", "<pad>", "<bos>", "a", "c", "b", "d"]
    assert vocab.token_freqs == [("a", 3), ("c", 2), ("b", 1), ("d", 1)]
    assert len(vocab) == 7 and vocab.unk == 0


def test_min_freq_maps_rare_tokens_to_unk():
    vocab = Vocab(["a", "a", "b", "c", "c"], min_freq=2)
    assert vocab.idx_to_token == ["<unk>", "a", "c"]
    assert vocab["b"] == 0 and vocab["never seen"] == 0


def test_getitem_nested_lists_and_tuples_and_to_tokens():
    vocab = Vocab(list("abcab"))
    assert vocab[["a", ("b", "c")]] == [1, [2, 3]]
    assert vocab.to_tokens([1, [2, 3]]) == ["a", ["b", "c"]]
    assert vocab.to_tokens(torch.tensor([3, 1])) == ["c", "a"]
    assert vocab.to_tokens(2) == "b"


def test_ngram_vocabulary_treats_tuples_as_tokens_even_unknown_ones():
    words = "the time machine by the time".split()
    bigrams = Vocab(list(zip(words[:-1], words[1:])))
    assert bigrams[("the", "time")] == 1
    assert bigrams[("no", "such")] == 0  # one unknown bigram, not two unknown words
    assert bigrams[[("the", "time"), ("no", "such")]] == [1, 0]


def test_json_round_trip_keeps_order_counts_and_ngram_tokens(tmp_path):
    vocab = Vocab([("a", "b"), ("b", "c"), ("a", "b")], reserved_tokens=["<pad>"])
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocab.load(tmp_path / "vocab.json")
    assert loaded == vocab and loaded.token_freqs == vocab.token_freqs
    assert loaded[("x", "y")] == 0 and loaded[("b", "c")] == vocab[("b", "c")]


@pytest.mark.parametrize("text", ["not json", '{"idx_to_token": ["a", "<unk>"]}', '{"idx_to_token": ["<unk>", "a", "a"]}'])
def test_corrupt_vocabulary_is_one_clear_error(text):
    with pytest.raises(DataError, match="vocabulary|not a saved"):
        Vocab.from_json(text)


@given(st.lists(st.lists(st.sampled_from("abcdefg"), max_size=8), max_size=8), st.integers(0, 3))
@settings(max_examples=60, deadline=None)
def test_vocab_properties(lines, min_freq):
    vocab = Vocab(lines, min_freq=min_freq)
    counts = [c for _, c in vocab.token_freqs]
    assert counts == sorted(counts, reverse=True)
    kept = [t for t, c in vocab.token_freqs if c >= min_freq]
    assert vocab.idx_to_token == ["<unk>", *kept]  # every kept token, most frequent first
    flat = [t for line in lines for t in line]
    first_seen = {t: flat.index(t) for t, _ in vocab.token_freqs}
    for (a, ca), (b, cb) in zip(vocab.token_freqs, vocab.token_freqs[1:]):
        assert ca > cb or first_seen[a] < first_seen[b]  # ties in order of first appearance
    ids = vocab[lines]
    assert vocab.to_tokens(ids) == [[t if vocab[t] else "<unk>" for t in line] for line in lines]
    assert Vocab.from_json(vocab.to_json()) == vocab
