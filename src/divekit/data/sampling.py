"""Minibatches of subsequences from one long token stream (notes §6.3.2 数据采样).

A corpus too long to feed at once is cut into subsequences of ``num_steps``
tokens; the target ``Y`` of each input ``X`` is the same window shifted by
one token. Each epoch starts at a random offset in ``[0, num_steps - 1]``, so
different epochs cut the text at different places. (A well-known version
draws the offset from ``[0, num_steps]``: an offset of ``num_steps`` only
throws the first subsequence away.)

- :class:`RandomSequenceBatches`: subsequences in random order. Neighbouring
  batches are unrelated, so the hidden state starts afresh for each batch.
- :class:`SequentialBatches`: the stream is split into ``batch_size`` rows and
  batch ``i + 1`` continues batch ``i`` row by row, so the hidden state can be
  carried from one batch to the next (detached from the graph).

Both are deterministic functions of ``(seed, epoch)``, have the same number
of batches every epoch (the count that the worst offset allows), and can
restart mid-epoch (``iter_from``). Batches are global: in a distributed run
each process keeps a fixed, contiguous slice of the rows of every batch
(:mod:`divekit.data.batching`), so its hidden state always belongs to its own rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from divekit.data.batching import epoch_generator
from divekit.errors import ConfigError, DataError

Batch = tuple[torch.Tensor, torch.Tensor]  # X, Y: (N, num_steps) token ids


class _StreamBatches:
    """What both samplers share: the checks and the per-epoch offset."""

    def __init__(self, corpus: torch.Tensor, *, batch_size: int, num_steps: int, seed: int = 0) -> None:
        if batch_size < 1 or num_steps < 1:
            raise ConfigError(f"batch size and num_steps must be at least 1, got {batch_size} and {num_steps}")
        self.corpus = torch.as_tensor(corpus, dtype=torch.long).flatten()
        self.batch_size = batch_size
        self.num_steps = num_steps
        self.seed = seed
        self.epoch = 0
        if len(self) == 0:
            raise DataError(
                f"a corpus of {len(self.corpus):,} tokens gives no batch of {batch_size} x {num_steps} tokens; "
                "use a smaller batch size or num_steps, or more text"
            )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _offset(self, generator: torch.Generator) -> int:
        """The epoch's start, uniform in ``[0, num_steps - 1]``."""
        return int(torch.randint(0, self.num_steps, (1,), generator=generator))

    def __iter__(self) -> Iterator[Batch]:
        return self.iter_from(0)

    def iter_from(self, start_batch: int = 0) -> Iterator[Batch]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class RandomSequenceBatches(_StreamBatches):
    """Random sampling: non-overlapping subsequences in a random order each epoch.

    Args:
        corpus: the token ids, one long 1-D stream.
        batch_size: subsequences per batch.
        num_steps: tokens per subsequence.
        seed: seeds the offsets and orders (with the epoch).
    """

    def __len__(self) -> int:
        # the worst offset, num_steps - 1, leaves len - num_steps tokens that have a next token
        return (len(self.corpus) - self.num_steps) // self.num_steps // self.batch_size

    def iter_from(self, start_batch: int = 0) -> Iterator[Batch]:
        generator = epoch_generator(self.seed, self.epoch)
        offset = self._offset(generator)
        count = (len(self.corpus) - 1 - offset) // self.num_steps  # subsequences with a full target
        starts = offset + self.num_steps * torch.randperm(count, generator=generator)
        window = torch.arange(self.num_steps)
        for b in range(start_batch, len(self)):
            chosen = starts[b * self.batch_size:(b + 1) * self.batch_size]  # (N,)
            index = chosen[:, None] + window  # (N, num_steps)
            yield self.corpus[index], self.corpus[index + 1]


class SequentialBatches(_StreamBatches):
    """Sequential partitioning: ``batch_size`` parallel rows, read left to right.

    Row ``r`` of batch ``i + 1`` starts where row ``r`` of batch ``i`` ended,
    so a model may carry its hidden state across batches (§6.4). Arguments as
    for :class:`RandomSequenceBatches`.
    """

    @property
    def row_length(self) -> int:
        """Tokens per row: what the worst offset leaves, with one token to spare for the targets."""
        return (len(self.corpus) - self.num_steps) // self.batch_size

    def __len__(self) -> int:
        return self.row_length // self.num_steps

    def iter_from(self, start_batch: int = 0) -> Iterator[Batch]:
        offset = self._offset(epoch_generator(self.seed, self.epoch))
        n = self.batch_size * self.row_length
        Xs = self.corpus[offset:offset + n].view(self.batch_size, -1)  # (N, row_length)
        Ys = self.corpus[offset + 1:offset + 1 + n].view(self.batch_size, -1)
        for b in range(start_batch, len(self)):
            columns = slice(b * self.num_steps, (b + 1) * self.num_steps)
            yield Xs[:, columns], Ys[:, columns]


def evaluation_batches(corpus: torch.Tensor, *, batch_size: int, num_steps: int) -> Iterator[Batch]:
    """The tokens of ``corpus`` as sequential batches, each predicted once (for perplexity).

    The stream is split into at most ``batch_size`` equal rows of at least
    ``num_steps`` tokens where the text allows (the last ``< batch_size``
    tokens that do not fill a row are left out); the last batch of a row may
    be shorter. Every batch has the same rows, so processes that each keep a
    share of the rows score each token once, with the state carried along their rows.
    """
    corpus = torch.as_tensor(corpus, dtype=torch.long).flatten()
    usable = len(corpus) - 1
    if usable < 1:
        return
    rows = max(1, min(batch_size, usable // num_steps))
    length = usable // rows
    Xs = corpus[:rows * length].view(rows, length)  # (rows, length)
    Ys = corpus[1:rows * length + 1].view(rows, length)
    for start in range(0, length, num_steps):
        yield Xs[:, start:start + num_steps], Ys[:, start:start + num_steps]
