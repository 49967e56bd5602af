"""Minibatches straight from tensors held in memory.

A data set that fits in memory needs no per-sample ``Dataset.__getitem__``,
no collation and no worker processes: one permutation per epoch and one
``index_select`` per batch are enough, so an epoch is limited by compute, not
by Python. Conversions (uint8 -> float, resizing) happen per batch, in the
task, on the training device.

Order is a pure function of ``(seed, epoch)``, so an interrupted epoch can be
replayed exactly from any batch (``start_batch``). In a distributed run every
rank takes a disjoint slice of each *global* batch, so ``world_size`` ranks
with a local batch of ``batch_size / world_size`` see exactly the examples
that one process with ``batch_size`` would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from divekit.errors import ConfigError


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator whose stream depends only on ``seed`` and ``epoch``."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class TensorBatches:
    """Iterate minibatches of equal-length tensors, e.g. ``(images, labels)``.

    Args:
        tensors: tensors sharing their first dimension.
        batch_size: the global batch size (all ranks together).
        shuffle: a new permutation each epoch (see :meth:`set_epoch`).
        drop_last: drop a final batch smaller than ``batch_size``. With
            ``world_size > 1`` a final batch too small to give every rank an
            example is always dropped, so every rank runs the same number of steps
            (the trainer weights uneven shares so gradients stay exact).
        seed: seeds the permutations.
        rank, world_size: this process's share in a distributed run. For
            training, each rank gets a contiguous slice of every global batch;
            for evaluation (``shuffle=False``), a strided share of the whole set.
    """

    def __init__(
        self,
        tensors: Sequence[torch.Tensor],
        *,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        if world_size > 1 and shuffle and batch_size < world_size:
            raise ConfigError(f"batch size {batch_size} is smaller than the {world_size} processes sharing it")
        lengths = {t.shape[0] for t in tensors}
        if len(lengths) != 1:
            raise ValueError(f"tensors differ in length: {sorted(lengths)}")
        self.tensors = tuple(tensors)
        self.num_examples = lengths.pop()
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation the next iteration uses."""
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        if self.shuffle:
            return torch.randperm(self.num_examples, generator=epoch_generator(self.seed, self.epoch))
        if self.world_size > 1:  # evaluation: a strided share, every example exactly once overall
            return torch.arange(self.rank, self.num_examples, self.world_size)
        return torch.arange(self.num_examples)

    def _batches(self) -> list[torch.Tensor]:
        order = self._order()
        if not self.shuffle and self.world_size > 1:
            local = max(1, self.batch_size // self.world_size)
            return list(order.split(local))
        batches = list(order.split(self.batch_size))
        ragged = batches and len(batches[-1]) < self.batch_size
        if ragged and (self.drop_last or len(batches[-1]) < self.world_size):
            batches.pop()
        if self.world_size > 1:
            batches = [b.tensor_split(self.world_size)[self.rank] for b in batches]
        return batches

    def __len__(self) -> int:
        if not self.shuffle and self.world_size > 1:
            local = max(1, self.batch_size // self.world_size)
            share = len(range(self.rank, self.num_examples, self.world_size))
            return -(-share // local)
        full, rest = divmod(self.num_examples, self.batch_size)
        keep_rest = rest and not self.drop_last and rest >= self.world_size
        return full + int(bool(keep_rest))

    def iter_from(self, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        """Yield the epoch's batches, skipping the first ``start_batch``."""
        for index in self._batches()[start_batch:]:
            yield tuple(t[index] for t in self.tensors)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        return self.iter_from(0)
