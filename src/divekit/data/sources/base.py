"""What a data source gives the trainer: batches per split, device-side preparation, facts for the model.

A data source turns one loaded data set and the task's options into what
training needs: the training batches (an
:class:`~divekit.data.batching.EpochBatches`), the evaluation batches of
each held-out split (``val`` carved from the training data, ``test``), the
preparation of a batch on the device (:meth:`DataSource.transfer`: uint8 to
float, resizing, augmentation), the facts a model builder needs
(``num_classes``, ``vocab_size``...) and what prediction will need later
(``task.json``, vocabularies).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any

import torch

from divekit.data.batching import EpochBatches, to_device
from divekit.errors import ConfigError


class DataSource(abc.ABC):
    """Batches and facts of one data set for one task."""

    task: str = ""

    @abc.abstractmethod
    def train_batches(self, *, seed: int) -> EpochBatches:
        """The training batches (global: the trainer shards them across processes)."""

    @abc.abstractmethod
    def eval_batches(self) -> dict[str, Iterable[Any]]:
        """The evaluation batches of each held-out split present: ``val`` and/or ``test``."""

    def transfer(self, batch: Any, *, device: torch.device, channels_last: bool, train: bool) -> Any:
        """``batch`` on ``device``, ready for the model (the default moves every tensor)."""
        return to_device(batch, device, channels_last=channels_last)

    @abc.abstractmethod
    def model_options(self) -> dict[str, Any]:
        """Facts a model builder may need (``num_classes``, ``in_channels``, ``vocab_size``...)."""

    @abc.abstractmethod
    def info(self) -> dict[str, Any]:
        """What prediction needs later (class names, input size...), saved as ``task.json``."""

    def extras(self) -> dict[str, str]:
        """Extra files (name -> text) to save in the run folder, e.g. a vocabulary."""
        return {}


def carve_validation(count: int, fraction: float, *, seed: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(train, val)`` of ``count`` training items, ``fraction`` of them drawn for validation.

    The draw is a seeded permutation (``data.split_seed``), both parts keep
    their original order, and neither is empty when ``fraction > 0``.
    """
    check_fraction(fraction)
    if fraction == 0:
        return torch.arange(count), torch.arange(0)
    n_val = max(1, round(count * fraction))
    if n_val >= count:
        raise ConfigError(f"data.val_split={fraction} of {count:,} {what} leaves none to train on; use a smaller fraction")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[n_val:].sort().values, order[:n_val].sort().values


def check_fraction(fraction: float) -> None:
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"data.val_split must be a fraction in [0, 1), got {fraction}")
