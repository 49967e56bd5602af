"""Batches for the trainer, from anything: divekit's loaders, a ``DataLoader``, a list, a callable.

The trainer asks one thing of its training data: an :class:`EpochBatches`,
whose batches are a pure function of ``(seed, epoch)``, so an interrupted
epoch can be replayed exactly from any batch. :func:`as_epoch_batches`
turns any re-iterable into one:

- divekit's own loaders (:class:`~divekit.data.loader.TensorBatches`, the
  sequence samplers) already are;
- a list or tuple of batches is read in order every epoch;
- a ``DataLoader`` (or any re-iterable) is iterated afresh each epoch with
  PyTorch's generator temporarily seeded from ``(seed, epoch)`` while its
  first batch is drawn, so its shuffling and its workers' seeds are the same
  in every process and after a resume, and training's own random stream
  (dropout...) is left untouched (a dataset that draws from the global
  generator in every ``__getitem__`` without workers still shares it);
  a loader that brings its own ``generator`` has that generator's state saved
  and restored instead;
- a callable is called once per epoch, likewise seeded, for a fresh iterator.

Sharding across processes happens here and nowhere else: every process reads
the same global batch and keeps its own contiguous slice of the rows
(:func:`shard_batch`), so N processes see exactly what one process with the
whole batch sees, and the trainer's loss weighting makes their gradients
equal. Global batches with fewer rows than processes are dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import torch

from divekit.errors import ConfigError


@runtime_checkable
class EpochBatches(Protocol):
    """What the trainer iterates: batches that depend only on the seed and the epoch."""

    def set_epoch(self, epoch: int) -> None: ...
    def iter_from(self, start_batch: int = 0) -> Iterator[Any]: ...


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator whose stream depends only on ``seed`` and ``epoch``."""
    return torch.Generator().manual_seed(epoch_seed(seed, epoch))


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


@dataclass(frozen=True)
class BatchSeed:
    """A batch's seed for random augmentation, with the rows of the global batch this process holds.

    Augmentation draws parameters for all ``total`` rows from ``seed`` and
    keeps ``rows``, so a sharded batch is augmented exactly as the same rows
    of the whole batch would be.
    """

    seed: int
    total: int
    rows: slice = field(default_factory=lambda: slice(None))


class Rows(list):
    """A list with one item per example of a batch (e.g. reference sentences); sharded like a tensor's rows."""


class Replay:
    """A re-iterable over ``make()``'s fresh iterator each time (evaluation batches from a generator function)."""

    def __init__(self, make: Callable[[], Iterable[Any]]) -> None:
        self.make = make

    def __iter__(self) -> Iterator[Any]:
        return iter(self.make())


def batch_rows(batch: Any) -> int | None:
    """Rows of the first tensor found in ``batch`` (``None`` if it holds no tensor with a batch dimension)."""
    if torch.is_tensor(batch):
        return int(batch.shape[0]) if batch.dim() else None
    if isinstance(batch, Rows):
        return len(batch)
    if isinstance(batch, Mapping):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for item in batch:
            rows = batch_rows(item)
            if rows is not None:
                return rows
    return None


def shard_bounds(rows: int, rank: int, world_size: int) -> slice:
    """This process's contiguous rows of a batch of ``rows`` (as ``torch.tensor_split`` divides them)."""
    base, extra = divmod(rows, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def shard_batch(batch: Any, rank: int, world_size: int) -> Any:
    """This process's share of ``batch``: every tensor with a batch dimension cut to its rows."""
    if world_size == 1:
        return batch
    rows = batch_rows(batch)
    return batch if rows is None else take_rows(batch, shard_bounds(rows, rank, world_size))


def take_rows(batch: Any, rows: slice) -> Any:
    """``batch`` with every tensor (and :class:`Rows`, :class:`BatchSeed`) cut to ``rows``."""
    if torch.is_tensor(batch):
        return batch[rows] if batch.dim() else batch
    if isinstance(batch, Rows):
        return Rows(batch[rows])
    if isinstance(batch, BatchSeed):
        mine = range(batch.total)[batch.rows][rows]
        return replace(batch, rows=slice(mine.start, mine.stop))
    if isinstance(batch, Mapping):
        return {k: take_rows(v, rows) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        items = [take_rows(v, rows) for v in batch]
        return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)
    return batch


class ShardedBatches:
    """This process's share of every batch of ``batches`` (see :func:`shard_batch`)."""

    def __init__(self, batches: EpochBatches, *, rank: int, world_size: int) -> None:
        size = getattr(batches, "batch_size", None) or getattr(getattr(batches, "batches", None), "batch_size", None)
        if isinstance(size, int) and size < world_size:
            raise ConfigError(f"data.batch_size {size} is smaller than the {world_size} processes sharing each batch")
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)

    def iter_from(self, start_batch: int = 0) -> Iterator[Any]:
        for batch in self.batches.iter_from(start_batch):
            rows = batch_rows(batch)
            if rows is None or rows >= self.world_size:  # too few rows to give every process one: dropped
                yield shard_batch(batch, self.rank, self.world_size)

    def __len__(self) -> int:
        last = getattr(self.batches, "last_batch_rows", None)
        return len(self.batches) - int(last is not None and last < self.world_size)  # type: ignore[arg-type]

    def state_dict(self) -> dict[str, Any]:
        return batches_state(self.batches)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_batches_state(self.batches, state)


