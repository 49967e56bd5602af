"""Minibatches straight from tensors held in memory.

A data set that fits in memory needs no per-sample ``Dataset.__getitem__``,
no collation and no worker processes: one permutation per epoch and one
``index_select`` per batch are enough, so an epoch is limited by compute, not
by Python. Conversions (uint8 -> float, resizing) happen per batch, on the
training device (see :mod:`divekit.data.sources`).

Order is a pure function of ``(seed, epoch)``, so an interrupted epoch can be
replayed exactly from any batch (``start_batch``). Batches are global: in a
distributed run each process keeps its share of every batch
(:mod:`divekit.data.batching`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from divekit.data.batching import epoch_generator
from divekit.errors import ConfigError


class TensorBatches:
    """Iterate minibatches of equal-length tensors, e.g. ``(images, labels)``.

    Args:
        tensors: tensors sharing their first dimension.
        batch_size: examples per batch.
        shuffle: a new permutation each epoch (see :meth:`set_epoch`).
        drop_last: drop a final batch smaller than ``batch_size``.
        seed: seeds the permutations.
    """

    def __init__(
        self,
        tensors: Sequence[torch.Tensor],
        *,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        lengths = {t.shape[0] for t in tensors}
        if len(lengths) != 1:
            raise ValueError(f"tensors differ in length: {sorted(lengths)}")
        self.tensors = tuple(tensors)
        self.num_examples = lengths.pop()
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation the next iteration uses."""
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        if self.shuffle:
            return torch.randperm(self.num_examples, generator=epoch_generator(self.seed, self.epoch))
        return torch.arange(self.num_examples)

    def __len__(self) -> int:
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + int(bool(rest) and not self.drop_last)

    @property
    def last_batch_rows(self) -> int:
        """Rows of the epoch's last batch."""
        rest = self.num_examples % self.batch_size
        return rest if rest and not self.drop_last else self.batch_size

    def iter_from(self, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        """Yield the epoch's batches, skipping the first ``start_batch``."""
        order = self._order()
        for b in range(start_batch, len(self)):
            index = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield tuple(t[index] for t in self.tensors)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        return self.iter_from(0)
