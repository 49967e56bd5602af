"""Vocab and the book's two samplers: divekit's Vocab and the book's code pass, the usual slips do not."""

from __future__ import annotations

import collections
import random

import pytest
import torch

from divekit.check.catalogue import book_sampling
from divekit.data.text import Vocab as ReferenceVocab
from tests.check.support import Case, case_id, verify


class Vocab:
    """The notes' Vocab with its two typos fixed (self._token_freqs, self.unk)."""

    unk = 0

    def __init__(self, tokens=None, min_freq=0, reserved_tokens=None):
        tokens = tokens or []
        reserved_tokens = reserved_tokens or []
        counter = collections.Counter(tokens)
        self._token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        self.idx_to_token = ["<unk>"] + reserved_tokens
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}
        for token, freq in self._token_freqs:
            if freq < min_freq:
                break
            if token not in self.token_to_idx:
                self.idx_to_token.append(token)
                self.token_to_idx[token] = len(self.idx_to_token) - 1

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self.__getitem__(token) for token in tokens]

    def to_tokens(self, indices):
        if not isinstance(indices, (list, tuple)):
            return self.idx_to_token[indices]
        return [self.idx_to_token[index] for index in indices]


class NotesVocab(Vocab):
    """As printed in the notes: no unk attribute."""

    unk = property(lambda self: self.__missing_unk)


class AscendingVocab(Vocab):
    def __init__(self, tokens=None, min_freq=0, reserved_tokens=None):
        super().__init__([], 0, reserved_tokens)
        for token, freq in sorted(collections.Counter(tokens).items(), key=lambda x: x[1]):
            if freq >= min_freq and token not in self.token_to_idx:
                self.idx_to_token.append(token)
                self.token_to_idx[token] = len(self.idx_to_token) - 1


class StrictMinFreqVocab(Vocab):
    def __init__(self, tokens=None, min_freq=0, reserved_tokens=None):
        super().__init__([], 0, reserved_tokens)
        for token, freq in sorted(collections.Counter(tokens).items(), key=lambda x: x[1], reverse=True):
            if freq <= min_freq:
                break
            self.idx_to_token.append(token)
            self.token_to_idx[token] = len(self.idx_to_token) - 1


class ShiftedIndexVocab(Vocab):
    def __init__(self, tokens=None, min_freq=0, reserved_tokens=None):
        super().__init__([], 0, reserved_tokens)
        for token, freq in sorted(collections.Counter(tokens).items(), key=lambda x: x[1], reverse=True):
            if freq >= min_freq:
                self.idx_to_token.append(token)
                self.token_to_idx[token] = len(self.idx_to_token)


class KeyErrorVocab(Vocab):
    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx[tokens]
        return [self.__getitem__(token) for token in tokens]


class ReservedLastVocab(Vocab):
    def __init__(self, tokens=None, min_freq=0, reserved_tokens=None):
        super().__init__(tokens, min_freq, [])
        for token in reserved_tokens or []:
            self.idx_to_token.append(token)
            self.token_to_idx[token] = len(self.idx_to_token) - 1


# ----------------------------------------------------------------------------- samplers, as in the book
def seq_data_iter_random(corpus, batch_size, num_steps):
    corpus = corpus[random.randint(0, num_steps - 1):]
    num_subseqs = (len(corpus) - 1) // num_steps
    initial_indices = list(range(0, num_subseqs * num_steps, num_steps))
    random.shuffle(initial_indices)

    def data(pos):
        return corpus[pos: pos + num_steps]

    num_batches = num_subseqs // batch_size
    for i in range(0, batch_size * num_batches, batch_size):
        initial_indices_per_batch = initial_indices[i: i + batch_size]
        X = [data(j) for j in initial_indices_per_batch]
        Y = [data(j + 1) for j in initial_indices_per_batch]
        yield torch.tensor(X), torch.tensor(Y)


