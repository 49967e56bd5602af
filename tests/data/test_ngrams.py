"""N-gram statistics (notes §6.3.1) and their exact values on The Time Machine."""

from __future__ import annotations

import pytest

from divekit.data import load_dataset
from divekit.data.ngrams import ngrams, top_ngrams, zipf_frequencies
from divekit.data.text import tokenize
from tests.helpers import shared_data


def test_ngrams_are_shifted_zips():
    tokens = "a b c d".split()
    assert ngrams(tokens, 1) == [("a",), ("b",), ("c",), ("d",)]
    assert ngrams(tokens, 3) == [("a", "b", "c"), ("b", "c", "d")]
    assert ngrams(tokens, 5) == []
    with pytest.raises(ValueError):
        ngrams(tokens, 0)


def test_counts_sorted_with_ties_in_order_of_appearance():
    tokens = "x y x y z x".split()
    assert top_ngrams(tokens, 1, 2) == [("x", 3), ("y", 2)]
    assert top_ngrams(tokens, 2, 3) == [(("x", "y"), 2), (("y", "x"), 1), (("y", "z"), 1)]
    freqs = zipf_frequencies(tokens)
    assert freqs[1] == [3, 2, 1] and sum(freqs[2]) == 5 and sum(freqs[3]) == 4


def test_time_machine_top_bigram_and_trigram():
    corpus = load_dataset("timemachine", data_dir=str(shared_data("timemachine")))
    words = [w for line in tokenize(corpus.lines(), "word") for w in line]
    assert top_ngrams(words, 2, 1) == [(("of", "the"), 309)]
    assert top_ngrams(words, 3, 1) == [(("the", "time", "traveller"), 59)]
