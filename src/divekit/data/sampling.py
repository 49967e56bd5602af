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
restart mid-epoch (``iter_from``). In a distributed run each rank takes a
contiguous, disjoint slice of the rows of every global batch, so a rank's
hidden state always belongs to its own rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from divekit.data.loader import epoch_generator
from divekit.errors import ConfigError, DataError

Batch = tuple[torch.Tensor, torch.Tensor]  # X, Y: (N, num_steps) token ids


class _StreamBatches:
    """What both samplers share: checks, the per-epoch offset and the rank's rows."""

    def __init__(self, corpus: torch.Tensor, *, batch_size: int, num_steps: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:  # fmt: skip
        if batch_size < 1 or num_steps < 1:
            raise ConfigError(f"batch size and num_steps must be at least 1, got {batch_size} and {num_steps}")
        if batch_size % world_size:
            raise ConfigError(f"batch size {batch_size} does not split evenly across {world_size} processes")
        self.corpus = torch.as_tensor(corpus, dtype=torch.long).flatten()
        self.batch_size = batch_size
        self.num_steps = num_steps
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
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

    def _rows(self) -> slice:
        """This rank's rows of a global batch."""
        local = self.batch_size // self.world_size
        return slice(self.rank * local, (self.rank + 1) * local)

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
        batch_size: subsequences per global batch (all ranks together).
        num_steps: tokens per subsequence.
        seed: seeds the offsets and orders (with the epoch).
        rank, world_size: this process's share in a distributed run.
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
            chosen = starts[b * self.batch_size:(b + 1) * self.batch_size][self._rows()]  # (N,)
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
        Xs = self.corpus[offset:offset + n].view(self.batch_size, -1)[self._rows()]  # (N, row_length)
        Ys = self.corpus[offset + 1:offset + 1 + n].view(self.batch_size, -1)[self._rows()]
        for b in range(start_batch, len(self)):
            columns = slice(b * self.num_steps, (b + 1) * self.num_steps)
            yield Xs[:, columns], Ys[:, columns]


def evaluation_batches(corpus: torch.Tensor, *, batch_size: int, num_steps: int, rank: int = 0,
                       world_size: int = 1) -> Iterator[Batch]:  # fmt: skip
    """The tokens of ``corpus`` as sequential batches, each predicted once (for perplexity).

    The stream is split into at most ``batch_size`` equal rows of at least
    ``num_steps`` tokens where the text allows (the last ``< batch_size``
    tokens that do not fill a row are left out); the last batch of a row may
    be shorter. With several ranks, each takes a disjoint share of the rows (a
    rank may get none), so the ranks together score each token once.
    """
    corpus = torch.as_tensor(corpus, dtype=torch.long).flatten()
    usable = len(corpus) - 1
    if usable < 1:
        return
    rows = max(1, min(batch_size, usable // num_steps))
    length = usable // rows
    Xs = corpus[:rows * length].view(rows, length)  # (rows, length)
    Ys = corpus[1:rows * length + 1].view(rows, length)
    mine = torch.arange(rows).tensor_split(world_size)[rank]
    if len(mine) == 0:
        return
    Xs, Ys = Xs[mine], Ys[mine]
    for start in range(0, length, num_steps):
        yield Xs[:, start:start + num_steps], Ys[:, start:start + num_steps]