class IterableBatches:
    """A re-iterable (``DataLoader``, list, callable returning an iterator) as :class:`EpochBatches`.

    Args:
        source: the batches.
        seed: seeds each epoch's iteration (with the epoch).
    """

    def __init__(self, source: Iterable[Any] | Callable[[], Iterable[Any]], *, seed: int = 0) -> None:
        if isinstance(source, Iterator):
            raise ConfigError("the batches are a one-shot iterator (e.g. a generator), which is empty after the "
                              "first epoch; pass a list, a DataLoader, or a function that returns a fresh iterator")  # fmt: skip
        self.source, self.seed, self.epoch = source, seed, 0
        self.generator = _own_generator(source)
        self._epoch_start_state = self.generator.get_state() if self.generator is not None else None

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch and self.generator is not None:
            self._epoch_start_state = self.generator.get_state()
        self.epoch = epoch
        sampler = getattr(self.source, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # a DistributedSampler reshuffles per epoch
            sampler.set_epoch(epoch)

    def iter_from(self, start_batch: int = 0) -> Iterator[Any]:
        if self.generator is not None:
            self.generator.set_state(self._epoch_start_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(epoch_seed(self.seed, self.epoch))
            iterator = iter(self.source() if callable(self.source) and not _iterable(self.source) else self.source)
            # A sampler draws its shuffling seed when first asked for a batch, not when the iterator is made.
            first = list(itertools.islice(iterator, 1))
        return itertools.islice(itertools.chain(first, iterator), start_batch, None)

    def __len__(self) -> int:
        if not hasattr(self.source, "__len__"):
            raise TypeError("these batches have no len()")
        return len(self.source)  # type: ignore[arg-type]

    def state_dict(self) -> dict[str, Any]:
        """The loader's own generator as it was when this epoch began (none without one)."""
        if self._epoch_start_state is None:
            return {}
        return {"epoch": self.epoch, "generator": self._epoch_start_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.generator is not None and "generator" in state:
            self.epoch, self._epoch_start_state = int(state["epoch"]), state["generator"]


def _iterable(obj: Any) -> bool:
    return hasattr(obj, "__iter__")


def _own_generator(source: Any) -> torch.Generator | None:
    """The generator a DataLoader's sampler shuffles with, when the user gave one."""
    for holder in (source, getattr(source, "sampler", None), getattr(source, "batch_sampler", None)):
        generator = getattr(holder, "generator", None)
        if isinstance(generator, torch.Generator):
            return generator
    return None


def as_epoch_batches(source: Any, *, seed: int = 0) -> EpochBatches:
    """``source`` as :class:`EpochBatches` (see the module docstring for what is accepted)."""
    if isinstance(source, EpochBatches):
        return source
    if not (_iterable(source) or callable(source)):
        raise ConfigError(f"cannot iterate batches from a {type(source).__name__}; pass a DataLoader, a list of "
                          "batches, or a function that returns an iterator of batches")  # fmt: skip
    return IterableBatches(source, seed=seed)


def num_batches(batches: Any) -> int | None:
    """How many batches an epoch has, or ``None`` when the source cannot tell."""
    try:
        return len(batches)
    except TypeError:
        return None


def batches_state(batches: Any) -> dict[str, Any]:
    """What a checkpoint must keep of ``batches`` to replay its epoch (a loader's own generator)."""
    return batches.state_dict() if hasattr(batches, "state_dict") else {}


def load_batches_state(batches: Any, state: dict[str, Any]) -> None:
    if state and hasattr(batches, "load_state_dict"):
        batches.load_state_dict(state)


def iterate_shard(batches: Iterable[Any], *, rank: int, world_size: int) -> Iterator[Any]:
    """This process's share of every batch of an evaluation iterable; empty shares are skipped."""
    for batch in batches:
        batch = shard_batch(batch, rank, world_size)
        if batch_rows(batch) != 0:
            yield batch


def to_device(batch: Any, device: torch.device, *, channels_last: bool = False) -> Any:
    """``batch`` with every tensor moved to ``device``; 4-D floating tensors channels-last if asked."""
    if torch.is_tensor(batch):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, Mapping):
        return {k: to_device(v, device, channels_last=channels_last) for k, v in batch.items()}
    if isinstance(batch, Rows):
        return batch
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        return type(batch)(to_device(v, device, channels_last=channels_last) for v in batch)
    if isinstance(batch, tuple):
        return type(batch)(*(to_device(v, device, channels_last=channels_last) for v in batch))
    return batch
