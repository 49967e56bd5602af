"""Text pre-processing (notes §6.2 文本预处理): tokenisation and the vocabulary."""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

from divekit.errors import DataError

MAX_VOCAB_BYTES = 64 << 20  # a word vocabulary of a large corpus runs to megabytes; 64 MiB is far beyond

UNK = "<unk>"


def tokenize(lines: Iterable[str], token: str = "word") -> list[list[str]]:
    """Split each line into words (on whitespace) or into characters."""
    if token == "word":
        return [line.split() for line in lines]
    if token == "char":
        return [list(line) for line in lines]
    raise ValueError(f"unknown token type {token!r}; use 'word' or 'char'")


def count_corpus(tokens: Iterable[Any]) -> collections.Counter:
    """Count tokens in a flat list or a list of token lists (a ``Counter`` is taken as already counted)."""
    if isinstance(tokens, collections.Counter):
        return tokens
    tokens = list(tokens)
    if tokens and isinstance(tokens[0], list):
        tokens = [t for line in tokens for t in line]
    return collections.Counter(tokens)


class Vocab:
    """A mapping between tokens and integer indices.

    Index 0 is ``<unk>``, then come the ``reserved_tokens`` in the order given,
    then every token seen at least ``min_freq`` times, most frequent first.
    Ties are broken by first appearance, so the order is deterministic.

    Args:
        tokens: a flat list of tokens, a list of token lists, or a ``Counter`` of tokens.
        min_freq: tokens seen fewer times map to ``<unk>``.
        reserved_tokens: tokens that always get an index (``<pad>``, ``<bos>``...).
    """

    def __init__(
        self,
        tokens: Iterable[Any] = (),
        *,
        min_freq: int = 0,
        reserved_tokens: Sequence[str] = (),
    ) -> None:
        counter = count_corpus(tokens)  # Counter keeps first-appearance order among equal counts
        self._token_freqs = sorted(counter.items(), key=lambda item: item[1], reverse=True)
        self.idx_to_token: list[Any] = [UNK, *[t for t in dict.fromkeys(reserved_tokens) if t != UNK]]
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}
        for token, freq in self._token_freqs:
            if freq < min_freq:
                break
            if token not in self.token_to_idx:
                self.token_to_idx[token] = len(self.idx_to_token)
                self.idx_to_token.append(token)
        self._tuple_tokens = _holds_tuples(self.idx_to_token)

    @property
    def unk(self) -> int:
        return 0

    @property
    def token_freqs(self) -> list[tuple[Any, int]]:
        """``(token, count)`` pairs of the counted corpus, most frequent first."""
        return self._token_freqs

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, tokens: Any) -> Any:
        """The index of one token, or nested lists/tuples of indices for nested tokens."""
        if isinstance(tokens, (list, tuple)) and not (tokens and self._is_token(tokens)):
            return [self.__getitem__(t) for t in tokens]
        return self.token_to_idx.get(tokens, self.unk)

    def _is_token(self, item: tuple | list) -> bool:
        # n-gram vocabularies use tuples as tokens: there a flat tuple is one (maybe unknown) token
        if not isinstance(item, tuple):
            return False
        if item in self.token_to_idx:
            return True
        return self._tuple_tokens and not any(isinstance(part, (list, tuple)) for part in item)

    def to_tokens(self, indices: Any) -> Any:
        """The token of one index, or lists of tokens for (nested) lists of indices."""
        if isinstance(indices, (list, tuple)):
            return [self.to_tokens(i) for i in indices]
        if hasattr(indices, "tolist"):
            return self.to_tokens(indices.tolist())
        return self.idx_to_token[indices]

    def __contains__(self, token: Any) -> bool:
        return token in self.token_to_idx

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.idx_to_token == other.idx_to_token

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self.idx_to_token[:5]})"

    # -------------------------------------------------------------- saving
    def to_json(self) -> str:
        """The vocabulary (its token order and counts) as JSON text."""
        return json.dumps({"idx_to_token": self.idx_to_token, "token_freqs": self._token_freqs}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, *, source: str = "<vocab>") -> Vocab:
        """Rebuild a vocabulary saved with :meth:`to_json`."""
        try:
            data = json.loads(text)
            tokens = data["idx_to_token"]
            freqs = data.get("token_freqs", [])
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{source}: not a saved vocabulary ({err})") from err
        if not isinstance(tokens, list) or not tokens or tokens[0] != UNK or len(set(map(_hashable, tokens))) != len(tokens):
            raise DataError(f"{source}: a vocabulary must be a list of distinct tokens starting with {UNK!r}")
        vocab = cls()
        vocab.idx_to_token = [_hashable(t) for t in tokens]
        vocab.token_to_idx = {t: i for i, t in enumerate(vocab.idx_to_token)}
        vocab._token_freqs = [(_hashable(t), int(c)) for t, c in freqs]
        vocab._tuple_tokens = _holds_tuples(vocab.idx_to_token)
        return vocab

    def save(self, path: str | os.PathLike) -> None:
        from divekit.io import atomic_write_text

        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        from divekit.io import read_text

        text = read_text(path, limit_bytes=MAX_VOCAB_BYTES, what="vocabulary")
        return cls.from_json(text, source=str(path))


def _hashable(token: Any) -> Any:
    """JSON turns tuple tokens (n-grams) into lists; turn them back."""
    return tuple(_hashable(t) for t in token) if isinstance(token, list) else token


def _holds_tuples(tokens: list[Any]) -> bool:
    """Whether a vocabulary's tokens are n-grams (tuples) rather than strings."""
    return any(isinstance(t, tuple) for t in tokens)
