"""Language statistics (notes §6.3 语言模型, §6.3.1 N-gram): n-gram counts and Zipf's law.

An n-gram is ``n`` consecutive tokens of the corpus read as one stream (as
the book does, across line breaks). Counting them with :class:`Vocab` gives
frequencies sorted most frequent first, ties in order of first appearance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from divekit.data.text import Vocab


def ngrams(tokens: Sequence[Any], n: int) -> list[tuple[Any, ...]]:
    """The ``n``-grams of a flat token list, as tuples (``zip`` of ``n`` shifted copies)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return list(zip(*(tokens[i:len(tokens) - n + 1 + i] for i in range(n))))


def ngram_vocab(tokens: Sequence[Any], n: int) -> Vocab:
    """A vocabulary of ``n``-grams (unigrams stay plain tokens); its ``token_freqs`` are the counts."""
    return Vocab(list(tokens) if n == 1 else ngrams(tokens, n))


def top_ngrams(tokens: Sequence[Any], n: int, k: int = 10) -> list[tuple[Any, int]]:
    """The ``k`` most frequent ``n``-grams with their counts."""
    return ngram_vocab(tokens, n).token_freqs[:k]


def zipf_frequencies(tokens: Sequence[Any], orders: Sequence[int] = (1, 2, 3)) -> dict[int, list[int]]:
    """For each ``n`` in ``orders``, every ``n``-gram's count, most frequent first (for a log-log plot)."""
    return {n: [count for _, count in ngram_vocab(tokens, n).token_freqs] for n in orders}