def random_sampler(num_subseqs_of, start_step, *, shuffle=True, y_shift=1, fixed_offset=False):
    """A book-style random sampler with one thing changed."""

    def sampler(corpus, batch_size, num_steps):
        corpus = corpus[0 if fixed_offset else random.randint(0, num_steps - 1):]
        num_subseqs = num_subseqs_of(len(corpus), num_steps)
        initial_indices = list(range(0, num_subseqs * start_step(num_steps), start_step(num_steps)))
        if shuffle:
            random.shuffle(initial_indices)
        for i in range(0, batch_size * (num_subseqs // batch_size), batch_size):
            chosen = initial_indices[i: i + batch_size]
            yield (torch.tensor([corpus[j: j + num_steps] for j in chosen]),
                   torch.tensor([corpus[j + y_shift: j + y_shift + num_steps] for j in chosen]))  # fmt: skip

    return sampler


def full(n, num_steps):
    return (n - 1) // num_steps


random_drops_last = random_sampler(lambda n, s: (n - 1) // s - 1, lambda s: s)
random_drops_last.__name__ = "random_drops_last"
random_unshuffled = random_sampler(full, lambda s: s, shuffle=False)
random_unshuffled.__name__ = "random_unshuffled"
random_y_not_shifted = random_sampler(full, lambda s: s, y_shift=0)
random_y_not_shifted.__name__ = "random_y_not_shifted"
random_fixed_offset = random_sampler(full, lambda s: s, fixed_offset=True)
random_fixed_offset.__name__ = "random_fixed_offset"


def random_overlapping(corpus, batch_size, num_steps):
    corpus = corpus[random.randint(0, num_steps - 1):]
    starts = list(range(0, len(corpus) - num_steps))
    random.shuffle(starts)
    starts = starts[: ((len(corpus) - 1) // num_steps) // batch_size * batch_size]
    for i in range(0, len(starts), batch_size):
        chosen = starts[i: i + batch_size]
        yield (torch.tensor([corpus[j: j + num_steps] for j in chosen]),
               torch.tensor([corpus[j + 1: j + 1 + num_steps] for j in chosen]))  # fmt: skip


def seq_data_iter_sequential(corpus, batch_size, num_steps):
    offset = random.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = torch.tensor(corpus[offset: offset + num_tokens])
    Ys = torch.tensor(corpus[offset + 1: offset + 1 + num_tokens])
    Xs, Ys = Xs.reshape(batch_size, -1), Ys.reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        yield Xs[:, i: i + num_steps], Ys[:, i: i + num_steps]


def sequential_interleaved(corpus, batch_size, num_steps):
    offset = random.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = torch.tensor(corpus[offset: offset + num_tokens]).reshape(-1, batch_size).T
    Ys = torch.tensor(corpus[offset + 1: offset + 1 + num_tokens]).reshape(-1, batch_size).T
    for i in range(0, num_steps * (Xs.shape[1] // num_steps), num_steps):
        yield Xs[:, i: i + num_steps], Ys[:, i: i + num_steps]


def sequential_drops_last(corpus, batch_size, num_steps):
    batches = list(seq_data_iter_sequential(corpus, batch_size, num_steps))
    yield from batches[:-1]


def sequential_fixed_offset(corpus, batch_size, num_steps):
    num_tokens = ((len(corpus) - 1) // batch_size) * batch_size
    Xs = torch.tensor(corpus[:num_tokens]).reshape(batch_size, -1)
    Ys = torch.tensor(corpus[1:1 + num_tokens]).reshape(batch_size, -1)
    for i in range(0, num_steps * (Xs.shape[1] // num_steps), num_steps):
        yield Xs[:, i: i + num_steps], Ys[:, i: i + num_steps]


def sequential_y_is_x(corpus, batch_size, num_steps):
    for X, _ in seq_data_iter_sequential(corpus, batch_size, num_steps):
        yield X, X


CASES = [
    Case("vocab", ReferenceVocab),
    Case("vocab", Vocab),
    Case("vocab", NotesVocab, "self.unk is used but never defined", "the notes' Vocab has no unk"),
    Case("vocab", AscendingVocab, "most frequent first", "sorted least frequent first"),
    Case("vocab", StrictMinFreqVocab, "exactly min_freq times is kept", "freq <= min_freq drops too much"),
    Case("vocab", ShiftedIndexVocab, "off by one", "token_to_idx one too high"),
    Case("vocab", KeyErrorVocab, "map to <unk>", "an unseen token raises KeyError"),
    Case("vocab", ReservedLastVocab, "reserved tokens come first", "reserved tokens after the counted ones"),
    Case("seq-data-iter-random", book_sampling.seq_data_iter_random),
    Case("seq-data-iter-random", seq_data_iter_random),
    Case("seq-data-iter-random", random_drops_last, "last subsequence is dropped", "one subsequence short"),
    Case("seq-data-iter-random", random_unshuffled, "never shuffled", "no shuffle"),
    Case("seq-data-iter-random", random_y_not_shifted, "X shifted by one token", "Y = X"),
    Case("seq-data-iter-random", random_fixed_offset, "same every epoch", "offset always 0"),
    Case("seq-data-iter-random", random_overlapping, "subsequences overlap", "starts one token apart"),
    Case("seq-data-iter-sequential", book_sampling.seq_data_iter_sequential),
    Case("seq-data-iter-sequential", seq_data_iter_sequential),
    Case("seq-data-iter-sequential", sequential_interleaved, "rows are interleaved", "reshape(-1, batch_size).T"),
    Case("seq-data-iter-sequential", sequential_drops_last, "last batch is dropped", "drops the last batch"),
    Case("seq-data-iter-sequential", sequential_fixed_offset, "same every epoch", "offset always 0"),
    Case("seq-data-iter-sequential", sequential_y_is_x, "X shifted by one token", "Y = X"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_checker_verdict(case):
    verify(case)


def test_book_sequential_continues_each_row_from_batch_to_batch():
    batches = book_sampling.book_sequential(list(range(23)), 2, 3, 1)
    # 20 tokens from offset 1 in two rows, 1..10 and 11..20, read 3 columns at a time
    assert [X.tolist() for X, _ in batches] == [[[1, 2, 3], [11, 12, 13]], [[4, 5, 6], [14, 15, 16]],
                                                [[7, 8, 9], [17, 18, 19]]]  # fmt: skip
    assert all(torch.equal(Y, X + 1) for X, Y in batches)
